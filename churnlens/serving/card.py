"""One-page explanation card per customer: HTML with an inline waterfall chart of contributions.

The card is self-contained (the chart is an inline base64 PNG, the style inline), every text
is HTML-escaped, and all wording exists in English and French.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnlens.config import ScoringSettings
from churnlens.i18n import Words
from churnlens.model import ChurnModel
from churnlens.serving.core import explain_rows, score_rows
from churnlens.serving.explain import shap_contributions
from churnlens.serving.output import atomic_write

#: Features drawn individually in the waterfall; the rest are summed into one bar.
CHART_FEATURES = 8

WORDS = {
    "en": {
        "title": "Churn risk explanation",
        "customer": "Customer",
        "probability": "Churn probability",
        "band": "Risk band",
        "value": "Customer value",
        "var": "Value at risk",
        "why": "Why this customer may leave",
        "no_reason": "No factor raises this customer's risk above the typical customer.",
        "chart": "What moves this customer's score",
        "typical": "Typical customer",
        "this": "This customer",
        "others": "{n} other factors",
        "axis": "Effect on the churn score (log-odds; right = more risk)",
        "cutoff": "Data before",
        "model": "Model",
        "horizon": "Churn within {h} days",
        "high": "high",
        "medium": "medium",
        "low": "low",
        "note": "Factors are the customer's features with the largest SHAP contributions: how much each one "
        "moves the model's score away from the typical customer's. Red bars raise the risk, blue bars "
        "lower it. A factor is an association the model learned, not a proven cause.",
        "contribution": "effect",
    },
    "fr": {
        "title": "Explication du risque d'attrition",
        "customer": "Client",
        "probability": "Probabilité de départ",
        "band": "Niveau de risque",
        "value": "Valeur client",
        "var": "Valeur à risque",
        "why": "Pourquoi ce client risque de partir",
        "no_reason": "Aucun facteur n'élève le risque de ce client au-dessus du client type.",
        "chart": "Ce qui fait bouger le score de ce client",
        "typical": "Client type",
        "this": "Ce client",
        "others": "{n} autres facteurs",
        "axis": "Effet sur le score de départ (log-odds ; à droite = plus de risque)",
        "cutoff": "Données antérieures au",
        "model": "Modèle",
        "horizon": "Départ dans les {h} jours",
        "high": "élevé",
        "medium": "moyen",
        "low": "faible",
        "note": "Les facteurs sont les caractéristiques du client dont la contribution SHAP est la plus "
        "forte : "
        "de combien chacune éloigne le score de celui du client type. Les barres rouges augmentent le "
        "risque, les bleues le réduisent. Un facteur est une association apprise par le modèle, pas une "
        "cause démontrée.",
        "contribution": "effet",
    },
}
BAND_COLOURS = {"high": "#c0392b", "medium": "#e67e22", "low": "#27ae60"}
UP, DOWN = "#d64541", "#3b7dd8"


@dataclass
class CustomerExplanation:
    """Everything a card shows about one customer.

    ``contributions`` are SHAP values in log-odds by feature; ``base_value`` plus their sum is
    ``margin``; ``probability`` is the calibrated probability of ``margin`` and
    ``typical_probability`` that of ``base_value``.
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

    @property
    def value_at_risk(self) -> float | None:
        if self.customer_value is None or np.isnan(self.customer_value):
            return None
        return self.probability * max(self.customer_value, 0.0)


