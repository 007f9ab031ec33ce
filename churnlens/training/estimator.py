"""The churn classifier: LightGBM with out-of-time early stopping and calibration."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from churnlens.config import LightGBMParams, TrainConfig
from churnlens.errors import InputError
from churnlens.model import Calibrator, LinearBase, model_matrix, prepare_features
from churnlens.training.baselines import LogisticBaseline, rfm_columns
from churnlens.training.calibration import choose_calibrator

if TYPE_CHECKING:
    from churnlens.training.source import DistributedTrainingSet


def scale_pos_weight(y: np.ndarray, mode: str) -> float:
    """Weight of churners: sqrt(neg/pos) when they are under 20% of rows and mode is auto."""
    pos = float(np.sum(y))
    neg = float(len(y) - pos)
    if mode == "none" or pos == 0 or pos / len(y) >= 0.2:
        return 1.0
    return float(np.sqrt(neg / pos))


def feature_schema(frame: pd.DataFrame) -> tuple[list[str], dict[str, list[str]]]:
    """Feature names in order and the levels of each categorical feature."""
    features = [c for c in frame.columns if c != "churned"]
    levels = {
        c: [str(v) for v in frame[c].cat.categories]
        for c in features
        if isinstance(frame[c].dtype, pd.CategoricalDtype)
    }
    return features, levels


def fit_linear_base(train: pd.DataFrame, y: np.ndarray, sample_weight: np.ndarray | None = None) -> LinearBase | None:
    """The RFM logistic regression (the ``rfm_logistic`` baseline) as a :class:`LinearBase`.

    Returns None when the training rows have none of the RFM columns.
    """
    present = rfm_columns(train.columns)
    if not present:
        return None
    fitted = LogisticBaseline(present).fit(train, y, sample_weight)
    _, scaler, logistic = (step for _, step in fitted.pipeline_.steps)
    z = fitted.pipeline_[:-1].transform(fitted._matrix(train))
    return LinearBase(
        features=list(present),
        medians=[float(v) for v in fitted.medians_.to_numpy()],
        means=[float(v) for v in scaler.mean_],
        scales=[float(v) for v in scaler.scale_],
        coef=[float(v) for v in logistic.coef_[0]],
        intercept=float(logistic.intercept_[0]),
        lower=[float(v) for v in z.min(axis=0)],
        upper=[float(v) for v in z.max(axis=0)],
    )


def early_stopping_rounds(
    booster: lgb.Booster,
    X_val: pd.DataFrame,
    y_val: np.ndarray,
    init_margin: np.ndarray,
    *,
    metric: str,
    patience: int,
) -> int:
    """Trees LightGBM's ``early_stopping(patience)`` callback would have kept, found after training.

    The validation score after each tree (log loss, or AUC) is computed from the margins
    tree by tree; the first best is kept and the search stops once ``patience`` trees in a
    row fail to improve it, as the callback does.
    """
    y_val = np.asarray(y_val, dtype=int)
    X = model_matrix(X_val)
    margin = np.asarray(init_margin, dtype=np.float64).copy()
    best_score, best = np.inf, 0
    for i in range(booster.num_trees()):
        margin += booster.predict(X, raw_score=True, start_iteration=i, num_iteration=1)
        score = _validation_score(metric, y_val, margin)  # lower is better
        if score < best_score:
            best_score, best = score, i
        elif i - best >= patience:
            break
    return best + 1


def _validation_score(metric: str, y: np.ndarray, margin: np.ndarray) -> float:
    """Lower is better: log loss, or minus AUC when early stopping watched AUC."""
    if metric == "auc":
        from sklearn.metrics import roc_auc_score

        return -float(roc_auc_score(y, margin))
    p = np.clip(1.0 / (1.0 + np.exp(-margin)), 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


@dataclass
class ChurnClassifier:
    """LightGBM binary classifier: early-stopped and calibrated on a validation cutoff (:meth:`fit`),
    or grown to a given number of trees and calibrated from margins fitted elsewhere
    (:meth:`fit_rounds` then :meth:`calibrate`, the refit of :mod:`churnlens.training.refit`).

    Parameters
    ----------
    params : LightGBMParams
    seed, threads : int
    class_weight : {"auto", "none"}
    calibration : {"auto", "isotonic", "platt", "none"}
    linear_base : {"rfm", "auto", "none"}
        ``rfm`` (default) boosts the trees from the RFM logistic regression's margin (LightGBM
        ``init_score``): on small or mostly-RFM data the trees then only add what the linear
        trend misses. ``auto`` trains both and keeps the lower validation loss.

    Attributes
    ----------
    booster_ : lightgbm.Booster
    calibrator_ : Calibrator
    features_ : list of str
    categorical_levels_ : dict
    best_iteration_ : int
    calibration_scores_ : dict
        Cross-validated log loss of each calibration candidate.
    linear_ : LinearBase or None
        The linear base kept (None: trees alone).
    linear_base_scores_ : dict
        Validation score (log loss, or minus AUC) of each linear-base candidate.
    linear_kind_ : {"rfm", "none"}
        The linear base kept.
    """

    # defaults are the [training] section's, declared once in TrainConfig
    params: LightGBMParams = field(default_factory=LightGBMParams)
    seed: int = TrainConfig.seed
    threads: int = TrainConfig.threads
    class_weight: str = TrainConfig.class_weight
    calibration: str = TrainConfig.calibration
    linear_base: str = TrainConfig.linear_base

    def fit(
        self,
        train: pd.DataFrame,
        y_train: np.ndarray,
        validation: pd.DataFrame,
        y_validation: np.ndarray,
        *,
        sample_weight: np.ndarray | None = None,
    ) -> ChurnClassifier:
        """Train on ``train`` (rows weighted by ``sample_weight`` if given), stop early and
        calibrate on ``validation``; returns self."""
        self.features_, self.categorical_levels_ = feature_schema(train)
        X_train = prepare_features(train, self.schema_metadata())

        def boost(params: dict[str, Any], linear: LinearBase | None, X_val: pd.DataFrame) -> lgb.Booster:
            return self._boost(params, X_train, y_train, X_val, y_validation, linear, sample_weight)

        return self._fit_candidates(
            train, np.asarray(y_train, dtype=int), validation, y_validation, boost, sample_weight
        )

    def fit_rounds(
        self,
        train: pd.DataFrame,
        y_train: np.ndarray,
        *,
        rounds: int,
        sample_weight: np.ndarray | None = None,
        train_set: DistributedTrainingSet | None = None,
        cutoffs: Sequence[pd.Timestamp] = (),
    ) -> ChurnClassifier:
        """Grow exactly ``rounds`` trees on ``train`` with no validation; returns self.

        The linear base is ``self.linear_base`` (``rfm`` or ``none``; ``auto`` is decided by
        :meth:`fit` beforehand). The calibrator is the identity until :meth:`calibrate`.
        With ``train_set``, the trees grow on the cluster rows of ``cutoffs`` (``train`` is
        then a sample of them that gives the schema and fits the linear base).
        """
        if self.linear_base not in ("rfm", "none"):
            raise ValueError(f"fit_rounds needs a decided linear base (rfm or none), got {self.linear_base!r}")
        if rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {rounds}")
        y_train = np.asarray(y_train, dtype=int)
        if len(np.unique(y_train)) < 2:
            raise InputError("the training rows must contain churners and non-churners")
        self.features_, self.categorical_levels_ = feature_schema(train)
        weight = scale_pos_weight(y_train, self.class_weight)
        params = self.params.to_lgb(seed=self.seed, threads=self.threads, scale_pos_weight=weight)
        linear = fit_linear_base(train, y_train, sample_weight) if self.linear_base == "rfm" else None
        if train_set is not None:
            if sample_weight is not None:
                raise InputError("row weights (training.recent_weight_half_life_days) are not supported when "
                                 "LightGBM trains on the cluster; raise training.distributed_min_rows")
            self.booster_ = train_set.fit_lightgbm(
                cutoffs, params, metadata=self.schema_metadata(), linear=linear, rounds=int(rounds)
            )
        else:
            X = prepare_features(train, self.schema_metadata())
            data = lgb.Dataset(X, y_train, weight=sample_weight, init_score=linear.margin(X) if linear else None,
                               categorical_feature=list(self.categorical_levels_) or "auto", free_raw_data=True)
            self.booster_ = lgb.train(params, data, num_boost_round=int(rounds))
        self.linear_ = linear
        self.linear_kind_ = "rfm" if linear is not None else "none"
        self.linear_base_scores_ = {}
        self.best_iteration_ = int(self.booster_.num_trees())
        self.calibrator_, self.calibration_scores_ = Calibrator("none"), {}
        return self

    def calibrate(self, margin: np.ndarray, y: np.ndarray) -> ChurnClassifier:
        """Fit the calibrator (``self.calibration``) on margins of rows the trees did not train on."""
        self.calibrator_, self.calibration_scores_ = choose_calibrator(
            margin, np.asarray(y, dtype=int), method=self.calibration, seed=self.seed
        )
        return self

    def fit_distributed(
        self,
        train_set: DistributedTrainingSet,
        cutoffs: Sequence[pd.Timestamp],
        sample: pd.DataFrame,
        y_sample: np.ndarray,
        validation: pd.DataFrame,
        y_validation: np.ndarray,
    ) -> ChurnClassifier:
        """Train LightGBM on the cluster rows of ``cutoffs``; returns self.

        ``sample`` (whole customers of those cutoffs, collected here, with the global
        categorical levels) gives the feature schema, the class weight and the linear base.
        lightgbm.dask has no early stopping, so the trees are grown to ``max_rounds`` and the
        number kept is chosen afterwards on ``validation`` by the rule of LightGBM's
        ``early_stopping`` callback (:func:`early_stopping_rounds`).
        """
        self.features_, self.categorical_levels_ = feature_schema(sample)
        meta = self.schema_metadata()

        def boost(params: dict[str, Any], linear: LinearBase | None, X_val: pd.DataFrame) -> lgb.Booster:
            grown = train_set.fit_lightgbm(
                cutoffs, params, metadata=meta, linear=linear, rounds=self.params.max_rounds
            )
            init = linear.margin(X_val) if linear is not None else np.zeros(len(X_val))
            best = early_stopping_rounds(
                grown, X_val, y_validation, init, metric=params["metric"],
                patience=self.params.early_stopping_rounds,
            )  # fmt: skip
            return lgb.Booster(model_str=grown.model_to_string(num_iteration=best))

        return self._fit_candidates(sample, np.asarray(y_sample, dtype=int), validation, y_validation, boost)

    def _fit_candidates(
        self,
        train: pd.DataFrame,
        y_train: np.ndarray,
        validation: pd.DataFrame,
        y_validation: np.ndarray,
        boost: Callable[[dict[str, Any], LinearBase | None, pd.DataFrame], lgb.Booster],
        sample_weight: np.ndarray | None = None,
    ) -> ChurnClassifier:
        """Boost each linear-base candidate (``train`` fits the base), keep the best on validation,
        calibrate on validation."""
        X_val = prepare_features(validation, self.schema_metadata())
        y_validation = np.asarray(y_validation, dtype=int)
        if len(np.unique(y_train)) < 2 or len(np.unique(y_validation)) < 2:
            raise InputError("training and validation cutoffs must each contain churners and non-churners")
        weight = scale_pos_weight(y_train, self.class_weight)
        lgb_params = self.params.to_lgb(seed=self.seed, threads=self.threads, scale_pos_weight=weight)
        # Up-weighting churners inflates raw probabilities, so the weighted run's validation log
        # loss worsens while ranking still improves: stop on AUC then (seen: 2 trees kept).
        lgb_params["metric"] = "auc" if weight != 1.0 else "binary_logloss"
        if self.linear_base not in ("auto", "rfm", "none"):
            raise InputError(f"linear_base must be auto, rfm or none, got {self.linear_base!r}")
        kinds = ["none", "rfm"] if self.linear_base == "auto" else [self.linear_base]
        fits: dict[str, tuple[lgb.Booster, LinearBase | None, np.ndarray]] = {}
        self.linear_base_scores_ = {}
        for kind in kinds:
            linear = fit_linear_base(train, y_train, sample_weight) if kind == "rfm" else None
            if kind == "rfm" and linear is None:
                if fits:
                    continue
                kind = "none"  # no RFM column to build the base from: trees alone
            booster = boost(lgb_params, linear, X_val)
            margin = booster.predict(X_val, raw_score=True) + (linear.margin(X_val) if linear else 0.0)
            fits[kind] = (booster, linear, margin)
            self.linear_base_scores_[kind] = _validation_score(lgb_params["metric"], y_validation, margin)
        chosen = min(self.linear_base_scores_, key=self.linear_base_scores_.__getitem__)  # ties: trees alone
        self.booster_, self.linear_, margin_val = fits[chosen]
        self.linear_kind_ = chosen
        self.best_iteration_ = int(self.booster_.num_trees())
        self.calibrator_, self.calibration_scores_ = choose_calibrator(
            margin_val, y_validation, method=self.calibration, seed=self.seed
        )
        return self

    def _boost(
        self,
        params: dict[str, Any],
        X_train: pd.DataFrame,
        y_train: np.ndarray,
        X_val: pd.DataFrame,
        y_validation: np.ndarray,
        linear: LinearBase | None,
        sample_weight: np.ndarray | None = None,
    ) -> lgb.Booster:
        """Early-stopped LightGBM, boosted from ``linear``'s margin when given."""
        dtrain = lgb.Dataset(X_train, y_train, weight=sample_weight,
                             categorical_feature=list(self.categorical_levels_) or "auto",
                             init_score=linear.margin(X_train) if linear else None, free_raw_data=True)
        dval = lgb.Dataset(X_val, y_validation, reference=dtrain,
                           init_score=linear.margin(X_val) if linear else None)
        booster = lgb.train(
            params,
            dtrain,
            num_boost_round=self.params.max_rounds,
            valid_sets=[dval],
            valid_names=["validation"],
            callbacks=[lgb.early_stopping(self.params.early_stopping_rounds, verbose=False)],
        )
        best = int(booster.best_iteration or booster.current_iteration())
        # Keep only the trees early stopping chose, so every consumer sees the same model.
        return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))

    def schema_metadata(self) -> dict[str, Any]:
        """Feature list and categorical levels, as stored in the model's metadata."""
        return {"features": list(self.features_), "categorical_levels": dict(self.categorical_levels_)}

    def margin(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw log-odds (trees plus linear base), before calibration."""
        if not hasattr(self, "booster_"):
            raise RuntimeError("This ChurnClassifier is not fitted yet; call fit first.")
        X = prepare_features(frame, self.schema_metadata())
        margin = self.booster_.predict(X, raw_score=True)
        if self.linear_ is not None:
            margin = margin + self.linear_.margin(X)
        return margin

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probabilities."""
        margin = self.margin(frame)
        return self.calibrator_.transform(margin)

    @property
    def n_trees_(self) -> int:
        return int(self.booster_.num_trees())
