"""LightGBM hyper-parameters tuned with Optuna (TPE sampler, median pruning) on the backtest.

A trial trains LightGBM with its parameters at every tuning fold, i.e. at each backtest origin
on the origin's training cutoffs, early-stopped on its validation cutoff, and is scored by
the validation ROC AUC, averaged over the folds (newest origin first; the running mean is
reported after each fold so the median pruner can stop a poor trial early). The test
cutoffs of the origins are never looked at: they stay for the evaluation that follows.

Each trial is a nested MLflow run under the active (training) run: its parameters, its
validation AUC per fold (``step`` = fold), its mean and its state (complete, pruned). The
study is stored in an Optuna RDB storage (sqlite, next to the MLflow store by default), so an
interrupted or repeated ``train --tune N`` resumes it: N more trials, the best over all.
The configured parameters are the first trial of a new study, so tuning never picks
parameters that validate worse than them. Needs the ``tune`` extra (``pip install 'churnlens[tune]'``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from churnlens.config import LightGBMParams, TrainConfig
from churnlens.errors import InputError
from churnlens.training.estimator import ChurnClassifier

#: File name of the study storage beside a sqlite MLflow store.
STUDY_FILE = "optuna.db"
#: The parameters searched: name -> (low, high, log scale); integers where LightGBM wants them.
SEARCH_SPACE: dict[str, tuple[float, float, bool]] = {
    "num_leaves": (7, 63, True),
    "learning_rate": (0.02, 0.3, True),
    "min_child_samples": (10, 300, True),
    "feature_fraction": (0.5, 1.0, False),
    "bagging_fraction": (0.5, 1.0, False),
    "lambda_l2": (1e-3, 10.0, True),
}
_INTEGERS = {"num_leaves", "min_child_samples"}

#: One tuning fold: (training rows, validation rows), each with the ``churned`` label column.
Fold = tuple[pd.DataFrame, pd.DataFrame]


def require_optuna() -> Any:
    """The optuna module, or an InputError saying how to install it."""
    try:
        import optuna
    except ImportError:  # pragma: no cover - depends on the environment
        raise InputError("--tune needs Optuna: pip install 'churnlens[tune]'") from None
    return optuna


@dataclass(frozen=True)
class TuningResult:
    """What a tuning session found.

    Attributes
    ----------
    params : LightGBMParams
        The best trial's parameters (over every trial of the study, earlier sessions included).
    best_value : float
        Its mean validation ROC AUC.
    best_trial : int
    trials : DataFrame
        One row per trial of the study: number, state, value, parameters.
    study_name, storage : str
    new_trials, pruned : int
        Trials run (and pruned) in this session.
    """

    params: LightGBMParams
    best_value: float
    best_trial: int
    trials: pd.DataFrame
    study_name: str
    storage: str
    new_trials: int
    pruned: int


def study_storage(tracking_uri: str) -> str:
    """Where the study lives: ``optuna.db`` beside a sqlite MLflow store, else in the working directory."""
    if tracking_uri.startswith("sqlite:///"):
        database = Path(tracking_uri[len("sqlite:///") :])
        return f"sqlite:///{database.parent / STUDY_FILE}"
    return f"sqlite:///{Path.cwd() / STUDY_FILE}"


def study_name(experiment: str, data_hash: str, horizon_days: int, config: TrainConfig, folds: Sequence[str]) -> str:
    """A study per experiment, data, label horizon and tuning folds: the same run resumes it."""
    key = f"{data_hash}|{horizon_days}|{config.step_days}|{config.class_weight}|{','.join(folds)}"
    return f"{experiment}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def suggest(trial: Any, base: LightGBMParams) -> LightGBMParams:
    """The trial's parameters: :data:`SEARCH_SPACE` drawn, the rest as configured."""
    drawn: dict[str, Any] = {}
    for name, (low, high, log) in SEARCH_SPACE.items():
        if name in _INTEGERS:
            drawn[name] = trial.suggest_int(name, int(low), int(high), log=log)
        else:
            drawn[name] = trial.suggest_float(name, low, high, log=log)
    return replace(base, **drawn)


