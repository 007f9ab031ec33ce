"""MLflow logging, one small function per thing logged, and the registry rule.

The promotion rule is :func:`promotion_decision` (a pure function; its docstring says why it
is fair); :func:`register_and_promote` gathers its evidence and moves the aliases.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Callable
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

from churnlens.config import FeatureConfig
from churnlens.model import MODEL_CODE, ChurnModel, feature_config_of
from churnlens.model_store import ARTIFACTS_DIR, WHEEL_ARTIFACT, ModelStoreError, read_model_dir, write_manifest
from churnlens.tracking import artifact_root_for, holding_store_lock
from churnlens.training.packaging import churnlens_version

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


def log_evaluation(evaluation: Any) -> None:
    """An :class:`~churnlens.training.evaluation.Evaluation`: every origin's (or fold's) metrics with
    ``step`` = origin number (``<kind>_<scorer>_<metric>``), their mean as ``test_<scorer>_<metric>``
    and spread as ``test_<scorer>_<metric>_std``, and the tables as CSV."""
    from churnlens.training.evaluation import per_fold_metrics

    for name, points in per_fold_metrics(evaluation).items():
        for step, value in points:
            mlflow.log_metric(name, value, step=step)
    summary = evaluation.summary()
    log_metric_table(summary.xs("mean", axis=1, level=1))
    spread = {
        f"test_{scorer}_{metric}_std": float(value)
        for scorer, row in summary.xs("std", axis=1, level=1).iterrows()
        for metric, value in row.items()
        if pd.notna(value)
    }
    if spread:
        mlflow.log_metrics(spread)
    with tempfile.TemporaryDirectory() as tmp:
        folds = pd.concat({f.label: f.metrics for f in evaluation.folds}, names=["fold", "scorer"])
        path = Path(tmp) / f"{evaluation.kind}_metrics.csv"
        folds.to_csv(path)
        mlflow.log_artifact(str(path))


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


#: Characters of a dataset digest MLflow stores.
DIGEST_CHARS = 36
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
    version = churnlens_version()
    mlflow.set_tag(VERSION_TAG, version)
    return version


def log_tuning(tuning: Any) -> None:
    """A :class:`~churnlens.training.tune.TuningResult` in the parent run: the best parameters
    (``tuned.<name>``), their validation AUC, the study and every trial as a table."""
    from churnlens.training.tune import SEARCH_SPACE

    mlflow.log_params({f"tuned.{k}": getattr(tuning.params, k) for k in SEARCH_SPACE})
    mlflow.log_params({"tuning.best_trial": tuning.best_trial, "tuning.study": tuning.study_name,
                       "tuning.storage": tuning.storage})  # fmt: skip
    mlflow.log_metrics({"tuning_best_validation_roc_auc": tuning.best_value,
                        "tuning_trials_total": float(len(tuning.trials)),
                        "tuning_trials_pruned": float(tuning.pruned)})  # fmt: skip
    trials = tuning.trials.copy()
    for column in trials.columns:  # timestamps and enums as text: the table is JSON
        if not pd.api.types.is_numeric_dtype(trials[column]):
            trials[column] = trials[column].astype(str)
    mlflow.log_table(trials, "tuning_trials.json")


def log_training_input(frame: pd.DataFrame, *, digest: str, source: str | None, name: str = "training_set") -> None:
    """``mlflow.log_input`` of the training set: its schema and row count, and the data
    fingerprint's hash as the dataset digest (its first 36 hex digits, the length MLflow stores):
    the same tables give the same digest."""
    with warnings.catch_warnings():  # MLflow registers two equivalent sources for local paths and says so
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple ways")
        dataset = mlflow.data.from_pandas(frame, source=source, name=name, digest=digest[:DIGEST_CHARS])
        # MLflow infers the schema value by value in Python (24 s of a 98 s run on 190k rows x 76
        # columns); a few rows with the same dtypes and missing values give the same schema.
        dataset.__dict__["schema"] = mlflow.data.from_pandas(schema_rows(frame), source=source).schema
    mlflow.log_input(dataset, context="training")


def schema_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The first row, plus for each column with a missing value one row where it is missing.

    MLflow's dataset schema depends only on each column's type and on whether it has missing
    values (``required``), so these rows have the schema of the whole frame.
    """
    missing = frame.isna().to_numpy()
    rows = {0} if len(frame) else set()
    rows.update(int(np.argmax(column)) for column in missing.T if column.any())
    return frame.iloc[sorted(rows)]


