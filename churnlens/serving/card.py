"""One-page explanation card per customer, from the Jinja2 templates the web app uses too.

:func:`explain_customer` scores and explains one customer through the scoring core;
:func:`render_card` turns that into a self-contained HTML page (style inline, the waterfall
and the timeline as inline SVG, every text escaped by Jinja2's autoescape) in English or
French. The web app's customer page includes the very same ``card_body.html`` template.
Effects are shown in percentage points of churn probability, never in log-odds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnlens.config import ScoringSettings
from churnlens.i18n import Words
from churnlens.model import ChurnModel
from churnlens.serving.actions import reason_family, suggest_actions
from churnlens.serving.core import explain_rows, score_rows, value_at_risk
from churnlens.serving.explain import probability_effects, shap_contributions
from churnlens.serving.output import atomic_write
from churnlens.serving.render import render
from churnlens.serving.timeline import Timeline
from churnlens.serving.waterfall import CHART_FEATURES, Waterfall, waterfall


@dataclass
class CustomerExplanation:
    """Everything a card shows about one customer.

    ``contributions`` are SHAP values in log-odds by feature; ``base_value`` plus their sum is
    ``margin``; ``probability`` is the calibrated probability of ``margin`` and
    ``typical_probability`` (the average customer's risk) that of ``base_value``. ``effects``
    are the contributions as changes of churn probability
    (:func:`~churnlens.serving.explain.probability_effects`): they add up to
    ``probability - typical_probability``.
    """

    customer_id: str
    cutoff: str
    lang: str
    probability: float
    typical_probability: float
    risk_band: str
    customer_value: float | None
    base_value: float
    margin: float
    contributions: pd.Series
    labels: pd.Series
    reasons: pd.DataFrame
    model_name: str
    model_version: str | None
    horizon_days: int | None
    effects: pd.Series
    currency: str = "EUR"
    trained_through: str | None = None
    #: the first retention action rule that fits this customer (its label), and the rule's name
    action: str | None = None
    action_rule: str | None = None

    @property
    def value_at_risk(self) -> float | None:
        if self.customer_value is None or np.isnan(self.customer_value):
            return None
        return self.probability * max(self.customer_value, 0.0)

    @property
    def chart_order(self) -> list[str]:
        """Features in the order the waterfall adds them: largest absolute contribution first."""
        contrib = self.contributions.astype("float64")
        return list(contrib.index[np.argsort(-np.abs(contrib.to_numpy()), kind="stable")])

    @property
    def top_family(self) -> str | None:
        """Family of the strongest reason (None without reasons)."""
        if self.reasons.empty:
            return None
        first = self.reasons.sort_values("rank").iloc[0]
        return reason_family(str(first["feature"]))


def _labels(model: ChurnModel, snapshot: pd.DataFrame, lang: str) -> pd.Series:
    """Chart label per feature: its description and the customer's value as shown in sentences."""
    from churnlens.features.catalog import format_value, spec_for

    row = snapshot.iloc[0]
    out = {}
    for name in model.features:
        try:
            spec = spec_for(name)
            description, unit = spec.description(lang), spec.unit
        except KeyError:
            description, unit = name, "number"
        value = row.get(name)
        try:
            shown = "—" if pd.isna(value) else format_value(value, unit, lang)
        except (TypeError, ValueError, OverflowError):
            shown = str(value)
        out[name] = (description, shown)
    return pd.Series(out, dtype=object)


def explain_customer(
    model: ChurnModel,
    snapshot: pd.DataFrame,
    customer_id: str,
    *,
    cutoff: str,
    settings: ScoringSettings | None = None,
    customer_value: float | None = None,
    model_name: str = "churnlens",
    model_version: str | None = None,
    **options: Any,
) -> CustomerExplanation:
    """Score and explain one customer of a snapshot, through the scoring core.

    Parameters
    ----------
    model : ChurnModel
    snapshot : DataFrame
        A snapshot holding the customer (index customer_id).
    customer_id : str
    cutoff : str
        The snapshot's cutoff (ISO date), as shown on the card.
    settings : ScoringSettings, optional
        Language, reasons, bands and currency; ``**options`` set fields on top (``lang="fr"``).
    customer_value : float, optional
    model_name, model_version : str

    Raises
    ------
    KeyError
        When ``customer_id`` is not in ``snapshot`` (callers say why: see
        :func:`churnlens.serving.rejects.find_rejects`).
    """
    settings = (settings or ScoringSettings()).override(**options)
    if customer_id not in snapshot.index:
        raise KeyError(f"customer {customer_id!r} is not in the scored snapshot")
    row = snapshot.loc[[customer_id]]
    scored = score_rows(model, row, settings)
    reasons = explain_rows(model, row, settings)
    probability = float(scored["churn_probability"].iloc[0])
    value = np.nan if customer_value is None else float(customer_value)
    suggested = suggest_actions(
        settings.actions,
        pd.DataFrame({
            "customer_id": pd.array([str(customer_id)], dtype="string"), "churn_probability": [probability],
            "risk_band": pd.array([str(scored["risk_band"].iloc[0])], dtype="string"), "customer_value": [value],
            "value_at_risk": [value_at_risk(np.array([probability]), np.array([value]))[0]],
        }),
        row, reasons, lang=settings.lang,
    ).iloc[0]  # fmt: skip
    contributions = shap_contributions(model, row)
    parts = contributions.drop(columns="base_value")
    margin = float(contributions.to_numpy().sum())
    base = float(contributions["base_value"].iloc[0])
    effects = probability_effects(
        parts.to_numpy(dtype="float64"), np.array([base]), model.calibrator.transform
    )[0]
    return CustomerExplanation(
        customer_id=str(customer_id),
        cutoff=str(cutoff),
        lang=settings.lang,
        probability=float(scored["churn_probability"].iloc[0]),
        typical_probability=float(model.calibrator.transform(np.array([base]))[0]),
        risk_band=str(scored["risk_band"].iloc[0]),
        customer_value=None if customer_value is None else float(customer_value),
        base_value=base,
        margin=margin,
        contributions=parts.iloc[0],
        labels=_labels(model, row, settings.lang),
        reasons=reasons,
        model_name=model_name,
        model_version=model_version,
        horizon_days=model.metadata.horizon_days,
        effects=pd.Series(effects, index=parts.columns),
        currency=settings.currency,
        trained_through=model.metadata.trained_through,
        action=None if pd.isna(suggested["action_label"]) else str(suggested["action_label"]),
        action_rule=None if pd.isna(suggested["action_rule"]) else str(suggested["action_rule"]),
    )


def chart_of(explanation: CustomerExplanation, *, top: int = CHART_FEATURES) -> Waterfall:
    """The waterfall of an explanation (probability effects, largest contribution first)."""
    e = explanation
    return waterfall(
        average=e.typical_probability, probability=e.probability,
        effects={k: float(v) for k, v in e.effects.items()},
        labels={k: tuple(v) for k, v in e.labels.items() if isinstance(v, tuple)},
        order=e.chart_order, fmt=Words(e.lang, e.currency), top=top,
    )  # fmt: skip


def card_context(explanation: CustomerExplanation, *, timeline: Timeline | None = None) -> dict[str, Any]:
    """What ``card_body.html`` needs: the explanation, its chart, its suggested action, texts.

    Parameters
    ----------
    explanation : CustomerExplanation
    timeline : Timeline, optional
        The customer's last 12 months (:func:`churnlens.serving.timeline.customer_timeline`).
    """
    e = explanation
    fmt = Words(e.lang, e.currency)
    t = Words(e.lang)
    family = e.top_family
    reasons = [
        {"text": str(r.text), "effect": fmt.points(getattr(r, "effect", float("nan")))}
        for r in e.reasons.sort_values("rank").itertuples()
    ]
    return {
        "card": e,
        "fmt": fmt,
        "t": t,
        "reasons": reasons,
        "chart": chart_of(e),
        "timeline": timeline,
        "action": e.action,
        "action_family": t(f"family_{family}") if family else None,
    }


def render_card(explanation: CustomerExplanation, *, timeline: Timeline | None = None) -> str:
    """The explanation card as a self-contained HTML page (style inline, charts as inline SVG)."""
    return render("card_page.html", **card_context(explanation, timeline=timeline))


def waterfall_svg(explanation: CustomerExplanation) -> str:
    """The card's waterfall alone, as an SVG element."""
    e = explanation
    return render("waterfall.svg", chart=chart_of(e), fmt=Words(e.lang, e.currency), t=Words(e.lang))


def write_card(explanation: CustomerExplanation, path: str | Path, *, timeline: Timeline | None = None) -> Path:
    """Write the card's HTML to ``path`` atomically."""
    text = render_card(explanation, timeline=timeline)
    return atomic_write(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


__all__ = [
    "CustomerExplanation",
    "card_context",
    "chart_of",
    "explain_customer",
    "render_card",
    "waterfall_svg",
    "write_card",
]
