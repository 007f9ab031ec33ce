"""``churnlens features``: write a point-in-time snapshot, or print the feature catalog."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from churnlens.cli.common import Engine, Lang, choice, console, handle_errors
from churnlens.config import ChurnConfig, load_config
from churnlens.data import load_tables
from churnlens.engine.cluster import check_engine
from churnlens.errors import InputError
from churnlens.features import build_snapshot, catalog_frame
from churnlens.features.catalog import CATALOG_VERSION
from churnlens.i18n import Words

_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def _print_catalog(config_path: Path | None, lang: str) -> None:
    cfg = load_config(config_path)
    frame = catalog_frame(cfg.features, lang=lang)
    words = Words(lang)
    table = Table(title=words("catalog-title", version=CATALOG_VERSION), show_lines=False)
    table.add_column(words("column-feature"), no_wrap=True)
    for column in ("family", "risk"):
        table.add_column(words(f"column-{column}"), overflow="fold", max_width=14)
    table.add_column(words("column-description"), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(row.name, row.family, row.risk_direction, row.description)
    console.print(table)


def _features_on_dask(
    data_dir: Path,
    cutoff: str,
    out: Path,
    cfg: ChurnConfig,
    scheduler: str | None,
    partitions: int | None,
    work_dir: Path | None,
) -> None:
    from churnlens.engine.dask_features import snapshot_to_parquet
    from churnlens.engine.session import dask_session

    if out.suffix.lower() == ".csv":
        raise InputError(f"--out {out}: --engine dask writes a directory of Parquet parts, not a CSV file")
    with dask_session(
        data_dir, out, scheduler=scheduler, partitions=partitions, work_dir=work_dir, columns=cfg.columns,
        bounds=cfg.bounds,
    ) as (client, staged):
        rows = snapshot_to_parquet(client, staged, cutoff, out, cfg.features)
    console.print(
        f"wrote {rows:,} active customers at {cutoff} to {out}/ ({staged.n_buckets} Parquet parts, Dask)",
        highlight=False,
    )


@handle_errors
def features(
    data_dir: Path | None = typer.Argument(
        None,
        help="Directory holding purchases.csv|parquet and optionally customers, program_events, "
        "support_interactions, cancellations and contacts.",
        show_default=False,
    ),
    cutoff: str | None = typer.Option(
        None,
        "--cutoff",
        help=(
            "Snapshot date (exclusive: only events strictly before it"
            " are used), e.g. 2024-06-01; naive = UTC."
        ),
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Output file, .parquet or .csv (one row per active customer, customer_id first).",
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="TOML config (feature windows, column mapping)."
    ),
    catalog: bool = typer.Option(
        False,
        "--catalog",
        help="Print the feature catalog (names, units, risk direction, descriptions) and exit.",
    ),
    lang: Lang = typer.Option(Lang.en, "--lang", help="Language of the catalog."),
    engine: Engine = typer.Option(
        Engine.local,
        "--engine",
        help="local (one process, the default) or dask: build per customer bucket on a Dask cluster "
        "and write --out as a directory of Parquet parts (see docs/scaling.md).",
    ),
    scheduler: str | None = typer.Option(
        None,
        "--scheduler",
        help="With --engine dask: address of a running Dask scheduler (tcp://host:8786); "
        "default a LocalCluster on this machine, one worker per core.",
    ),
    partitions: int | None = typer.Option(
        None, "--partitions", help="With --engine dask: customer buckets (default: about 3M input rows each)."
    ),
    work_dir: Path | None = typer.Option(
        None,
        "--work-dir",
        help="With --engine dask: scratch directory for the buckets, seen by every worker "
        "(default: beside --out).",
    ),
) -> None:
    """Build the features of every active customer at a cutoff, or print the feature catalog.

    churnlens features DATA_DIR --cutoff 2024-06-01 --out snapshot.parquet

    churnlens features --catalog --lang fr

    A customer is active at the cutoff when they bought in the preceding 365 days and had not cancelled. Missing optional tables drop their feature family.
    """  # noqa: E501 (one line per paragraph: typer keeps line breaks)
    lang, engine = choice(lang), choice(engine)
    if catalog:
        _print_catalog(config, lang)
        return
    if data_dir is None:
        raise InputError("give a DATA_DIR (or --catalog to print the feature catalog)")
    if cutoff is None:
        raise InputError("--cutoff is required to build a snapshot, e.g. --cutoff 2024-06-01")
    if out is None:
        raise InputError("--out is required to build a snapshot, e.g. --out snapshot.parquet")
    from churnlens.serving.output import check_out_path, write_table

    check_engine(engine, scheduler)
    cfg = load_config(config)
    check_out_path(out, [data_dir, *([config] if config else [])])
    if engine == "dask":
        _features_on_dask(data_dir, cutoff, out, cfg, scheduler, partitions, work_dir)
        return
    fmt = _FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise InputError(f"--out {out} must end in .parquet or .csv")
    tables, _ = load_tables(data_dir, columns=cfg.columns, bounds=cfg.bounds)
    snapshot = build_snapshot(tables, cutoff, cfg.features)
    write_table(snapshot.reset_index(), out, fmt)
    console.print(
        f"wrote {len(snapshot):,} active customers × {snapshot.shape[1]} features at {cutoff} to {out}",
        highlight=False,
    )
