"""When a scheduled run retrains, and the one place it calls training.

The rule (:func:`retrain_decision`): retrain when there is no champion; when the model records no
"trained through" day (older models); when at least ``[pipeline] min_new_label_days`` days of new
labels have matured since that day; or when the champion is ``[pipeline] retrain_every_days``
old. "Labels matured through" is the last day whose outcome the data has observed. The newest
registered version counts as well as the champion, so a challenger that did not beat the
champion is not retrained again on the same labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from churnlens.config import ChurnConfig, PipelineSettings
from churnlens.data.tables import Tables
from churnlens.features import observed_until

#: Version tag holding the last label day a registered model was trained with.
TRAINED_THROUGH_TAG = "trained_through"
CHAMPION = "champion"


@dataclass(frozen=True)
class ModelState:
    """A registered version as the retraining rule sees it."""

    version: str
    trained_through: pd.Timestamp | None
    trained_at: pd.Timestamp | None


@dataclass(frozen=True)
class RetrainDecision:
    """Whether to retrain, and why (one sentence)."""

    retrain: bool
    reason: str


def labels_through(tables: Tables) -> pd.Timestamp:
    """The last day whose outcome the data has observed (contact plans aside: a plan is not an observation)."""
    return observed_until(tables.replace(contacts=None)) - pd.Timedelta(days=1)


def _day(value: Any) -> pd.Timestamp | None:
    if value is None or value == "":
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if pd.isna(stamp):
        return None
    return (stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp).normalize()


def retrain_decision(
    champion: ModelState | None,
    newest: ModelState | None,
    *,
    labels_through: pd.Timestamp,
    as_of: pd.Timestamp,
    retrain_every_days: int | None,
    min_new_label_days: int,
) -> RetrainDecision:
    """Apply the retraining rule (module docstring) to the registry's state."""
    if champion is None:
        return RetrainDecision(True, "no champion registered yet")
    through = [s.trained_through for s in (champion, newest) if s is not None and s.trained_through is not None]
    if champion.trained_through is None and not through:
        return RetrainDecision(True, f"champion v{champion.version} records no trained-through day")
    latest = max(through)
    new_days = int((labels_through.normalize() - latest) / pd.Timedelta(days=1))
    if new_days >= max(min_new_label_days, 1):
        return RetrainDecision(True, f"{new_days} days of new labels matured since {latest.date()} "
                                     f"(labels through {labels_through.date()})")  # fmt: skip
    if retrain_every_days is not None and champion.trained_at is not None:
        age = int((as_of.normalize() - champion.trained_at.normalize()) / pd.Timedelta(days=1))
        if age >= retrain_every_days:
            return RetrainDecision(True, f"champion v{champion.version} is {age} days old (retrain_every_days "
                                         f"{retrain_every_days})")  # fmt: skip
    return RetrainDecision(
        False, f"champion v{champion.version} trained through {latest.date()}; labels through "
        f"{labels_through.date()} ({new_days} new day(s), retrain at {max(min_new_label_days, 1)})",
    )  # fmt: skip


def registry_state(model_name: str, tracking_uri: str | None) -> tuple[Any, ModelState | None, ModelState | None]:
    """The champion (loaded, or None), its state, and the newest registered version's state."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from churnlens.serving import load_model
    from churnlens.tracking import configure_mlflow

    configure_mlflow(tracking_uri)
    client = MlflowClient()
    try:
        versions = client.search_model_versions(f"name = '{model_name}'")
    except MlflowException:
        versions = []
    if not versions:
        return None, None, None
    newest_version = max(versions, key=lambda v: int(v.version))
    newest = ModelState(str(newest_version.version), _day(newest_version.tags.get(TRAINED_THROUGH_TAG)),
                        _day(pd.Timestamp(newest_version.creation_timestamp, unit="ms")))  # fmt: skip
    try:
        current = client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None, None, newest
    loaded = load_model(f"models:/{model_name}@{CHAMPION}", tracking_uri=tracking_uri)
    meta = loaded.metadata
    champion = ModelState(
        str(current.version),
        _day(meta.trained_through) or _day(current.tags.get(TRAINED_THROUGH_TAG)),
        _day(meta.trained_at) or _day(pd.Timestamp(current.creation_timestamp, unit="ms")),
    )
    return loaded, champion, newest


def train_champion(tables: Tables, report: Any, cfg: ChurnConfig, pipeline: PipelineSettings) -> Any:
    """Train and register a model on ``tables`` as ``churnlens train`` does (the pipeline's one training call).

    ``[training]`` and ``[labels]`` (the horizon) apply as for ``churnlens train``; training
    records the version's "trained through" day. Returns the training entry point's result.
    """
    from churnlens.training import train_model

    return train_model(
        tables, config=cfg, tracking_uri=pipeline.tracking_uri, experiment=pipeline.experiment,
        model_name=pipeline.model_name, validation_report=report.to_dict(),
    )  # fmt: skip
