"""``churnlens train`` and ``churnlens models``."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from churnlens.cli.common import Engine, TrackingUriOption, choice, console, handle_errors
from churnlens.cli.sources import DATA_HELP, data_directory, load_data, shown
from churnlens.config import ChurnConfig, load_config
from churnlens.engine.cluster import check_engine
from churnlens.tracking import DEFAULT_EXPERIMENT, DEFAULT_MODEL_NAME
from churnlens.warehouse.uri import is_warehouse_uri, mask_uri

TRUTH_FILE = "truth.parquet"


def training_settings(cfg: ChurnConfig, *, horizon: int | None = None, **given: Any) -> ChurnConfig:
    """``cfg`` with the training options actually given (None = not given) on top, validated:
    the horizon into ``[labels]``, the rest into ``[training]``."""
    if horizon is not None:
        cfg = replace(cfg, labels=replace(cfg.labels, horizon_days=horizon))
    changes = {k: v for k, v in given.items() if v is not None}
    return replace(cfg, training=replace(cfg.training, **changes)) if changes else cfg


@handle_errors
def train(
    data_dir: Annotated[str, typer.Argument(help=DATA_HELP)],
    horizon: Annotated[int | None, typer.Option(help="Label horizon in days: churned = no purchase (or a cancellation) in [C, C+H) (default from config [labels] horizon_days, else 90).")] = None,
    step: Annotated[int | None, typer.Option(help="Days between training cutoffs (default from config [training] step_days, else 30).")] = None,
    test_cutoff: Annotated[str | None, typer.Option(help="The latest backtest origin's test cutoff (YYYY-MM-DD) instead of the latest labelled one.")] = None,
    backtests: Annotated[int | None, typer.Option(help="Origins of the rolling-origin backtest (default from config, else 3; fewer when the history is short).")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config: [features], [labels], [training], [columns.<table>].")] = None,
    tracking_uri: TrackingUriOption = None,
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = DEFAULT_EXPERIMENT,
    model_name: Annotated[str, typer.Option(help="Registered model name.")] = DEFAULT_MODEL_NAME,
    tune: Annotated[int | None, typer.Option(help="Optuna trials (TPE with pruning) of LightGBM parameters, scored on the backtest origins' validation cutoffs, never their test cutoffs; each trial is a nested MLflow run, the study (optuna.db beside a sqlite store) resumes on the next --tune (default from config [training] tune_trials, else 0: off). Needs churnlens[tune].")] = None,
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
    """Evaluate, then refit a LightGBM churn model; log it to MLflow and register it.

    Evaluate: a purged rolling-origin backtest (--backtests origins, each a test cutoff with its own
    validation and training cutoffs a full horizon apart), or, when the history is too short for even
    one origin, customer-grouped cross-validation (not out of time; the run says so). Refit: the
    registered model trains on every cutoff whose label has matured by the end of the data, with the
    trees the evaluation chose, calibrated out of fold at the latest cutoff. It becomes `champion`
    unless the current champion does better on labels neither trained on, or is as fresh and better
    evaluated (see README, "Promotion"); otherwise `challenger`.
    """
    from churnlens.training import train_model

    engine = check_engine(choice(engine), scheduler)
    cfg = training_settings(load_config(config), horizon=horizon, step_days=step, tune_trials=tune, seed=seed,
                            purge=purge, backtests=backtests)
    if cfg.training.tune_trials:
        from churnlens.training.tune import require_optuna

        require_optuna().logging.set_verbosity(logging.WARNING)  # the progress bar says what it does
    started = time.perf_counter()
    truth_path = None if is_warehouse_uri(data_dir) else Path(data_dir) / TRUTH_FILE  # the simulator's, beside its files
    truth = pd.read_parquet(truth_path) if truth_path is not None and truth_path.is_file() else None

    with contextlib.ExitStack() as stack:
        if engine == "dask":  # the client never loads the tables: every bucket is read on a worker
            from churnlens.engine import DaskSource, dask_session

            folder = data_directory(data_dir, "--engine dask")
            client, staged = stack.enter_context(dask_session(
                folder, folder, scheduler=scheduler, partitions=partitions, work_dir=work_dir,
                columns=cfg.columns, bounds=cfg.bounds))  # fmt: skip
            source, report = DaskSource(client, staged), staged.report
            console.print(f"Training set on Dask: {staged.n_buckets} customer buckets")
        else:
            console.print(f"Loading tables from [bold]{shown(data_dir)}[/]", highlight=False)
            source, report = load_data(data_dir, cfg)
        with Progress(TextColumn("{task.description:<14}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=console,
                      transient=True) as bar:
            tasks: dict[str, int] = {}

            def on_progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)

            result = train_model(
                source, config=cfg, tracking_uri=tracking_uri,
                experiment=experiment, model_name=model_name, test_cutoff=test_cutoff, truth=truth,
                validation_report=report.to_dict(), progress=on_progress, data_source=shown(data_dir),
            )
    evaluation = result.evaluation
    if result.history_note:
        console.print(f"[yellow]{result.history_note}[/]")
    folds = evaluation.folds
    if evaluation.kind == "backtest":
        console.print(f"Evaluation: [bold]backtest[/], {len(folds)} origin(s) (test cutoffs "
                      f"{', '.join(f.label for f in folds)}): out of time, no training label window overlaps a "
                      "test window.")
    else:
        console.print(f"Evaluation: [bold]grouped_cv[/], {len(folds)} customer-grouped folds at "
                      f"{folds[-1].test_cutoff.date()}. [bold yellow]Not out of time[/]: the history is too "
                      "short for a purged backtest origin, so test and training labels share the same period "
                      "(no customer is in both).")
    console.print(f"Label: [bold]{result.label_mode}[/], horizon {cfg.labels.horizon_days} d.")
    if result.tuning is not None:
        tuned = result.tuning
        console.print(
            f"Tuning: {tuned.new_trials} trial(s) run ({tuned.pruned} pruned), {len(tuned.trials)} in study "
            f"{tuned.study_name} ({tuned.storage}); best trial {tuned.best_trial}, mean validation ROC AUC "
            f"{tuned.best_value:.4f}: num_leaves {tuned.params.num_leaves}, learning_rate "
            f"{tuned.params.learning_rate:.3g}, min_child_samples {tuned.params.min_child_samples}.",
            highlight=False,
        )
    console.print(evaluation_table(evaluation))
    console.print(folds_table(evaluation))
    console.print(
        f"Refit (the registered model): {len(result.refit_cutoffs)} cutoffs "
        f"{result.refit_cutoffs[0].date()}..{result.refit_cutoffs[-1].date()}, {result.rows['refit']:,} rows, "
        f"[bold]trained through {result.trained_through.date()}[/]; calibrated out of fold on "
        f"{result.rows['calibration']:,} rows at {', '.join(str(c.date()) for c in result.calibration.cutoffs)}."
    )
    base = " boosted from the RFM logistic regression" if result.linear_base else ""
    console.print(f"Model: {result.n_trees} trees x {result.num_leaves} leaves{base}; "
                  f"evaluated, refit and logged in {time.perf_counter() - started:.0f} s")
    console.print(f"MLflow run [bold]{result.run_id}[/] in {mask_uri(result.tracking_uri)}")
    console.print(
        f"Registered [bold]{result.model_name}[/] version [bold]{result.model_version}[/] as "
        f"[bold]{result.alias}[/]: {result.registry_reason}"
    )


#: Metrics of the summary table, in order.
TABLE_METRICS = ("roc_auc", "pr_auc", "brier", "log_loss", "ece", "top_decile_lift", "top_decile_capture",
                 "best_profit", "best_depth", "oracle_ratio", "base_rate", "n")


def _cell(value: float) -> str:
    return "" if pd.isna(value) else f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4f}"


def evaluation_table(evaluation) -> Table:
    """Mean and spread over the origins (or folds): one row per metric, one column per scorer."""
    summary = evaluation.summary()
    names = [m for m in TABLE_METRICS if (m, "mean") in summary.columns]
    what = "origins" if evaluation.kind == "backtest" else "folds"
    table = Table(title=f"{evaluation.kind}: mean ± spread (standard deviation) over {len(evaluation.folds)} {what}")
    table.add_column("metric")
    for scorer in summary.index:
        table.add_column(str(scorer), justify="right")
    for name in names:
        cells = []
        for scorer in summary.index:
            mean, std = summary.loc[scorer, (name, "mean")], summary.loc[scorer, (name, "std")]
            cells.append(_cell(mean) + ("" if pd.isna(std) or pd.isna(mean) or name == "n" else f" ± {_cell(std)}"))
        table.add_row(name, *cells)
    return table


def folds_table(evaluation) -> Table:
    """Every origin's (or fold's) key metrics, per scorer."""
    what = "origin (test cutoff)" if evaluation.kind == "backtest" else "fold"
    table = Table(title=f"{evaluation.kind}: every {what.split()[0]}")
    for column in (what, "scorer", "roc_auc", "pr_auc", "brier", "ece", "top_decile_lift", "n", "trees"):
        table.add_column(column, justify="left" if column in (what, "scorer") else "right")
    for fold in evaluation.folds:
        for scorer, row in fold.metrics.iterrows():
            trees = str(fold.refit_rounds) if scorer == "model" else str(fold.rounds) if scorer == "no_refit" else ""
            table.add_row(fold.label, str(scorer), *(_cell(row.get(m, float("nan")))
                                                     for m in ("roc_auc", "pr_auc", "brier", "ece",
                                                               "top_decile_lift", "n")), trees)
    return table
