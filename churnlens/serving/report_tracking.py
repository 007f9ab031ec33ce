"""Campaign reports in MLflow: logged as monitoring runs, and read back as the measured save rate.

A report is a run of the experiment :data:`MONITORING_EXPERIMENT`, tagged
``churnlens.kind = campaign_report`` with the campaign id, its send date and the model that
scored its list; its metrics are the overall and per-action effects (``uplift``,
``save_rate``, their ``_low`` / ``_high`` bounds, ``<action>.uplift`` ...) and the model's
realised quality (``roc_auc``); its artifacts the JSON and HTML reports. The model version
that scored the campaign gets a tag ``campaign_report.<campaign id>`` = the run id, so the
registry links each version to the reports of the campaigns it scored.

``[serving] save_rate = "measured"`` reads the campaign report of the latest campaign (by
send date, then by when the report ran): :func:`resolve_save_rate`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from churnlens.config import MEASURED, ScoringSettings
from churnlens.errors import InputError
from churnlens.serving.campaign_report import CampaignReport
from churnlens.tracking import configure_mlflow, ensure_experiment

MONITORING_EXPERIMENT = "churnlens-monitoring"
KIND_TAG = "churnlens.kind"
REPORT_KIND = "campaign_report"
CAMPAIGN_TAG = "churnlens.campaign_id"
SEND_DATE_TAG = "churnlens.send_date"
#: Reports read when looking for the latest one.
_SEARCHED = 1000


def report_metrics(report: CampaignReport) -> dict[str, float]:
    """The report's figures as MLflow metrics (finite values only)."""
    metrics: dict[str, float] = {}
    names = (
        "uplift", "uplift_low", "uplift_high", "save_rate", "save_rate_low", "save_rate_high", "saved_value",
        "saved_value_low", "saved_value_high", "cost", "roi", "churn_treated", "churn_control",
    )  # fmt: skip
    for effect in report.effects:
        prefix = "" if effect.action == "overall" else f"{effect.action}."
        metrics[f"{prefix}treated"] = float(effect.treated)
        metrics[f"{prefix}control"] = float(effect.control)
        for name in names:
            metrics[f"{prefix}{name}"] = float(getattr(effect, name))
    if report.quality is not None:
        metrics["roc_auc"] = float(report.quality.roc_auc)
        metrics["roc_auc_control"] = float(report.quality.auc_control)
        metrics["observed_churn"] = float(report.quality.churn_rate)
        metrics["mean_predicted_churn"] = float(report.quality.mean_predicted)
    return {k: v for k, v in metrics.items() if math.isfinite(v)}


