"""The DATA argument of every command: a data directory or a PostgreSQL URI, loaded one way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from churnlens.data.sources import data_directory, load_data, local_inputs, shown
from churnlens.errors import InputError
from churnlens.warehouse.uri import is_warehouse_uri

__all__ = [
    "DATA_HELP", "OUT_HELP", "data_directory", "load_data", "local_inputs", "shown", "warehouse_target",
    "write_to_warehouse",
]  # fmt: skip

#: Help text of a DATA argument.
DATA_HELP = (
    "Directory of input tables (<table>.parquet|csv), or a PostgreSQL URI "
    "postgresql://user@host:port/db?schema=NAME (tables by contract name or mapped in [warehouse.tables])."
)


#: Help text of ``--out`` where a database is accepted.
OUT_HELP = (
    "or postgresql://user@host:port/db?schema=S&table=PREFIX: tables PREFIX_campaign, PREFIX_reasons, "
    "PREFIX_rejects, PREFIX_contacts, PREFIX_drift and PREFIX_runs, written in one transaction (a campaign id "
    "written again replaces its rows)."
)


def warehouse_target(out: str | Path, engine: str = "local") -> Any:
    """The parsed ``--out`` URI when it names a database (None for a file), checked before any work."""
    if not is_warehouse_uri(str(out)):
        return None
    from churnlens.warehouse.write import output_uri

    target = output_uri(str(out))
    if engine != "local":
        raise InputError(f"--out {target.shown}: --engine {engine} writes Parquet parts to a directory; "
                         "write to a database with --engine local")  # fmt: skip
    return target


def write_to_warehouse(result: Any, target: Any, *, run_id: str | None = None) -> dict[str, str]:
    """Write a batch result to the database; what was written, for the summary table."""
    from churnlens.warehouse.write import write_campaign

    written = write_campaign(result, target, run_id=run_id)
    where = f"{written.target} (campaign {written.campaign_id}, run {written.run_id})"
    return {"campaign to": where, **{name: f"{rows:,} rows" for name, rows in written.rows.items()}}
