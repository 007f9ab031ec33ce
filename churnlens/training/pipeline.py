"""One training run end to end: training set -> evaluate (backtest or grouped CV) -> refit -> MLflow -> registry."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd

from churnlens.config import MEASURED, ChurnConfig, Economics, FeatureConfig, ScoringSettings, TrainConfig
from churnlens.data.tables import Tables
from churnlens.errors import InputError
from churnlens.features import CATALOG_VERSION, build_snapshot
from churnlens.model import ChurnModel
from churnlens.monitoring import reference_statistics
from churnlens.tracking import DEFAULT_EXPERIMENT, DEFAULT_MODEL_NAME, configure_mlflow
from churnlens.training import mlflow_log, plots
from churnlens.training.estimator import ChurnClassifier
from churnlens.training.evaluation import (
    BACKTEST,
    Evaluation,
    TrainingRows,
    run_backtest,
    run_grouped_cv,
    tuning_folds,
)
from churnlens.training.refit import OutOfFoldMargins, fit_shipped_model
from churnlens.training.source import LocalSource, TrainingSource
from churnlens.training.split import backtest_origins

if TYPE_CHECKING:
    from churnlens.training.tune import TuningResult

Progress = Callable[[str, int, int], None]

#: Rows of the SHAP summary plot (TreeSHAP costs ~0.4 ms per row).
SHAP_PLOT_ROWS = 4000
#: Dependence plots: the top features by mean |SHAP|, on a share of those rows.
SHAP_DEPENDENCE_FEATURES = 4
SHAP_DEPENDENCE_ROWS = 1500


@dataclass
class TrainingResult:
    """What a training run produced and where it was logged.

    ``metrics`` are the evaluation's means (scorers x metrics); ``evaluation`` has every
    origin or fold. The registered model is the refit on ``refit_cutoffs``.
    """

    run_id: str
    model_uri: str
    model_name: str
    model_version: str
    alias: str
    registry_reason: str
    metrics: pd.DataFrame
    evaluation: Evaluation
    refit_cutoffs: tuple[pd.Timestamp, ...]
    trained_through: pd.Timestamp
    n_trees: int
    num_leaves: int
    tracking_uri: str
    label_mode: str
    rows: dict[str, int]
    linear_base: bool = False
    calibration: OutOfFoldMargins | None = None
    history_note: str | None = None
    tuning: TuningResult | None = None  # when train_config.tune_trials > 0


def oracle_probabilities(
    truth: pd.DataFrame | None, cutoff: pd.Timestamp, horizon_days: int, mode: str
) -> pd.Series | None:
    """The simulator's best achievable probabilities at ``cutoff`` (None if the truth table lacks it)."""
    if truth is None:
        return None
    column = "p_cancel" if mode == "contractual" else "p_no_purchase"
    rows = truth[(pd.to_datetime(truth["cutoff"]) == cutoff) & (truth["horizon_days"] == horizon_days)]
    if rows.empty or column not in rows:
        return None
    return rows.set_index(rows["customer_id"].astype("string"))[column]


