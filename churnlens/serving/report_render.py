"""A campaign report as words: table cells, a JSON file and an HTML page (Jinja2, autoescaped).

Every text comes from the Fluent messages (``locales/<lang>/report.ftl``) and every number
from :class:`churnlens.i18n.Words`, in English or French. The HTML page is self-contained
(inline style and SVG, no external resource).
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from churnlens.i18n import Words
from churnlens.serving.campaign_report import CampaignReport
from churnlens.serving.effects import Effect
from churnlens.serving.output import atomic_write

#: Columns of the effects table, in order (message ids of their headers).
EFFECT_COLUMNS = (
    "col-action",
    "col-treated",
    "col-control",
    "col-churn-treated",
    "col-churn-control",
    "col-uplift",
    "col-save-rate",
    "col-saved-value",
    "col-cost",
    "col-roi",
)


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("churnlens", "serving/templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _finite(x: float | None) -> bool:
    return x is not None and isinstance(x, float | int) and math.isfinite(x)


def _interval(words: Words, low: float, high: float, fmt: Any) -> str:
    if not (_finite(low) and _finite(high)):
        return ""
    return words("report-interval", low=fmt(low), high=fmt(high))


def effect_cells(effect: Effect, words: Words) -> dict[str, str]:
    """The formatted cells of one effect row: value and its interval per measured column."""
    measured = effect.measured
    dash = "—"
    name = words("report-overall") if effect.action == "overall" else effect.action

    def pct(x: float) -> str:
        return words.percent(x, 1) if _finite(x) else dash

    def pts(x: float) -> str:
        return words.points(x, 1) if _finite(x) else dash

    def money(x: float) -> str:
        return words.money(x) if _finite(x) else dash

    cells = {
        "col-action": name,
        "col-treated": words.number(effect.treated),
        "col-control": words.number(effect.control),
        "col-churn-treated": pct(effect.churn_treated),
        "col-churn-control": pct(effect.churn_control),
        "col-uplift": pts(effect.uplift) if measured else words("report-not-measured"),
        "col-save-rate": pct(effect.save_rate) if measured else dash,
        "col-saved-value": money(effect.saved_value) if measured else dash,
        "col-cost": money(effect.cost),
        "col-roi": pct(effect.roi) if measured else dash,
    }
    intervals = {
        "col-uplift": _interval(words, effect.uplift_low, effect.uplift_high, pts),
        "col-save-rate": _interval(words, effect.save_rate_low, effect.save_rate_high, pct),
        "col-saved-value": _interval(words, effect.saved_value_low, effect.saved_value_high, money),
        "col-roi": _interval(words, effect.roi_low, effect.roi_high, pct),
    }
    return {**cells, **{f"{k}:interval": v for k, v in intervals.items() if measured}}


def report_texts(report: CampaignReport, lang: str = "en", *, mlflow_run: str | None = None,
                 experiment: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Everything the report says, formatted in ``lang`` (the template's context and the terminal's)."""
    words = Words(lang, money_decimals=0)
    days = report.horizon_days
    texts: dict[str, Any] = {
        "lang": lang,
        "title": words("report-title", campaign=report.campaign_id),
        "sent": words(
            "report-sent", date=words.date(report.send_date), days=days, end=words.date(report.outcome_end),
            data_end=words.date(report.data_end),
        ),  # fmt: skip
        "churn": words(f"report-churn-{report.label_mode}", days=days),
        "effects_title": words("report-effects"),
        "reading": words("report-reading"),
        "headers": [words(c) for c in EFFECT_COLUMNS],
        "columns": list(EFFECT_COLUMNS),
        "rows": [effect_cells(e, words) for e in report.effects],
        "value_source": words("report-value-source", source=report.value_source.text(lang)),
        "cost_source": words("report-cost-source", source=report.cost_source.text(lang)),
        "notes_title": words("report-notes"),
        "notes": [note.text(lang) for note in report.notes],
        "quality_title": words("report-quality"),
        "quality": None,
        "no_quality": words("report-no-quality"),
        "model": None,
        "mlflow": None if mlflow_run is None else words("report-mlflow", run=mlflow_run, experiment=experiment or ""),
    }
    model = report.model or {}
    if model.get("name"):
        texts["model"] = (
            words("report-model", name=model["name"], version=str(model["version"]))
            if model.get("version")
            else words("report-model-unversioned", name=model["name"], uri=str(model.get("uri") or ""))
        )
    q = report.quality
    if q is not None:
        num = (lambda x: words.number(x, 3) if _finite(x) else "—")  # noqa: E731
        texts["quality"] = {
            "population": words(
                "report-quality-population", customers=words.number(q.customers), cutoff=words.date(q.cutoff),
                days=q.horizon_days,
            ),  # fmt: skip
            "facts": [
                (words("quality-auc"), num(q.roc_auc)),
                (words("quality-auc-control", customers=words.number(q.control_customers)), num(q.auc_control)),
                (words("quality-churn"), words.percent(q.churn_rate, 1) if _finite(q.churn_rate) else "—"),
                (words("quality-predicted"), words.percent(q.mean_predicted, 1) if _finite(q.mean_predicted) else "—"),
            ],
            "calibration_title": words("report-calibration"),
            "calibration_headers": [words(c) for c in ("col-decile", "col-customers", "col-predicted", "col-observed")],
            "calibration": [
                {
                    "decile": str(row["decile"]),
                    "customers": words.number(row["customers"]),
                    "predicted": words.percent(row["mean_predicted"], 1),
                    "observed": words.percent(row["observed"], 1),
                    "predicted_share": float(row["mean_predicted"]),
                    "observed_share": float(row["observed"]),
                }
                for row in q.calibration
            ],
        }
    return texts


def render_html(report: CampaignReport, lang: str = "en", *, mlflow_run: str | None = None,
                experiment: str | None = None) -> str:  # fmt: skip
    """The report as a self-contained HTML page (``templates/report.html``, autoescaped)."""
    texts = report_texts(report, lang, mlflow_run=mlflow_run, experiment=experiment)
    return _environment().get_template("report.html").render(**texts)


def report_paths(out: str | Path) -> dict[str, Path]:
    """``<stem>.json`` and ``<stem>.html`` for ``out`` (a stem, or a .json / .html name)."""
    out = Path(out)
    stem = out.with_suffix("") if out.suffix.lower() in (".json", ".html", ".htm") else out
    return {"json": stem.with_name(stem.name + ".json"), "html": stem.with_name(stem.name + ".html")}


def write_report(report: CampaignReport, out: str | Path, lang: str = "en", *, mlflow_run: str | None = None,
                 experiment: str | None = None) -> dict[str, Path]:  # fmt: skip
    """Write the report's JSON and HTML files atomically; returns their paths."""
    paths = report_paths(out)
    record = report.to_dict()
    if mlflow_run is not None:
        record["mlflow"] = {"run_id": mlflow_run, "experiment": experiment}
    text = json.dumps(record, indent=1, ensure_ascii=False)
    atomic_write(paths["json"], lambda tmp: tmp.write_text(text, encoding="utf-8"))
    page = render_html(report, lang, mlflow_run=mlflow_run, experiment=experiment)
    atomic_write(paths["html"], lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return paths