def log_campaign_report(
    report: CampaignReport,
    files: dict[str, Path],
    *,
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """Log the report as a monitoring run and link it to the model version that scored the campaign.

    Parameters
    ----------
    report : CampaignReport
    files : dict of str to Path
        The written report files (logged as artifacts).
    tracking_uri : str, optional
        The store (``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``).

    Returns
    -------
    dict
        ``run_id``, ``experiment``, and ``linked``: the model version tagged, or why not.
    """
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = configure_mlflow(tracking_uri)
    experiment = ensure_experiment(MONITORING_EXPERIMENT, uri)
    model = report.model or {}
    tags = {
        KIND_TAG: REPORT_KIND,
        CAMPAIGN_TAG: report.campaign_id,
        SEND_DATE_TAG: report.send_date,
        "churnlens.label_mode": report.label_mode,
    }
    for key in ("name", "version", "run_id", "resolved_uri"):
        if model.get(key):
            tags[f"churnlens.model_{key}"] = str(model[key])
    with mlflow.start_run(experiment_id=experiment, run_name=f"campaign-report {report.campaign_id}") as run:
        mlflow.set_tags(tags)
        mlflow.log_params({
            "campaign_id": report.campaign_id, "send_date": report.send_date, "horizon_days": report.horizon_days,
            "label_mode": report.label_mode, "value_source": report.value_source.text("en")[:500],
            "cost_source": report.cost_source.text("en")[:500],
        })  # fmt: skip
        mlflow.log_metrics(report_metrics(report))
        for path in files.values():
            mlflow.log_artifact(str(path))
        run_id = run.info.run_id
    linked = "no model recorded for this campaign (pass --list with the scored list)"
    if model.get("name") and model.get("version"):
        client = MlflowClient()
        try:
            client.set_model_version_tag(str(model["name"]), str(model["version"]),
                                         f"campaign_report.{report.campaign_id}", run_id)  # fmt: skip
            linked = f"model {model['name']} version {model['version']} tagged campaign_report.{report.campaign_id}"
        except MlflowException as exc:
            linked = f"model {model['name']} version {model['version']} not found in {uri}: not linked ({exc.message})"
    elif model.get("name"):
        linked = f"model {model['name']} was loaded from {model.get('uri')}, not a registry version: not linked"
    return {"run_id": run_id, "experiment": MONITORING_EXPERIMENT, "linked": linked}


def latest_report(tracking_uri: str | None = None) -> Any | None:
    """The run of the latest campaign report (latest send date, then latest run), or None."""
    from mlflow.tracking import MlflowClient

    configure_mlflow(tracking_uri)
    client = MlflowClient()
    found = client.get_experiment_by_name(MONITORING_EXPERIMENT)
    if found is None:
        return None
    runs = client.search_runs(
        [found.experiment_id], f"tags.`{KIND_TAG}` = '{REPORT_KIND}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=_SEARCHED,
    )  # fmt: skip
    if not runs:
        return None
    return max(runs, key=lambda r: (r.data.tags.get(SEND_DATE_TAG, ""), r.info.start_time))


def measured_save_rate(tracking_uri: str | None = None) -> dict[str, Any]:
    """The save rate the latest campaign report measured, its 95 % interval and per-action rates.

    Raises
    ------
    InputError
        No campaign report in the store, or a report without a measured save rate.
    """
    from churnlens.tracking import resolve_tracking_uri

    run = latest_report(tracking_uri)
    store = resolve_tracking_uri(tracking_uri)
    if run is None:
        raise InputError(
            f'[serving] save_rate = "{MEASURED}" but the tracking store {_masked(store)} has no campaign report: '
            "run churnlens campaign-report on a sent campaign first, or give the save rate as a number"
        )
    metrics, tags = run.data.metrics, run.data.tags
    campaign = tags.get(CAMPAIGN_TAG, "?")
    if "save_rate" not in metrics:
        raise InputError(
            f"the latest campaign report (campaign {campaign}, run {run.info.run_id}) measured no save rate "
            "(an action without both groups, or no churner in the control group): give the save rate as a number"
        )
    per_action = {}
    for key, value in metrics.items():
        if key.endswith(".save_rate"):
            action = key.removesuffix(".save_rate")
            per_action[action] = {
                "value": value, "low": metrics.get(f"{action}.save_rate_low"),
                "high": metrics.get(f"{action}.save_rate_high"),
            }  # fmt: skip
    return {
        "value": metrics["save_rate"],
        "low": metrics.get("save_rate_low"),
        "high": metrics.get("save_rate_high"),
        "campaign_id": campaign,
        "send_date": tags.get(SEND_DATE_TAG),
        "run_id": run.info.run_id,
        "per_action": dict(sorted(per_action.items())),
    }


def resolve_save_rate(settings: ScoringSettings, *, tracking_uri: str | None = None) -> ScoringSettings:
    """``settings`` with ``save_rate = "measured"`` resolved from the latest campaign report (else unchanged)."""
    if settings.save_rate != MEASURED:
        return settings
    return replace(settings, measured_save_rate=measured_save_rate(tracking_uri))


def _masked(uri: str) -> str:
    """A store URI without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return uri
