"""``churnlens score``: score a whole base into a campaign list with reasons, rejects and drift."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from churnlens.cli.common import console, handle_errors
from churnlens.config import ChurnConfig, load_config
from churnlens.engine.cluster import check_engine

SERVING_KEYS = {
    "high_risk",
    "medium_risk",
    "psi_threshold",
    "lang",
    "reasons",
    "cost_per_contact",
    "save_rate",
    "value_per_save",
    "value_column",
}


def parse_cutoff(cutoff: str | None) -> pd.Timestamp | None:
    """``--cutoff`` as a Timestamp (None stays None), or a ValueError naming the option."""
    if cutoff is None:
        return None
    try:
        value = pd.Timestamp(cutoff)
    except (ValueError, TypeError):
        value = None
    if value is None or pd.isna(value):
        raise ValueError(f"--cutoff {cutoff!r} is not a date (expected YYYY-MM-DD)")
    if value.tzinfo is not None:
        value = value.tz_convert("UTC").tz_localize(None)
    return value


def serving_settings(cfg: ChurnConfig) -> dict[str, Any]:
    """The ``[serving]`` section of the config, checked for unknown keys."""
    section = dict(cfg.extra.get("serving", {}))
    unknown = set(section) - SERVING_KEYS
    if unknown:
        raise ValueError(
            f"config section [serving] has unknown keys: {sorted(unknown)}; known: {sorted(SERVING_KEYS)}"
        )
    return section


def check_lang(lang: str) -> str:
    if lang not in ("en", "fr"):
        raise ValueError(f"--lang must be en or fr, got {lang!r}")
    return lang


def _rule(top: int | None, threshold: float | None, budget: float | None) -> Any:
    from churnlens.serving.targeting import Budget, Threshold, TopN

    given = [
        name
        for name, v in (("--top", top), ("--threshold", threshold), ("--budget", budget))
        if v is not None
    ]
    if len(given) > 1:
        raise ValueError(f"choose one targeting rule, got {' and '.join(given)}")
    if top is not None:
        return TopN(top)
    if threshold is not None:
        return Threshold(threshold)
    if budget is not None:
        return Budget(budget)
    return None


def _money(x: float) -> str:
    return f"{x:,.2f}"


def summary_table(summary: Any, paths: dict[str, Path]) -> Table:
    """The run's summary as a rich table."""
    table = Table(
        title=f"Scored at cutoff {summary.cutoff} with {summary.model_name}"
        + (f" v{summary.model_version}" if summary.model_version else ""),
        show_header=False,
    )
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("customers scored", f"{summary.scored:,}")
    bands = summary.bands
    high, medium = summary.band_bounds
    table.add_row(
        f"  high (p >= {high:g}) / medium (p >= {medium:g}) / low",
        f"{bands['high']:,} / {bands['medium']:,} / {bands['low']:,}",
    )
    table.add_row("customers rejected", f"{summary.rejected:,}")
    for reason, count in summary.rejects_by_reason.items():
        table.add_row(f"  {reason}", f"{count:,}")
    table.add_row("selected for contact", f"{summary.selected:,} ({summary.rule})")
    table.add_row("expected cost", _money(summary.campaign.expected_cost))
    table.add_row("expected saved value", _money(summary.campaign.expected_saved_value))
    table.add_row("expected net value", _money(summary.campaign.expected_net))
    table.add_row("value per saved customer", summary.value_source)
    table.add_row(
        "explained", f"{summary.explained:,} customers x {summary.n_reasons} reasons ({summary.lang})"
    )
    flagged = summary.drift_flagged
    table.add_row(
        f"drift (PSI > {summary.psi_threshold:g})",
        "none"
        if not flagged
        else f"[bold red]{len(flagged)}[/]: " + ", ".join(flagged[:8]) + (" ..." if len(flagged) > 8 else ""),
    )
    for name, path in paths.items():
        table.add_row(f"wrote {name}", str(path))
    return table


