"""Load a churn model from any MLflow model URI and check it fits the data to score.

Accepted URIs: ``models:/name@alias`` (default ``models:/churnlens@champion``),
``models:/name/3``, ``models:/name/latest``, ``runs:/<run_id>/model``, an MLflow 3
logged-model id ``models:/m-...``, a local model
directory (or ``file://`` URI), and any other URI MLflow resolves itself. Registry URIs
are resolved against the tracking store given by ``tracking_uri``, else
``MLFLOW_TRACKING_URI``, else the embedded ``sqlite:///mlflow.db``.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from churnlens.errors import InputError
from churnlens.model import ChurnModel, FeatureMismatchError, ModelMetadata
from churnlens.model_store import read_model_dir
from churnlens.tracking import DEFAULT_MODEL_NAME, DEFAULT_UPLIFT_MODEL_NAME, configure_mlflow, open_store

DEFAULT_MODEL_URI = f"models:/{DEFAULT_MODEL_NAME}@champion"
DEFAULT_UPLIFT_MODEL_URI = f"models:/{DEFAULT_UPLIFT_MODEL_NAME}@champion"
_SHOWN = 20
_REGISTRY = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>[^/]+))/?$")
_RUNS = re.compile(r"^runs:/(?P<run_id>[^/]+)(?:/(?P<path>.*))?$")


class ModelNotFoundError(InputError):
    """The model URI names nothing that exists in the store."""


class IncompatibleModelError(FeatureMismatchError):
    """The model cannot score this data (features or catalog version differ)."""


@dataclass(frozen=True)
class LoadedModel:
    """A churn model and where it came from.

    Parameters
    ----------
    model : ChurnModel
        Booster, calibrator and metadata.
    name : str
        Registered name (or the name recorded in the metadata for run/path URIs).
    version : str or None
        Registered version; None for a model loaded from a run or a path.
    uri : str
        The URI as asked for.
    resolved_uri : str
        The URI actually loaded (an alias resolved to ``models:/name/<version>``).
    tracking_uri : str
        The store used.
    run_id : str or None
    """

    model: ChurnModel
    name: str
    version: str | None
    uri: str
    resolved_uri: str
    tracking_uri: str
    run_id: str | None = None

    @property
    def metadata(self) -> ModelMetadata:
        """The model's metadata (features, reference statistics, test metrics ...)."""
        return self.model.metadata

    def info(self) -> dict[str, Any]:
        """What a user wants to know about the model, JSON-ready."""
        meta = self.metadata
        return {
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "run_id": self.run_id,
            "trained_at": meta.trained_at,
            "trained_through": meta.trained_through,
            "horizon_days": meta.horizon_days,
            "label_mode": meta.label_mode,
            "catalog_version": meta.catalog_version,
            "test_cutoff": meta.test_cutoff,
            "features": list(meta.features),
            "test_metrics": dict(meta.test_metrics),
        }


def _shown(items: list[str]) -> str:
    return repr(items[:_SHOWN])[:-1] + (", ...]" if len(items) > _SHOWN else "]")


def _registered_names(client: Any) -> list[str]:
    return sorted(m.name for m in client.search_registered_models(max_results=1000))


def _resolve_registry(
    client: Any, uri: str, name: str, alias: str | None, version: str | None, tracking: str
) -> tuple[str, str | None]:
    """``(version, run_id)`` for a registry URI, or a ModelNotFoundError naming what exists."""
    from mlflow.exceptions import MlflowException

    names = _registered_names(client)
    if name not in names:
        raise ModelNotFoundError(
            f"no model '{name}' in {tracking} (asked for {uri}) — registered models: {_shown(names)}"
        )
    versions = client.search_model_versions(f"name = '{name}'")
    existing = sorted((int(v.version) for v in versions), reverse=True)
    if alias is not None:
        try:
            mv = client.get_model_version_by_alias(name, alias)
        except MlflowException:
            aliases = sorted(client.get_registered_model(name).aliases)
            raise ModelNotFoundError(
                f"model '{name}' in {tracking} has no alias '{alias}' (asked for {uri}) — aliases: "
                f"{_shown(aliases)}, versions: {_shown([str(v) for v in existing])}"
            ) from None
        return str(mv.version), mv.run_id
    if version == "latest":
        if not existing:
            raise ModelNotFoundError(f"model '{name}' in {tracking} has no versions (asked for {uri})")
        version = str(existing[0])
    if version is None or not version.isdigit() or int(version) not in existing:
        raise ModelNotFoundError(
            f"model '{name}' in {tracking} has no version '{version}' (asked for {uri}) — "
            f"versions: {_shown([str(v) for v in existing])}"
        )
    mv = client.get_model_version(name, version)
    return str(mv.version), mv.run_id


