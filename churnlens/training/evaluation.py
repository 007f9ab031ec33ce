"""The evaluate stage of a run: a purged rolling-origin backtest, or customer-grouped CV on short histories.

Each backtest origin is a test cutoff with its own purged validation and training cutoffs
(:func:`~churnlens.training.split.backtest_origins`). At an origin the run is replayed as if
the data ended at the test cutoff:

1. LightGBM is trained on the origin's training cutoffs and early-stopped (and calibrated) on
   its validation cutoff: that gives the number of trees (with the parameters ``train --tune``
   chose beforehand on the origins' validation cutoffs, :mod:`churnlens.training.tune`). This
   model is reported as ``no_refit``;
2. the model that would ship at that date is refit on every cutoff matured by the test
   cutoff, validation included, with those trees scaled to its rows and a calibrator fitted
   out of fold (:func:`~churnlens.training.refit.fit_shipped_model`). It is reported as
   ``model``: the figure that describes what ``churnlens train`` registers;
3. the baselines are fitted on the same rows as (2), and all are scored on the same test
   customers.

No label window of any training row overlaps the test window. When not even one purged
origin fits (a short history), the run is evaluated by customer-grouped K-fold
cross-validation: each fold's customers at the latest matured cutoff are test rows, the
next fold's customers early-stop and calibrate, the others train; no customer is in two of
those roles. The test labels then share their period with the training labels: that is not out of
time, and the run says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from churnlens.config import Economics, TrainConfig
from churnlens.errors import InputError
from churnlens.training.baselines import fit_baselines
from churnlens.training.estimator import ChurnClassifier
from churnlens.training.metrics import customer_values_of, evaluate
from churnlens.training.refit import ShippingRecipe, cutoff_weights, fit_shipped_model, scaled_rounds
from churnlens.training.source import DistributedTrainingSet
from churnlens.training.split import OutOfTimeSplit, customer_folds, fold_of_rows

BACKTEST, GROUPED_CV = "backtest", "grouped_cv"
#: What each evaluation is, in a sentence for people.
EVALUATION_WORDS = {
    BACKTEST: "rolling-origin backtest, out of time (no training label window overlaps a test window)",
    GROUPED_CV: "customer-grouped cross-validation at the latest matured cutoff: NOT out of time (test and "
    "training labels share the same period; no customer is in both) - the history is too short for a backtest",
}
#: Metrics shown first in tables and compared in the registry.
KEY_METRICS: tuple[str, ...] = ("roc_auc", "pr_auc", "brier", "ece", "top_decile_lift", "n")

Oracle = Callable[[pd.Timestamp], pd.Series | None]
Progress = Callable[[str, int, int], None]


@dataclass
class FoldResult:
    """One backtest origin or cross-validation fold.

    Attributes
    ----------
    label : str
        The test cutoff (backtest) or ``fold k`` (grouped CV).
    test_cutoff : Timestamp
    metrics : DataFrame
        Scorers (``model``, ``no_refit``, ``recency``, ``rfm_logistic``, maybe ``oracle``) x metrics.
    rounds : int
        Trees early stopping kept (step 1).
    rows_early_stopping, rows_refit : int
        Training rows of step 1 and of the replayed refit.
    refit_rounds : int
        Trees of the replayed refit.
    train_cutoffs : tuple of Timestamp
        Cutoffs of the replayed refit.
    validation_cutoff : Timestamp or None
        Early-stopping cutoff (backtest).
    X_test, y_test : DataFrame, ndarray
        The test rows (kept for the registry's head-to-head).
    scores : dict
        Each scorer's probabilities on the test rows.
    """

    label: str
    test_cutoff: pd.Timestamp
    metrics: pd.DataFrame
    rounds: int
    rows_early_stopping: int
    rows_refit: int
    refit_rounds: int
    train_cutoffs: tuple[pd.Timestamp, ...]
    validation_cutoff: pd.Timestamp | None
    linear_base: str
    X_test: pd.DataFrame
    y_test: np.ndarray
    scores: dict[str, np.ndarray]


@dataclass
class Evaluation:
    """What the evaluate stage measured and decided.

    Attributes
    ----------
    kind : {"backtest", "grouped_cv"}
    folds : list of FoldResult
        Oldest origin first (backtest) or fold order.
    recipe : ShippingRecipe
        Parameters, linear base and trees (per rows) the refit uses.
    """

    kind: str
    folds: list[FoldResult]
    recipe: ShippingRecipe

    def summary(self) -> pd.DataFrame:
        """Mean and spread (sample standard deviation; NaN for one fold) per scorer and metric.

        Returns
        -------
        DataFrame
            Index scorer; columns MultiIndex (metric, ``mean`` | ``std``).
        """
        stacked = pd.concat({f.label: f.metrics for f in self.folds}, names=["fold", "scorer"])
        grouped = stacked.groupby(level="scorer", sort=False)
        mean, std = grouped.mean(), grouped.std(ddof=1)
        out = pd.concat({"mean": mean, "std": std}, axis=1).swaplevel(axis=1)
        return out[[c for m in mean.columns for c in ((m, "mean"), (m, "std"))]]

    def mean_metrics(self) -> pd.DataFrame:
        """Scorers x metrics, averaged over the folds."""
        return self.summary().xs("mean", axis=1, level=1)

    def words(self) -> str:
        """What this evaluation is, in a sentence."""
        return EVALUATION_WORDS[self.kind]


class TrainingRows:
    """The training set's rows by cutoff: a frame in this process, or rows kept on a cluster.

    With a :class:`DistributedTrainingSet`, :meth:`frame` collects rows (a sample of whole
    customers above ``local_max_rows``) and :meth:`on_cluster` says when a fit should grow
    its trees on the cluster instead (more than ``distributed_min_rows`` rows).
    """

    def __init__(self, data: pd.DataFrame | DistributedTrainingSet, config: TrainConfig) -> None:
        self.data, self.config = data, config
        self.distributed = data if isinstance(data, DistributedTrainingSet) else None

    def count(self, cutoffs: Sequence[pd.Timestamp]) -> int:
        if self.distributed is not None:
            return self.distributed.rows(cutoffs)
        return int(np.asarray(self.data.index.get_level_values("cutoff").isin(list(cutoffs))).sum())

    def on_cluster(self, cutoffs: Sequence[pd.Timestamp]) -> bool:
        return self.distributed is not None and self.count(cutoffs) > self.config.distributed_min_rows

    def frame(self, cutoffs: Sequence[pd.Timestamp]) -> pd.DataFrame:
        """The rows of ``cutoffs`` here (all of them, or a sample when on a cluster and large)."""
        if self.distributed is not None:
            cap = self.config.local_max_rows if self.on_cluster(cutoffs) or len(cutoffs) == 1 else None
            return self.distributed.collect(list(cutoffs), max_rows=cap)
        cut = self.data.index.get_level_values("cutoff")
        return self.data[np.asarray(cut.isin(list(cutoffs)))]


def _xy(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    return frame.drop(columns=["churned"]), frame["churned"].to_numpy(dtype=int)


def _scores_table(
    y: np.ndarray, scores: dict[str, np.ndarray], economics: Economics, oracle: pd.Series | None, X: pd.DataFrame
) -> pd.DataFrame:
    values = customer_values_of(X)
    ids = X.index.get_level_values("customer_id")
    metrics = pd.DataFrame({name: evaluate(y, s, economics, values) for name, s in scores.items()}).T
    if oracle is not None:
        aligned = oracle.reindex(ids.astype("string"))
        known = aligned.notna().to_numpy()
        if known.any() and len(np.unique(y[known])) == 2:
            oracle_auc = float(roc_auc_score(y[known], aligned.to_numpy()[known]))
            metrics.loc["oracle", "roc_auc"] = oracle_auc
            metrics.loc["oracle", "n"] = float(known.sum())
            metrics.loc["model", "oracle_ratio"] = metrics.loc["model", "roc_auc"] / oracle_auc
    return metrics


def _early_stopped(
    rows: TrainingRows,
    train_cutoffs: Sequence[pd.Timestamp],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    config: TrainConfig,
) -> ChurnClassifier:
    """Step 1: LightGBM early-stopped and calibrated on the validation rows."""
    clf = ChurnClassifier(config.lgbm, seed=config.seed, threads=config.threads, class_weight=config.class_weight,
                          calibration=config.calibration, linear_base=config.linear_base)
    X, y = _xy(train)
    X_val, y_val = _xy(validation)
    if rows.on_cluster(train_cutoffs):
        if config.recent_weight_half_life_days:
            raise InputError("row weights (training.recent_weight_half_life_days) are not supported when "
                             "LightGBM trains on the cluster; raise training.distributed_min_rows")
        return clf.fit_distributed(rows.distributed, train_cutoffs, X, y, X_val, y_val)
    return clf.fit(X, y, X_val, y_val, sample_weight=cutoff_weights(train, config.recent_weight_half_life_days))


def _replay(
    rows: TrainingRows,
    early: ChurnClassifier,
    rows_early: int,
    refit_cutoffs: Sequence[pd.Timestamp],
    refit_frame: pd.DataFrame,
    test: pd.DataFrame,
    config: TrainConfig,
) -> tuple[dict[str, np.ndarray], int]:
    """Steps 2 and 3 at one origin or fold: the shipped model's recipe replayed, and the baselines."""
    recipe = ShippingRecipe(config.lgbm, early.linear_kind_, early.n_trees_, rows_early)
    on_cluster = rows.on_cluster(refit_cutoffs)
    model, _ = fit_shipped_model(refit_frame, recipe, config, distributed=rows.distributed if on_cluster else None,
                                 distributed_cutoffs=refit_cutoffs)
    X_test, _ = _xy(test)
    scores = {"model": model.predict_proba(X_test), "no_refit": early.predict_proba(X_test)}
    X_ref, y_ref = _xy(refit_frame)
    weights = cutoff_weights(refit_frame, config.recent_weight_half_life_days)
    for name, baseline in fit_baselines(X_ref, y_ref, weights).items():
        scores[name] = baseline.predict_proba(X_test)
    return scores, model.shipped_rounds_


def tuning_folds(
    rows: TrainingRows, origins: list[OutOfTimeSplit], cutoffs: Sequence[pd.Timestamp], config: TrainConfig
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """The (training, validation) rows hyper-parameters are tuned on, newest first; never test rows.

    With backtest origins: each origin's training cutoffs and its validation cutoff. Without
    (grouped cross-validation): each fold's training and validation customers, as
    :func:`grouped_cv_plan` assigns them (the fold's test customers are left out).
    """
    if origins:
        return [(rows.frame(o.train_cutoffs), rows.frame([o.validation_cutoff])) for o in reversed(origins)]
    frame = rows.frame(list(cutoffs)) if rows.distributed is None else rows.distributed.collect(
        list(cutoffs), max_rows=config.local_max_rows)
    plans = grouped_cv_plan(frame, folds=config.cv_folds, seed=config.seed)
    return [(frame[p.train], frame[p.validation]) for p in plans]


def _recipe(folds: list[FoldResult], config: TrainConfig) -> ShippingRecipe:
    """The refit's recipe: the folds' trees brought to the last fold's rows, their median."""
    reference = folds[-1].rows_early_stopping
    normalised = [scaled_rounds(f.rounds, f.rows_early_stopping, reference, max_rounds=config.lgbm.max_rounds)
                  for f in folds]
    linear = folds[-1].linear_base  # the most recent origin's choice (they agree unless linear_base = "auto")
    return ShippingRecipe(config.lgbm, linear, int(round(float(np.median(normalised)))), reference)


def run_backtest(
    rows: TrainingRows,
    origins: list[OutOfTimeSplit],
    cutoffs: Sequence[pd.Timestamp],
    config: TrainConfig,
    *,
    oracle: Oracle | None = None,
    progress: Progress | None = None,
    economics: Economics = Economics(),
) -> Evaluation:
    """Evaluate at each backtest origin (oldest first); see the module docstring.

    Parameters
    ----------
    rows : TrainingRows
        The training set; it must hold every cutoff of the origins.
    origins : list of OutOfTimeSplit
    cutoffs : sequence of Timestamp
        All labelled cutoffs (the replayed refit at an origin uses those up to its validation cutoff).
    config : TrainConfig
    oracle : callable(cutoff) -> Series or None, optional
        The simulator's true probabilities at a cutoff.
    progress : callable(stage, done, total), optional
    economics : Economics, optional
        Prices the profit metrics (``[serving]`` cost_per_contact, save_rate, value_per_save).
    """
    step = progress or (lambda stage, done, total: None)
    folds = []
    for i, split in enumerate(origins):
        step("backtest", i, len(origins))
        train = rows.frame(split.train_cutoffs)
        validation = rows.frame([split.validation_cutoff])
        test = rows.frame([split.test_cutoff])
        early = _early_stopped(rows, split.train_cutoffs, train, validation, config)
        del train
        rows_early = rows.count(split.train_cutoffs)
        refit_cutoffs = tuple(sorted(c for c in cutoffs if pd.Timestamp(c) <= split.validation_cutoff))
        refit_frame = rows.frame(refit_cutoffs)
        scores, refit_rounds = _replay(rows, early, rows_early, refit_cutoffs, refit_frame, test, config)
        X_test, y_test = _xy(test)
        truth = oracle(split.test_cutoff) if oracle is not None else None
        folds.append(FoldResult(
            label=str(split.test_cutoff.date()), test_cutoff=split.test_cutoff,
            metrics=_scores_table(y_test, scores, economics, truth, X_test), rounds=early.n_trees_,
            rows_early_stopping=rows_early, rows_refit=rows.count(refit_cutoffs), refit_rounds=refit_rounds,
            train_cutoffs=refit_cutoffs, validation_cutoff=split.validation_cutoff, linear_base=early.linear_kind_,
            X_test=X_test, y_test=y_test, scores=scores,
        ))  # fmt: skip
    step("backtest", len(origins), len(origins))
    return Evaluation(BACKTEST, folds, _recipe(folds, config))


@dataclass(frozen=True)
class FoldPlan:
    """Which rows play which role in one grouped-CV fold (boolean masks over the training set).

    ``train`` rows early-stop against ``validation``; the replayed refit uses ``refit``
    (``train`` and ``validation``); ``test`` is scored. No customer of ``test`` is in any other.
    """

    fold: int
    train: np.ndarray
    validation: np.ndarray
    refit: np.ndarray
    test: np.ndarray


def grouped_cv_plan(frame: pd.DataFrame, *, folds: int, seed: int) -> list[FoldPlan]:
    """Customer-grouped folds over a training set: test rows at its latest cutoff.

    Fold ``k`` tests the customers of fold k at the latest cutoff, early-stops and calibrates
    on those of fold k + 1 (mod folds) at every cutoff (one cutoff of one fold is too few
    churners to stop on), and trains on the other customers at every cutoff.
    """
    if folds < 3:
        raise InputError(f"grouped cross-validation needs at least 3 folds (test, validation, training), got {folds}")
    fold = fold_of_rows(frame, customer_folds(frame.index.get_level_values("customer_id"), folds=folds, seed=seed))
    cutoffs = frame.index.get_level_values("cutoff")
    latest = np.asarray(cutoffs == cutoffs.max())
    plans = []
    for k in range(folds):
        nxt = (k + 1) % folds
        plans.append(FoldPlan(
            fold=k, train=(fold != k) & (fold != nxt), validation=fold == nxt,
            refit=fold != k, test=latest & (fold == k),
        ))  # fmt: skip
    return plans


def run_grouped_cv(
    rows: TrainingRows,
    cutoffs: Sequence[pd.Timestamp],
    config: TrainConfig,
    *,
    oracle: Oracle | None = None,
    progress: Progress | None = None,
    economics: Economics = Economics(),
) -> Evaluation:
    """Customer-grouped K-fold cross-validation over ``cutoffs`` (``config.cv_folds`` folds).

    Used when no purged backtest origin fits. Each fold replays the run as a backtest origin
    does (early stopping, the shipped model's refit, baselines), with customers instead of
    time keeping the roles apart (:func:`grouped_cv_plan`). With a cluster-held training set
    the rows are collected here (a sample of whole customers above ``local_max_rows``).
    """
    step = progress or (lambda stage, done, total: None)
    frame = rows.frame(list(cutoffs)) if rows.distributed is None else rows.distributed.collect(
        list(cutoffs), max_rows=config.local_max_rows)
    local = TrainingRows(frame, config)
    plans = grouped_cv_plan(frame, folds=config.cv_folds, seed=config.seed)
    latest = frame.index.get_level_values("cutoff").max()
    truth = oracle(latest) if oracle is not None else None
    folds = []
    for plan in plans:
        step("cross-validation", plan.fold, len(plans))
        train = frame[plan.train]
        early = _early_stopped(local, [], train, frame[plan.validation], config)
        refit_frame, test = frame[plan.refit], frame[plan.test]
        scores, refit_rounds = _replay(local, early, len(train), [], refit_frame, test, config)
        X_test, y_test = _xy(test)
        folds.append(FoldResult(
            label=f"fold {plan.fold + 1}", test_cutoff=latest,
            metrics=_scores_table(y_test, scores, economics, truth, X_test),
            rounds=early.n_trees_, rows_early_stopping=len(train), rows_refit=len(refit_frame),
            refit_rounds=refit_rounds, train_cutoffs=tuple(sorted(pd.Timestamp(c) for c in cutoffs)),
            validation_cutoff=None, linear_base=early.linear_kind_, X_test=X_test, y_test=y_test, scores=scores,
        ))  # fmt: skip
    step("cross-validation", len(plans), len(plans))
    return Evaluation(GROUPED_CV, folds, _recipe(folds, config))


def per_fold_metrics(evaluation: Evaluation) -> dict[str, Any]:
    """MLflow-ready per-fold metrics: ``{name: [(step, value), ...]}`` with names
    ``<kind>_<scorer>_<metric>`` and step = fold number (oldest origin 0)."""
    out: dict[str, list[tuple[int, float]]] = {}
    for i, fold in enumerate(evaluation.folds):
        for scorer, row in fold.metrics.iterrows():
            for metric, value in row.items():
                if pd.notna(value):
                    out.setdefault(f"{evaluation.kind}_{scorer}_{metric}", []).append((i, float(value)))
    return out
