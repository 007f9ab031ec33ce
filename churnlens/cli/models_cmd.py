"""``churnlens models``: list the registered versions; ``churnlens models compare A B``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer
from rich.table import Table

from churnlens.cli.common import TrackingUriOption, console, handle_errors
from churnlens.errors import InputError
from churnlens.tracking import DEFAULT_MODEL_NAME

if TYPE_CHECKING:
    from churnlens.training.compare import ComparedModel

models_app = typer.Typer(
    help="List the registered versions of a model (default) or compare two of them.",
    invoke_without_command=True,
    no_args_is_help=False,
    rich_markup_mode=None,
)


@models_app.callback()
@handle_errors
def models(
    ctx: typer.Context,
    model_name: Annotated[str, typer.Option(help="Registered model name.")] = DEFAULT_MODEL_NAME,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """List registered versions of a model: aliases, the day each was trained through, how it was evaluated, and its evaluation's mean metrics.

    churnlens models compare A B --data DIR compares two versions (numbers or aliases).
    """
    if ctx.invoked_subcommand is not None:
        return
    from churnlens.tracking import configure_mlflow
    from churnlens.training.mlflow_log import list_model_versions

    uri = configure_mlflow(tracking_uri)
    versions = list_model_versions(model_name)
    if versions.empty:
        console.print(f"No versions of model '{model_name}' in {uri}")
        return
    table = Table(title=f"Model '{model_name}' in {uri}")
    for column in versions.columns:
        table.add_column(column, justify="right" if column not in ("aliases", "run_id", "created") else "left")
    for _, row in versions.iterrows():
        table.add_row(*("" if pd.isna(v) else f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)


def resolve_version(model_name: str, ref: str) -> ComparedModel:
    """A registered version by number (``3``, ``v3``) or alias (``champion``), read as data."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from churnlens.training.compare import ComparedModel
    from churnlens.training.mlflow_log import read_model_version

    client = MlflowClient()
    number = ref[1:] if ref[:1] in ("v", "V") and ref[1:].isdigit() else ref
    try:
        if number.isdigit():
            version = client.get_model_version(model_name, number)
        else:
            version = client.get_model_version_by_alias(model_name, ref)
    except mlflow.exceptions.MlflowException:
        raise InputError(f"model '{model_name}' has no version or alias {ref!r} (see churnlens models)") from None
    aliases = tuple(sorted(a for a, v in client.get_registered_model(model_name).aliases.items()
                           if str(v) == str(version.version)))  # fmt: skip
    model = read_model_version(model_name, str(version.version))
    through = version.tags.get("trained_through") or model.metadata.get("trained_through")
    label = f"v{version.version}" + (f" ({', '.join(aliases)})" if aliases else "")
    return ComparedModel(label, str(version.version), aliases, pd.Timestamp(through) if through else None, model)


@models_app.command("compare")
@handle_errors
def compare(
    a: Annotated[str, typer.Argument(help="First version: a number (3) or an alias (champion).")],
    b: Annotated[str, typer.Argument(help="Second version: a number or an alias (challenger).")],
    data: Annotated[Path, typer.Option(help="Directory of input tables holding the matured labels to compare on.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write an HTML report (metrics, overlaid calibration and lift, importance differences).")] = None,
    model_name: Annotated[str, typer.Option(help="Registered model name.")] = DEFAULT_MODEL_NAME,
    tracking_uri: TrackingUriOption = None,
    top: Annotated[int, typer.Option(help="Feature-importance differences shown.")] = 10,
    config: Annotated[Path | None, typer.Option(help="TOML config: [columns.<table>] and [bounds] of the data.")] = None,
) -> None:
    """Compare two registered versions on the latest matured labels neither was trained on.

    Prints both models' metrics on the same customers and labels (or why no such labels exist yet) and the features whose share of the model's gain differs most; --out writes an HTML report with overlaid calibration and lift plots.
    """  # noqa: E501 (one line per paragraph: typer keeps line breaks)
    from churnlens.config import load_config
    from churnlens.data import load_tables
    from churnlens.serving.core import feature_config_of
    from churnlens.tracking import configure_mlflow
    from churnlens.training.compare import compare_models, write_comparison_report

    if top < 1:
        raise InputError(f"--top must be >= 1, got {top}")
    if out is not None and out.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"--out {out} must end in .html")
    cfg = load_config(config)
    uri = configure_mlflow(tracking_uri)
    first, second = resolve_version(model_name, a), resolve_version(model_name, b)
    if first.version == second.version:
        raise InputError(f"{a} and {b} are the same version ({first.label})")
    tables, _ = load_tables(data, columns=cfg.columns, bounds=cfg.bounds)
    comparison = compare_models(tables, first, second, feature_config_of=feature_config_of)
    console.print(f"Model '{model_name}' in {uri}: {first.label} vs {second.label}", highlight=False)
    console.print(comparison.reason, highlight=False)
    if not comparison.metrics.empty:
        table = Table(title=f"Metrics at cutoff {comparison.cutoff.date()} ({comparison.label_mode}, "
                      f"{comparison.horizon_days} days), same customers and labels")  # fmt: skip
        table.add_column("metric")
        for label in comparison.metrics.index:
            table.add_column(label, justify="right")
        table.add_column("difference", justify="right")
        for name in comparison.metrics.columns:
            va, vb = comparison.metrics.loc[first.label, name], comparison.metrics.loc[second.label, name]
            cells = [f"{v:,.0f}" if abs(v) >= 100 else f"{v:.4f}" for v in (va, vb)]
            table.add_row(name, *cells, "" if name in ("n", "base_rate") else f"{vb - va:+.4f}")
        console.print(table)
    importance = Table(title="Largest feature-importance differences (share of total gain)")
    importance.add_column("feature")
    importance.add_column(first.label, justify="right")
    importance.add_column(second.label, justify="right")
    importance.add_column("difference", justify="right")
    for name, row in comparison.importance.head(top).iterrows():
        importance.add_row(str(name), f"{row[first.label]:.3f}", f"{row[second.label]:.3f}", f"{row['difference']:+.3f}")
    console.print(importance)
    if out is not None:
        console.print(f"Wrote {write_comparison_report(comparison, out, top=top)}", highlight=False)