def _check_run(client: Any, uri: str, run_id: str, path: str | None, tracking: str) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ModelNotFoundError(f"no run '{run_id}' in {tracking} (asked for {uri})") from None
    if not path:
        return
    # MLflow 3 keeps logged models apart from run artifacts; accept either.
    logged = [
        m.name
        for m in mlflow.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{run_id}'",
            output_format="list",
        )
    ]
    artifacts = [a.path for a in client.list_artifacts(run_id)]
    top = path.strip("/").split("/")[0]
    if top not in logged and top not in artifacts:
        raise ModelNotFoundError(
            f"run '{run_id}' in {tracking} has no model '{path}' (asked for {uri}) — "
            f"models logged by the run: {_shown(sorted(logged))}"
        )


def load_model(model_uri: str | None = None, *, tracking_uri: str | None = None) -> LoadedModel:
    """Load a churnlens model from an MLflow model URI.

    Parameters
    ----------
    model_uri : str, optional
        ``models:/name@alias``, ``models:/name/<version|latest>``, ``runs:/<run>/model``, a local
        directory or ``file://`` URI; default ``models:/churnlens@champion``.
    tracking_uri : str, optional
        Store to resolve registry and run URIs in (see :func:`churnlens.tracking.resolve_tracking_uri`).

    Returns
    -------
    LoadedModel

    Raises
    ------
    ModelNotFoundError
        When the URI names nothing that exists; the message lists what does exist.
    ModelStoreError
        When the model directory is not a churnlens model, does not match its SHA-256 manifest or
        holds code (a pickle, a Python file ...); :class:`~churnlens.model_store.DamagedModelError`
        for a damaged model file. Nothing from the store is imported or unpickled.
    """
    found = _resolve_and_read(model_uri or DEFAULT_MODEL_URI, tracking_uri, read_model_dir)
    return LoadedModel(
        model=found.model,
        name=found.name or found.model.metadata.model_name,
        version=found.version,
        uri=found.uri,
        resolved_uri=found.resolved_uri,
        tracking_uri=found.tracking_uri,
        run_id=found.run_id,
    )


@dataclass(frozen=True)
class LoadedUpliftModel:
    """An uplift model (:class:`~churnlens.uplift.model.UpliftModel`) and where it came from
    (fields as :class:`LoadedModel`'s)."""

    model: Any
    name: str
    version: str | None
    uri: str
    resolved_uri: str
    tracking_uri: str
    run_id: str | None = None

    def info(self) -> dict[str, Any]:
        """What a user wants to know about the uplift model, JSON-ready."""
        meta = self.model.metadata
        return {
            "name": self.name, "version": self.version, "uri": self.uri, "run_id": self.run_id,
            "learner": meta.learner, "actions": list(meta.actions), "horizon_days": meta.horizon_days,
            "trained_through": meta.trained_through, "fit_campaigns": list(meta.fit_campaigns),
        }  # fmt: skip


def load_uplift_model(model_uri: str | None = None, *, tracking_uri: str | None = None) -> LoadedUpliftModel:
    """Load a churnlens uplift model from an MLflow model URI (default ``models:/churnlens-uplift@champion``).

    The same URIs and the same checks as :func:`load_model`: read as data against its SHA-256
    manifest (:func:`churnlens.uplift.store.read_uplift_dir`), nothing imported or unpickled.
    """
    from churnlens.uplift.store import read_uplift_dir

    found = _resolve_and_read(model_uri or DEFAULT_UPLIFT_MODEL_URI, tracking_uri, read_uplift_dir)
    return LoadedUpliftModel(
        model=found.model, name=found.name or found.model.metadata.model_name, version=found.version,
        uri=found.uri, resolved_uri=found.resolved_uri, tracking_uri=found.tracking_uri, run_id=found.run_id,
    )  # fmt: skip