@handle_errors
def score(
    data_dir: Annotated[Path, typer.Argument(help="Directory of input tables (<table>.parquet|csv).")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Campaign list to write: .csv or .parquet. Reasons, "
            "rejects, drift and a summary are written beside it.",
        ),
    ],
    cutoff: Annotated[
        str | None,
        typer.Option(
            help="Score as of this date (YYYY-MM-DD, exclusive); default the day after the data's last event."
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="MLflow model URI (default models:/churnlens@champion).")
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."),
    ] = None,
    lang: Annotated[str | None, typer.Option(help="Language of the reasons: en or fr.")] = None,
    reasons: Annotated[int | None, typer.Option(help="Reasons per explained customer (default 3).")] = None,
    top: Annotated[int | None, typer.Option(help="Contact the N customers most likely to churn.")] = None,
    threshold: Annotated[float | None, typer.Option(help="Contact customers with probability >= P.")] = None,
    budget: Annotated[
        float | None,
        typer.Option(help="Contact the list with the highest expected net value within this budget."),
    ] = None,
    cost_per_contact: Annotated[
        float | None,
        typer.Option(help="Cost of one contact (default: the model's training campaign setting)."),
    ] = None,
    save_rate: Annotated[
        float | None, typer.Option(help="Share of contacted would-be churners retained.")
    ] = None,
    value_per_save: Annotated[
        float | None,
        typer.Option(help="Constant value of retaining one customer (default: each customer's value)."),
    ] = None,
    value_column: Annotated[
        str | None,
        typer.Option(
            help="Customer value column (snapshot or customers table); default trailing-12-month spend."
        ),
    ] = None,
    explain_all: Annotated[
        bool, typer.Option("--explain-all", help="Explain every scored customer, not only the selected ones.")
    ] = False,
    high_risk: Annotated[
        float | None, typer.Option(help="Lowest probability of the high band (default 0.5).")
    ] = None,
    medium_risk: Annotated[
        float | None, typer.Option(help="Lowest probability of the medium band (default 0.2).")
    ] = None,
    psi_threshold: Annotated[
        float | None, typer.Option(help="Flag drift above this PSI (default 0.25).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config: [columns.<table>] and [serving].")] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="local (one process, the default) or dask: score per customer bucket on a Dask cluster; "
            "--out is then a directory (campaign/ parts in rank order, selection.parquet, reasons/, "
            "rejects/, drift.csv, summary.json; see docs/scaling.md)."
        ),
    ] = "local",
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="With --engine dask: address of a running Dask scheduler (tcp://host:8786); "
            "default a LocalCluster on this machine."
        ),
    ] = None,
    partitions: Annotated[
        int | None,
        typer.Option(help="With --engine dask: customer buckets (default: about 3M input rows each)."),
    ] = None,
    work_dir: Annotated[
        Path | None,
        typer.Option(
            help="With --engine dask: scratch directory seen by every worker (default: beside --out)."
        ),
    ] = None,
) -> None:
    """Score every active customer at the cutoff and write a campaign list.

    Without --top, --threshold or --budget the high risk band is selected. Reasons are computed for the selected customers (all with --explain-all). Exit status 2 on bad input.
    """  # noqa: E501 (one line per paragraph: typer keeps line breaks)
    from churnlens.data import load_tables
    from churnlens.serving import load_model, score_base, write_outputs
    from churnlens.serving.batch import output_paths
    from churnlens.serving.targeting import Economics

    cfg = load_config(config)
    settings = serving_settings(cfg)
    pick = lambda given, key, default: given if given is not None else settings.get(key, default)  # noqa: E731
    lang = check_lang(pick(lang, "lang", "en"))
    bands = (float(pick(high_risk, "high_risk", 0.5)), float(pick(medium_risk, "medium_risk", 0.2)))
    check_engine(engine, scheduler)
    if engine == "local":
        output_paths(out)  # refuse a bad extension before any work
    elif out.suffix.lower() == ".csv":
        raise ValueError(f"--out {out}: --engine dask writes a directory of Parquet parts, not a CSV file")
    rule = _rule(top, threshold, budget)
    when = parse_cutoff(cutoff)
    tables = None if engine == "dask" else load_tables(data_dir, columns=cfg.columns)[0]
    loaded = load_model(model, tracking_uri=tracking_uri)
    economics = Economics.from_metadata(
        loaded.metadata,
        cost_per_contact=pick(cost_per_contact, "cost_per_contact", None),
        save_rate=pick(save_rate, "save_rate", None),
        value_per_save=pick(value_per_save, "value_per_save", None),
    )
    console.print(
        f"Model [bold]{loaded.name}[/]"
        + (f" v{loaded.version}" if loaded.version else "")
        + f" from {loaded.uri}"
    )
    if engine == "dask":
        from churnlens.engine.dask_scoring import score_on_dask
        from churnlens.engine.session import dask_session

        with dask_session(
            data_dir, out, scheduler=scheduler, partitions=partitions, work_dir=work_dir, columns=cfg.columns
        ) as (client, staged):
            summary = score_on_dask(
                client, staged, out, loaded, cutoff=when, lang=lang,
                n_reasons=int(pick(reasons, "reasons", 3)), bands=bands,
                value_column=pick(value_column, "value_column", None), selection=rule,
                economics=economics, explain_all=explain_all,
                psi_threshold=float(pick(psi_threshold, "psi_threshold", 0.25)),
            )  # fmt: skip
        parts = ("campaign", "selection.parquet", "reasons", "rejects", "drift.csv")
        paths = {name: out / name for name in parts}
        console.print(summary_table(summary, paths))
        return
    with Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        result = score_base(
            tables,
            when,
            loaded,
            lang=lang,
            n_reasons=int(pick(reasons, "reasons", 3)),
            bands=bands,
            value_column=pick(value_column, "value_column", None),
            selection=rule,
            economics=economics,
            explain_all=explain_all,
            psi_threshold=float(pick(psi_threshold, "psi_threshold", 0.25)),
            progress=on_progress,
        )
    paths = write_outputs(result, out)
    if result.summary.scored == 0:
        console.print(f"[bold yellow]warning:[/] no active customer at cutoff {result.summary.cutoff}")
    console.print(summary_table(result.summary, paths))