def log_churn_model(model: ChurnModel, example: pd.DataFrame) -> str:
    """Log the pyfunc model with signature and input example, then its SHA-256 manifest.

    The manifest (:data:`churnlens.model_store.MANIFEST_FILE`) lists the digest of every file of
    the logged model as stored, so serving can refuse a directory changed afterwards.

    Returns
    -------
    str
        The logged model's URI (``models:/m-...``).
    """
    from churnlens.training.packaging import churnlens_wheel

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


@dataclass(frozen=True)
class ModelEvidence:
    """What the registry knows of a model when deciding.

    Attributes
    ----------
    trained_through : Timestamp or None
        The last day of the latest label window the model learnt from (None: unknown).
    evaluation : str or None
        ``backtest`` or ``grouped_cv``.
    evaluation_auc : float or None
        Mean ROC AUC of its method over its evaluation's origins or folds.
    evaluation_folds : tuple of str
        Those origins' test cutoffs (or fold names).
    """

    trained_through: pd.Timestamp | None
    evaluation: str | None = None
    evaluation_auc: float | None = None
    evaluation_folds: tuple[str, ...] = ()


@dataclass(frozen=True)
class HeadToHead:
    """Challenger and champion on the same customers and labels, none of which either trained on.

    ``cutoffs`` are the challenger's backtest origins whose test window starts after the
    champion's ``trained_through``; ``challenger_auc`` is the mean ROC AUC there of the
    challenger's method replayed at each origin, ``champion_auc`` the champion's own.
    """

    cutoffs: tuple[str, ...]
    challenger_auc: float
    champion_auc: float


@dataclass(frozen=True)
class OriginTest:
    """A backtest origin's test rows and the challenger's ROC AUC on them."""

    test_cutoff: pd.Timestamp
    X: pd.DataFrame
    y: np.ndarray
    challenger_auc: float
    #: Builds the test customers' snapshot with another model's feature configuration (a champion
    #: trained on other windows has other features), when the run's data is at hand.
    snapshot: Callable[[FeatureConfig], pd.DataFrame] | None = None

    def rows_for(self, model: ChurnModel) -> pd.DataFrame:
        """The test rows with ``model``'s features: ``X``, or the customers' snapshot rebuilt."""
        if set(model.metadata.features) <= set(self.X.columns) or self.snapshot is None:
            return self.X
        ids = self.X.index.get_level_values("customer_id")
        return self.snapshot(feature_config_of(model)).reindex(ids)


def _day(ts: pd.Timestamp | None) -> str:
    return "unknown" if ts is None else str(pd.Timestamp(ts).date())