@dataclass(frozen=True)
class _Found:
    model: Any
    name: str | None
    version: str | None
    uri: str
    resolved_uri: str
    tracking_uri: str
    run_id: str | None


def _resolve_and_read(model_uri: str, tracking_uri: str | None, reader: Callable[[Path], Any]) -> _Found:
    """Resolve ``model_uri`` in the store and read the directory it names with ``reader`` (as data)."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = model_uri.strip()
    tracking = configure_mlflow(tracking_uri, connect=False)
    client = MlflowClient()
    name: str | None = None
    version: str | None = None
    run_id: str | None = None
    resolved = uri
    local: Path | None = None
    registry, runs = _REGISTRY.match(uri), _RUNS.match(uri)
    if registry or runs or uri.startswith("models:"):
        open_store(tracking)
    if registry:
        name = registry["name"]
        version, run_id = _resolve_registry(
            client, uri, name, registry["alias"], registry["version"], tracking
        )
        resolved = f"models:/{name}/{version}"
    elif runs:
        run_id = runs["run_id"]
        _check_run(client, uri, run_id, runs["path"], tracking)
    elif uri.startswith("models:"):
        pass  # an MLflow 3 logged-model id (models:/m-...): MLflow resolves it
    elif "://" not in uri or uri.startswith("file://"):
        path = Path(uri.removeprefix("file://")).expanduser()
        if not (path / "MLmodel").is_file():
            what = (
                "does not exist"
                if not path.exists()
                else "is not an MLflow model directory (no MLmodel file)"
            )
            raise ModelNotFoundError(f"model path {path} {what}")
        local = path.resolve()
        resolved = str(local)
    # Read as data (booster text + JSON checked against the manifest): never
    # mlflow.pyfunc.load_model, which would run the directory's code file.
    if local is not None:
        model = reader(local)
    else:
        with tempfile.TemporaryDirectory(prefix="churnlens-model-") as tmp:
            try:
                directory = mlflow.artifacts.download_artifacts(artifact_uri=resolved, dst_path=tmp)
            except (MlflowException, OSError) as exc:
                raise ModelNotFoundError(f"could not load model {uri} from {tracking}: {exc}") from None
            model = reader(Path(directory))
    return _Found(model, name, version, uri, resolved, tracking, run_id)


def check_compatible(
    model: ChurnModel | LoadedModel, snapshot: pd.DataFrame, *, tables: Any | None = None
) -> None:
    """Raise a clear error when ``snapshot`` lacks features the model needs.

    Parameters
    ----------
    model : ChurnModel or LoadedModel
    snapshot : DataFrame
        Snapshot about to be scored.
    tables : Tables, optional
        The input tables; lets the message name the tables the model was trained with that
        the data does not have.

    Raises
    ------
    IncompatibleModelError
        Missing features, or a feature catalog version this code does not build.
    """
    churn_model = model.model if isinstance(model, LoadedModel) else model
    meta = churn_model.metadata
    from churnlens.features import CATALOG_VERSION

    trained_catalog = meta.catalog_version
    if trained_catalog is not None and trained_catalog != CATALOG_VERSION:
        raise IncompatibleModelError(
            f"the model was trained with feature catalog {trained_catalog} but this churnlens builds "
            f"{CATALOG_VERSION}; retrain the model with this version"
        )
    features = churn_model.features
    missing = [f for f in features if f not in snapshot.columns]
    if not missing:
        return
    message = f"the model needs {len(missing)} feature(s) the data does not have: {_shown(missing)}"
    if tables is not None:
        trained_with = list(meta.tables)
        present = set(tables.present())
        absent = [t for t in trained_with if t not in present]
        if absent:
            message += (
                f"; the model was trained with tables {trained_with} but the data has no "
                f"{', '.join(absent)} table"
            )
    raise IncompatibleModelError(message + " — score with a model trained on the same tables and columns")
