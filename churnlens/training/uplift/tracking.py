"""MLflow side of ``train-uplift``: settings, figures, plots, the model as data, and the registry rule.

A new uplift version becomes ``champion`` only when its Qini coefficient on the held-out
campaigns beats the current champion's on the same rows; a champion fitted on those campaigns
(or that cannot score them) is never judged on them: the new version is then ``challenger``
unless the champion cannot be served at all. The same rule as the churn model's
(:func:`churnlens.training.mlflow_log.register_and_promote`), with the Qini coefficient for the
ROC AUC.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
from matplotlib.figure import Figure  # figures without pyplot: no backend chosen for the user
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema

from churnlens.config import ChurnConfig
from churnlens.data.tables import Tables
from churnlens.model_store import ModelStoreError
from churnlens.tracking import configure_mlflow, holding_store_lock
from churnlens.training.fingerprint import data_fingerprint
from churnlens.training.mlflow_log import (
    CHALLENGER,
    CHAMPION,
    ensure_experiment,
    log_config,
    log_manifest,
    pip_requirements,
    signature_frame,
)
from churnlens.uplift.metrics import qini_coefficient
from churnlens.uplift.model import UPLIFT_MODEL_CODE, UpliftModel, uplift_column

if TYPE_CHECKING:
    from churnlens.training.uplift.dataset import UpliftData
    from churnlens.training.uplift.evaluate import RankingEvaluation
    from churnlens.training.uplift.pipeline import UpliftTrainingResult


@dataclass(frozen=True)
class UpliftRegistryDecision:
    """Outcome of registering an uplift model."""

    version: str
    alias: str
    reason: str
    champion_qini: float | None


# --------------------------------------------------------------------------- plots


def plot_qini(evaluation: RankingEvaluation, path: Path) -> Path:
    """Qini curves of the uplift, churn-probability and random rankings on the held-out rows."""
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    for name, curve in evaluation.curves.items():
        ax.plot(curve.share * 100, curve.qini, label=f"{name} (Qini {evaluation.qini[name]:.4f})")
    ax.axhline(0, c="grey", lw=0.5)
    ax.set(xlabel="customers targeted (% of held-out, by ranking)", ylabel="churners kept / customers",
           title=f"Qini curve — {evaluation.name}, held-out campaigns")  # fmt: skip
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_deciles(evaluation: RankingEvaluation, path: Path) -> Path:
    """Observed uplift by decile of the predicted uplift, with its 95 % intervals, and the prediction."""
    d = evaluation.deciles
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    if len(d):
        low = (d["uplift"] - d["uplift_low"]).clip(lower=0).fillna(0)
        high = (d["uplift_high"] - d["uplift"]).clip(lower=0).fillna(0)
        ax.bar(d["decile"], d["uplift"] * 100, yerr=[low * 100, high * 100], capsize=3, color="#4c78a8",
               label="observed (control - treated churn), 95 % interval")  # fmt: skip
        ax.plot(d["decile"], d["predicted"] * 100, "o-", c="#f58518", label="predicted (mean)")
    ax.axhline(0, c="grey", lw=0.5)
    ax.set(xlabel="decile of predicted uplift (1 = highest)", ylabel="uplift (percentage points)",
           title=f"Uplift by decile — {evaluation.name}, held-out campaigns")  # fmt: skip
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


# --------------------------------------------------------------------------- model


def uplift_signature(model: UpliftModel) -> ModelSignature:
    """Every feature required (categoricals as strings), one double output per action."""
    meta = model.metadata
    levels = meta.categorical_levels
    inputs = Schema([ColSpec("string" if f in levels else "double", f) for f in meta.features])
    outputs = Schema([ColSpec("double", uplift_column(a)) for a in meta.actions])
    return ModelSignature(inputs=inputs, outputs=outputs)


def log_uplift_model(model: UpliftModel, example: Any) -> str:
    """Log the uplift pyfunc (models from code, no pickle) and its SHA-256 manifest; return its URI."""
    meta = model.metadata
    with tempfile.TemporaryDirectory() as tmp:
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(UPLIFT_MODEL_CODE), artifacts=model.save_artifacts(tmp),
            signature=uplift_signature(model),
            input_example=signature_frame(example, list(meta.features), meta.categorical_levels),
            pip_requirements=pip_requirements(),
        )  # fmt: skip
    log_manifest(info.model_id, info.model_uri)
    return info.model_uri


def read_uplift_version(model_name: str, version: str) -> UpliftModel:
    """A registered uplift version read as data (manifest-checked), never through pyfunc."""
    from churnlens.uplift.store import read_uplift_dir

    with tempfile.TemporaryDirectory() as tmp:
        stored = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model_name}/{version}", dst_path=tmp)
        return read_uplift_dir(stored)


def pooled_qini(model: UpliftModel, data: UpliftData, mask: np.ndarray, actions: list[str]) -> float:
    """Qini coefficient of ``model`` on the rows of ``mask`` whose action is in ``actions`` (each row
    ranked by the uplift of its own action)."""
    action_of = data.rows["action"].astype(str).to_numpy()
    rows = np.flatnonzero(mask & np.isin(action_of, actions))
    if rows.size == 0:
        return float("nan")
    X = model.matrix(data.features.iloc[rows])
    score = np.zeros(rows.size)
    for action in actions:
        here = action_of[rows] == action
        score[here] = model.uplift_of_matrix(X[here], action)
    r = data.rows.iloc[rows]
    return qini_coefficient(score, r["treated"].to_numpy(dtype=bool), r["churned"].to_numpy())


@holding_store_lock
def register_uplift(
    model_uri: str,
    model_name: str,
    *,
    evaluated: UpliftModel,
    data: UpliftData,
    test_mask: np.ndarray,
    test_campaigns: list[str],
) -> UpliftRegistryDecision:
    """Register ``model_uri``; move ``champion`` to it only if its held-out Qini beats the champion's.

    The new model is judged by ``evaluated`` (fitted without the held-out campaigns); the
    champion is re-scored on the same rows (the actions both learnt). One critical section under
    the store's lock, like the churn model's rule.
    """
    client = MlflowClient()
    version = str(mlflow.register_model(model_uri, model_name).version)
    try:
        current = client.get_model_version_by_alias(model_name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        current = None
    new_qini = pooled_qini(evaluated, data, test_mask, evaluated.actions)
    client.set_model_version_tag(model_name, version, "test_qini", f"{new_qini:.6f}")
    client.set_model_version_tag(model_name, version, "test_campaigns", ",".join(test_campaigns))
    if current is None:
        decision = UpliftRegistryDecision(version, CHAMPION, "first registered version", None)
    else:
        try:
            champion = read_uplift_version(model_name, str(current.version))
        except ModelStoreError as exc:
            decision = UpliftRegistryDecision(
                version, CHAMPION, f"champion v{current.version} cannot be served ({exc}); replaced", None
            )
        else:
            seen = sorted(set(champion.metadata.fit_campaigns) & set(test_campaigns))
            shared = [a for a in evaluated.actions if a in champion.actions]
            if seen:
                decision = UpliftRegistryDecision(
                    version, CHALLENGER, f"champion v{current.version} was fitted on the held-out campaigns "
                    f"{', '.join(seen)}: no fair comparison, it keeps its alias", None,
                )  # fmt: skip
            elif not shared:
                decision = UpliftRegistryDecision(
                    version, CHALLENGER, f"champion v{current.version} learnt none of {evaluated.actions}", None
                )
            else:
                try:
                    champion_qini = pooled_qini(champion, data, test_mask, shared)
                    ours = pooled_qini(evaluated, data, test_mask, shared)
                except Exception as exc:  # noqa: BLE001 - any failure to re-score keeps the champion
                    decision = UpliftRegistryDecision(
                        version, CHALLENGER, f"champion v{current.version} could not score this test set: {exc}", None
                    )
                else:
                    beats = ours > champion_qini
                    verb = "beats" if beats else "does not beat"
                    decision = UpliftRegistryDecision(
                        version, CHAMPION if beats else CHALLENGER,
                        f"held-out Qini {ours:.5f} {verb} champion v{current.version} ({champion_qini:.5f})",
                        champion_qini,
                    )  # fmt: skip
    client.set_registered_model_alias(model_name, decision.alias, version)
    client.set_model_version_tag(model_name, version, "registry_decision", decision.reason[:5000])
    return decision


# --------------------------------------------------------------------------- the run


def log_run(
    result: UpliftTrainingResult,
    data: UpliftData,
    tables: Tables,
    config: ChurnConfig,
    *,
    experiment: str,
    model_name: str,
    tracking_uri: str | None,
    scratch: Path,
) -> None:
    """Log settings, data fingerprint, split, figures, tables and plots; log and register the model.

    Fills ``result``'s run id, model URI, version, alias, registry reason and tracking URI.
    """
    uri = configure_mlflow(tracking_uri)
    campaign_of = data.rows["campaign_id"].astype(str)
    test_mask = campaign_of.isin(result.split.test).to_numpy()
    with mlflow.start_run(experiment_id=ensure_experiment(experiment, uri)) as run:
        log_config({"features": asdict(config.features), "labels": asdict(config.labels),
                    "uplift": config.uplift.to_dict()})  # fmt: skip
        fingerprint = data_fingerprint(tables)
        mlflow.log_dict(fingerprint, "data_fingerprint.json")
        mlflow.set_tags({"data.hash": fingerprint["hash"], "data.start": fingerprint["start"],
                         "data.end": fingerprint["end"]})  # fmt: skip
        mlflow.log_params({
            "split.train_campaigns": ",".join(result.split.train), "split.test_campaigns": ",".join(result.split.test),
            "split.purged_campaigns": ",".join(result.split.purged) or "-", "actions": ",".join(result.actions),
            "skipped_actions": ",".join(result.skipped) or "-", "label_mode": data.label_mode,
            "horizon_days": data.horizon_days,
        })  # fmt: skip
        mlflow.log_metrics({f"rows_{k}": float(v) for k, v in result.rows.items()})
        metrics = {k: v for ev in result.evaluations for k, v in ev.metrics().items()}
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items()})
        campaigns = data.campaigns.astype(str).to_dict(orient="records")
        mlflow.log_dict({"skipped": result.skipped, "notes": result.notes, "campaigns": campaigns}, "campaigns.json")
        mlflow.log_dict({"evaluations": [ev.to_dict() for ev in result.evaluations]}, "evaluation.json")
        plots = scratch / "plots"
        plots.mkdir(parents=True, exist_ok=True)
        for ev in result.evaluations:
            plot_qini(ev, plots / f"qini_{ev.name}.png")
            plot_deciles(ev, plots / f"uplift_by_decile_{ev.name}.png")
            ev.deciles.to_csv(plots / f"uplift_by_decile_{ev.name}.csv", index=False)
        mlflow.log_artifacts(str(plots), "plots")
        model_uri = log_uplift_model(result.model, data.features.head(5))
        evaluated = result.extra.get("evaluated_model", result.model)
        decision = register_uplift(
            model_uri, model_name, evaluated=evaluated, data=data, test_mask=test_mask,
            test_campaigns=list(result.split.test),
        )  # fmt: skip
        mlflow.set_tags({"registry.version": decision.version, "registry.alias": decision.alias})
    result.run_id = run.info.run_id
    result.model_uri = model_uri
    result.model_name = model_name
    result.model_version = decision.version
    result.alias = decision.alias
    result.registry_reason = decision.reason
    result.tracking_uri = uri