def _validation_auc(params: LightGBMParams, fold: Fold, config: TrainConfig) -> float:
    train, validation = fold
    clf = ChurnClassifier(params, seed=config.seed, threads=config.threads, class_weight=config.class_weight,
                          calibration="none", linear_base=config.linear_base)  # fmt: skip
    clf.fit(train.drop(columns=["churned"]), train["churned"].to_numpy(dtype=int),
            validation.drop(columns=["churned"]), validation["churned"].to_numpy(dtype=int))  # fmt: skip
    y_val = validation["churned"].to_numpy(dtype=int)
    return float(roc_auc_score(y_val, clf.predict_proba(validation.drop(columns=["churned"]))))


def tune(
    folds: Sequence[Fold],
    config: TrainConfig,
    *,
    trials: int,
    storage: str,
    name: str,
    log_runs: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> TuningResult:
    """Run ``trials`` more trials of the study ``name`` in ``storage``; return the best parameters.

    Parameters
    ----------
    folds : sequence of (train, validation) frames
        Tuning folds, most informative first (the newest backtest origin); never test rows.
    config : TrainConfig
        Seed, threads, class weight, linear base, and the parameters trial 0 tries.
    trials : int
        Trials to run in this session (> 0).
    storage : str
        Optuna RDB storage URL (``sqlite:///.../optuna.db``).
    name : str
        Study name; an existing study of that name is resumed.
    log_runs : bool, default True
        Log each trial as a nested MLflow run under the active run (when one is active).
    progress : callable(stage, done, total), optional
    """
    optuna = require_optuna()
    import mlflow

    if trials < 1:
        raise InputError(f"--tune must be >= 1 to tune, got {trials}")
    if not folds:
        raise InputError("tuning needs at least one fold with training and validation rows")
    step = progress or (lambda stage, done, total: None)
    sampler = optuna.samplers.TPESampler(seed=config.seed, n_startup_trials=min(5, max(trials // 2, 1)))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", sampler=sampler,
                                pruner=pruner, load_if_exists=True)  # fmt: skip
    if not study.trials:  # a new study tries the configured parameters first
        study.enqueue_trial({k: getattr(config.lgbm, k) for k in SEARCH_SPACE})
    parent = mlflow.active_run() if log_runs else None
    nested = parent is not None
    done = {"n": 0, "pruned": 0}

    def objective(trial: Any) -> float:
        params = suggest(trial, config.lgbm)
        run = (
            mlflow.start_run(run_name=f"trial {trial.number}", nested=True, experiment_id=parent.info.experiment_id)
            if nested
            else None
        )
        try:
            if run is not None:
                mlflow.log_params({k: getattr(params, k) for k in SEARCH_SPACE})
                mlflow.set_tags({"optuna.study": name, "optuna.trial": str(trial.number)})
            aucs: list[float] = []
            for i, fold in enumerate(folds):
                aucs.append(_validation_auc(params, fold, config))
                if run is not None:
                    mlflow.log_metric("validation_roc_auc", aucs[-1], step=i)
                trial.report(float(np.mean(aucs)), i)
                if trial.should_prune():
                    done["pruned"] += 1
                    if run is not None:
                        mlflow.set_tag("optuna.state", "pruned")
                    raise optuna.TrialPruned(f"pruned after {i + 1} fold(s)")
            value = float(np.mean(aucs))
            if run is not None:
                mlflow.log_metric("mean_validation_roc_auc", value)
                mlflow.set_tag("optuna.state", "complete")
            return value
        finally:
            done["n"] += 1
            step("tuning", done["n"], trials)
            if run is not None:
                mlflow.end_run()

    step("tuning", 0, trials)
    study.optimize(objective, n_trials=trials, catch=())
    best = study.best_trial
    frame = study.trials_dataframe(attrs=("number", "state", "value", "params"))
    frame.columns = [c.removeprefix("params_") for c in frame.columns]
    return TuningResult(
        params=replace(config.lgbm, **best.params), best_value=float(best.value), best_trial=best.number,
        trials=frame, study_name=name, storage=storage, new_trials=done["n"], pruned=done["pruned"],
    )  # fmt: skip
