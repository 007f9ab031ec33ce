"""What the campaign page shows, formatted for the reader: header facts, table columns and rows, CSV.

Pure functions of a loaded :class:`~churnlens.serving.webapp.campaigns.Campaign`, a
:class:`~churnlens.serving.webapp.campaigns.Query` and the reader's language; the routes only
wire them to templates.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from churnlens.config import REASON_FAMILIES
from churnlens.i18n import Words
from churnlens.serving.webapp.campaigns import BANDS, DEFAULT_DIRECTION, SORT_COLUMNS, Campaign, Query

#: Columns shown as numbers (right-aligned).
NUMERIC = {"rank", "churn_probability", "customer_value", "value_at_risk"}
EXPORT_CHUNK = 50_000


def list_url(campaign: str, query: Query, **changes: Any) -> str:
    """The list's URL for ``query`` with ``changes`` (page, sort ...)."""
    return "/?" + urlencode({"campaign": campaign, **query.params(**changes)})


def customer_url(campaign: str, customer_id: str, query: Query) -> str:
    """A customer's page, carrying the list's query so its back link restores the list."""
    return f"/customer/{quote(customer_id, safe='')}?" + urlencode({"campaign": campaign, **query.params()})


def rule_text(summary: dict[str, Any], fmt: Words, t: Words) -> str:
    """The campaign's targeting rule in the reader's language."""
    rule = summary.get("targeting") or {}
    if summary.get("target") == "uplift":
        if rule.get("budget") is not None:
            return t("rule_uplift_budget", amount=fmt.money(rule["budget"]))
        return t("rule_uplift")
    if rule.get("top") is not None:
        return t("rule_top", n=fmt.integer(rule["top"]))
    if rule.get("threshold") is not None:
        return t("rule_threshold", p=fmt.percent(rule["threshold"]))
    if rule.get("budget") is not None:
        return t("rule_budget", amount=fmt.money(rule["budget"]))
    if rule:
        return t("rule_high")
    return str(summary.get("rule", ""))  # a summary written before rules were recorded


def header(campaign: Campaign, fmt: Words, t: Words) -> dict[str, Any]:
    """Facts (cutoff, model, trained through, horizon) and key figures of a campaign."""
    s = campaign.summary
    economics = s.get("campaign") or {}
    model = str(s.get("model_name", "")) + (f" v{s['model_version']}" if s.get("model_version") else "")
    facts = [(t("cutoff_short"), fmt.date(s.get("cutoff"), "short")), (t("model_short"), model)]
    if s.get("trained_through"):
        facts.append((t("trained_short"), fmt.date(s["trained_through"], "short")))
    if s.get("horizon_days"):
        facts.append((t("horizon_short"), fmt.days(s["horizon_days"])))
    bands = s.get("bands") or {}

    def figure(label: str, value: str, band: str | None = None, note: str | None = None) -> dict[str, Any]:
        return {"label": label, "value": value, "band": band, "note": note}

    figures = [
        figure(t("scored"), fmt.integer(s.get("scored", len(campaign)))),
        *(figure(t(b), fmt.integer(bands.get(b, 0)), band=b) for b in BANDS),
        figure(t("selected_count"), fmt.integer(s.get("selected", int(campaign.selected.sum()))),
               note=rule_text(s, fmt, t)),
        figure(t("expected_cost"), fmt.money(economics.get("expected_cost"))),
        figure(t("saved_value"), fmt.money(economics.get("expected_saved_value"))),
        figure(t("net"), fmt.money(economics.get("expected_net"))),
    ]  # fmt: skip
    uplift = s.get("uplift")
    if uplift:  # --target uplift: the list sent against the one risk targeting would send at the same budget
        for key, label in (("uplift_list", "uplift_list_value"), ("risk_list", "risk_list_value")):
            part = uplift.get(key) or {}
            figures.append(figure(t(label), fmt.money(part.get("expected_incremental_value")),
                                  note=t("list_note", customers=fmt.integer(part.get("contacted", 0)),
                                         cost=fmt.money(part.get("cost")))))  # fmt: skip
    if s.get("rejected"):
        figures.append(figure(t("rejected"), fmt.integer(s["rejected"])))
    return {"facts": facts, "figures": figures}


