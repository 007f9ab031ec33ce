"""One training run end to end: training set -> split -> model + baselines -> MLflow -> registry."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from churnlens.config import ChurnConfig
from churnlens.data.tables import Tables
from churnlens.features import CATALOG_VERSION
from churnlens.model import ChurnModel
from churnlens.monitoring import reference_statistics
from churnlens.tracking import DEFAULT_EXPERIMENT, DEFAULT_MODEL_NAME, configure_mlflow
from churnlens.training import mlflow_log, plots
from churnlens.training.baselines import fit_baselines
from churnlens.training.config import TrainConfig
from churnlens.training.estimator import ChurnClassifier
from churnlens.training.metrics import evaluate
from churnlens.training.source import DistributedTrainingSet, LocalSource, TrainingSource
from churnlens.training.split import OutOfTimeSplit, out_of_time_split
from churnlens.training.tune import random_search

Progress = Callable[[str, int, int], None]

#: Rows of the SHAP summary plot (TreeSHAP costs ~0.4 ms per row).
SHAP_PLOT_ROWS = 4000


@dataclass
class TrainingResult:
    """What a training run produced and where it was logged."""

    run_id: str
    model_uri: str
    model_name: str
    model_version: str
    alias: str
    registry_reason: str
    metrics: pd.DataFrame
    split: OutOfTimeSplit
    n_trees: int
    num_leaves: int
    tracking_uri: str
    label_mode: str
    rows: dict[str, int]
    linear_base: bool = False


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


def _labels(frame: pd.DataFrame) -> np.ndarray:
    return frame["churned"].to_numpy(dtype=int)


def _features(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["churned"])


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
) -> TrainingResult:
    """Train, evaluate out of time, log to MLflow and register a churn model.

    Parameters
    ----------
    tables : Tables or TrainingSource
        Validated input tables, or a source that builds the training set elsewhere
        (``churnlens.engine.DaskSource``). When the source keeps the training rows on a
        cluster (a :class:`~churnlens.training.source.DistributedTrainingSet`), training
        cutoffs with more than ``train_config.distributed_min_rows`` rows train on the
        cluster (lightgbm.dask), fewer are collected and trained here; validation and test
        rows are collected here (a deterministic sample of whole customers above
        ``train_config.local_max_rows``), as is a sample of the training rows for the
        baselines, the linear base and the reference statistics.
    config : ChurnConfig, optional
        Feature and label settings (defaults if None).
    train_config : TrainConfig, optional
        Training settings; its ``horizon_days`` wins over ``config.labels``.
    tracking_uri : str, optional
        MLflow store; see :func:`churnlens.tracking.resolve_tracking_uri`.
    experiment, model_name : str
    test_cutoff : str or Timestamp, optional
        Test on this cutoff instead of the latest labelled one.
    truth : DataFrame, optional
        Simulator truth table; adds the oracle AUC and the model/oracle ratio.
    validation_report : dict, optional
        Logged as ``validation_report.json``.
    progress : callable(stage, done, total), optional

    Returns
    -------
    TrainingResult
    """
    config = config or ChurnConfig()
    train_config = train_config or TrainConfig(horizon_days=config.labels.horizon_days)
    step = progress or (lambda stage, done, total: None)
    source = tables if not isinstance(tables, Tables) else LocalSource(tables)
    mode = source.label_mode(config.labels.mode)
    config = replace(config, labels=replace(config.labels, horizon_days=train_config.horizon_days, mode=mode))
    uri = configure_mlflow(tracking_uri)

    cutoffs = source.cutoffs(
        horizon_days=train_config.horizon_days, step_days=train_config.step_days,
        min_history_days=train_config.min_history_days,
    )
    split = out_of_time_split(cutoffs, horizon_days=train_config.horizon_days, purge=train_config.purge,
                              test_cutoff=pd.Timestamp(test_cutoff) if test_cutoff is not None else None)
    used = sorted({*split.train_cutoffs, split.validation_cutoff, split.test_cutoff})
    training_set = source.training_set(
        cutoffs=used, horizon_days=train_config.horizon_days, config=config,
        progress=lambda done, total: step("features", done, total),
    )
    distributed: DistributedTrainingSet | None = None
    if isinstance(training_set, DistributedTrainingSet):
        train, validation, test, distributed = _collect(training_set, split, train_config)
    else:
        train, validation, test = (split.part(training_set, p) for p in ("train", "validation", "test"))
    y_train, y_val, y_test = _labels(train), _labels(validation), _labels(test)
    X_train, X_val, X_test = _features(train), _features(validation), _features(test)

    trials = None
    if train_config.tune_trials:
        step("tuning", 0, train_config.tune_trials + 1)
        best, trials = random_search(X_train, y_train, X_val, y_val, train_config)
        train_config = replace(train_config, lgbm=best)
    step("training", 0, 1)
    clf = ChurnClassifier(train_config.lgbm, seed=train_config.seed, threads=train_config.threads,
                          class_weight=train_config.class_weight, calibration=train_config.calibration,
                          linear_base=train_config.linear_base)
    if distributed is not None:
        clf.fit_distributed(distributed, split.train_cutoffs, X_train, y_train, X_val, y_val)
    else:
        clf.fit(X_train, y_train, X_val, y_val)
    step("training", 1, 1)

    step("evaluation", 0, 1)
    p_test = clf.predict_proba(X_test)
    scores = {"model": p_test}
    for name, baseline in fit_baselines(X_train, y_train).items():
        scores[name] = baseline.predict_proba(X_test)
    metrics = pd.DataFrame({name: evaluate(y_test, s, train_config.campaign) for name, s in scores.items()}).T
    oracle = oracle_probabilities(truth, split.test_cutoff, train_config.horizon_days, mode)
    test_ids = X_test.index.get_level_values("customer_id").astype("string")
    if oracle is not None:
        aligned = oracle.reindex(test_ids)
        known = aligned.notna().to_numpy()
        oracle_auc = float(roc_auc_score(y_test[known], aligned.to_numpy()[known]))
        metrics.loc["oracle", "roc_auc"] = oracle_auc
        metrics.loc["model", "oracle_ratio"] = metrics.loc["model", "roc_auc"] / oracle_auc
        metrics.loc["oracle", "n"] = float(known.sum())

    metadata = _metadata(clf, X_train, train_config, config, mode, split, metrics, model_name, source.table_names())
    model = ChurnModel.from_parts(clf.booster_, clf.calibrator_, metadata, linear=clf.linear_)

    rows = {"train": len(X_train), "validation": len(X_val), "test": len(X_test)}
    if distributed is not None:
        rows["train"] = distributed.rows(split.train_cutoffs)
    with mlflow.start_run(experiment_id=mlflow_log.ensure_experiment(experiment, uri)) as run:
        mlflow_log.log_config({"features": _jsonable(config.features), "labels": _jsonable(config.labels),
                               "training": train_config.to_dict()})
        mlflow_log.log_fingerprint(source.fingerprint())
        mlflow.log_params({
            "split.test_cutoff": str(split.test_cutoff.date()),
            "split.validation_cutoff": str(split.validation_cutoff.date()),
            "split.train_cutoffs": ",".join(str(c.date()) for c in split.train_cutoffs),
            "label_mode": mode, "model.trees": clf.n_trees_, "model.leaves": train_config.lgbm.num_leaves,
            "model.features": len(clf.features_),
            "model.linear_base": "rfm" if clf.linear_ is not None else "none",
            "model.trained_on": "cluster (lightgbm.dask)" if distributed is not None else "this process",
            "calibration.method": clf.calibrator_.method,
            "catalog_version": CATALOG_VERSION,
        })
        mlflow.log_metrics({f"rows_{k}": v for k, v in rows.items()})
        if distributed is not None:
            mlflow.log_metrics({"rows_train_sample": len(X_train), "rows_validation_collected": len(X_val),
                                "rows_test_collected": len(X_test)})
        mlflow.log_metrics({f"calibration_cv_logloss_{k}": v for k, v in clf.calibration_scores_.items()})
        mlflow_log.log_metric_table(metrics)
        if validation_report is not None:
            mlflow.log_dict(validation_report, "validation_report.json")
        if trials is not None:
            mlflow.log_table(trials, "tuning_trials.json")
        step("plots", 0, 1)
        _log_plots(model, clf, X_train, X_test, y_test, scores, p_test)
        step("logging model", 0, 1)
        model_uri = mlflow_log.log_churn_model(model, X_test.head(5))
        decision = mlflow_log.register_and_promote(
            model_uri, model_name, test_auc=float(metrics.loc["model", "roc_auc"]),
            test_cutoff=str(split.test_cutoff.date()), test_frame=X_test, y_test=y_test,
        )
        mlflow.set_tags({"registry.version": decision.version, "registry.alias": decision.alias})
    return TrainingResult(
        run_id=run.info.run_id, model_uri=model_uri, model_name=model_name, model_version=decision.version,
        alias=decision.alias, registry_reason=decision.reason, metrics=metrics, split=split,
        n_trees=clf.n_trees_, num_leaves=train_config.lgbm.num_leaves, tracking_uri=uri, label_mode=mode, rows=rows,
        linear_base=clf.linear_ is not None,
    )


def _collect(
    training_set: DistributedTrainingSet, split: OutOfTimeSplit, train_config: TrainConfig
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, DistributedTrainingSet | None]:
    """Rows of a cluster-held training set brought here: train (all of it when small enough to
    train here, else a sample), validation and test (samples above ``local_max_rows``).

    The last item is the set itself when LightGBM is to train on the cluster, else None.
    """
    cap = train_config.local_max_rows
    validation = training_set.collect([split.validation_cutoff], max_rows=cap)
    test = training_set.collect([split.test_cutoff], max_rows=cap)
    n_train = training_set.rows(split.train_cutoffs)
    if n_train > train_config.distributed_min_rows:
        return training_set.collect(split.train_cutoffs, max_rows=cap), validation, test, training_set
    return training_set.collect(split.train_cutoffs), validation, test, None


def _jsonable(obj: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(obj)


def _metadata(
    clf: ChurnClassifier,
    X_train: pd.DataFrame,
    train_config: TrainConfig,
    config: ChurnConfig,
    mode: str,
    split: OutOfTimeSplit,
    metrics: pd.DataFrame,
    model_name: str,
    table_names: list[str],
) -> dict[str, Any]:
    """Everything serving needs besides the booster and calibrator."""
    reference_frame = X_train.reset_index(drop=True).copy()
    reference_frame["churn_probability"] = clf.predict_proba(X_train)
    return {
        **clf.schema_metadata(),
        "model_name": model_name,
        "catalog_version": CATALOG_VERSION,
        "label_mode": mode,
        "horizon_days": train_config.horizon_days,
        "feature_config": _jsonable(config.features),
        "tables": table_names,
        "trained_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "test_cutoff": str(split.test_cutoff.date()),
        "validation_cutoff": str(split.validation_cutoff.date()),
        "train_cutoffs": [str(c.date()) for c in split.train_cutoffs],
        "test_metrics": {k: float(v) for k, v in metrics.loc["model"].items() if pd.notna(v)},
        "campaign": _jsonable(train_config.campaign),
        "reference": reference_statistics(reference_frame),
        "trees": clf.n_trees_,
        "linear_base": clf.linear_.features if clf.linear_ is not None else None,
        "linear_base_validation_scores": clf.linear_base_scores_,
        "num_leaves": train_config.lgbm.num_leaves,
    }


def _log_plots(
    model: ChurnModel,
    clf: ChurnClassifier,
    X_train: pd.DataFrame,
    X_test: pd.DataFrame,
    y_test: np.ndarray,
    scores: dict[str, np.ndarray],
    p_test: np.ndarray,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        raw = 1.0 / (1.0 + np.exp(-model.raw_margin(X_test)))
        plots.plot_roc(y_test, scores, out / "roc.png")
        plots.plot_pr(y_test, scores, out / "pr.png")
        plots.plot_calibration(y_test, p_test, out / "calibration.png", raw=raw)
        plots.plot_lift(y_test, scores, out / "lift_gain.png")
        importance = pd.Series(clf.booster_.feature_importance("gain"), index=clf.features_)
        plots.plot_importance(importance, out / "feature_importance.png")
        sample = X_test.sample(min(SHAP_PLOT_ROWS, len(X_test)), random_state=0)
        plots.plot_shap_summary(model.contributions(sample), model.prepare(sample), out / "shap_summary.png")
        mlflow.log_artifacts(str(out), "plots")
        importance.sort_values(ascending=False).rename("gain").to_csv(out / "feature_importance.csv")
        mlflow.log_artifact(str(out / "feature_importance.csv"))
