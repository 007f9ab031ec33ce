"""``churnlens train-uplift`` end to end: campaigns -> rows -> per-action learners -> held-out evaluation
-> MLflow -> registry.

1. Rows of every matured campaign (:func:`~churnlens.training.uplift.dataset.build_uplift_data`).
2. The latest ``[uplift] test_campaigns`` campaigns are held out; earlier campaigns whose outcome
   window ends before the first held-out send are the training campaigns (the others are purged,
   so no training label overlaps the test period).
3. An action is learnt only with at least ``min_treated`` treated and ``min_control`` control
   customers in the training campaigns; the others are skipped, with the reason.
4. The learner (``[uplift] learner``) is fitted per action on the training campaigns and
   evaluated on the held-out ones: Qini coefficient, AUUC and uplift by decile of its ranking,
   beside a random ordering and a ranking by churn probability (a LightGBM churn classifier
   fitted on the same training rows, treated and control).
5. With ``refit`` the model registered is fitted again on every matured campaign; it records
   the campaigns it was fitted on, so the promotion rule never judges it on them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnlens.config import ChurnConfig, UpliftSettings
from churnlens.data.tables import Tables
from churnlens.errors import InputError
from churnlens.features import CATALOG_VERSION
from churnlens.model import feature_matrix
from churnlens.training.uplift.dataset import UpliftData, build_uplift_data
from churnlens.training.uplift.evaluate import RankingEvaluation, evaluate_rankings, summary_table
from churnlens.training.uplift.learners import FittedUplift, fit_booster, fit_learner
from churnlens.uplift.model import UpliftModel

Progress = Callable[[str, int, int], None]


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Schema:
    """Features in order and categorical levels: the matrix every model of the run is fitted on."""

    features: list[str]
    categorical_levels: dict[str, list[str]]

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Schema:
        levels = {
            c: [str(v) for v in frame[c].cat.categories]
            for c in frame.columns
            if isinstance(frame[c].dtype, pd.CategoricalDtype)
        }
        return cls(list(frame.columns), levels)

    @property
    def categorical(self) -> list[int]:
        return [j for j, f in enumerate(self.features) if f in self.categorical_levels]

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        return feature_matrix(frame, {"features": self.features, "categorical_levels": self.categorical_levels})


# --------------------------------------------------------------------------- split and thresholds


@dataclass(frozen=True)
class CampaignSplit:
    """Campaign ids held out (``test``), learnt from (``train``) and purged (their outcome overlaps the test)."""

    train: list[str]
    test: list[str]
    purged: list[str]


def split_campaigns(data: UpliftData, settings: UpliftSettings) -> CampaignSplit:
    """The latest ``settings.test_campaigns`` campaigns with rows are held out (see the module docstring).

    Raises
    ------
    InputError
        Fewer matured campaigns than held-out ones plus one to learn from.
    """
    campaigns = data.campaigns[data.campaigns["matured"] & (data.campaigns["rows"] > 0)]
    needed = int(settings.test_campaigns) + 1
    if len(campaigns) < needed:
        raise InputError(
            f"train-uplift needs at least {needed} matured campaigns ({settings.test_campaigns} held out to evaluate "
            f"out of time, and one or more to learn from); the contacts table has {len(campaigns)}"
            f" matured ({', '.join(campaigns['campaign_id']) or 'none'}) — see [uplift] test_campaigns"
        )
    test = campaigns.tail(int(settings.test_campaigns))
    first_test = pd.Timestamp(test["send"].min())
    earlier = campaigns.iloc[: len(campaigns) - len(test)]
    clean = earlier["outcome_end"] <= first_test
    train, purged = earlier[clean], earlier[~clean]
    if train.empty:
        raise InputError(
            f"every campaign before the held-out ones ({', '.join(test['campaign_id'])}, first sent "
            f"{first_test.date()}) has its outcome window overlapping them: nothing to learn from out of time"
        )
    return CampaignSplit(list(train["campaign_id"]), list(test["campaign_id"]), list(purged["campaign_id"]))


def learnable_actions(
    rows: pd.DataFrame, settings: UpliftSettings, *, where: str
) -> tuple[list[str], dict[str, str]]:
    """Actions of ``rows`` with enough treated and control customers, and why the others are skipped."""
    counts = rows.groupby(rows["action"].astype(str))["treated"].agg(treated="sum", total="size")
    learnt, skipped = [], {}
    for action, row in counts.sort_index().iterrows():
        treated, control = int(row["treated"]), int(row["total"] - row["treated"])
        if treated >= settings.min_treated and control >= settings.min_control:
            learnt.append(str(action))
        else:
            skipped[str(action)] = (
                f"{treated:,} treated and {control:,} control customers in {where}; an uplift model needs at least "
                f"{settings.min_treated:,} treated and {settings.min_control:,} control ([uplift] min_treated, "
                "min_control)"
            )
    return learnt, skipped


# --------------------------------------------------------------------------- fitting


def fit_actions(
    data: UpliftData, mask: np.ndarray, actions: list[str], schema: Schema, settings: UpliftSettings,
    *, progress: Callable[[int, int], None] | None = None,
) -> dict[str, FittedUplift]:
    """The learner fitted per action on the rows of ``mask``."""
    X = schema.matrix(data.features)[mask]
    r = data.rows[mask]
    if progress is not None:
        progress(0, 1)
    out = fit_learner(
        settings.learner, X, r["churned"].to_numpy(), r["treated"].to_numpy(dtype=bool),
        r["action"].astype(str).to_numpy(), r["propensity"].to_numpy(), r["customer_id"].astype(str).to_numpy(),
        actions, settings, features=schema.features, categorical=schema.categorical,
    )  # fmt: skip
    if progress is not None:
        progress(1, 1)
    return out


def fit_churn_ranker(data: UpliftData, mask: np.ndarray, schema: Schema, settings: UpliftSettings) -> Any:
    """The churn-probability baseline: a LightGBM churn classifier on the same rows, treated and control."""
    X = schema.matrix(data.features)
    return fit_booster(
        X[mask], data.rows.loc[mask, "churned"].to_numpy(dtype="float64"), settings,
        features=schema.features, categorical=schema.categorical, objective="binary",
    )  # fmt: skip


def evaluate_fitted(
    predict: Callable[[str, np.ndarray], np.ndarray],
    churn_probability: np.ndarray,
    data: UpliftData,
    mask: np.ndarray,
    actions: list[str],
    schema: Schema,
    settings: UpliftSettings,
) -> list[RankingEvaluation]:
    """Each action's held-out rows (``mask``) ranked by ``predict(action, X)``, then all of them pooled.

    ``churn_probability`` is the baseline score of every row of ``data``.
    """
    X = schema.matrix(data.features)
    action_of = data.rows["action"].astype(str).to_numpy()
    pooled_rows, pooled_scores = [], []
    out = []
    for action in actions:
        rows = np.flatnonzero(mask & (action_of == action))
        if rows.size == 0:
            continue
        score = predict(action, X[rows])
        r = data.rows.iloc[rows]
        out.append(evaluate_rankings(
            action, score, churn_probability[rows], r["treated"].to_numpy(dtype=bool), r["churned"].to_numpy(),
            bins=settings.deciles, seed=settings.seed,
        ))  # fmt: skip
        pooled_rows.append(rows)
        pooled_scores.append(score)
    if pooled_rows:
        rows = np.concatenate(pooled_rows)
        r = data.rows.iloc[rows]
        out.append(evaluate_rankings(
            "overall", np.concatenate(pooled_scores), churn_probability[rows], r["treated"].to_numpy(dtype=bool),
            r["churned"].to_numpy(), bins=settings.deciles, seed=settings.seed,
        ))  # fmt: skip
    return out


def reference_medians(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Medians of the numeric columns (the "median customer" of reason sentences)."""
    out = {}
    for column in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[column].dtype) and not pd.api.types.is_bool_dtype(frame[column].dtype):
            values = pd.to_numeric(frame[column], errors="coerce")
            if values.notna().any():
                out[column] = {"median": float(values.median())}
    return out


