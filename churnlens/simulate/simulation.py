"""Entry point: simulate a loyalty program's event history, with its ground truth."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from churnlens.data.tables import Tables
from churnlens.simulate.campaigns import (
    Campaign,
    ObservedHistory,
    apply_actions,
    campaign_days,
    contacts_frame,
    select_campaign,
)
from churnlens.simulate.drivers import driver_table
from churnlens.simulate.events import EventRecorder, build_event_tables
from churnlens.simulate.params import CampaignSettings, ProcessParams, SimulationSettings
from churnlens.simulate.population import Population, customers_frame, draw_population
from churnlens.simulate.process import ProgressFn, State, StepResult, block_bounds, init_state, run_block
from churnlens.simulate.truth import truth_table, uplift_table


@dataclass(frozen=True)
class Simulation:
    """A simulated data set and the means to compute its ground truth.

    Attributes
    ----------
    tables : churnlens.data.Tables
        purchases, customers, program_events, support_interactions, cancellations, and
        contacts when campaigns were simulated.
    settings : SimulationSettings
        Everything needed to replay the process.
    population : Population
        The customers' static (partly hidden) attributes.
    campaigns : tuple of Campaign
        The executed campaigns, in send order (empty without ``campaigns``).
    """

    tables: Tables
    settings: SimulationSettings
    population: Population = field(repr=False)
    campaigns: tuple[Campaign, ...] = field(default=(), repr=False)

    @cached_property
    def _id_index(self) -> pd.Index:
        return pd.Index(self.tables.customers["customer_id"])

    def customer_numbers(self, ids: Sequence[str] | np.ndarray | pd.Series) -> np.ndarray:
        """0-based customer numbers of the given ids, sorted and unique."""
        pos = self._id_index.get_indexer(pd.Index(ids, dtype="string"))
        if (pos < 0).any():
            raise ValueError("unknown customer ids given to the simulation")
        return np.unique(pos)

    def customer_id_array(self, numbers: np.ndarray) -> pd.Series:
        """Customer ids (string dtype) of 0-based customer numbers."""
        return self.tables.customers["customer_id"].iloc[numbers].reset_index(drop=True)

    def truth_fn(
        self, cutoff: str | pd.Timestamp, horizon_days: int = 90, *, draws: int = 256
    ) -> pd.DataFrame:
        """Ground truth at one cutoff for every customer active there (DESIGN §3).

        Parameters
        ----------
        cutoff : date-like
            A midnight after the start (exclusive: history is ``timestamp < cutoff``).
        horizon_days : int
            Future window ``[cutoff, cutoff + horizon_days)``.
        draws : int
            Monte Carlo futures per customer (from the exact hidden state at the cutoff).

        Returns
        -------
        pandas.DataFrame
            customer_id, cutoff, horizon_days, p_no_purchase (P[no purchase in the window |
            state]), p_cancel (P[cancellation in the window | state]), and the realised
            outcomes no_purchase, cancelled (nullable boolean; NA when the window runs past
            the simulated span). Silently churned customers have p_no_purchase = 1.
        """
        return truth_table(self, [cutoff], horizon_days, draws=draws)


def simulate(
    n_customers: int = 20_000,
    months: int = 24,
    seed: int = 0,
    start: str = "2023-01-01",
    *,
    params: ProcessParams | None = None,
    burn_in_days: int = 180,
    progress: ProgressFn | None = None,
    campaigns: CampaignSettings | None = None,
) -> Simulation:
    """Simulate a loyalty program: customers, purchases, program events, support, cancellations.

    A daily, vectorised process over all customers (see :mod:`churnlens.simulate.process`):
    hidden engagement drives purchases, program activity and support contacts; bad support
    experiences, program lapses and tier downgrades raise the churn hazard; churned
    customers stop all activity, about half of them with a cancellation row.

    Parameters
    ----------
    n_customers : int
        Customers who sign up before or during the span.
    months : int
        Observed span from ``start``.
    seed : int
        Same seed, same tables.
    start : str
        First observed day (naive UTC midnight).
    params : ProcessParams, optional
        Process coefficients; defaults give a 90-day no-purchase rate of about a third.
    burn_in_days : int
        Unrecorded days simulated before ``start``.
    progress : callable, optional
        Called with a number of simulated block-days as they complete; the total is
        ``n_blocks * (burn_in_days + n_days)``, see :func:`simulation_steps`.
    campaigns : CampaignSettings, optional
        Past retention campaigns (:mod:`churnlens.simulate.campaigns`): they add the
        ``contacts`` table and change the treated customers' futures. None or
        ``n_campaigns = 0``: no campaign, and the tables are exactly those without this option.

    Returns
    -------
    Simulation

    Examples
    --------
    >>> sim = simulate(2_000, months=12, seed=1)
    >>> truth = sim.truth_fn("2023-09-01", horizon_days=90)
    >>> with_campaigns = simulate(20_000, months=24, seed=1, campaigns=CampaignSettings(n_campaigns=4))
    """
    settings = SimulationSettings(
        n_customers=int(n_customers),
        months=int(months),
        seed=int(seed),
        start=str(start),
        burn_in_days=int(burn_in_days),
        params=params or ProcessParams(),
        campaigns=campaigns or CampaignSettings(),
    )
    pop = draw_population(settings)
    if settings.campaigns.n_campaigns:
        return _simulate_with_campaigns(settings, pop, progress)
    state0 = init_state(pop, settings)
    recorded = []
    for block, lo, hi in block_bounds(pop.n):
        index = np.arange(lo, hi)
        block_pop = pop.take(index)
        recorder = EventRecorder(settings, block_pop, block, lo)
        run_block(
            settings,
            block_pop,
            state0.take(index),
            block,
            -settings.burn_in_days,
            settings.n_days,
            on_day=recorder,
            progress=progress,
        )
        recorded.append(recorder.arrays())
        del recorder
    events = build_event_tables(recorded, pop.n)
    tables = Tables(customers=customers_frame(settings, pop), **events)
    return Simulation(tables=tables, settings=settings, population=pop)


def _simulate_with_campaigns(
    settings: SimulationSettings, pop: Population, progress: ProgressFn | None
) -> Simulation:
    """:func:`simulate` with campaigns: every block runs to a send day, the campaign is selected
    over the whole population and applied, then every block runs on to the next send day.

    Random streams are per (block, day) whatever the segments, so between campaigns the
    process is exactly the one :func:`simulate` runs without them.
    """
    days = campaign_days(settings)
    state0 = init_state(pop, settings)
    blocks = [(block, np.arange(lo, hi)) for block, lo, hi in block_bounds(pop.n)]
    pops = [pop.take(index) for _, index in blocks]
    states = [state0.take(index) for _, index in blocks]
    del state0
    recorders = [
        EventRecorder(settings, pops[b], block, int(index[0])) for b, (block, index) in enumerate(blocks)
    ]
    seen = ObservedHistory(pop.n)
    hooks = [_both(recorders[b], seen.recorder(int(index[0]))) for b, (_, index) in enumerate(blocks)]
    campaigns: list[Campaign] = []
    bounds = [-settings.burn_in_days, *days, settings.n_days]
    for first, last in zip(bounds[:-1], bounds[1:], strict=True):
        if first in days:  # a campaign is sent at the start of `first`
            whole = State.concat(states)
            campaign = select_campaign(len(campaigns) + 1, first, seen, whole, pop, settings)
            del whole
            campaigns.append(campaign)
            treated, action = campaign.customers[campaign.treated], campaign.action[campaign.treated]
            for b, (_, index) in enumerate(blocks):
                inside = (treated >= index[0]) & (treated <= index[-1])
                apply_actions(states[b], pops[b], treated[inside] - index[0], action[inside], settings)
        for b, (block, _) in enumerate(blocks):
            run_block(settings, pops[b], states[b], block, first, last, on_day=hooks[b], progress=progress)
    recorded = [r.arrays() for r in recorders]
    del recorders, hooks
    events = build_event_tables(recorded, pop.n)
    customers = customers_frame(settings, pop)
    contacts = contacts_frame(settings, campaigns, customers["customer_id"])
    tables = Tables(customers=customers, **events, contacts=contacts)
    return Simulation(tables=tables, settings=settings, population=pop, campaigns=tuple(campaigns))


def _both(
    a: Callable[[int, StepResult, State], None], b: Callable[[int, StepResult, State], None]
) -> Callable[[int, StepResult, State], None]:
    def on_day(t: int, r: StepResult, st: State) -> None:
        a(t, r, st)
        b(t, r, st)

    return on_day


def simulation_steps(
    n_customers: int, months: int = 24, start: str = "2023-01-01", burn_in_days: int = 180
) -> int:
    """Total block-days :func:`simulate` reports to its ``progress`` callback."""
    settings = SimulationSettings(
        n_customers=n_customers, months=months, start=start, burn_in_days=burn_in_days
    )
    return len(block_bounds(settings.n_customers)) * (settings.burn_in_days + settings.n_days)


def simulate_truth_table(
    sim: Simulation,
    cutoffs: Sequence[str | pd.Timestamp],
    horizon_days: int = 90,
    *,
    draws: int = 256,
) -> pd.DataFrame:
    """Ground truth at several cutoffs, stacked (one replay of the process for all of them).

    Parameters
    ----------
    sim : Simulation
    cutoffs : sequence of date-like
    horizon_days : int
    draws : int

    Returns
    -------
    pandas.DataFrame
        Same columns as :meth:`Simulation.truth_fn`, sorted by cutoff then customer_id.
    """
    return truth_table(sim, cutoffs, horizon_days, draws=draws)


def simulate_driver_table(sim: Simulation, cutoffs: Sequence[str | pd.Timestamp]) -> pd.DataFrame:
    """The true churn-hazard decomposition by driver of the active customers at several cutoffs.

    See :func:`churnlens.simulate.drivers.driver_table` (columns, and how the parts add up)
    and :data:`churnlens.simulate.drivers.DRIVER_FEATURES` (which features observe each driver).

    Parameters
    ----------
    sim : Simulation
    cutoffs : sequence of date-like

    Returns
    -------
    pandas.DataFrame
        One row per (cutoff, active customer), the rows of :func:`simulate_truth_table`.
    """
    return driver_table(sim, cutoffs)


def simulate_uplift_table(
    sim: Simulation, *, draws: int = 256, progress: Callable[[int], None] | None = None
) -> pd.DataFrame:
    """True churn probabilities of each campaign's contacted customers with and without each action.

    See :func:`churnlens.simulate.truth.uplift_table`.

    Parameters
    ----------
    sim : Simulation
        Simulated with campaigns (an empty table otherwise).
    draws : int
        Monte Carlo futures per customer and branch.
    progress : callable, optional
        Called with 1 after each of the ``n_campaigns * (1 + len(ACTIONS))`` branches.

    Returns
    -------
    pandas.DataFrame
        customer_id, campaign_id, send_date, action, group, p_churn_if_untreated,
        p_churn_if_treated, p_churn_if_<action>, eligible_<action>, no_purchase.
    """
    return uplift_table(sim, draws=draws, progress=progress)