def _labels(model: ChurnModel, snapshot: pd.DataFrame, lang: str) -> pd.Series:
    """Chart label per feature: its description and the customer's value as shown in sentences."""
    from churnlens.features.catalog import format_value, spec_for

    row = snapshot.iloc[0]
    out = {}
    for name in model.features:
        try:
            spec = spec_for(name)
            description, unit = spec.short(lang), spec.unit
        except KeyError:
            description, unit = name, "number"
        value = row.get(name)
        try:
            shown = "—" if pd.isna(value) else format_value(value, unit, lang, name=name)
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
        The snapshot's cutoff, as shown on the card.
    settings : ScoringSettings, optional
        Language, reasons and bands; ``**options`` set fields on top (``lang="fr"``).
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
    contributions = shap_contributions(model, row)
    margin = float(contributions.to_numpy().sum())
    base = float(contributions["base_value"].iloc[0])
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
        contributions=contributions.drop(columns="base_value").iloc[0],
        labels=_labels(model, row, settings.lang),
        reasons=explain_rows(model, row, settings),
        model_name=model_name,
        model_version=model_version,
        horizon_days=model.metadata.horizon_days,
    )


def _chart_label(label: object, lang: str = "en", width: int = 46) -> str:
    """A feature's description on at most two lines, then its value (never cut off)."""
    import textwrap

    if not isinstance(label, tuple):
        return str(label)
    description, shown = label
    sep = " :" if lang == "fr" else ":"
    lines = textwrap.wrap(str(description), width) or [""]
    if len(lines) > 2:
        lines = [lines[0], textwrap.shorten(" ".join(lines[1:]), width, placeholder="…")]
    return "\n".join(lines) + f"{sep} {shown}"


def _signed(value: float, lang: str) -> str:
    text = f"{value:+.2f}"
    return text.replace(".", ",") if lang == "fr" else text


def waterfall_png(explanation: CustomerExplanation, *, top: int = CHART_FEATURES) -> bytes:
    """Waterfall of contributions (typical customer -> largest effects -> this customer) as PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    words = WORDS[explanation.lang]
    contrib = explanation.contributions.astype("float64")
    strongest = contrib.abs().sort_values(ascending=False, kind="stable").index[:top]
    rest = contrib.drop(strongest)
    steps = [(explanation.labels.get(f, f), float(contrib[f])) for f in strongest]
    if len(rest):
        steps.append((words["others"].format(n=len(rest)), float(rest.sum())))
    start = explanation.base_value
    fig_h = 1.2 + 0.55 * (len(steps) + 2)
    fig, ax = plt.subplots(figsize=(9.5, fig_h), dpi=110)
    y = len(steps) + 1
    pct = lambda p: f"{100 * p:.0f}%" if explanation.lang == "en" else f"{100 * p:.0f} %"  # noqa: E731
    ax.barh(y, 0, left=start, color="#888")
    ax.plot([start, start], [y - 0.35, y + 0.35], color="#444", lw=2)
    labels = [f"{words['typical']} ({pct(explanation.typical_probability)})"]
    ticks = [y]
    cum = start
    for label, value in steps:
        y -= 1
        ax.barh(y, value, left=cum, color=UP if value > 0 else DOWN, height=0.6)
        ax.text(
            cum + value + (0.02 if value >= 0 else -0.02),
            y,
            _signed(value, explanation.lang),
            va="center",
            ha="left" if value >= 0 else "right",
            fontsize=8,
            color="#333",
        )
        ax.plot([cum, cum], [y + 0.3, y + 0.7], color="#bbb", lw=0.8)
        cum += value
        labels.append(_chart_label(label, explanation.lang))
        ticks.append(y)
    y -= 1
    ax.plot([cum, cum], [y - 0.35, y + 0.35], color="#111", lw=3)
    labels.append(f"{words['this']} ({pct(explanation.probability)})")
    ticks.append(y)
    ax.set_yticks(ticks, labels, fontsize=8.5)
    for tick in ax.get_yticklabels()[:1] + ax.get_yticklabels()[-1:]:
        tick.set_fontweight("bold")
    ax.axvline(start, color="#999", lw=0.8, ls="--")
    ax.set_xlabel(words["axis"], fontsize=9)
    lo, hi = ax.get_xlim()
    pad = 0.08 * (hi - lo)
    ax.set_xlim(lo - pad, hi + pad)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _money(value: float | None, lang: str) -> str:
    from churnlens.i18n import Words

    if value is None or np.isnan(value):
        return "—"
    return Words(lang).money(value)


_STYLE = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#222;max-width:960px;
margin:24px auto;padding:0 16px;line-height:1.45}
h1{font-size:22px;margin:0 0 4px}.sub{color:#666;font-size:13px;margin-bottom:18px}
.kpis{display:flex;gap:14px;flex-wrap:wrap;margin-bottom:18px}
.kpi{border:1px solid #ddd;border-radius:8px;padding:10px 16px;min-width:150px}
.kpi .l{font-size:12px;color:#666;text-transform:uppercase;letter-spacing:.03em}
.kpi .v{font-size:26px;font-weight:600}
.band{display:inline-block;color:#fff;border-radius:12px;padding:2px 12px;font-size:18px;font-weight:600}
h2{font-size:17px;margin:18px 0 8px}ol.reasons{padding-left:22px;margin:0}
ol.reasons li{margin:6px 0;font-size:16px}
.eff{color:#888;font-size:12px;margin-left:6px}img{max-width:100%;border:1px solid #eee;border-radius:6px}
.note{color:#666;font-size:12px;margin-top:14px}
"""