def build_model(
    fitted: dict[str, FittedUplift],
    schema: Schema,
    *,
    data: UpliftData,
    mask: np.ndarray,
    settings: UpliftSettings,
    config: ChurnConfig,
    model_name: str,
    fit_campaigns: list[str],
    test_campaigns: list[str],
    skipped: dict[str, str],
    test_metrics: dict[str, float],
    tables: list[str],
) -> UpliftModel:
    """The :class:`UpliftModel` of fitted learners, with everything serving needs in its metadata."""
    from dataclasses import asdict

    fit_ends = data.campaigns.loc[data.campaigns["campaign_id"].isin(fit_campaigns), "outcome_end"]
    through = (pd.Timestamp(fit_ends.max()) - pd.Timedelta(microseconds=1)).date() if len(fit_ends) else None
    metadata = {
        "features": schema.features,
        "categorical_levels": schema.categorical_levels,
        "actions": list(fitted),
        "components": {},
        "learner": settings.learner,
        "model_name": model_name,
        "catalog_version": CATALOG_VERSION,
        "label_mode": data.label_mode,
        "horizon_days": data.horizon_days,
        "feature_config": asdict(config.features),
        "tables": tables,
        "fit_campaigns": list(fit_campaigns),
        "test_campaigns": list(test_campaigns),
        "trained_through": None if through is None else str(through),
        "trained_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "skipped": dict(skipped),
        "reference": reference_medians(data.features[mask]),
        "test_metrics": dict(test_metrics),
        "settings": settings.to_dict(),
    }
    return UpliftModel.from_parts({a: f.components for a, f in fitted.items()}, metadata)


