"""The churn classifier: LightGBM with out-of-time early stopping and calibration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from churnlens.model import prepare_features
from churnlens.training.calibration import choose_calibrator
from churnlens.training.config import LightGBMParams


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


@dataclass
class ChurnClassifier:
    """LightGBM binary classifier, early-stopped and calibrated on an out-of-time validation cutoff.

    Parameters
    ----------
    params : LightGBMParams
    seed, threads : int
    class_weight : {"auto", "none"}
    calibration : {"auto", "isotonic", "platt", "none"}

    Attributes
    ----------
    booster_ : lightgbm.Booster
    calibrator_ : Calibrator
    features_ : list of str
    categorical_levels_ : dict
    best_iteration_ : int
    calibration_scores_ : dict
        Cross-validated log loss of each calibration candidate.
    """

    params: LightGBMParams = field(default_factory=LightGBMParams)
    seed: int = 42
    threads: int = 2
    class_weight: str = "auto"
    calibration: str = "auto"

    def fit(
        self,
        train: pd.DataFrame,
        y_train: np.ndarray,
        validation: pd.DataFrame,
        y_validation: np.ndarray,
    ) -> ChurnClassifier:
        """Train on ``train``, stop early and calibrate on ``validation``; returns self."""
        self.features_, self.categorical_levels_ = feature_schema(train)
        meta = self.schema_metadata()
        X_train = prepare_features(train, meta)
        X_val = prepare_features(validation, meta)
        y_train = np.asarray(y_train, dtype=int)
        y_validation = np.asarray(y_validation, dtype=int)
        if len(np.unique(y_train)) < 2 or len(np.unique(y_validation)) < 2:
            raise ValueError("training and validation cutoffs must each contain churners and non-churners")
        weight = scale_pos_weight(y_train, self.class_weight)
        lgb_params = self.params.to_lgb(seed=self.seed, threads=self.threads, scale_pos_weight=weight)
        # Up-weighting churners inflates raw probabilities, so the weighted run's validation log
        # loss worsens while ranking still improves: stop on AUC then (seen: 2 trees kept).
        lgb_params["metric"] = "auc" if weight != 1.0 else "binary_logloss"
        dtrain = lgb.Dataset(X_train, y_train, categorical_feature=list(self.categorical_levels_) or "auto",
                             free_raw_data=True)
        dval = lgb.Dataset(X_val, y_validation, reference=dtrain)
        self.booster_ = lgb.train(
            lgb_params,
            dtrain,
            num_boost_round=self.params.max_rounds,
            valid_sets=[dval],
            valid_names=["validation"],
            callbacks=[lgb.early_stopping(self.params.early_stopping_rounds, verbose=False)],
        )
        self.best_iteration_ = int(self.booster_.best_iteration or self.booster_.current_iteration())
        # Keep only the trees early stopping chose, so every consumer sees the same model.
        self.booster_ = lgb.Booster(model_str=self.booster_.model_to_string(num_iteration=self.best_iteration_))
        margin_val = self.booster_.predict(X_val, raw_score=True)
        self.calibrator_, self.calibration_scores_ = choose_calibrator(
            margin_val, y_validation, method=self.calibration, seed=self.seed
        )
        return self

    def schema_metadata(self) -> dict[str, Any]:
        """Feature list and categorical levels, as stored in the model's metadata."""
        return {"features": list(self.features_), "categorical_levels": dict(self.categorical_levels_)}

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probabilities."""
        if not hasattr(self, "booster_"):
            raise RuntimeError("This ChurnClassifier is not fitted yet; call fit first.")
        X = prepare_features(frame, self.schema_metadata())
        return self.calibrator_.transform(self.booster_.predict(X, raw_score=True))

    @property
    def n_trees_(self) -> int:
        return int(self.booster_.num_trees())