def labelled_cutoffs(
    source: TrainingSource, train_config: TrainConfig, horizon_days: int
) -> tuple[list[pd.Timestamp], str | None]:
    """The cutoffs a run may use, all with a matured label, and a note when the history is short.

    Normally every cutoff from ``min_history_days`` after the data start to the latest whose
    label window has matured (the data end minus the horizon), ``step_days`` apart. When the
    history is shorter than ``min_history_days`` plus the horizon, the latest matured cutoff
    alone (with whatever history precedes it) and a note saying so.

    Raises
    ------
    InputError
        When no cutoff has a matured label at all, saying how much more history is needed.
    """
    horizon, step = horizon_days, train_config.step_days
    try:
        return source.cutoffs(horizon_days=horizon, step_days=step,
                              min_history_days=train_config.min_history_days), None
    except ValueError:
        pass
    start, end = source.data_range()
    try:
        latest = source.cutoffs(horizon_days=horizon, step_days=step, min_history_days=1)[-1]
    except ValueError:
        latest_possible = end.floor("D") + pd.Timedelta(days=1 - horizon)
        missing = -((latest_possible - (start + pd.Timedelta(days=1))) // pd.Timedelta(days=1))
        raise InputError(
            f"no cutoff has a matured {horizon}-day label, so nothing can be trained: the data runs from "
            f"{start} to {end}, and a label needs {horizon} days of data after a cutoff with at least a day of "
            f"history before it; {missing} more days of history are needed (or a shorter --horizon)"
        ) from None
    history = (latest - start) // pd.Timedelta(days=1)
    note = (f"short history: {history} days of history before the only matured cutoff {latest.date()}, "
            f"less than training.min_history_days = {train_config.min_history_days}; trained on that cutoff alone")
    return [latest], note


def windows_the_history_shows(
    windows: tuple[int, ...], cutoffs: list[pd.Timestamp], data_start: pd.Timestamp
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The trailing windows a run can learn from, and those it leaves out.

    A window no longer than the history before every training cutoff only repeats the lifetime
    figures in training (a 365-day count is the lifetime count when no cutoff has more than a
    year of history), but means something else at a scoring date with a longer history: trees
    split on whichever of the twins comes first and mis-read it there (CDNOW scored 15 months in,
    benchmarks/RESULTS.md: ECE 0.047 with the 365-day window, 0.027 without). So a window is kept
    only when the latest training cutoff has more days of history than it; the smallest is kept
    whatever the history.

    Returns
    -------
    (kept, left_out) : tuple of int, tuple of int
    """
    history_days = (max(cutoffs) - pd.Timestamp(data_start).floor("D")) // pd.Timedelta(days=1)
    kept = tuple(w for w in windows if w < history_days) or windows[:1]
    return kept, tuple(w for w in windows if w not in kept)


def _snapshot_at(source: TrainingSource, cutoff: pd.Timestamp) -> Callable[[FeatureConfig], pd.DataFrame] | None:
    """Snapshots at ``cutoff`` with any feature configuration, when the tables are in this process."""
    if not isinstance(source, LocalSource):
        return None
    return lambda features: build_snapshot(source.tables, cutoff, features)


def training_economics(settings: ScoringSettings) -> Economics:
    """The economics that price the profit metrics: ``[serving]``'s, with the configured save rate
    (a ``"measured"`` one is known only once a campaign report is read: the default rate then)."""
    rate = Economics.save_rate if settings.save_rate == MEASURED else float(settings.save_rate)
    value = None if settings.value_per_save is None else float(settings.value_per_save)
    return Economics(float(settings.cost_per_contact), rate, value)


def train_model(
    tables: Tables | TrainingSource,
    *,
    config: ChurnConfig | None = None,
    train_config: TrainConfig | None = None,
    tracking_uri: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    model_name: str = DEFAULT_MODEL_NAME,
    test_cutoff: str | pd.Timestamp | None = None,
    truth: pd.DataFrame | None = None,
    validation_report: dict[str, Any] | None = None,
    progress: Progress | None = None,
    data_source: str | None = None,
) -> TrainingResult:
    """Evaluate, refit, log to MLflow and register a churn model.

    Two stages. **Evaluate** (:mod:`churnlens.training.evaluation`): a purged rolling-origin
    backtest of ``train_config.backtests`` origins (fewer when the history is short), or
    customer-grouped cross-validation when not even one origin fits; per-origin metrics and
    their mean and spread for the model and the baselines on the same customers. **Refit**
    (:mod:`churnlens.training.refit`): the logged and registered model is trained on every
    cutoff whose label window has matured by the end of the data, with the parameters and
    trees the evaluation chose, and calibrated out of fold at the most recent cutoffs.

    Parameters
    ----------
    tables : Tables or TrainingSource
        Validated input tables, or a source that builds the training set elsewhere
        (``churnlens.engine.DaskSource``). When the source keeps the training rows on a
        cluster (a :class:`~churnlens.training.source.DistributedTrainingSet`), fits on more
        than ``train_config.distributed_min_rows`` rows grow their trees on the cluster
        (lightgbm.dask); validation, test and calibration rows are collected here (a sample
        of whole customers above ``train_config.local_max_rows``), and so is a sample of the
        training rows for the baselines, the linear base, the cross-fitted calibration
        models and the reference statistics. Grouped cross-validation runs here on
        collected rows.
    config : ChurnConfig, optional
        All settings (defaults if None): ``features``, ``labels`` (the horizon), ``training``,
        and ``serving``'s campaign economics, which price the profit metrics.
    train_config : TrainConfig, optional
        Training settings instead of ``config.training``.
    tracking_uri : str, optional
        MLflow store; see :func:`churnlens.tracking.resolve_tracking_uri`.
    experiment, model_name : str
    test_cutoff : str or Timestamp, optional
        The latest backtest origin's test cutoff instead of the latest labelled one.
    truth : DataFrame, optional
        Simulator truth table; adds the oracle AUC and the model/oracle ratio where it has the cutoff.
    validation_report : dict, optional
        Logged as ``validation_report.json``.
    progress : callable(stage, done, total), optional
    data_source : str, optional
        Where the tables were read (a directory or URI), for the run's logged input.

    Returns
    -------
    TrainingResult

    Raises
    ------
    InputError
        When no cutoff has a matured label (the message says how much more history is
        needed), or ``test_cutoff`` leaves no purged origin.
    """
    config = config or ChurnConfig()
    train_config = train_config or config.training
    step = progress or (lambda stage, done, total: None)
    source = tables if not isinstance(tables, Tables) else LocalSource(tables)
    mode = source.label_mode(config.labels.mode)
    horizon = config.labels.horizon_days
    config = replace(config, labels=replace(config.labels, mode=mode), training=train_config)
    economics = training_economics(config.serving)
    uri = configure_mlflow(tracking_uri)

    cutoffs, history_note = labelled_cutoffs(source, train_config, horizon)
    windows, left_out = windows_the_history_shows(config.features.windows, cutoffs, source.data_range()[0])
    if left_out:
        config = replace(config, features=replace(config.features, windows=windows))
        words = (f"trailing windows of {', '.join(f'{w} days' for w in left_out)} left out: no training cutoff has "
                 f"more history than that, so they would only repeat the lifetime figures")
        history_note = f"{history_note}; {words}" if history_note else words
    origins = backtest_origins(
        cutoffs, horizon_days=horizon, count=train_config.backtests, purge=train_config.purge,
        test_cutoff=pd.Timestamp(test_cutoff) if test_cutoff is not None else None,
    )  # fmt: skip
    if test_cutoff is not None and not origins:
        raise InputError(f"no backtest origin fits with test cutoff {pd.Timestamp(test_cutoff).date()}: "
                         "it needs a validation and a training cutoff before it (drop --test-cutoff to let "
                         "the run fall back to grouped cross-validation)")
    training_set = source.training_set(
        cutoffs=cutoffs, horizon_days=horizon, config=config,
        progress=lambda done, total: step("features", done, total),
    )
    rows = TrainingRows(training_set, train_config)

    def oracle(cutoff: pd.Timestamp) -> pd.Series | None:
        return oracle_probabilities(truth, cutoff, horizon, mode)

    fingerprint = source.fingerprint()
    # one MLflow run from tuning to registration: tuning trials are nested runs under it
    with mlflow.start_run(experiment_id=mlflow_log.ensure_experiment(experiment, uri)) as run:
        mlflow_log.log_churnlens_version()
        tuning = None
        if train_config.tune_trials:
            from churnlens.training.tune import study_name, study_storage, tune

            folds = tuning_folds(rows, origins, cutoffs, train_config)
            names = [str(o.validation_cutoff.date()) for o in origins] or ["grouped_cv"]
            tuning = tune(
                folds, train_config, trials=train_config.tune_trials, storage=study_storage(uri),
                name=study_name(experiment, str(fingerprint.get("hash", "")), horizon, train_config, names),
                progress=step,
            )  # fmt: skip
            train_config = replace(train_config, lgbm=tuning.params)
            config = replace(config, training=train_config)
            mlflow_log.log_tuning(tuning)
        if origins:
            evaluation = run_backtest(rows, origins, cutoffs, train_config, oracle=oracle, progress=step,
                                      economics=economics)
        else:
            evaluation = run_grouped_cv(rows, cutoffs, train_config, oracle=oracle, progress=step,
                                        economics=economics)
        metrics = evaluation.mean_metrics()

        step("refit", 0, 1)
        refit_cutoffs = tuple(cutoffs)
        on_cluster = rows.on_cluster(refit_cutoffs)
        refit_frame = rows.frame(refit_cutoffs)
        shipped_config = replace(train_config, lgbm=evaluation.recipe.params)
        clf, oof = fit_shipped_model(refit_frame, evaluation.recipe, shipped_config,
                                     distributed=rows.distributed if on_cluster else None,
                                     distributed_cutoffs=refit_cutoffs)
        step("refit", 1, 1)
        trained_through = refit_cutoffs[-1] + pd.Timedelta(days=horizon - 1)
        X_refit = refit_frame.drop(columns=["churned"])
        refit_rows = rows.count(refit_cutoffs)

        # scoring uses the BG/NBD parameters of the data's end (the default scoring cutoff), so a few
        # customers scored alone get the features the whole base would give them
        if config.features.btyd_params is None:
            _, data_end = source.data_range()
            params = source.btyd_params(data_end.floor("D") + pd.Timedelta(days=1))
            config = replace(config, features=replace(config.features, btyd_params=params))
        metadata = _metadata(
            clf, X_refit, shipped_config, config, mode, evaluation, metrics, model_name, source.table_names(),
            refit_cutoffs=refit_cutoffs, refit_rows=refit_rows, trained_through=trained_through, calibration=oof,
        )
        model = ChurnModel.from_parts(clf.booster_, clf.calibrator_, metadata, linear=clf.linear_)
        rows_logged = {"refit": refit_rows, "evaluation_train": evaluation.folds[-1].rows_early_stopping,
                       "evaluation_test": len(evaluation.folds[-1].X_test), "calibration": len(oof.y)}
        mlflow_log.log_config({"features": _jsonable(config.features), "labels": _jsonable(config.labels),
                               "training": train_config.to_dict(), "economics": _jsonable(economics)})
        mlflow_log.log_fingerprint(fingerprint)
        mlflow_log.log_training_input(refit_frame, digest=str(fingerprint.get("hash", "")), source=data_source)
        mlflow_log.log_evaluation(evaluation)
        mlflow.log_params({
            "evaluation": evaluation.kind,
            "evaluation.folds": ",".join(f.label for f in evaluation.folds),
            "refit.cutoffs": ",".join(str(c.date()) for c in refit_cutoffs),
            "refit.trained_through": str(trained_through.date()),
            "refit.trees_per_evaluated_rows": f"{evaluation.recipe.rounds} per {evaluation.recipe.rows}",
            "calibration.cutoffs": ",".join(str(c.date()) for c in oof.cutoffs),
            "label_mode": mode, "model.trees": clf.n_trees_, "model.leaves": shipped_config.lgbm.num_leaves,
            "model.features": len(clf.features_),
            "model.linear_base": "rfm" if clf.linear_ is not None else "none",
            "model.trained_on": "cluster (lightgbm.dask)" if on_cluster else "this process",
            "calibration.method": clf.calibrator_.method,
            "catalog_version": CATALOG_VERSION,
        })
        mlflow.set_tags({"evaluation": evaluation.kind, "trained_through": str(trained_through.date())})
        if history_note:
            mlflow.set_tag("history_note", history_note)
        mlflow.log_metrics({f"rows_{k}": v for k, v in rows_logged.items()})
        mlflow.log_metrics({f"calibration_cv_logloss_{k}": v for k, v in clf.calibration_scores_.items()})
        if validation_report is not None:
            mlflow.log_dict(validation_report, "validation_report.json")
        step("plots", 0, 1)
        _log_plots(model, clf, evaluation, X_refit)
        step("logging model", 0, 1)
        model_uri = mlflow_log.log_churn_model(model, evaluation.folds[-1].X_test.head(5))
        decision = mlflow_log.register_and_promote(
            model_uri, model_name,
            evidence=mlflow_log.ModelEvidence(
                trained_through=trained_through, evaluation=evaluation.kind,
                evaluation_auc=float(metrics.loc["model", "roc_auc"]),
                evaluation_folds=tuple(f.label for f in evaluation.folds),
            ),
            origins=[mlflow_log.OriginTest(f.test_cutoff, f.X_test, f.y_test, float(f.metrics.loc["model", "roc_auc"]),
                                           snapshot=_snapshot_at(source, f.test_cutoff))
                     for f in evaluation.folds if evaluation.kind == BACKTEST],
        )  # fmt: skip
        mlflow.set_tags({"registry.version": decision.version, "registry.alias": decision.alias})
    return TrainingResult(
        run_id=run.info.run_id, model_uri=model_uri, model_name=model_name, model_version=decision.version,
        alias=decision.alias, registry_reason=decision.reason, metrics=metrics, evaluation=evaluation,
        refit_cutoffs=refit_cutoffs, trained_through=trained_through, n_trees=clf.n_trees_,
        num_leaves=shipped_config.lgbm.num_leaves, tracking_uri=uri, label_mode=mode, rows=rows_logged,
        linear_base=clf.linear_ is not None, calibration=oof, history_note=history_note, tuning=tuning,
    )


def _jsonable(obj: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(obj)


def _metadata(
    clf: ChurnClassifier,
    X_train: pd.DataFrame,
    train_config: TrainConfig,
    config: ChurnConfig,
    mode: str,
    evaluation: Evaluation,
    metrics: pd.DataFrame,
    model_name: str,
    table_names: list[str],
    *,
    refit_cutoffs: tuple[pd.Timestamp, ...],
    refit_rows: int,
    trained_through: pd.Timestamp,
    calibration: OutOfFoldMargins,
) -> dict[str, Any]:
    """Everything serving needs besides the booster and calibrator, and what the model learnt from."""
    reference_frame = X_train.reset_index(drop=True).copy()
    reference_frame["churn_probability"] = clf.predict_proba(X_train)
    return {
        **clf.schema_metadata(),
        "model_name": model_name,
        "catalog_version": CATALOG_VERSION,
        "label_mode": mode,
        "horizon_days": config.labels.horizon_days,
        "feature_config": _jsonable(config.features),
        "tables": table_names,
        "trained_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "trained_through": str(trained_through.date()),
        "refit_cutoffs": [str(c.date()) for c in refit_cutoffs],
        "refit_rows": int(refit_rows),
        "train_cutoffs": [str(c.date()) for c in refit_cutoffs],
        "calibration_cutoffs": [str(c.date()) for c in calibration.cutoffs],
        "evaluation": evaluation.kind,
        "evaluation_folds": [f.label for f in evaluation.folds],
        "test_cutoff": str(evaluation.folds[-1].test_cutoff.date()),
        "test_metrics": {k: float(v) for k, v in metrics.loc["model"].items() if pd.notna(v)},
        "campaign": _jsonable(training_economics(config.serving)),
        "reference": reference_statistics(reference_frame),
        "trees": clf.n_trees_,
        "linear_base": clf.linear_.features if clf.linear_ is not None else None,
        "num_leaves": train_config.lgbm.num_leaves,
    }


def _log_plots(model: ChurnModel, clf: ChurnClassifier, evaluation: Evaluation, X_refit: pd.DataFrame) -> None:
    """Plots of the latest origin (or of all folds pooled, for grouped CV), and the shipped model's SHAP."""
    folds = evaluation.folds[-1:] if evaluation.kind == BACKTEST else evaluation.folds
    y_test = np.concatenate([f.y_test for f in folds])
    scores = {name: np.concatenate([f.scores[name] for f in folds]) for name in folds[0].scores}
    X_test = pd.concat([f.X_test for f in folds])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        plots.plot_roc(y_test, scores, out / "roc.png")
        plots.plot_pr(y_test, scores, out / "pr.png")
        plots.plot_calibration(y_test, scores["model"], out / "calibration.png")
        plots.plot_lift(y_test, scores, out / "lift_gain.png")
        importance = pd.Series(clf.booster_.feature_importance("gain"), index=clf.features_)
        plots.plot_importance(importance, out / "feature_importance.png")
        latest = X_refit[X_refit.index.get_level_values("cutoff") == X_refit.index.get_level_values("cutoff").max()]
        sample = (latest if len(latest) else X_test).sample(min(SHAP_PLOT_ROWS, len(latest) or len(X_test)),
                                                            random_state=0)
        contributions, prepared = model.contributions(sample), model.prepare(sample)
        plots.plot_shap_summary(contributions, prepared, out / "shap_summary.png",
                                title="SHAP summary — shipped model, latest cutoff")  # fmt: skip
        plots.plot_shap_dependences(contributions.iloc[:SHAP_DEPENDENCE_ROWS], prepared.iloc[:SHAP_DEPENDENCE_ROWS],
                                    out, top=SHAP_DEPENDENCE_FEATURES)  # fmt: skip
        mlflow.log_artifacts(str(out), "plots")
        importance.sort_values(ascending=False).rename("gain").to_csv(out / "feature_importance.csv")
        mlflow.log_artifact(str(out / "feature_importance.csv"))