# --------------------------------------------------------------------------- the run


@dataclass
class UpliftTrainingResult:
    """What ``train-uplift`` did: rows, split, actions learnt and skipped, figures, registry decision."""

    model: UpliftModel
    split: CampaignSplit
    actions: list[str]
    skipped: dict[str, str]
    evaluations: list[RankingEvaluation]
    notes: list[str]
    rows: dict[str, int]
    run_id: str | None = None
    model_uri: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    alias: str | None = None
    registry_reason: str | None = None
    tracking_uri: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> pd.DataFrame:
        """:func:`~churnlens.training.uplift.evaluate.summary_table` of the evaluations."""
        return summary_table(self.evaluations)

    def evaluation(self, name: str) -> RankingEvaluation:
        return next(e for e in self.evaluations if e.name == name)


def fit_and_evaluate(
    data: UpliftData,
    *,
    config: ChurnConfig,
    model_name: str,
    tables: list[str],
    progress: Progress | None = None,
) -> UpliftTrainingResult:
    """Steps 2 to 5 of the module docstring, without MLflow (the benchmark calls this directly)."""
    settings = config.uplift
    step = progress or (lambda stage, done, total: None)
    split = split_campaigns(data, settings)
    campaign_of = data.rows["campaign_id"].astype(str)
    train = campaign_of.isin(split.train).to_numpy()
    test = campaign_of.isin(split.test).to_numpy()
    where = "the training campaigns " + ", ".join(split.train)
    actions, skipped = learnable_actions(data.rows[train], settings, where=where)
    if not actions:
        raise InputError(
            "no action has enough randomised customers to learn its uplift: "
            + "; ".join(f"{a}: {why}" for a, why in skipped.items())
        )
    schema = Schema.of(data.features[train | test])
    fitted = fit_actions(data, train, actions, schema, settings, progress=lambda d, t: step("learning", d, t))
    step("evaluating", 0, 1)
    ranker = fit_churn_ranker(data, train & data.rows["action"].astype(str).isin(actions).to_numpy(), schema, settings)
    churn_probability = ranker.predict(schema.matrix(data.features)) if len(data.rows) else np.zeros(0)
    evaluations = evaluate_fitted(
        lambda action, X: fitted[action].predict(X), churn_probability, data, test, actions, schema, settings
    )
    step("evaluating", 1, 1)
    metrics = {k: v for ev in evaluations for k, v in ev.metrics().items()}
    fit_mask, fit_campaigns = train, list(split.train)
    common = dict(settings=settings, config=config, model_name=model_name, test_campaigns=list(split.test),
                  skipped=skipped, test_metrics=metrics, tables=tables)  # fmt: skip
    evaluated = build_model(fitted, schema, data=data, mask=train, fit_campaigns=sorted(split.train), **common)
    model = evaluated
    if settings.refit:
        fit_mask = train | test | campaign_of.isin(split.purged).to_numpy()
        fit_campaigns = [*split.train, *split.purged, *split.test]
        fitted = fit_actions(data, fit_mask, actions, schema, settings, progress=lambda d, t: step("refitting", d, t))
        model = build_model(fitted, schema, data=data, mask=fit_mask, fit_campaigns=sorted(fit_campaigns), **common)
    rows = {"train": int(train.sum()), "test": int(test.sum()), "fit": int(fit_mask.sum())}
    notes = list(data.notes)
    if split.purged:
        notes.append(
            f"campaigns {', '.join(split.purged)} left out of the learning for evaluation: their outcome windows "
            f"overlap the held-out campaigns {', '.join(split.test)}"
            + (" (refit on them afterwards)" if settings.refit else "")
        )
    return UpliftTrainingResult(model, split, actions, skipped, evaluations, notes, rows,
                                extra={"evaluated_model": evaluated})  # fmt: skip


