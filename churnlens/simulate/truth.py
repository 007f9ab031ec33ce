"""Ground truth: churn probabilities given the exact hidden state at a cutoff.

The process is re-run deterministically to the cutoff ``C`` (same streams as the recorded
history, no events, the executed campaigns' treatments replayed), then for every customer
active at ``C`` (DESIGN §3) the future ``[C, C + H)`` is simulated ``draws`` times from that
state with :func:`process.step`, all draws × customers in one vectorised array (chunked to
bound memory). Campaign treatments sent in ``[C, C + H)`` reach the customers they reached
in the recorded history, in every future (the company's plan is known). The true uplift of
each campaign (:func:`uplift_table`) branches its contacted customers with and without each
action.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from churnlens.errors import InputError
from churnlens.simulate.campaigns import Treatments, apply_actions
from churnlens.simulate.params import ACTIONS
from churnlens.simulate.population import Population
from churnlens.simulate.process import (
    State,
    StepResult,
    block_bounds,
    init_state,
    review_days,
    run_block,
    step,
)
from churnlens.simulate.rng import DAY_OFFSET, TAG_TRUTH, stream

if TYPE_CHECKING:
    from churnlens.simulate.simulation import Simulation

#: Upper bound on customers × draws simulated at once.
CHUNK_ELEMENTS = 1 << 18
#: Worker threads for the Monte Carlo chunks.
THREADS = 2
ACTIVE_WINDOW_DAYS = 365


def cutoff_day(sim: Simulation, cutoff: str | pd.Timestamp) -> tuple[pd.Timestamp, int]:
    """Validate a cutoff (a midnight after the start) and return it with its day index."""
    try:
        ts = pd.Timestamp(cutoff)
    except (ValueError, TypeError) as exc:
        raise InputError(f"cutoff must be a date like '2024-06-01', got {cutoff!r}") from exc
    if ts.tz is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    if ts != ts.normalize():
        raise InputError(f"cutoff must be a midnight (whole day), got {ts}")
    day = int((ts - sim.settings.start_ts).days)
    if day <= 0:
        raise InputError(
            f"cutoff {ts.date()} must be after the simulation start {sim.settings.start_ts.date()}"
        )
    if ts > sim.settings.end_ts:
        raise InputError(
            f"cutoff {ts.date()} is after the end of the simulated history {sim.settings.end_ts.date()}"
        )
    return ts, day


def states_at(
    sim: Simulation,
    days: Sequence[int],
    *,
    on_day: Callable[[int], Callable[[int, StepResult, State], None]] | None = None,
) -> dict[int, State]:
    """Hidden state of every customer at the start of each day in ``days`` (one replay).

    The executed campaigns' treatments are replayed on their send days; a day's state is
    the one before that day's treatments.

    Parameters
    ----------
    sim : Simulation
    days : sequence of int
    on_day : callable, optional
        ``on_day(first_customer_of_block)`` gives the ``on_day`` callback of
        :func:`~churnlens.simulate.process.run_block` for that block (e.g. to record churners).
    """
    settings, pop = sim.settings, sim.population
    state0 = init_state(pop, settings)
    last = max(days)
    treatments = Treatments(sim.campaigns)
    per_day: dict[int, list[State]] = {d: [] for d in days}
    for block, lo, hi in block_bounds(pop.n):
        index = np.arange(lo, hi)
        block_pop = pop.take(index)
        snaps = run_block(
            settings,
            block_pop,
            state0.take(index),
            block,
            -int(settings.burn_in_days),
            last,
            snapshot_days=tuple(days),
            on_day=None if on_day is None else on_day(lo),
            before_day=treatments.hook(settings, block_pop, index),
        )
        for d in days:
            per_day[d].append(snaps[d])
    return {d: State.concat(parts) for d, parts in per_day.items()}


def branch(
    sim: Simulation,
    pop: Population,
    state: State,
    day: int,
    horizon_days: int,
    draws: int,
    *,
    customers: np.ndarray | None = None,
    treatments: Treatments | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo P[no purchase] and P[cancellation] in ``[day, day + horizon_days)``.

    Branches of the same customers from the same day use the same random streams (common
    random numbers), so two branches that differ only by a treatment differ only by its effect.

    Parameters
    ----------
    sim : Simulation
    pop, state : Population, State
        The customers to branch (same order), state at the start of ``day``.
    day, horizon_days, draws : int
    customers : ndarray, optional
        Their customer numbers, to apply ``treatments``.
    treatments : Treatments, optional
        Campaign treatments sent during the window (day ``day`` included), applied to the
        customers they concern in every future.

    Returns
    -------
    tuple of numpy.ndarray
        ``p_no_purchase`` and ``p_cancel``, one value per customer.
    """
    settings = sim.settings
    n = pop.n
    p_none = np.zeros(n)
    p_cancel = np.zeros(n)
    reviews = review_days(settings, day, day + horizon_days)
    per_chunk = max(1, CHUNK_ELEMENTS // draws)

    sent = (
        []
        if customers is None or not treatments
        else [t for t in treatments.by_day if day <= t < day + horizon_days]
    )

    def run_chunk(chunk: int, lo: int) -> None:
        idx = np.repeat(np.arange(lo, min(lo + per_chunk, n)), draws)
        cpop = pop.take(idx)
        cst = state.take(idx)
        bought = np.zeros(idx.size, dtype=bool)
        cancelled = np.zeros(idx.size, dtype=bool)
        for t in range(day, day + horizon_days):
            if t in sent:
                assert treatments is not None and customers is not None
                pos, action = treatments.at(t, customers[idx])
                apply_actions(cst, cpop, pos, action, settings)
            rng = stream(settings.seed, TAG_TRUTH, day + DAY_OFFSET, horizon_days, draws, chunk, t - day)
            r = step(cst, cpop, t, rng, settings.params, t in reviews)
            bought[r.buy_idx] = True
            cancelled[r.cancel_idx] = True
        m = idx.size // draws
        p_none[lo : lo + m] = (~bought).reshape(m, draws).mean(axis=1)
        p_cancel[lo : lo + m] = cancelled.reshape(m, draws).mean(axis=1)

    # numpy releases the GIL in its loops, so chunks run in parallel threads
    with ThreadPoolExecutor(max_workers=max(1, min(THREADS, os.cpu_count() or 1))) as pool:
        list(pool.map(run_chunk, *zip(*enumerate(range(0, n, per_chunk)), strict=True)))
    return p_none, p_cancel


def active_customers(sim: Simulation, cutoff: pd.Timestamp) -> np.ndarray:
    """Customer numbers (0-based) active at ``cutoff`` per DESIGN §3, from the recorded tables."""
    tables = sim.tables
    pu = tables.purchases
    ts = pu["timestamp"]
    window = (ts >= cutoff - pd.Timedelta(days=ACTIVE_WINDOW_DAYS)) & (ts < cutoff)
    buyers = sim.customer_numbers(pu.loc[window, "customer_id"].unique())
    ca = tables.cancellations
    gone = sim.customer_numbers(ca.loc[ca["timestamp"] < cutoff, "customer_id"].unique())
    return np.setdiff1d(buyers, gone)


def realised(sim: Simulation, cutoff: pd.Timestamp, horizon_days: int, index: np.ndarray) -> pd.DataFrame:
    """Observed outcomes in ``[cutoff, cutoff + H)`` on the recorded path (NA if beyond the data)."""
    end = cutoff + pd.Timedelta(days=horizon_days)
    if end > sim.settings.end_ts:
        na = pd.array([pd.NA] * index.size, dtype="boolean")
        return pd.DataFrame({"no_purchase": na, "cancelled": na.copy()})
    out = []
    for table in (sim.tables.purchases, sim.tables.cancellations):
        ts = table["timestamp"]
        hit = sim.customer_numbers(table.loc[(ts >= cutoff) & (ts < end), "customer_id"].unique())
        out.append(np.isin(index, hit))
    return pd.DataFrame(
        {
            "no_purchase": pd.array(~out[0], dtype="boolean"),
            "cancelled": pd.array(out[1], dtype="boolean"),
        }
    )


def truth_table(
    sim: Simulation,
    cutoffs: Sequence[str | pd.Timestamp],
    horizon_days: int = 90,
    *,
    draws: int = 256,
) -> pd.DataFrame:
    """Ground-truth probabilities and realised outcomes for the active customers at each cutoff.

    Parameters
    ----------
    sim : Simulation
    cutoffs : sequence of date-like
        Midnights after the simulation start.
    horizon_days : int
        Length of the future window.
    draws : int
        Monte Carlo futures per customer.

    Returns
    -------
    pandas.DataFrame
        customer_id, cutoff, horizon_days, p_no_purchase, p_cancel, no_purchase, cancelled;
        one row per (cutoff, active customer), sorted by cutoff then customer_id.
    """
    if int(horizon_days) < 1:
        raise InputError(f"horizon_days must be at least 1, got {horizon_days}")
    if int(draws) < 1:
        raise InputError(f"draws must be at least 1, got {draws}")
    if len(cutoffs) == 0:
        raise InputError("cutoffs must not be empty")
    parsed = sorted({cutoff_day(sim, c) for c in cutoffs}, key=lambda x: x[1])
    states = states_at(sim, [d for _, d in parsed])
    treatments = Treatments(sim.campaigns)
    frames = []
    for ts, day in parsed:
        index = active_customers(sim, ts)
        state = states[day]
        p_none = np.ones(index.size)
        p_cancel = np.zeros(index.size)
        alive = state.alive[index]
        live = index[alive]
        if live.size:
            a, b = branch(
                sim,
                sim.population.take(live),
                state.take(live),
                day,
                int(horizon_days),
                int(draws),
                customers=live,
                treatments=treatments,
            )
            p_none[alive] = a
            p_cancel[alive] = b
        ids = sim.customer_id_array(index)
        frame = pd.DataFrame(
            {
                "customer_id": ids,
                "cutoff": pd.Series(np.full(index.size, ts.to_datetime64()).astype("datetime64[us]")),
                "horizon_days": np.full(index.size, int(horizon_days), dtype=np.int64),
                "p_no_purchase": p_none,
                "p_cancel": p_cancel,
            }
        )
        frames.append(pd.concat([frame, realised(sim, ts, int(horizon_days), index)], axis=1))
    return pd.concat(frames, ignore_index=True)


def uplift_table(
    sim: Simulation, *, draws: int = 256, progress: Callable[[int], None] | None = None
) -> pd.DataFrame:
    """True churn probabilities of every contacted customer with and without each action.

    For each campaign sent on day ``S``, every contacted customer (treatment and control) is
    branched ``draws`` times from the exact hidden state at the start of ``S``: once without
    any action of this campaign, and once with each action (the same random streams in every
    branch). The other campaigns' treatments that fall in the window are sent as they were.
    Churn is no purchase in ``[S, S + horizon_days)`` (``settings.campaigns.horizon_days``);
    customers already silently churned at ``S`` have every probability 1.

    Common random numbers make the difference between two branches far less noisy than
    either probability, but not exact per customer: a customer an action leaves unchanged
    (a non-member and a points reminder) can still differ slightly between branches, because
    other customers' changes shift the random streams they share. That is Monte Carlo noise
    of order ``1 / sqrt(draws)``, not an effect: average over customers, or raise ``draws``.

    Parameters
    ----------
    sim : Simulation
        A simulation with campaigns.
    draws : int
        Monte Carlo futures per customer and branch.
    progress : callable, optional
        Called with 1 after each branch; there are ``(1 + len(ACTIONS))`` per campaign.

    Returns
    -------
    pandas.DataFrame
        One row per (campaign, contacted customer), in send order then customer_id:
        customer_id, campaign_id, send_date, action (the one the rules assigned), group
        (treatment | control), p_churn_if_untreated, p_churn_if_treated (with the assigned
        action), ``p_churn_if_<action>`` for every action (counterfactuals),
        ``eligible_<action>`` (whether that action's rule held), and no_purchase (the
        realised outcome on the recorded path: treated customers' futures include their action).
        The true uplift is ``p_churn_if_untreated - p_churn_if_treated``.
    """
    if int(draws) < 1:
        raise InputError(f"draws must be at least 1, got {draws}")
    settings, pop = sim.settings, sim.population
    horizon = int(settings.campaigns.horizon_days)
    campaigns = sim.campaigns
    if not campaigns:
        return pd.DataFrame(columns=uplift_columns())
    states = states_at(sim, [c.day for c in campaigns])
    frames = []
    for campaign in campaigns:
        day, customers = campaign.day, campaign.customers
        state = states[day]
        alive = state.alive[customers]
        live = customers[alive]
        p_none = np.ones(customers.size)
        p_action = np.ones((customers.size, len(ACTIONS)))
        if live.size:
            live_pop, live_state = pop.take(live), state.take(live)
            others = Treatments(campaigns, exclude=campaign.number)
            kwargs = {"customers": live, "treatments": others}
            p_none[alive] = branch(sim, live_pop, live_state, day, horizon, int(draws), **kwargs)[0]
            if progress is not None:
                progress(1)
            everyone = np.arange(live.size)
            for a in range(len(ACTIONS)):
                treated = live_state.copy()
                apply_actions(treated, live_pop, everyone, np.full(live.size, a, dtype=np.int8), settings)
                p_action[alive, a] = branch(sim, live_pop, treated, day, horizon, int(draws), **kwargs)[0]
                if progress is not None:
                    progress(1)
        elif progress is not None:
            progress(1 + len(ACTIONS))
        send = settings.start_ts + pd.Timedelta(days=day)
        frame = pd.DataFrame(
            {
                "customer_id": sim.customer_id_array(customers),
                "campaign_id": campaign.campaign_id,
                "send_date": pd.Series(
                    np.full(customers.size, send.to_datetime64()).astype("datetime64[us]")
                ),
                "action": pd.array(np.asarray(ACTIONS, dtype=object)[campaign.action], dtype="string"),
                "group": pd.array(np.where(campaign.treated, "treatment", "control"), dtype="string"),
                "p_churn_if_untreated": p_none,
                "p_churn_if_treated": p_action[np.arange(customers.size), campaign.action],
            }
            | {f"p_churn_if_{name}": p_action[:, a] for a, name in enumerate(ACTIONS)}
            | {f"eligible_{name}": campaign.eligible[:, a] for a, name in enumerate(ACTIONS)}
        )
        frame["campaign_id"] = frame["campaign_id"].astype("string")
        frame["no_purchase"] = realised(sim, send, horizon, customers)["no_purchase"].to_numpy()
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def uplift_columns() -> list[str]:
    """Columns of :func:`uplift_table`, in order."""
    return [
        "customer_id",
        "campaign_id",
        "send_date",
        "action",
        "group",
        "p_churn_if_untreated",
        "p_churn_if_treated",
        *(f"p_churn_if_{name}" for name in ACTIONS),
        *(f"eligible_{name}" for name in ACTIONS),
        "no_purchase",
    ]
