"""Entry point: simulate a loyalty program's event history, with its ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from churnlens.data.tables import Tables
from churnlens.simulate.events import EventRecorder, build_event_tables
from churnlens.simulate.params import ProcessParams, SimulationSettings
from churnlens.simulate.population import Population, customers_frame, draw_population
from churnlens.simulate.process import ProgressFn, block_bounds, init_state, run_block
from churnlens.simulate.truth import truth_table


@dataclass(frozen=True)
class Simulation:
    """A simulated data set and the means to compute its ground truth.

    Attributes
    ----------
    tables : churnlens.data.Tables
        purchases, customers, program_events, support_interactions, cancellations.
    settings : SimulationSettings
        Everything needed to replay the process.
    population : Population
        The customers' static (partly hidden) attributes.
    """

    tables: Tables
    settings: SimulationSettings
    population: Population = field(repr=False)

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

    Returns
    -------
    Simulation

    Examples
    --------
    >>> sim = simulate(2_000, months=12, seed=1)
    >>> truth = sim.truth_fn("2023-09-01", horizon_days=90)
    """
    settings = SimulationSettings(
        n_customers=int(n_customers),
        months=int(months),
        seed=int(seed),
        start=str(start),
        burn_in_days=int(burn_in_days),
        params=params or ProcessParams(),
    )
    pop = draw_population(settings)
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
