"""Training: evaluate (rolling-origin backtest or grouped CV), refit on every matured label, calibrate
out of fold; baselines, MLflow tracking and registry."""

from churnlens.config import LightGBMParams, TrainConfig
from churnlens.training.estimator import ChurnClassifier
from churnlens.training.evaluation import Evaluation
from churnlens.training.metrics import evaluate, expected_calibration_error, lift_table, profit_curve
from churnlens.training.split import OutOfTimeSplit, backtest_origins, customer_folds, out_of_time_split

__all__ = [
    "ChurnClassifier",
    "Evaluation",
    "LightGBMParams",
    "OutOfTimeSplit",
    "TrainConfig",
    "TrainingResult",
    "backtest_origins",
    "customer_folds",
    "evaluate",
    "expected_calibration_error",
    "lift_table",
    "out_of_time_split",
    "profit_curve",
    "train_model",
]


def __getattr__(name: str):
    # The pipeline pulls in MLflow; import it only when asked for.
    if name in ("TrainingResult", "train_model"):
        from churnlens.training import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
