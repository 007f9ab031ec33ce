"""Seeded random search of LightGBM hyper-parameters on the validation cutoff."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from churnlens.config import LightGBMParams, TrainConfig
from churnlens.training.estimator import ChurnClassifier

SEARCH_SPACE: dict[str, tuple] = {
    "num_leaves": (7, 15, 31),
    "learning_rate": (0.03, 0.05, 0.1),
    "min_child_samples": (20, 50, 100, 200),
    "feature_fraction": (0.6, 0.8, 1.0),
    "lambda_l2": (0.0, 1.0, 5.0),
}


def random_search(
    train: pd.DataFrame,
    y_train: np.ndarray,
    validation: pd.DataFrame,
    y_validation: np.ndarray,
    config: TrainConfig,
) -> tuple[LightGBMParams, pd.DataFrame]:
    """Try ``config.tune_trials`` parameter sets; keep the best validation ROC AUC.

    The configured parameters are always trial 0, so tuning never does worse on validation.

    Returns
    -------
    (LightGBMParams, DataFrame)
        Best parameters and one row per trial.
    """
    rng = np.random.default_rng(config.seed)
    candidates = [config.lgbm]
    for _ in range(config.tune_trials):
        pick = {k: v[int(rng.integers(len(v)))] for k, v in SEARCH_SPACE.items()}
        candidates.append(replace(config.lgbm, **pick))
    rows = []
    for i, params in enumerate(candidates):
        clf = ChurnClassifier(params, seed=config.seed, threads=config.threads,
                              class_weight=config.class_weight, calibration="none")
        clf.fit(train, y_train, validation, y_validation)
        auc = roc_auc_score(y_validation, clf.predict_proba(validation))
        rows.append({"trial": i, **{k: getattr(params, k) for k in SEARCH_SPACE}, "trees": clf.n_trees_,
                     "validation_roc_auc": auc})
    trials = pd.DataFrame(rows)
    best = int(trials["validation_roc_auc"].to_numpy().argmax())
    return candidates[best], trials