def columns(campaign: str, query: Query, t: Words) -> list[dict[str, Any]]:
    """The table's header cells: label, sort link, ``aria-sort``."""
    out = []
    for name in SORT_COLUMNS:
        current = query.sort == name
        direction = ("desc" if query.direction == "asc" else "asc") if current else DEFAULT_DIRECTION[name]
        out.append({
            "name": name, "label": t(f"col_{name}"), "numeric": name in NUMERIC,
            "href": list_url(campaign, query, sort=name, direction=direction, page=1),
            "aria_sort": ("ascending" if query.direction == "asc" else "descending") if current else "none",
            "arrow": ("▲" if query.direction == "asc" else "▼") if current else "",
        })  # fmt: skip
    return out


@lru_cache(maxsize=4096)
def _description(feature: str, lang: str) -> str:
    from churnlens.features.catalog import spec_for

    try:
        return spec_for(feature).description(lang)
    except KeyError:
        return feature


def top_reason(campaign: Campaign, row: int, lang: str) -> str | None:
    """The row's top reason: its sentence when the campaign was written in ``lang``, else what it measures."""
    feature = campaign.reason_feature[row]
    if feature is None:
        return None
    text = campaign.reason_text[row]
    if campaign.lang == lang and isinstance(text, str) and text:
        return text
    return _description(str(feature), lang)


def rows(
    campaign: Campaign, positions: np.ndarray, query: Query, fmt: Words, t: Words
) -> list[dict[str, Any]]:
    """The table's rows for the page's row positions, formatted."""
    out = []
    for i in positions.tolist():
        cid = str(campaign.ids[i])
        band = campaign.band[i]
        family = int(campaign.family[i])
        family_name = REASON_FAMILIES[family] if family >= 0 else None
        effect = campaign.reason_effect[i]
        out.append({
            "rank": fmt.integer(campaign.rank[i]),
            "customer_id": cid,
            "href": customer_url(campaign.name, cid, query),
            "probability": fmt.percent(campaign.probability[i], 1, fixed=True),
            "band": BANDS[band] if band >= 0 else None,
            "band_word": t(BANDS[band]) if band >= 0 else "—",
            "value": fmt.money(campaign.value[i]),
            "value_at_risk": fmt.money(campaign.value_at_risk[i]),
            "selected": bool(campaign.selected[i]),
            "reason": top_reason(campaign, i, fmt.lang),
            "reason_effect": None if np.isnan(effect) else fmt.points(effect),
            "family": t(f"family_label_{family_name}") if family_name else None,
            "action": campaign.action[i] if isinstance(campaign.action[i], str) else None,
        })  # fmt: skip
    return out


def export_csv(campaign: Campaign, positions: np.ndarray) -> Iterator[bytes]:
    """The campaign file's own columns for these rows, in this order, as CSV (with its actions when
    it was scored with ``--actions``), plus the top reason's family (``reason_family``); streamed."""
    names = np.array([*REASON_FAMILIES, ""], dtype=object)
    for start in range(0, max(len(positions), 1), EXPORT_CHUNK):
        chunk = positions[start : start + EXPORT_CHUNK]
        family = campaign.family[chunk].astype(np.int64)
        table = campaign.table.take(pa.array(chunk, type=pa.int64()))
        table = table.append_column("reason_family", pa.array(names[family], type=pa.string()))
        buffer = io.BytesIO()
        pa_csv.write_csv(table, buffer, write_options=pa_csv.WriteOptions(include_header=start == 0))
        yield buffer.getvalue()


__all__ = ["columns", "customer_url", "export_csv", "header", "list_url", "rows", "rule_text"]
