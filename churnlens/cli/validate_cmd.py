"""``churnlens validate``: check a data directory and print what was found and repaired."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import typer

from churnlens.cli.common import console, handle_errors
from churnlens.cli.sources import load_data
from churnlens.config import load_config
from churnlens.errors import InputError


@handle_errors
def validate(
    data_dir: str = typer.Argument(
        ...,
        help="Directory holding purchases.csv|parquet and optionally customers, program_events, "
        "support_interactions, cancellations and contacts (.csv, .parquet or a directory of Parquet files), "
        "or a PostgreSQL URI postgresql://user@host:port/db?schema=NAME.",
        show_default=False,
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="TOML config; its columns.<table> sections map your column names to the contract, "
        'e.g. CustomerID = "customer_id" under columns.purchases.',
    ),
    data_end: str | None = typer.Option(
        None,
        "--data-end",
        help="Drop (and report) events after this timestamp, e.g. 2024-06-30 or 2024-06-30T23:59:59Z "
        "(naive = UTC).",
    ),
    drop_missing_customer: bool = typer.Option(
        False,
        "--drop-missing-customer",
        help="Drop (and report) event rows without a customer_id instead of failing.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of tables."),
) -> None:
    """Validate the input tables of DATA_DIR and report row counts, date range and repairs.

    Hard problems (a missing file or column, an unreadable timestamp, text in a number column, a value out of range, an unknown file name ...) are printed with the table, the column and a few offending rows; the exit status is then 2.

    Soft problems (duplicate rows, events of customers absent from customers, events after --data-end) are repaired and listed; the exit status is 0.
    """  # noqa: E501 (one line per paragraph: typer keeps line breaks)
    cfg = load_config(config)
    end = None
    if data_end is not None:
        try:
            end = pd.Timestamp(data_end)
        except ValueError:
            end = None
        if end is None or pd.isna(end):
            raise InputError(f"--data-end {data_end!r} is not a timestamp (e.g. 2024-06-30)")
    _, report = load_data(data_dir, cfg, data_end=end, drop_missing_customer=drop_missing_customer)
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
    else:
        console.print(report)