def promotion_decision(
    challenger: ModelEvidence,
    champion: ModelEvidence | None,
    head_to_head: HeadToHead | None,
    *,
    champion_version: str = "?",
) -> tuple[str, str]:
    """Should the new version become ``champion``? Returns (alias, reason).

    The rule, in order:

    1. No champion yet: the new version is champion.
    2. A head-to-head exists (the challenger's backtest has origins whose test window starts
       after the champion's last training label): on those customers and labels the
       challenger's method, replayed at each origin with only the labels matured by then,
       and the champion are both truly out of time. The challenger wins unless its mean
       ROC AUC there is lower than the champion's; a tie goes to the challenger, which is the
       fresher of the two.
    3. Otherwise no fair comparison on held-out labels exists: every label the challenger
       could be scored on, the champion trained on (or the champion cannot score the data).
       A challenger trained through a later day wins by default: it has seen the labels
       closest to the customers it will score, and the champion cannot be judged fairly.
       (A champion that recorded no ``trained_through`` counts as staler.)
    4. Both trained through the same day (same history, another configuration): the
       challenger wins only if its evaluation's mean ROC AUC is strictly higher on the same
       origins or folds; an identical retrain does not displace the champion.
    5. A challenger trained through an earlier day than the champion stays challenger.

    Why it is fair: no model is ever scored on labels it was trained on. The refit model
    has learnt every matured label, so its own held-out evidence is its method's backtest;
    the champion is scored only on test windows after its training labels. Judging a fresh
    refit on a test cutoff it trained on would flatter it; judging the champion on labels it
    trained on would flatter the champion, and requiring a fresher model to beat a stale
    one on the stale one's terms would keep shipping old labels.
    """
    if champion is None:
        return CHAMPION, "first registered version"
    new_day, old_day = challenger.trained_through, champion.trained_through
    if head_to_head is not None:
        where = f"on {len(head_to_head.cutoffs)} backtest origin(s) after champion v{champion_version}'s training " \
                f"labels ({', '.join(head_to_head.cutoffs)})"
        if head_to_head.challenger_auc >= head_to_head.champion_auc:
            return CHAMPION, (f"ROC AUC {head_to_head.challenger_auc:.4f} vs {head_to_head.champion_auc:.4f} {where}: "
                              "not worse, and fresher")
        return CHALLENGER, (f"ROC AUC {head_to_head.challenger_auc:.4f} is below champion's "
                            f"{head_to_head.champion_auc:.4f} {where}")
    if new_day is not None and (old_day is None or new_day > old_day):
        return CHAMPION, (f"fresher: trained through {_day(new_day)}, champion v{champion_version} through "
                          f"{_day(old_day)}; no held-out labels to compare them on, so the fresher model wins")
    if new_day is not None and old_day is not None and new_day == old_day:
        comparable = (challenger.evaluation == champion.evaluation
                      and challenger.evaluation_folds == champion.evaluation_folds
                      and challenger.evaluation_auc is not None and champion.evaluation_auc is not None)
        if not comparable:
            return CHALLENGER, (f"trained through the same day as champion v{champion_version} "
                                f"({_day(new_day)}) but evaluated on other origins or folds: no fair comparison")
        new_auc, old_auc = challenger.evaluation_auc, champion.evaluation_auc
        if new_auc > old_auc:
            return CHAMPION, (f"evaluation ROC AUC {new_auc:.4f} beats champion v{champion_version} ({old_auc:.4f}) "
                              f"on the same {challenger.evaluation} folds, same training history")
        return CHALLENGER, (f"evaluation ROC AUC {new_auc:.4f} does not beat champion v{champion_version} "
                            f"({old_auc:.4f}) on the same {challenger.evaluation} folds, same training history")
    return CHALLENGER, (f"staler: trained through {_day(new_day)}, champion v{champion_version} through "
                        f"{_day(old_day)}")


def _evidence_from_tags(tags: dict[str, str]) -> ModelEvidence:
    auc = tags.get("evaluation_roc_auc")
    through = tags.get("trained_through")
    folds = tags.get("evaluation_folds")
    return ModelEvidence(
        trained_through=pd.Timestamp(through) if through else None,
        evaluation=tags.get("evaluation"),
        evaluation_auc=float(auc) if auc else None,
        evaluation_folds=tuple(folds.split(",")) if folds else (),
    )


def _head_to_head(model: ChurnModel, champion: ModelEvidence, origins: list[OriginTest]) -> HeadToHead | None:
    """The champion (``model``) re-scored on the origins whose test window starts after its training labels."""
    if champion.trained_through is None:
        return None
    fair = [o for o in origins if pd.Timestamp(o.test_cutoff) > champion.trained_through]
    if not fair:
        return None
    champion_aucs = [float(roc_auc_score(o.y, model.predict_proba(o.rows_for(model)))) for o in fair]
    return HeadToHead(
        cutoffs=tuple(str(pd.Timestamp(o.test_cutoff).date()) for o in fair),
        challenger_auc=float(np.mean([o.challenger_auc for o in fair])),
        champion_auc=float(np.mean(champion_aucs)),
    )


