"""MLflow logging, one small function per thing logged, and the registry rule.

A new version becomes ``champion`` only when its test ROC AUC beats the current champion
re-scored on the same test cutoff; otherwise it is tagged ``challenger``.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema
from sklearn.metrics import roc_auc_score

from churnlens.model import MODEL_CODE, ChurnModel
from churnlens.model_store import ARTIFACTS_DIR, WHEEL_ARTIFACT, ModelStoreError, read_model_dir, write_manifest
from churnlens.tracking import artifact_root_for, holding_store_lock

CHAMPION, CHALLENGER = "champion", "challenger"


def ensure_experiment(name: str, tracking_uri: str) -> str:
    """Experiment id for ``name``, created (with artifacts beside an embedded sqlite db) if new."""
    client = MlflowClient()
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    return client.create_experiment(name, artifact_location=artifact_root_for(tracking_uri))


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """Nested dict -> flat ``a.b.c`` keys, for ``log_params``."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    return {prefix: value}


def log_config(config: dict[str, Any]) -> None:
    """Every setting as a param, and the whole config as ``config.json``."""
    params = {k: (json.dumps(v) if isinstance(v, (list, tuple)) else v) for k, v in flatten("", config).items()}
    mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
    mlflow.log_dict(config, "config.json")


def log_fingerprint(fingerprint: dict[str, Any]) -> None:
    """Row counts, date range and content hash of the input tables."""
    mlflow.log_dict(fingerprint, "data_fingerprint.json")
    mlflow.set_tags(
        {"data.hash": fingerprint["hash"], "data.start": fingerprint["start"], "data.end": fingerprint["end"]}
    )
    for table, rows in fingerprint["rows"].items():
        mlflow.log_param(f"data.rows.{table}", rows)


def log_metric_table(metrics: pd.DataFrame) -> None:
    """Metrics frame (rows: scorer, columns: metric) as ``test_<scorer>_<metric>`` plus a CSV."""
    flat = {
        f"test_{scorer}_{metric}": float(value)
        for scorer, row in metrics.iterrows()
        for metric, value in row.items()
        if pd.notna(value)
    }
    mlflow.log_metrics(flat)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "test_metrics.csv"
        metrics.to_csv(path)
        mlflow.log_artifact(str(path))


