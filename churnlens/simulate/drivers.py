"""The true churn-hazard decomposition by driver, and which features observe each driver.

The simulator's daily churn hazard is (:func:`churnlens.simulate.process.log_hazard`)::

    log h = log(hazard_base) - a * e + b * d + c * lapse + g * down + o * open_issue + newness
    e     = mu + x - k * d

with ``a = hazard_engagement``, ``b = hazard_dissatisfaction``, ``k = engagement_dissatisfaction``
(dissatisfaction also lowers engagement). Grouping the terms by what causes them gives
six drivers whose parts add up exactly to the log-hazard::

    log h = baseline + engagement + dissatisfaction + program_lapse + downgrade + open_issue + newness

    baseline        = log(hazard_base)                 the same for everyone
    engagement      = -a * (mu + x)                    base engagement mu and its current deviation x
    dissatisfaction = (b + a * k) * d                  directly, and through the engagement it costs
    program_lapse   = c * lapse                        member without program activity for > lapse_days
    downgrade       = g * down                         recent tier downgrade (1 on the day, fading)
    open_issue      = o * open_issue                   an unresolved support issue
    newness         = newness                          young customers' extra hazard (fading)

Campaign actions act through these same state variables (engagement, dissatisfaction, open
issue), so they need no driver of their own. The parts are additive in the log-hazard
(multiplicative in the hazard): ``h = exp(baseline) * exp(engagement) * ...``.

Centred parts compare a customer with the population: ``<driver>_centred`` is the part minus
its mean over the customers alive and active at the cutoff, so the centred parts add up to
``log_hazard - reference_log_hazard``. For a hazard additive in its drivers these are the
exact (interventional) Shapley values of the log-hazard over that population, the true
counterpart of a model's SHAP reasons; ``largest_driver`` is the driver with the largest
centred part (missing when none is positive).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from churnlens.simulate.campaigns import Treatments, apply_actions
from churnlens.simulate.params import ProcessParams
from churnlens.simulate.process import HazardInputs, State, StepResult, decay_state
from churnlens.simulate.truth import active_customers, cutoff_day, states_at

if TYPE_CHECKING:
    from churnlens.simulate.simulation import Simulation

#: The drivers of the churn hazard, in column order.
DRIVERS: tuple[str, ...] = (
    "engagement",
    "dissatisfaction",
    "program_lapse",
    "downgrade",
    "open_issue",
    "newness",
)


def hazard_parts(mu: np.ndarray, h: HazardInputs, p: ProcessParams) -> dict[str, np.ndarray]:
    """The log-hazard parts of each driver (float64); ``log(hazard_base)`` plus their sum is the log-hazard.

    Parameters
    ----------
    mu : ndarray
        Base engagement of the customers.
    h : HazardInputs
        What their hazard is computed from (same order).
    p : ProcessParams
    """
    a = p.hazard_engagement
    f64 = np.float64
    return {
        "engagement": -a * (mu.astype(f64) + h.x.astype(f64)),
        "dissatisfaction": (p.hazard_dissatisfaction + a * p.engagement_dissatisfaction) * h.d.astype(f64),
        "program_lapse": p.hazard_lapse * h.lapse.astype(f64),
        "downgrade": p.hazard_downgrade * h.down.astype(f64),
        "open_issue": p.hazard_open_issue * h.open_issue.astype(f64),
        "newness": h.newness.astype(f64),
    }


class ChurnLog:
    """The hazard inputs of every customer on the day they churned, recorded during a replay."""

    def __init__(self, n: int) -> None:
        self.day = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        self.inputs = {name: np.zeros(n, dtype=np.float32) for name in ("x", "d", "down", "newness")}
        self.flags = {name: np.zeros(n, dtype=bool) for name in ("lapse", "open_issue")}

    def recorder(self, offset: int) -> Callable[[int, StepResult, State], None]:
        """An ``on_day`` callback for the block whose first customer is ``offset``."""

        def on_day(t: int, r: StepResult, st: State) -> None:
            if not r.churn_idx.size:
                return
            i = r.churn_idx + offset
            self.day[i] = t
            for name, values in self.inputs.items():
                values[i] = getattr(r.churn_inputs, name)
            for name, values in self.flags.items():
                values[i] = getattr(r.churn_inputs, name)

        return on_day

    def of(self, customers: np.ndarray) -> HazardInputs:
        """The recorded inputs of churned customers."""
        return HazardInputs(
            **{name: v[customers] for name, v in self.inputs.items()},
            **{name: v[customers] for name, v in self.flags.items()},
        )


def driver_table(sim: Simulation, cutoffs: Sequence[str | pd.Timestamp]) -> pd.DataFrame:
    """The true churn-hazard decomposition of every active customer at each cutoff.

    Customers alive at the cutoff are decomposed on the cutoff day: the log-hazard of day
    ``C`` given the exact hidden state at the start of ``C`` (the day's engagement
    innovation at its mean, 0; a campaign action sent on ``C`` included). Customers active
    but already silently churned (they bought in the active window, then left without a
    cancellation) are decomposed on the day they churned, from the state that made them
    churn: their ``hazard_day`` says which.

    Parameters
    ----------
    sim : Simulation
    cutoffs : sequence of date-like
        Midnights after the simulation start (as for :func:`simulate_truth_table`).

    Returns
    -------
    pandas.DataFrame
        One row per (cutoff, active customer), sorted by cutoff then customer_id (the rows
        of :func:`simulate_truth_table` at the same cutoffs):

        - customer_id, cutoff;
        - churned (bool): silently churned before the cutoff; hazard_day: the day
          decomposed (the cutoff, or the churn day);
        - log_hazard: the daily churn log-hazard; ``hazard = exp(log_hazard)``;
        - baseline and one column per driver (:data:`DRIVERS`): ``baseline + Σ drivers
          = log_hazard``;
        - reference_log_hazard: baseline plus the mean of each driver's part over the
          customers alive at the cutoff;
        - ``<driver>_centred``: part minus that mean; ``reference_log_hazard + Σ centred
          = log_hazard``;
        - largest_driver: the driver with the largest centred part; missing when no
          centred part is positive (nothing raises the hazard above the reference).
    """
    if len(cutoffs) == 0:
        raise ValueError("cutoffs must not be empty")
    settings, pop, p = sim.settings, sim.population, sim.settings.params
    parsed = sorted({cutoff_day(sim, c) for c in cutoffs}, key=lambda x: x[1])
    log = ChurnLog(pop.n)
    states = states_at(sim, [d for _, d in parsed], on_day=log.recorder)
    baseline = float(np.log(p.hazard_base))
    treatments = Treatments(sim.campaigns)
    frames = []
    for ts, day in parsed:
        index = active_customers(sim, ts)
        state = states[day]
        alive = state.alive[index]
        parts = {name: np.empty(index.size) for name in DRIVERS}
        live = index[alive]
        st = state.take(live)
        live_pop = pop.take(live)
        sent, action = treatments.at(day, live)  # a campaign sent on the cutoff day acts that day
        apply_actions(st, live_pop, sent, action, settings)
        decay_state(st, p)  # the deterministic part of day `day`'s update
        for name, values in hazard_parts(live_pop.mu, HazardInputs.of(live_pop, st, day, p), p).items():
            parts[name][alive] = values
        gone = index[~alive]
        for name, values in hazard_parts(pop.mu[gone], log.of(gone), p).items():
            parts[name][~alive] = values
        hazard_day = np.where(alive, day, log.day[index])
        start_us = settings.start_ts.value // 1000
        frame = pd.DataFrame(
            {
                "customer_id": sim.customer_id_array(index),
                "cutoff": pd.Series(np.full(index.size, ts.to_datetime64()).astype("datetime64[us]")),
                "churned": ~alive,
                "hazard_day": pd.Series((start_us + hazard_day * 86_400_000_000).astype("datetime64[us]")),
            }
        )
        total = baseline + np.sum([parts[name] for name in DRIVERS], axis=0)
        frame["log_hazard"] = total
        frame["baseline"] = baseline
        for name in DRIVERS:
            frame[name] = parts[name]
        means = {name: float(parts[name][alive].mean()) if alive.any() else float("nan") for name in DRIVERS}
        frame["reference_log_hazard"] = baseline + sum(means.values())
        centred = np.column_stack([parts[name] - means[name] for name in DRIVERS])
        for j, name in enumerate(DRIVERS):
            frame[f"{name}_centred"] = centred[:, j]
        largest = pd.array(np.asarray(DRIVERS, dtype=object)[centred.argmax(axis=1)], dtype="string")
        largest[centred.max(axis=1) <= 0] = pd.NA  # nothing raises this customer's hazard above the reference
        frame["largest_driver"] = largest
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- observation


@dataclass(frozen=True)
class DriverFeatures:
    """Feature names (catalog templates, windows as ``{w}``, ``{d}``, ``{s}``, ``{l}``) that observe a driver.

    ``direct``: features that measure the driver itself or its immediate footprint;
    ``indirect``: features the driver also moves, among other causes.
    """

    direct: tuple[str, ...]
    indirect: tuple[str, ...] = ()


#: Which snapshot features (``churnlens.features.catalog`` names) observe each driver.
DRIVER_FEATURES: dict[str, DriverFeatures] = {
    "engagement": DriverFeatures(
        direct=(
            "days_since_last_purchase",
            "purchase_count_{w}d",
            "spend_{w}d",
            "purchase_count_lifetime",
            "spend_lifetime",
            "purchase_gap_mean_days",
            "overdue_ratio",
            "purchase_trend_{s}d_vs_{l}d",
            "spend_trend_{s}d_vs_{l}d",
            "logins_{w}d",
            "offers_viewed_{w}d",
        ),
        indirect=(
            "avg_basket_{w}d",
            "purchase_gap_std_days",
            "distinct_categories_{w}d",
            "distinct_channels_{w}d",
            "offers_completed_{w}d",
            "offer_completion_rate_{w}d",
            "points_earned_{w}d",
            "points_redeemed_{w}d",
            "redemption_rate_{w}d",
            "days_since_last_program_activity",
            "tier",
            "tier_rank",
            "support_contacts_{w}d",
            "csat_last",
            "csat_mean",
            "nps_last",
            "nps_category",
            "attr_age_band",
            "attr_acquisition_channel",
        ),
    ),
    "dissatisfaction": DriverFeatures(
        direct=(
            "support_complaints_{w}d",
            "support_open_issues",
            "support_fcr_rate",
            "csat_last",
            "csat_mean",
            "nps_last",
            "nps_category",
            "ces_mean",
        ),
        indirect=(
            "support_contacts_{w}d",
            "support_handle_minutes_mean",
            "days_since_last_contact",
            "refund_share_{w}d",
        ),
    ),
    "program_lapse": DriverFeatures(
        direct=("days_since_last_program_activity",),
        indirect=("logins_{w}d", "points_earned_{w}d", "points_redeemed_{w}d", "offers_viewed_{w}d"),
    ),
    "downgrade": DriverFeatures(direct=("tier_downgraded_{d}d",), indirect=("tier", "tier_rank")),
    "open_issue": DriverFeatures(
        direct=("support_open_issues",),
        indirect=(
            "support_contacts_{w}d",
            "days_since_last_contact",
            "support_complaints_{w}d",
            "support_fcr_rate",
            "support_handle_minutes_mean",
        ),
    ),
    "newness": DriverFeatures(
        direct=("tenure_days", "days_since_first_purchase"),
        indirect=("program_enrolment_age_days", "purchase_count_lifetime", "spend_lifetime"),
    ),
}


def _template_pattern(template: str) -> re.Pattern[str]:
    pattern = re.escape(template)
    for key in ("w", "d", "s", "l"):
        pattern = pattern.replace(re.escape("{" + key + "}"), "[0-9]+")
    return re.compile(f"^{pattern}$")


def driver_features(columns: Sequence[str], *, indirect: bool = False) -> dict[str, list[str]]:
    """The columns of a snapshot that observe each driver.

    Parameters
    ----------
    columns : sequence of str
        Snapshot (or model) feature names, any windows.
    indirect : bool
        Include the features a driver moves only indirectly.

    Returns
    -------
    dict
        Driver -> the observing columns, in ``columns`` order (a column can observe
        several drivers; a driver may have none when its family is absent).

    Examples
    --------
    >>> driver_features(["logins_30d", "tier_downgraded_90d", "csat_last"])["downgrade"]
    ['tier_downgraded_90d']
    """
    out: dict[str, list[str]] = {}
    for driver, observed in DRIVER_FEATURES.items():
        templates = observed.direct + (observed.indirect if indirect else ())
        patterns = [_template_pattern(t) for t in templates]
        out[driver] = [c for c in columns if any(p.match(c) for p in patterns)]
    return out
