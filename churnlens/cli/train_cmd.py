"""``churnlens train`` and ``churnlens models``."""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from churnlens.cli.common import Engine, choice, console, handle_errors
from churnlens.config import load_config
from churnlens.engine.cluster import check_engine
from churnlens.tracking import DEFAULT_EXPERIMENT, DEFAULT_MODEL_NAME

TRUTH_FILE = "truth.parquet"


@handle_errors
def train(
    data_dir: Annotated[Path, typer.Argument(help="Directory of input tables (<table>.parquet|csv).")],
    horizon: Annotated[int, typer.Option(help="Label horizon in days: churned = no purchase (or a cancellation) in [C, C+H).")] = 90,
    step: Annotated[int, typer.Option(help="Days between training cutoffs.")] = 30,
    test_cutoff: Annotated[str | None, typer.Option(help="Test on this cutoff (YYYY-MM-DD) instead of the latest labelled one.")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config: [features], [labels], [training], [columns.<table>].")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")] = None,
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = DEFAULT_EXPERIMENT,
    model_name: Annotated[str, typer.Option(help="Registered model name.")] = DEFAULT_MODEL_NAME,
    tune: Annotated[int, typer.Option(help="Random-search trials of LightGBM parameters on the validation cutoff (0: off).")] = 0,
    seed: Annotated[int | None, typer.Option(help="Seed for LightGBM and calibration (default from config, else 42).")] = None,
    purge: Annotated[bool | None, typer.Option("--purge/--no-purge", help="Keep label windows of train, validation and test apart (default from config, else on); --no-purge lets training labels overlap the test period, which flatters test metrics.")] = None,
    engine: Annotated[Engine, typer.Option(
        help="local (the default) or dask: build the training set per customer bucket on a Dask cluster "
        "(same rows as local); LightGBM trains on the cluster above training.distributed_min_rows "
        "training rows, else in this process (docs/scaling.md).")] = Engine.local,
    scheduler: Annotated[str | None, typer.Option(
        help="With --engine dask: address of a running Dask scheduler (tcp://host:8786); "
        "default a LocalCluster on this machine.")] = None,
    partitions: Annotated[int | None, typer.Option(
        help="With --engine dask: customer buckets (default: about 3M input rows each).")] = None,
    work_dir: Annotated[Path | None, typer.Option(
        help="With --engine dask: scratch directory seen by every worker (default: beside DATA_DIR).")] = None,
) -> None:
    """Train an out-of-time LightGBM churn model, log it to MLflow and register it.

    The latest labelled cutoff is the test set, the one before it validates (early stopping,
    calibration); earlier cutoffs train. The new version becomes `champion` only if it beats the
    current champion's test ROC AUC on the same test cutoff, otherwise `challenger`.
    """
    from churnlens.data import load_tables
    from churnlens.training import TrainConfig, train_model

    engine = check_engine(choice(engine), scheduler)
    cfg = load_config(config)
    train_cfg = TrainConfig.from_dict(cfg.extra.get("training", {}))
    overrides = {"horizon_days": horizon, "step_days": step, "tune_trials": tune or train_cfg.tune_trials}
    if seed is not None:
        overrides["seed"] = seed
    if purge is not None:
        overrides["purge"] = purge
    train_cfg = replace(train_cfg, **overrides)
    started = time.perf_counter()
    truth_path = data_dir / TRUTH_FILE
    truth = pd.read_parquet(truth_path) if truth_path.is_file() else None

    with contextlib.ExitStack() as stack:
        if engine == "dask":  # the client never loads the tables: every bucket is read on a worker
            from churnlens.engine import DaskSource, dask_session

            client, staged = stack.enter_context(dask_session(
                data_dir, data_dir, scheduler=scheduler, partitions=partitions, work_dir=work_dir,
                columns=cfg.columns, bounds=cfg.bounds))  # fmt: skip
            source, report = DaskSource(client, staged), staged.report
            console.print(f"Training set on Dask: {staged.n_buckets} customer buckets")
        else:
            console.print(f"Loading tables from [bold]{data_dir}[/]")
            source, report = load_tables(data_dir, columns=cfg.columns, bounds=cfg.bounds)
        with Progress(TextColumn("{task.description:<14}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=console,
                      transient=True) as bar:
            tasks: dict[str, int] = {}

            def on_progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)

            result = train_model(
                source, config=cfg, train_config=train_cfg, tracking_uri=tracking_uri,
                experiment=experiment, model_name=model_name, test_cutoff=test_cutoff, truth=truth,
                validation_report=report.to_dict(), progress=on_progress,
            )
    split = result.split
    console.print(
        f"Label: [bold]{result.label_mode}[/], horizon {train_cfg.horizon_days} d. Cutoffs: "
        f"train {split.train_cutoffs[0].date()}..{split.train_cutoffs[-1].date()} ({len(split.train_cutoffs)}), "
        f"validation {split.validation_cutoff.date()}, test {split.test_cutoff.date()}. "
        f"Rows: {result.rows['train']:,} / {result.rows['validation']:,} / {result.rows['test']:,}."
    )
    console.print(metrics_table(result.metrics))
    base = " boosted from the RFM logistic regression" if result.linear_base else ""
    console.print(f"Model: {result.n_trees} trees x {result.num_leaves} leaves{base}; "
                  f"trained, evaluated and logged in {time.perf_counter() - started:.0f} s")
    console.print(f"MLflow run [bold]{result.run_id}[/] in {result.tracking_uri}")
    console.print(
        f"Registered [bold]{result.model_name}[/] version [bold]{result.model_version}[/] as "
        f"[bold]{result.alias}[/]: {result.registry_reason}"
    )


def metrics_table(metrics: pd.DataFrame) -> Table:
    """The test metrics as a rich table: one row per metric, one column per scorer."""
    names = ["roc_auc", "pr_auc", "brier", "log_loss", "ece", "top_decile_lift", "top_decile_capture",
             "best_profit", "best_depth", "oracle_ratio", "base_rate", "n"]
    names = [c for c in names if c in metrics.columns]
    table = Table(title="Out-of-time test metrics")
    table.add_column("metric")
    for scorer in metrics.index:
        table.add_column(str(scorer), justify="right")
    for name in names:
        cells = []
        for scorer in metrics.index:
            value = metrics.loc[scorer, name]
            cells.append("" if pd.isna(value) else f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4f}")
        table.add_row(name, *cells)
    return table