def model_signature(features: list[str], categorical: dict[str, list[str]]) -> ModelSignature:
    """Signature built deliberately: every feature required; categoricals as strings, others doubles."""
    inputs = Schema([ColSpec("string" if f in categorical else "double", f) for f in features])
    outputs = Schema([ColSpec("double", "churn_probability")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def signature_frame(frame: pd.DataFrame, features: list[str], categorical: dict[str, list[str]]) -> pd.DataFrame:
    """A snapshot cast to the signature's types (categoricals -> str), as pyfunc callers send it."""
    out = frame[features].copy()
    for name in features:
        if name in categorical:
            out[name] = out[name].astype(object).where(out[name].notna(), None)
        else:
            out[name] = pd.to_numeric(out[name], errors="coerce").astype("float64")
    return out


#: Tag of runs and registered versions: the churnlens version that trained the model.
VERSION_TAG = "churnlens.version"


def pip_requirements(churnlens_wheel: str | None = None) -> list[str]:
    """Explicit requirements (inferring them costs ~2 s per log_model), churnlens's exact version
    included: ``churnlens==<version>``, or the path of its wheel inside the model directory."""
    import lightgbm
    import numpy
    import pandas

    from churnlens.training.packaging import churnlens_requirement

    return [
        f"mlflow=={mlflow.__version__}",
        f"lightgbm=={lightgbm.__version__}",
        f"pandas=={pandas.__version__}",
        f"numpy=={numpy.__version__}",
        churnlens_requirement(churnlens_wheel),
    ]


def log_churnlens_version() -> str:
    """Tag the active run with the churnlens version (``churnlens.version``); return it."""
    from churnlens.training.packaging import churnlens_version

    version = churnlens_version()
    mlflow.set_tag(VERSION_TAG, version)
    return version


def log_training_input(frame: pd.DataFrame, *, digest: str, source: str | None, name: str = "training_set") -> None:
    """``mlflow.log_input`` of the training set: its schema and row count, and the data
    fingerprint's hash as the dataset digest (the same tables give the same digest)."""
    dataset = mlflow.data.from_pandas(frame, source=source, name=name, digest=digest[:36])
    mlflow.log_input(dataset, context="training")


def log_churn_model(model: ChurnModel, example: pd.DataFrame) -> str:
    """Log the pyfunc model with signature and input example, then its SHA-256 manifest.

    The manifest (:data:`churnlens.model_store.MANIFEST_FILE`) lists the digest of every file of
    the logged model as stored, so serving can refuse a directory changed afterwards.

    Returns
    -------
    str
        The logged model's URI (``models:/m-...``).
    """
    from churnlens.training.packaging import churnlens_version, churnlens_wheel

    meta = model.metadata
    wheel = churnlens_wheel()
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = model.save_artifacts(tmp)
        if wheel is not None:  # MLflow copies it to artifacts/<name>; the requirements point there
            artifacts[WHEEL_ARTIFACT] = str(wheel)
        info = mlflow.pyfunc.log_model(
            name="model",
            # models from code: the logged model holds source code and artifacts, no pickle
            python_model=str(MODEL_CODE),
            artifacts=artifacts,
            signature=model_signature(meta["features"], meta["categorical_levels"]),
            input_example=signature_frame(example, meta["features"], meta["categorical_levels"]),
            pip_requirements=pip_requirements(None if wheel is None else f"{ARTIFACTS_DIR}/{wheel.name}"),
            metadata={VERSION_TAG: churnlens_version()},
        )
    log_manifest(info.model_id, info.model_uri)
    return info.model_uri


def log_manifest(model_id: str, model_uri: str) -> None:
    """Add the SHA-256 manifest of a logged model's files, as stored, to its artifacts."""
    with tempfile.TemporaryDirectory() as tmp:
        stored = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(Path(tmp) / "model"))
        MlflowClient().log_model_artifact(model_id, str(write_manifest(stored)))


@dataclass(frozen=True)
class RegistryDecision:
    """Outcome of registering a run's model."""

    version: str
    alias: str
    reason: str
    champion_auc_on_test: float | None


@holding_store_lock
def register_and_promote(
    model_uri: str,
    model_name: str,
    *,
    test_auc: float,
    test_cutoff: str,
    test_frame: pd.DataFrame,
    y_test: np.ndarray,
) -> RegistryDecision:
    """Register ``model_uri`` and move ``champion`` to it only if it beats the current champion.

    The current champion is re-scored on this run's test cutoff so both AUCs are measured on
    the same customers and labels; a champion that cannot score this data (other features)
    keeps its alias and the new version becomes ``challenger``. The champion is read as data
    (:func:`churnlens.model_store.read_model_dir`), never through its code file.

    The whole function, "read champion → compare → move alias" included, is one critical
    section under the embedded store's file lock (:func:`churnlens.tracking.holding_store_lock`):
    two trainings finishing together cannot both see the old champion and the weaker one win.
    """
    client = MlflowClient()
    version = mlflow.register_model(model_uri, model_name).version
    client.set_model_version_tag(model_name, version, "test_roc_auc", f"{test_auc:.6f}")
    client.set_model_version_tag(model_name, version, "test_cutoff", test_cutoff)
    try:
        current = client.get_model_version_by_alias(model_name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        current = None
    if current is None:
        decision = RegistryDecision(str(version), CHAMPION, "first registered version", None)
    else:
        try:
            champion = read_model_version(model_name, str(current.version))
            champion_auc = float(roc_auc_score(y_test, champion.predict_proba(test_frame)))
        except ModelStoreError as exc:  # serving refuses that champion too (no manifest, tampered): replace it
            decision = RegistryDecision(
                str(version), CHAMPION, f"champion v{current.version} cannot be served ({exc}); replaced", None
            )
        except Exception as exc:  # noqa: BLE001 - any failure to re-score keeps the champion
            decision = RegistryDecision(
                str(version), CHALLENGER, f"champion v{current.version} could not score this test set: {exc}", None
            )
        else:
            if test_auc > champion_auc:
                reason = f"test ROC AUC {test_auc:.4f} beats champion v{current.version} ({champion_auc:.4f})"
                decision = RegistryDecision(str(version), CHAMPION, reason, champion_auc)
            else:
                reason = f"test ROC AUC {test_auc:.4f} does not beat champion v{current.version} ({champion_auc:.4f})"
                decision = RegistryDecision(str(version), CHALLENGER, reason, champion_auc)
    client.set_registered_model_alias(model_name, decision.alias, version)
    client.set_model_version_tag(model_name, version, "registry_decision", decision.reason[:5000])
    return decision


def read_model_version(model_name: str, version: str) -> ChurnModel:
    """A registered version read as data (manifest-checked booster and JSON), never through pyfunc."""
    with tempfile.TemporaryDirectory() as tmp:
        stored = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model_name}/{version}", dst_path=tmp)
        return read_model_dir(stored)


def list_model_versions(model_name: str) -> pd.DataFrame:
    """Versions of a registered model with aliases and key test metrics, newest first."""
    client = MlflowClient()
    versions = client.search_model_versions(f"name = '{model_name}'")
    # Search results from a tracking server leave ModelVersion.aliases empty; the registered
    # model's alias map is filled by every store.
    aliases: dict[str, list[str]] = {}
    if versions:
        for alias, version in client.get_registered_model(model_name).aliases.items():
            aliases.setdefault(str(version), []).append(alias)
    rows = []
    for v in versions:
        metrics = client.get_run(v.run_id).data.metrics if v.run_id else {}
        rows.append(
            {
                "version": int(v.version),
                "aliases": ", ".join(sorted(set(v.aliases) | set(aliases.get(str(v.version), [])))),
                "created": pd.Timestamp(v.creation_timestamp, unit="ms").strftime("%Y-%m-%d %H:%M"),
                "test_cutoff": v.tags.get("test_cutoff", ""),
                "roc_auc": metrics.get("test_model_roc_auc"),
                "pr_auc": metrics.get("test_model_pr_auc"),
                "ece": metrics.get("test_model_ece"),
                "oracle_ratio": metrics.get("test_model_oracle_ratio"),
            }
        )
    if not rows:
        return pd.DataFrame(rows)
    return pd.DataFrame(rows).sort_values("version", ascending=False).reset_index(drop=True)
