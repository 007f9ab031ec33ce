"""Where MLflow lives: one rule for training and serving.

``--tracking-uri`` if given, else ``MLFLOW_TRACKING_URI``, else the embedded default
``sqlite:///mlflow.db`` in the working directory (artifacts in ``mlartifacts/`` beside it).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_MODEL_NAME = "churnlens"
DEFAULT_EXPERIMENT = "churnlens"


def quiet_mlflow() -> None:
    """Silence MLflow's telemetry and two known-noisy warnings (narrowly, not all warnings)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore", message=r".*noload.*")
    warnings.filterwarnings("ignore", message=r".*Hint: Inferred schema contains integer column.*")
    warnings.filterwarnings("ignore", message=r".*DataFrame.*input_example.*", category=FutureWarning)


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """The tracking URI to use, by the rule above; relative sqlite paths are made absolute."""
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = Path(uri.removeprefix("sqlite:///"))
        uri = "sqlite:///" + str(path.resolve())
    return uri


def artifact_root_for(tracking_uri: str) -> str | None:
    """Artifact location for new experiments on an embedded sqlite store: ``mlartifacts`` beside the db."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri.removeprefix("sqlite:///"))
        return (db.parent / "mlartifacts").resolve().as_uri()
    return None


def configure_mlflow(tracking_uri: str | None = None) -> str:
    """Point MLflow (tracking and registry) at the resolved store and return its URI."""
    quiet_mlflow()
    import mlflow

    uri = resolve_tracking_uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def ensure_experiment(name: str, tracking_uri: str) -> str:
    """Experiment id for ``name``, created (with artifacts beside an embedded sqlite db) if new."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    return client.create_experiment(name, artifact_location=artifact_root_for(tracking_uri))