def _kpi(label: str, value_html: str) -> str:
    label_html = f'<div class="l">{html.escape(label)}</div>'
    return f'<div class="kpi">{label_html}<div class="v">{value_html}</div></div>'


def render_card(explanation: CustomerExplanation) -> str:
    """The explanation card as a self-contained HTML page (all text escaped)."""
    lang = explanation.lang
    words = WORDS[lang]
    e = html.escape
    pct = f"{100 * explanation.probability:.0f}{' %' if lang == 'fr' else '%'}"
    band_word = words.get(explanation.risk_band, explanation.risk_band)
    colour = BAND_COLOURS.get(explanation.risk_band, "#555")
    items = (
        "".join(
            f'<li>{e(str(r.text))}<span class="eff">({e(Words(lang).points(r.effect))})</span></li>'
            for r in explanation.reasons.itertuples()
        )
        or f"<li>{e(words['no_reason'])}</li>"
    )
    chart = base64.b64encode(waterfall_png(explanation)).decode("ascii")
    version = f" v{explanation.model_version}" if explanation.model_version else ""
    horizon = words["horizon"].format(h=explanation.horizon_days) if explanation.horizon_days else ""
    sub = " · ".join(
        x
        for x in (
            f"{words['cutoff']} {explanation.cutoff}",
            horizon,
            f"{words['model']} {explanation.model_name}{version}",
        )
        if x
    )
    return f"""<!DOCTYPE html>
<html lang="{e(lang)}"><head><meta charset="utf-8">
<title>{e(words["title"])} — {e(explanation.customer_id)}</title>
<style>{_STYLE}</style></head>
<body>
<h1>{e(words["title"])} — {e(words["customer"])} {e(explanation.customer_id)}</h1>
<div class="sub">{e(sub)}</div>
<div class="kpis">
{_kpi(words["probability"], e(pct))}
{_kpi(words["band"], f'<span class="band" style="background:{colour}">{e(band_word)}</span>')}
{_kpi(words["value"], e(_money(explanation.customer_value, lang)))}
{_kpi(words["var"], e(_money(explanation.value_at_risk, lang)))}
</div>
<h2>{e(words["why"])}</h2>
<ol class="reasons">{items}</ol>
<h2>{e(words["chart"])}</h2>
<img alt="{e(words["chart"])}" src="data:image/png;base64,{chart}">
<p class="note">{e(words["note"])}</p>
</body></html>
"""


def write_card(explanation: CustomerExplanation, path: str | Path) -> Path:
    """Write the card's HTML to ``path`` atomically."""
    text = render_card(explanation)
    return atomic_write(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


__all__ = ["CustomerExplanation", "explain_customer", "render_card", "waterfall_png", "write_card"]
