"""``churnlens simulate``: write a simulated loyalty-program data set and its ground truth."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path

import pandas as pd
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from churnlens.cli.common import console, handle_errors
from churnlens.data.io import write_tables
from churnlens.errors import InputError
from churnlens.simulate import simulate as run_simulation
from churnlens.simulate import simulate_truth_table, simulation_steps

TRUTH_FILE = "truth.parquet"


class FileFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"


def truth_cutoff_grid(
    data_end: pd.Timestamp, horizon_days: int, count: int, step_days: int = 30
) -> list[pd.Timestamp]:
    """Latest labelled cutoffs: ``floor_day(data_end) + 1 day - horizon``, then every ``step_days`` before.

    Parameters
    ----------
    data_end : Timestamp
        Latest event time of the data.
    horizon_days : int
    count : int
        How many cutoffs.
    step_days : int

    Returns
    -------
    list of Timestamp
        Oldest first.
    """
    latest = data_end.floor("D") + pd.Timedelta(days=1) - pd.Timedelta(days=horizon_days)
    return [latest - pd.Timedelta(days=step_days * k) for k in range(count - 1, -1, -1)]


@handle_errors
def simulate(
    customers: int = typer.Option(
        20_000, "--customers", "-n", help="Customers who sign up before or during the span."
    ),
    months: int = typer.Option(24, "--months", help="Months of observed history, from --start."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed writes identical tables."),
    out: Path = typer.Option(Path("data/sim"), "--out", "-o", help="Directory to write the tables into."),
    format: FileFormat = typer.Option(FileFormat.parquet, "--format", help="File format of the tables."),
    horizon: int = typer.Option(
        90, "--horizon", help="Horizon in days of the ground-truth churn probabilities."
    ),
    truth_cutoffs: int = typer.Option(
        3,
        "--truth-cutoffs",
        help="Cutoffs in truth.parquet: the latest labelled one (data end + 1 day - horizon) and every 30 "
        "days before it. 0 skips the ground truth.",
    ),
    start: str = typer.Option("2023-01-01", "--start", help="First day of history (YYYY-MM-DD)."),
    draws: int = typer.Option(256, "--draws", help="Monte Carlo futures per customer for the ground truth."),
) -> None:
    """Simulate a loyalty program and write its five tables plus truth.parquet to OUT.

    Hidden customer engagement drives purchases, program activity (points, logins, offers, tiers) and support contacts (with CSAT, NPS and CES); bad support experiences, lapses in program activity and tier downgrades raise the churn hazard. Churned customers stop buying; about half leave a cancellation row.

    truth.parquet holds, for every customer active at each truth cutoff, the exact probabilities of no purchase (p_no_purchase) and of a cancellation (p_cancel) within the horizon given the hidden state, and the realised outcomes: the best any model can do.
    """  # noqa: E501 (one line per paragraph: typer keeps line breaks)
    if customers < 1:
        raise InputError(f"--customers must be at least 1, got {customers}")
    if months < 1:
        raise InputError(f"--months must be at least 1, got {months}")
    if horizon < 1:
        raise InputError(f"--horizon must be at least 1 day, got {horizon}")
    if truth_cutoffs < 0:
        raise InputError(f"--truth-cutoffs must be 0 or more, got {truth_cutoffs}")
    if draws < 1:
        raise InputError(f"--draws must be at least 1, got {draws}")
    fmt = FileFormat(format).value
    total = simulation_steps(customers, months, start)
    t0 = time.perf_counter()
    with Progress(
        TextColumn("[bold]simulating[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"{customers:,} customers × {months} months (block-days)", total=total)
        sim = run_simulation(customers, months, seed, start, progress=lambda k: progress.advance(task, k))
    elapsed = time.perf_counter() - t0
    written = write_tables(sim.tables, out, fmt=fmt)

    summary = Table(title=f"Simulated data in {out} ({elapsed:.1f} s)")
    summary.add_column("table")
    summary.add_column("rows", justify="right")
    summary.add_column("file")
    for name, path in written.items():
        summary.add_row(name, f"{len(getattr(sim.tables, name)):,}", str(path))

    if truth_cutoffs:
        cutoffs = truth_cutoff_grid(sim.tables.data_end, horizon, truth_cutoffs)
        t1 = time.perf_counter()
        with console.status(f"ground truth at {len(cutoffs)} cutoffs ({draws} futures per customer)"):
            truth = simulate_truth_table(sim, cutoffs, horizon, draws=draws)
        truth.to_parquet(out / TRUTH_FILE, index=False)
        summary.add_row("truth", f"{len(truth):,}", str(out / TRUTH_FILE))
        console.print(summary)
        latest = truth[truth["cutoff"] == truth["cutoff"].max()]
        console.print(
            f"truth computed in {time.perf_counter() - t1:.1f} s; cutoffs "
            + ", ".join(str(c.date()) for c in cutoffs)
            + f"; at {latest['cutoff'].iloc[0].date()}: {len(latest):,} active customers, "
            f"mean p_no_purchase {latest['p_no_purchase'].mean():.3f}, "
            f"mean p_cancel {latest['p_cancel'].mean():.3f}",
            highlight=False,
        )
    else:
        console.print(summary)
