"""The bilingual feature catalog and reason sentences."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from churnlens.config import FeatureConfig
from churnlens.features import CATALOG_VERSION, catalog_frame, feature_catalog, render_reason, spec_for
from churnlens.features.catalog import FAMILIES, RISK_DIRECTIONS, UNITS, format_value

FIELD = re.compile(r"\{([A-Za-z0-9_]+)\}")
CONFIGS = [
    FeatureConfig(),
    FeatureConfig(windows=(7, 28), downgrade_window_days=60),
    FeatureConfig(windows=(45,)),
]


@pytest.mark.parametrize("config", CONFIGS)
def test_every_entry_is_complete_in_both_languages(config):
    catalog = feature_catalog(config, extra_categoricals=["country"], extra_numerics=["age"])
    assert catalog, "empty catalog"
    for name, spec in catalog.items():
        assert spec.name == name
        assert spec.family in FAMILIES, name
        assert spec.unit in UNITS, name
        assert spec.risk_direction in RISK_DIRECTIONS, name
        assert (spec.unit == "category") == (spec.risk_direction == "category") or spec.unit == "number", name
        for text in (spec.description_en, spec.description_fr, spec.reason_en, spec.reason_fr):
            assert text.strip() and "{w}" not in text and "{s}" not in text and "{l}" not in text, name
        assert spec.description_en != spec.description_fr, name
        en, fr = spec.reason_en.split("||"), spec.reason_fr.split("||")
        assert len(en) == len(fr) >= 2, name
        if spec.unit == "flag":
            assert len(en) == 3, name
        else:
            assert not FIELD.findall(en[-1]) and not FIELD.findall(fr[-1]), (
                f"{name}: last alternative has fields"
            )
        for text in (spec.reason_en, spec.reason_fr):
            for field in FIELD.findall(text):
                assert field in ("value", "ref") or field in catalog, f"{name} uses unknown field {field}"
        assert spec.reason_en != spec.reason_fr, name


def test_names_are_unique_and_windowed():
    catalog = feature_catalog(FeatureConfig(windows=(30, 90, 365)))
    assert {
        "purchase_count_30d",
        "purchase_count_90d",
        "purchase_count_365d",
        "spend_90d",
        "days_since_last_purchase",
        "purchase_gap_mean_days",
        "overdue_ratio",
        "support_complaints_90d",
        "csat_last",
        "nps_category",
        "tier",
        "tier_downgraded_90d",
        "tenure_days",
    } <= set(catalog)
    assert "purchase_count_45d" in feature_catalog(FeatureConfig(windows=(45,)))
    assert "purchase_trend_90d_vs_365d" in catalog
    assert not any(n.startswith("purchase_trend") for n in feature_catalog(FeatureConfig(windows=(45,))))


def test_spec_for_resolves_any_window_and_attributes():
    assert spec_for("purchase_count_60d").description_en == "Number of purchases in the last 60 days"
    assert spec_for("purchase_trend_14d_vs_60d").description_fr == (
        "Rythme d'achat sur les 14 derniers jours divisé par celui des 60 derniers jours"
    )
    assert spec_for("attr_country").family == "profile"
    with pytest.raises(KeyError, match="feature 'favourite_colour' is not in the feature catalog"):
        spec_for("favourite_colour")


def test_reason_with_context_from_the_same_row():
    row = {"days_since_last_purchase": 142.3, "purchase_gap_mean_days": 31.0}
    assert (
        render_reason("days_since_last_purchase", row) == "No purchase for 142 days — usually every 31 days"
    )
    assert render_reason("days_since_last_purchase", row, "fr") == (
        "Aucun achat depuis 142 jours — d'habitude tous les 31 jours"
    )


def test_reason_with_reference_value():
    row = {"spend_90d": 12.0}
    assert render_reason("spend_90d", row, reference={"spend_90d": 85.0}) == (
        "Spent 12 in the last 90 days — typical customer: 85"
    )
    assert render_reason("spend_90d", row, "fr", reference={"spend_90d": 1234.5}) == (
        "A dépensé 12 sur les 90 derniers jours — client type : 1 235"
    )
    assert render_reason("spend_90d", row) == "Spent 12 in the last 90 days"
    # a reference equal to the customer's own value is left out rather than shown as "12 ... 12"
    assert render_reason("spend_90d", row, reference={"spend_90d": 12.0}) == "Spent 12 in the last 90 days"
    assert render_reason("csat_last", {"csat_last": 2.0}, reference={"csat_last": 4.0}) == (
        "Last satisfaction score (CSAT): 2/5 — typical customer: 4/5"
    )


def test_reason_without_context_keeps_the_number():
    row = {"days_since_last_purchase": 1.0, "purchase_gap_mean_days": float("nan")}
    assert render_reason("days_since_last_purchase", row) == "No purchase for 1 day"
    assert render_reason("days_since_last_purchase", row, "fr") == "Aucun achat depuis 1 jour"


@pytest.mark.parametrize("missing", [float("nan"), None, pd.NA])
def test_reason_never_raises_on_missing_values(missing):
    catalog = feature_catalog(FeatureConfig(), extra_categoricals=["country"])
    for name, spec in catalog.items():
        for lang in ("en", "fr"):
            text = render_reason(name, {name: missing}, lang, reference={name: missing})
            assert text == spec.reason_template(lang).split("||")[-1].strip(), name
            assert render_reason(name, {}, lang) == text


def test_reason_for_every_feature_with_values():
    catalog = feature_catalog(FeatureConfig(), extra_categoricals=["country"])
    row = {name: ("gold" if spec.unit == "category" else 3.0) for name, spec in catalog.items()}
    for name in catalog:
        en, fr = render_reason(name, row, "en"), render_reason(name, row, "fr")
        assert en and fr and en != fr, name
        assert "{" not in en + fr and "[" not in en + fr and "nan" not in (en + fr).lower(), name


def test_flags_and_categories():
    assert render_reason("tier_downgraded_90d", {"tier_downgraded_90d": 1.0}) == (
        "Moved down a loyalty tier in the last 90 days"
    )
    assert render_reason("program_enrolled", {"program_enrolled": 0.0}, "fr") == (
        "Pas membre du programme de fidélité"
    )
    assert (
        render_reason("nps_category", {"nps_category": "detractor"}, "fr")
        == "Dernière réponse NPS : détracteur"
    )
    assert render_reason("tier_rank", {"tier_rank": 2.0, "tier": "gold"}) == "Loyalty tier: gold"
    assert render_reason("attr_country", {"attr_country": "FR"}, "fr") == "country : FR"


def test_value_formatting():
    assert format_value(1234567.891, "amount") == "1,234,568"
    assert format_value(12.5, "amount", "fr") == "12,5"
    assert format_value(0.256, "share") == "26%"
    assert format_value(0.256, "share", "fr") == "26 %"
    assert format_value(4.64, "ratio", "fr") == "4,6"
    assert format_value(0.0, "days", "fr") == "0 jour"
    assert format_value(2.0, "days") == "2 days"
    assert format_value(7.5, "minutes") == "7.5 min"
    assert format_value(-3.0, "points") == "-3"


def test_bad_language_is_refused():
    with pytest.raises(ValueError, match="language must be one of en, fr, got 'de'"):
        render_reason("spend_90d", {"spend_90d": 1.0}, "de")
    with pytest.raises(ValueError, match="language must be one of en, fr"):
        catalog_frame(lang="es")


def test_catalog_frame_lists_every_feature():
    frame = catalog_frame(FeatureConfig(), lang="fr")
    assert list(frame.columns) == ["name", "family", "unit", "risk_direction", "description"]
    assert list(frame["name"]) == list(feature_catalog(FeatureConfig()))
    assert frame.set_index("name").loc["spend_30d", "description"] == (
        "Montant dépensé sur les 30 derniers jours, remboursements déduits"
    )
    assert CATALOG_VERSION
    assert not math.isnan(len(frame))
