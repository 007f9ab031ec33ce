"""churnlens: point-in-time churn prediction for loyalty programs.

The data flows one way: ``churnlens.data`` (validated tables) -> ``churnlens.features``
(snapshots at a cutoff, labels) -> ``churnlens.training`` (LightGBM + MLflow) ->
``churnlens.serving`` (scores, reasons, campaign lists, HTTP API).
Heavy sub-packages are imported on first use, so ``import churnlens`` stays cheap.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# OpenMP threads (LightGBM, scikit-learn) busy-wait between parallel regions by default, so when
# other processes share the cores each thread waits for a descheduled peer: a 20k-customer
# training run took 226 s with 2 threads at load average 5, and 78 s with passive waiting
# (benchmarks/RESULTS.md, "A 20k-customer retrain"). The runtime reads this when it loads, so it is
# set before anything imports lightgbm; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

_EXPORTS = {
    "Tables": "churnlens.data",
    "DataValidationError": "churnlens.data",
    "load_tables": "churnlens.data",
    "ChurnConfig": "churnlens.config",
    "FeatureConfig": "churnlens.config",
    "LabelConfig": "churnlens.config",
    "load_config": "churnlens.config",
    "simulate": "churnlens.simulate",
    "build_snapshot": "churnlens.features",
    "build_training_set": "churnlens.features",
    "feature_catalog": "churnlens.features",
    "TrainConfig": "churnlens.training",
    "train_model": "churnlens.training",
    "load_model": "churnlens.serving",
    "score_base": "churnlens.serving",
    "ActionRule": "churnlens.config",
    "campaign_report": "churnlens.serving",
    "suggest_actions": "churnlens.serving",
    "UpliftSettings": "churnlens.config",
    "train_uplift": "churnlens.training.uplift.pipeline",
    "load_uplift_model": "churnlens.serving.loader",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'churnlens' has no attribute {name!r}")
