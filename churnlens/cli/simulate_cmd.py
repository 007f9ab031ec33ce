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
from churnlens.simulate import (
    ACTIONS,
    CampaignSettings,
    simulate_driver_table,
    simulate_truth_table,
    simulate_uplift_table,
    simulation_steps,
)
from churnlens.simulate import simulate as run_simulation
from churnlens.simulate.campaigns import campaign_days
from churnlens.simulate.params import SimulationSettings
from churnlens.simulate.simulation import Simulation

TRUTH_FILE = "truth.parquet"
DRIVERS_FILE = "truth_drivers.parquet"
UPLIFT_FILE = "truth_uplift.parquet"


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
    truth_drivers: bool = typer.Option(
        False,
        "--truth-drivers",
        help="Also write truth_drivers.parquet: each active customer's true churn-hazard decomposition by "
        "driver at the truth cutoffs.",
    ),
    campaigns: int = typer.Option(
        0,
        "--campaigns",
        help="Past retention campaigns to simulate, spread over the history (each leaves --horizon days of "
        "outcome): writes contacts and truth_uplift.parquet. 0 simulates none.",
    ),
    campaign_size: int = typer.Option(
        5_000, "--campaign-size", help="Customers selected by risk per campaign (all active ones when fewer)."
    ),
    holdout: float = typer.Option(
        0.2, "--holdout", help="Control share of each campaign's customers, drawn at random per action."
    ),
) -> None:
    """Simulate a loyalty program and write its five tables plus truth.parquet to OUT.

    Hidden customer engagement drives purchases, program activity (points, logins, offers, tiers) and support contacts (with CSAT, NPS and CES); bad support experiences, lapses in program activity and tier downgrades raise the churn hazard. Churned customers stop buying; about half leave a cancellation row.

    truth.parquet holds, for every customer active at each truth cutoff, the exact probabilities of no purchase (p_no_purchase) and of a cancellation (p_cancel) within the horizon given the hidden state, and the realised outcomes: the best any model can do. With --truth-drivers, truth_drivers.parquet splits each of these customers' daily churn log-hazard by driver (engagement, dissatisfaction, program_lapse, downgrade, open_issue, newness).

    With --campaigns N, N past retention campaigns select the riskiest active customers, give each the first action whose default rule holds (service_recovery, points_reminder, win_back) and hold out a random control group; treated customers' futures change. The contacts table records treatment and control rows; truth_uplift.parquet holds each contacted customer's true probability of no purchase within --horizon days of the send date without the action and with each action.
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
    campaign_settings = CampaignSettings(
        n_campaigns=campaigns, size=campaign_size, holdout=holdout, horizon_days=horizon
    )
    # refuse a span too short for the campaigns before simulating anything
    campaign_days(
        SimulationSettings(n_customers=customers, months=months, start=start, campaigns=campaign_settings)
    )
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
        sim = run_simulation(
            customers,
            months,
            seed,
            start,
            progress=lambda k: progress.advance(task, k),
            campaigns=campaign_settings,
        )
    elapsed = time.perf_counter() - t0
    written = write_tables(sim.tables, out, fmt=fmt)

    summary = Table(title=f"Simulated data in {out} ({elapsed:.1f} s)")
    summary.add_column("table")
    summary.add_column("rows", justify="right")
    summary.add_column("file")
    for name, path in written.items():
        summary.add_row(name, f"{len(getattr(sim.tables, name)):,}", str(path))

    notes: list[str] = []
    if truth_cutoffs:
        cutoffs = truth_cutoff_grid(sim.tables.data_end, horizon, truth_cutoffs)
        t1 = time.perf_counter()
        with console.status(f"ground truth at {len(cutoffs)} cutoffs ({draws} futures per customer)"):
            truth = simulate_truth_table(sim, cutoffs, horizon, draws=draws)
        truth.to_parquet(out / TRUTH_FILE, index=False)
        summary.add_row("truth", f"{len(truth):,}", str(out / TRUTH_FILE))
        latest = truth[truth["cutoff"] == truth["cutoff"].max()]
        notes.append(
            f"truth computed in {time.perf_counter() - t1:.1f} s; cutoffs "
            + ", ".join(str(c.date()) for c in cutoffs)
            + f"; at {latest['cutoff'].iloc[0].date()}: {len(latest):,} active customers, "
            f"mean p_no_purchase {latest['p_no_purchase'].mean():.3f}, "
            f"mean p_cancel {latest['p_cancel'].mean():.3f}"
        )
        if truth_drivers:
            drivers = simulate_driver_table(sim, cutoffs)
            drivers.to_parquet(out / DRIVERS_FILE, index=False)
            summary.add_row("truth_drivers", f"{len(drivers):,}", str(out / DRIVERS_FILE))
    elif truth_drivers:
        notes.append(
            "--truth-drivers needs truth cutoffs (--truth-cutoffs 0 was given): no truth_drivers.parquet"
        )
    if sim.campaigns:
        uplift = _uplift_truth(sim, draws)
        uplift.to_parquet(out / UPLIFT_FILE, index=False)
        summary.add_row("truth_uplift", f"{len(uplift):,}", str(out / UPLIFT_FILE))
    console.print(summary)
    if sim.campaigns:
        console.print(_campaign_summary(sim, uplift))
    for note in notes:
        console.print(note, highlight=False)


def _uplift_truth(sim: Simulation, draws: int) -> pd.DataFrame:
    with Progress(
        TextColumn("[bold]true uplift[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        total = len(sim.campaigns) * (1 + len(ACTIONS))
        task = progress.add_task(f"{len(sim.campaigns)} campaigns × {1 + len(ACTIONS)} futures", total=total)
        return simulate_uplift_table(sim, draws=draws, progress=lambda k: progress.advance(task, k))


def _campaign_summary(sim: Simulation, uplift: pd.DataFrame) -> Table:
    """Per campaign: send date, selected and contacted customers, treated/control per action, true uplift."""
    table = Table(title="Simulated campaigns (true uplift = mean p_churn_if_untreated - p_churn_if_treated)")
    for col in ("campaign", "send date", "selected", "contacted", *ACTIONS, "true uplift"):
        table.add_column(col, justify="left" if col in ("campaign", "send date") else "right")
    uplift = uplift.assign(uplift=uplift["p_churn_if_untreated"] - uplift["p_churn_if_treated"])
    for campaign in sim.campaigns:
        rows = uplift[uplift["campaign_id"] == campaign.campaign_id]
        cells = []
        for name in ACTIONS:
            mine = rows[rows["action"] == name]
            cells.append(f"{(mine['group'] == 'treatment').sum():,} / {(mine['group'] == 'control').sum():,}")
        table.add_row(
            campaign.campaign_id,
            str((sim.settings.start_ts + pd.Timedelta(days=campaign.day)).date()),
            f"{campaign.selected:,}",
            f"{campaign.customers.size:,}",
            *cells,
            f"{rows['uplift'].mean():.3f}" if len(rows) else "",
        )
    table.caption = "per action: treated / control customers"
    return table