def train_uplift(
    tables: Tables,
    *,
    config: ChurnConfig | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    model_name: str | None = None,
    log: bool = True,
    progress: Progress | None = None,
) -> UpliftTrainingResult:
    """Learn the uplift of each action from past randomised campaigns, evaluate, log and register.

    Parameters
    ----------
    tables : Tables
        Validated tables with a ``contacts`` table of past campaigns (treatment and control).
    config : ChurnConfig, optional
        ``[features]``, ``[labels]`` (horizon, label mode) and ``[uplift]``.
    tracking_uri : str, optional
        MLflow store (see :func:`churnlens.tracking.resolve_tracking_uri`).
    experiment, model_name : str, optional
        Default ``churnlens-uplift`` both.
    log : bool
        Log to MLflow and register (False: fit and evaluate only).
    progress : callable(stage, done, total), optional

    Returns
    -------
    UpliftTrainingResult

    Raises
    ------
    InputError
        No contacts, too few matured campaigns, or no action with enough randomised customers.
    """
    from churnlens.tracking import DEFAULT_UPLIFT_EXPERIMENT, DEFAULT_UPLIFT_MODEL_NAME

    config = config or ChurnConfig()
    settings = config.uplift
    model_name = model_name or DEFAULT_UPLIFT_MODEL_NAME
    step = progress or (lambda stage, done, total: None)
    horizon = int(settings.horizon_days or config.labels.horizon_days)
    data = build_uplift_data(
        tables, features=config.features, horizon_days=horizon, mode=config.labels.mode,
        progress=lambda d, t: step("features", d, t),
    )  # fmt: skip
    config = replace(config, labels=replace(config.labels, horizon_days=horizon, mode=data.label_mode))
    result = fit_and_evaluate(data, config=config, model_name=model_name, tables=sorted(tables.present()),
                              progress=step)  # fmt: skip
    if not log:
        return result
    from churnlens.training.uplift.tracking import log_run

    step("logging", 0, 1)
    with tempfile.TemporaryDirectory() as tmp:
        log_run(result, data, tables, config, experiment=experiment or DEFAULT_UPLIFT_EXPERIMENT,
                model_name=model_name, tracking_uri=tracking_uri, scratch=Path(tmp))  # fmt: skip
    step("logging", 1, 1)
    return result
