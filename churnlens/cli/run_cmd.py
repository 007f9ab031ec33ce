"""``churnlens run``: one scheduled run of the pipeline, for cron or any scheduler."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnlens.cli.common import console


def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="Pipeline TOML: [pipeline] data, outputs, state_dir ... and the usual sections ([serving], [labels], [training], [warehouse.tables], [[actions]]).")],
    as_of: Annotated[str | None, typer.Option(help="The run's day (YYYY-MM-DD): scoring cutoff and retraining clock; default today (UTC). For backfills.")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for a run in progress to finish before giving up (exit status 4).")] = 0.0,
) -> None:
    """Validate, retrain when new labels have matured (or [pipeline] retrain_every_days passed), score at the day's cutoff, write every [pipeline] output, and report each earlier campaign whose horizon has matured.

    One summary line per step; a JSON log per run in [pipeline] state_dir/runs. A lock in state_dir keeps two runs from overlapping.

    Exit status: 0 done, 3 nothing to do (the day was already scored on the same data and config, nothing due), 2 bad input (data, config, credentials), 1 failure (a bug, the database or the disk), 4 another run holds the lock.
    """  # noqa: E501 (one line per paragraph: typer keeps line breaks)
    from churnlens.pipeline import run_pipeline

    # no handle_errors: run_pipeline turns every error into its exit status, line and log
    outcome = run_pipeline(
        config, as_of=as_of, wait_s=wait,
        echo=lambda line: console.print(line, highlight=False, markup=False, soft_wrap=True),
    )  # fmt: skip
    raise typer.Exit(outcome.exit_code)
