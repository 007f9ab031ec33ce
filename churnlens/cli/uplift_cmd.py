"""``churnlens train-uplift``: learn each action's effect on churn from past randomised campaigns."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from churnlens.cli.common import TrackingUriOption, console, handle_errors
from churnlens.config import load_config
from churnlens.tracking import DEFAULT_UPLIFT_EXPERIMENT, DEFAULT_UPLIFT_MODEL_NAME


@handle_errors
def train_uplift(
    data_dir: Annotated[Path, typer.Argument(help="Directory of input tables, with a contacts table of past campaigns (treatment and control rows).")],
    config: Annotated[Path | None, typer.Option(help="TOML config: [uplift] (learner, min_treated, min_control, test_campaigns ...), [features], [labels], [columns.<table>].")] = None,
    tracking_uri: TrackingUriOption = None,
    model_name: Annotated[str, typer.Option(help="Registered model name.")] = DEFAULT_UPLIFT_MODEL_NAME,
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = DEFAULT_UPLIFT_EXPERIMENT,
) -> None:
    """Learn the uplift of each retention action from past randomised campaigns, evaluate it out of time, register it.

    Each contacted customer (treatment and control) of a campaign whose outcome window has passed is a row: features at the contact date, churn within the horizon after it. An action is learnt only with at least [uplift] min_treated treated and min_control control customers in the training campaigns; the others are skipped and listed. The latest [uplift] test_campaigns campaigns are held out: Qini coefficient, AUUC and uplift by decile of the uplift ranking, beside a random ordering and a ranking by churn probability, logged to MLflow with plots. The new version becomes `champion` only if its held-out Qini beats the champion's on the same rows.
    """  # noqa: E501 (one line per paragraph: typer keeps line breaks)
    from churnlens.data import load_tables
    from churnlens.training.uplift.pipeline import train_uplift as run

    cfg = load_config(config)
    started = time.perf_counter()
    console.print(f"Loading tables from [bold]{data_dir}[/]")
    tables, _ = load_tables(data_dir, columns=cfg.columns, bounds=cfg.bounds)
    with Progress(TextColumn("{task.description:<12}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:  # fmt: skip
        tasks: dict[str, int] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        result = run(tables, config=cfg, tracking_uri=tracking_uri, experiment=experiment, model_name=model_name,
                     progress=on_progress)  # fmt: skip
    split = result.split
    console.print(
        f"Learner [bold]{cfg.uplift.learner}[/]; campaigns: train {', '.join(split.train)}; held out "
        f"{', '.join(split.test)}" + (f"; purged {', '.join(split.purged)}" if split.purged else "")
        + f". Rows: {result.rows['train']:,} train / {result.rows['test']:,} held out / {result.rows['fit']:,} fitted."
    )
    console.print(f"Actions learnt: [bold]{', '.join(result.actions)}[/]")
    for action, why in result.skipped.items():
        console.print(f"[yellow]skipped[/] {action}: {why}", highlight=False)
    for note in result.notes:
        console.print(note, highlight=False)
    console.print(evaluation_table(result))
    console.print(f"Trained, evaluated and logged in {time.perf_counter() - started:.0f} s")
    console.print(f"MLflow run [bold]{result.run_id}[/] in {result.tracking_uri}")
    console.print(
        f"Registered [bold]{result.model_name}[/] version [bold]{result.model_version}[/] as "
        f"[bold]{result.alias}[/]: {result.registry_reason}"
    )


def evaluation_table(result) -> Table:  # noqa: ANN001 - UpliftTrainingResult, imported lazily
    """Held-out figures per action and overall: Qini and AUUC of the three rankings."""
    table = Table(title="Held-out campaigns: Qini coefficient (AUUC) by ranking")
    for column in ("actions", "rows", "treated / control", "observed uplift", "uplift model", "churn probability",
                   "random"):  # fmt: skip
        table.add_column(column, justify="left" if column == "actions" else "right")

    def cell(x: float) -> str:
        return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"

    for ev in result.evaluations:
        table.add_row(
            ev.name, f"{ev.rows:,}", f"{ev.treated:,} / {ev.control:,}", cell(ev.observed_uplift),
            *(f"{cell(ev.qini[k])} ({cell(ev.auuc[k])})" for k in ("uplift", "churn_probability", "random")),
        )  # fmt: skip
    return table
