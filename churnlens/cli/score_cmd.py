"""``churnlens score``: score a whole base into a campaign list with reasons, rejects and drift."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from churnlens.cli.common import console, handle_errors
from churnlens.config import ChurnConfig, ScoringSettings, load_config
from churnlens.engine.cluster import check_engine
from churnlens.errors import InputError, SettingError
from churnlens.features import parse_cutoff

#: What "no cutoff" means, said the same way in every command's help.
NO_CUTOFF_HELP = "default: the day after the data's last event"

def scoring_settings(config: ChurnConfig, **given: Any) -> ScoringSettings:
    """The ``[serving]`` settings of ``config`` with the command line's given options on top.

    Options left out on the command line are None and keep the TOML value (else the default).
    """
    try:
        return config.serving.override(**given)
    except SettingError as exc:
        if given.get(exc.setting) is not None:
            raise exc.as_option() from None
        raise


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
        typer.Option(help=f"Score as of this date (YYYY-MM-DD, exclusive); {NO_CUTOFF_HELP}."),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="MLflow model URI (default models:/churnlens@champion).")
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."),
    ] = None,
    lang: Annotated[str | None, typer.Option(help="Language of the reasons: en or fr (default [serving] lang, else en).")] = None,
    reasons: Annotated[int | None, typer.Option(help="Reasons per explained customer (default 3).")] = None,
    top: Annotated[int | None, typer.Option(help="Contact the N customers most likely to churn.")] = None,
    threshold: Annotated[float | None, typer.Option(help="Contact customers with probability >= P.")] = None,
    budget: Annotated[
        float | None,
        typer.Option(help="Contact the list with the highest expected net value within this budget."),
    ] = None,
    cost_per_contact: Annotated[
        float | None,
        typer.Option(help="Cost of one contact (default [serving] cost_per_contact, else 5)."),
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
        bool | None,
        typer.Option("--explain-all/--explain-selected", help="Explain every scored customer, not only the selected ones."),
    ] = None,
    high_risk: Annotated[
        float | None, typer.Option(help="Lowest probability of the high band (default 0.5).")
    ] = None,
    medium_risk: Annotated[
        float | None, typer.Option(help="Lowest probability of the medium band (default 0.2).")
    ] = None,
    psi_threshold: Annotated[
        float | None, typer.Option(help="Flag drift above this PSI (default 0.25).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config: [columns.<table>] and [serving]; options given here win.")] = None,
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
    from churnlens.serving.output import check_out_path

    cfg = load_config(config)
    settings = scoring_settings(
        cfg, lang=lang, reasons=reasons, top=top, threshold=threshold, budget=budget,
        cost_per_contact=cost_per_contact, save_rate=save_rate, value_per_save=value_per_save,
        value_column=value_column, explain_all=explain_all, high_risk=high_risk, medium_risk=medium_risk,
        psi_threshold=psi_threshold,
    )  # fmt: skip
    check_engine(engine, scheduler)
    if engine == "local":
        output_paths(out)  # refuse a bad extension before any work
    elif out.suffix.lower() == ".csv":
        raise InputError(f"--out {out}: --engine dask writes a directory of Parquet parts, not a CSV file")
    model_path = [Path(model)] if model and Path(model).exists() else []
    check_out_path(output_paths(out).values() if engine == "local" else out, [data_dir, *([config] if config else []), *model_path])
    when = None if cutoff is None else parse_cutoff(cutoff, name="--cutoff")
    if when is not None:
        cfg.bounds.check_cutoff(when, what="--cutoff")
    tables = None if engine == "dask" else load_tables(data_dir, columns=cfg.columns, bounds=cfg.bounds)[0]
    loaded = load_model(model, tracking_uri=tracking_uri)
    console.print(
        f"Model [bold]{loaded.name}[/]"
        + (f" v{loaded.version}" if loaded.version else "")
        + f" from {loaded.uri}"
    )
    if engine == "dask":
        from churnlens.engine.dask_scoring import score_on_dask
        from churnlens.engine.session import dask_session

        with dask_session(
            data_dir, out, scheduler=scheduler, partitions=partitions, work_dir=work_dir, columns=cfg.columns,
            bounds=cfg.bounds,
        ) as (client, staged):
            summary = score_on_dask(client, staged, out, loaded, settings, cutoff=when)
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

        result = score_base(tables, when, loaded, settings, progress=on_progress, source=str(data_dir.resolve()))
    paths = write_outputs(result, out)
    if result.summary.scored == 0:
        console.print(f"[bold yellow]warning:[/] no active customer at cutoff {result.summary.cutoff}")
    console.print(summary_table(result.summary, paths))
