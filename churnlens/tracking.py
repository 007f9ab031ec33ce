"""Where MLflow lives: one rule for training and serving.

``--tracking-uri`` if given, else ``MLFLOW_TRACKING_URI``, else the embedded default
``sqlite:///mlflow.db`` in the working directory (artifacts in ``mlartifacts/`` beside it).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from churnlens.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_MODEL_NAME = "churnlens"
DEFAULT_EXPERIMENT = "churnlens"
#: Registered name and experiment of uplift models (``churnlens train-uplift``).
DEFAULT_UPLIFT_MODEL_NAME = "churnlens-uplift"
DEFAULT_UPLIFT_EXPERIMENT = "churnlens-uplift"
#: How long a process waits for another one holding the embedded store's lock (creating or
#: migrating the store, or moving the champion alias) before giving up with a clear error.
STORE_LOCK_TIMEOUT_S = 600.0


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


def store_lock_path(tracking_uri: str) -> Path | None:
    """The lock file of an embedded sqlite store (``<db>.lock`` beside it); None for other stores."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return Path(tracking_uri.removeprefix("sqlite:///") + ".lock")


@contextmanager
def store_lock(tracking_uri: str | None = None, *, timeout: float = STORE_LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the embedded store's file lock: one process at a time, on this machine.

    An sqlite store is a file: two processes creating it (MLflow runs its schema migrations on a
    fresh file) or moving the same alias at once corrupt it or lose an update. Other stores (a
    tracking server, PostgreSQL ...) do their own locking, so this is then a no-op.

    Raises
    ------
    InputError
        When the lock is not free within ``timeout`` seconds (another churnlens process holds it).
    """
    import filelock

    path = store_lock_path(resolve_tracking_uri(tracking_uri))
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with filelock.FileLock(str(path), timeout=timeout):
            yield
    except filelock.Timeout:
        raise InputError(
            f"the tracking store {path.with_suffix('')} stayed locked by another process for {timeout:g} s "
            f"(lock file {path})"
        ) from None


def holding_store_lock(func: F) -> F:
    """Run ``func`` under :func:`store_lock` of MLflow's current tracking URI (a critical section)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import mlflow

        with store_lock(mlflow.get_tracking_uri()):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def open_store(tracking_uri: str) -> None:
    """Open (creating it if new) an embedded sqlite store under :func:`store_lock`; no-op otherwise.

    Opening both MLflow stores creates every table, MLflow's schema migrations included, so a
    fresh store is built by one process while the others wait; later openings only read the schema.
    """
    if store_lock_path(tracking_uri) is None:
        return
    from mlflow.tracking import MlflowClient

    with store_lock(tracking_uri):
        client = MlflowClient(tracking_uri, tracking_uri)
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)


def configure_mlflow(tracking_uri: str | None = None, *, connect: bool = True) -> str:
    """Point MLflow (tracking and registry) at the resolved store and return its URI.

    With ``connect`` (the default) the store is also opened by :func:`open_store`; pass False when
    the store may not be needed (loading a model from a local directory must not create one).
    """
    quiet_mlflow()
    import mlflow

    uri = resolve_tracking_uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if connect:
        open_store(uri)
    return uri


def ensure_experiment(name: str, tracking_uri: str) -> str:
    """Experiment id for ``name``, created (with artifacts beside an embedded sqlite db) if new."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    return client.create_experiment(name, artifact_location=artifact_root_for(tracking_uri))