@holding_store_lock
def register_and_promote(
    model_uri: str,
    model_name: str,
    *,
    evidence: ModelEvidence,
    origins: list[OriginTest],
) -> RegistryDecision:
    """Register ``model_uri``, then move ``champion`` to it or tag it ``challenger`` (:func:`promotion_decision`).

    The new version's evidence is stored as version tags (``trained_through``,
    ``evaluation``, ``evaluation_roc_auc``, ``evaluation_folds``) for later decisions. The
    champion is re-scored on ``origins`` whose test window starts after its own
    ``trained_through``; a champion that cannot score them (other features) gives no
    head-to-head.
    The champion is read as data (:func:`churnlens.model_store.read_model_dir`); one that serving
    would refuse (no manifest, tampered) is replaced. The whole function, "read champion →
    compare → move alias" included, is one critical section under the embedded store's file
    lock (:func:`churnlens.tracking.holding_store_lock`): two trainings finishing together
    cannot both see the old champion and the weaker one win.
    """
    client = MlflowClient()
    version = mlflow.register_model(model_uri, model_name).version
    tags = {
        "trained_through": _day(evidence.trained_through),
        "evaluation": evidence.evaluation or "",
        # full precision: an identical retrain must compare equal, not win on rounding
        "evaluation_roc_auc": "" if evidence.evaluation_auc is None else repr(float(evidence.evaluation_auc)),
        "evaluation_folds": ",".join(evidence.evaluation_folds)[:5000],
        "test_roc_auc": "" if evidence.evaluation_auc is None else f"{evidence.evaluation_auc:.6f}",
        VERSION_TAG: churnlens_version(),
    }
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    try:
        current = client.get_model_version_by_alias(model_name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        current = None
    champion, head_to_head, note = None, None, ""
    if current is not None:
        champion = _evidence_from_tags(dict(current.tags))
        try:
            # read as data, never through its code file; always, so a champion serving would refuse is replaced
            champion_model = read_model_version(model_name, str(current.version))
            head_to_head = _head_to_head(champion_model, champion, origins)
        except ModelStoreError as exc:  # serving refuses that champion too (no manifest, tampered): replace it
            champion, note = None, f"champion v{current.version} cannot be served ({exc}); replaced"
        except Exception as exc:  # noqa: BLE001 - a champion that cannot score this data gives no head-to-head
            note = f" (champion v{current.version} could not score the backtest origins: {exc})"
    if current is not None and champion is None:
        alias, reason, note = CHAMPION, note, ""
    else:
        alias, reason = promotion_decision(evidence, champion, head_to_head,
                                           champion_version=str(current.version) if current is not None else "?")
    decision = RegistryDecision(str(version), alias, reason + note,
                                head_to_head.champion_auc if head_to_head is not None else None)
    client.set_registered_model_alias(model_name, decision.alias, version)
    client.set_model_version_tag(model_name, version, "registry_decision", decision.reason[:5000])
    return decision


def read_model_version(model_name: str, version: str) -> ChurnModel:
    """A registered version read as data (manifest-checked booster and JSON), never through pyfunc."""
    with tempfile.TemporaryDirectory() as tmp:
        stored = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model_name}/{version}", dst_path=tmp)
        return read_model_dir(stored)


def list_model_versions(model_name: str) -> pd.DataFrame:
    """Versions of a registered model with aliases, what they were trained through, how they were
    evaluated and their evaluation's mean metrics, newest first."""
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
                "trained_through": v.tags.get("trained_through", ""),
                "evaluation": v.tags.get("evaluation", ""),
                "roc_auc": metrics.get("test_model_roc_auc"),
                "pr_auc": metrics.get("test_model_pr_auc"),
                "ece": metrics.get("test_model_ece"),
                "oracle_ratio": metrics.get("test_model_oracle_ratio"),
            }
        )
    if not rows:
        return pd.DataFrame(rows)
    return pd.DataFrame(rows).sort_values("version", ascending=False).reset_index(drop=True)
