"""The bilingual feature catalog and its reason sentences: complete, chosen by value, typeset."""

from __future__ import annotations

import re

import pytest

from churnlens.config import FeatureConfig
from churnlens.features import CATALOG_VERSION, catalog_frame, feature_catalog, render_reason, spec_for
from churnlens.features.catalog import FAMILIES, RISK_DIRECTIONS, UNITS, format_value
from churnlens.i18n import NBSP, NNBSP

CONFIGS = [
    FeatureConfig(),
    FeatureConfig(windows=(7, 28), downgrade_window_days=60),
    FeatureConfig(windows=(45,)),
]
#: A plain space before : ; ? ! % or inside « », or an ISO date, is a typography error in French.
FRENCH_TYPO = re.compile(r" [:;?!%»]|« |\b\d{4}-\d{2}-\d{2}\b")


def french_typography_errors(text: str) -> list[str]:
    """Spacing mistakes of a French text (what the web app, cards and outputs must never show)."""
    return FRENCH_TYPO.findall(text)


@pytest.mark.parametrize("config", CONFIGS)
def test_every_entry_is_complete_in_both_languages(config):
    catalog = feature_catalog(config, extra_categoricals=["country"], extra_numerics=["age"])
    assert catalog, "empty catalog"
    for name, spec in catalog.items():
        assert spec.name == name
        assert spec.family in FAMILIES, name
        assert spec.unit in UNITS, name
        assert spec.risk_direction in RISK_DIRECTIONS, name
        assert spec.concept, name
        assert (spec.unit == "category") == (spec.risk_direction == "category") or spec.unit == "number", name
        for lang in ("en", "fr"):
            for text in (spec.description(lang), spec.short(lang), spec.label(lang)):
                assert text.strip() and "{" not in text, (name, lang)
        assert spec.description("en") != spec.description("fr") or spec.column, name


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


def test_concepts_group_windows_of_one_idea():
    assert {spec_for(n).concept for n in ("purchase_count_30d", "purchase_count_365d", "spend_90d")} == {"activity"}
    assert {spec_for(n).concept for n in ("logins_30d", "logins_365d")} == {"program_activity"}
    assert spec_for("attr_country").concept == "attr_country"


def test_spec_for_resolves_any_window_and_attributes():
    assert spec_for("purchase_count_60d").description("en") == "Number of purchases in the last 2\u00a0months"
    assert spec_for("purchase_trend_14d_vs_60d").description("fr") == (
        f"Rythme d'achat sur 14{NBSP}jours divisé par celui sur 2{NBSP}mois"
    )
    assert spec_for("attr_country").family == "profile"
    with pytest.raises(KeyError, match="feature 'favourite_colour' is not in the feature catalog"):
        spec_for("favourite_colour")


#: (feature, row, reference, English, French): edge values worded as a marketer writes.
SENTENCES = [
    (
        "days_since_last_purchase",
        {"days_since_last_purchase": 0},
        None,
        "Last purchase today",
        "Dernier achat aujourd'hui",
    ),
    (
        "days_since_last_purchase",
        {"days_since_last_purchase": 1},
        None,
        "Last purchase yesterday",
        "Dernier achat hier",
    ),
    (
        "days_since_last_purchase",
        {"days_since_last_purchase": 142, "purchase_gap_mean_days": 31},
        None,
        "Last purchase 5\u00a0months ago, usually one every 31\u00a0days",
        f"Dernier achat il y a 5{NBSP}mois, d'habitude un achat tous les 31{NBSP}jours",
    ),
    (
        "days_since_last_purchase",
        {"days_since_last_purchase": 3, "purchase_gap_mean_days": 1},
        None,
        "Last purchase 3\u00a0days ago, usually one every 1\u00a0day",
        f"Dernier achat il y a 3{NBSP}jours, d'habitude un achat tous les 1{NBSP}jour",
    ),
    (
        "tenure_days",
        {"tenure_days": 1530},
        {"tenure_days": 400},
        "Customer for 4\u00a0years (median customer: 13\u00a0months)",
        f"Client depuis 4{NBSP}ans (client médian{NBSP}: 13{NBSP}mois)",
    ),
    (
        "spend_365d",
        {"spend_365d": -174.2},
        None,
        "Returns exceeded purchases in the last 12\u00a0months: €174.20 refunded, net",
        f"Retours supérieurs aux achats sur 12{NBSP}mois{NBSP}: 174,20{NBSP}€ remboursés au net",
    ),
    (
        "spend_365d",
        {"spend_365d": 34.3},
        {"spend_365d": 200},
        "Spend in the last 12\u00a0months: €34.30 (median customer: €200.00)",
        f"Dépenses sur 12{NBSP}mois{NBSP}: 34,30{NBSP}€ (client médian{NBSP}: 200,00{NBSP}€)",
    ),
    (
        "spend_lifetime",
        {"spend_lifetime": 1234567.5},
        None,
        "Total spend: €1,234,567.50",
        f"Dépenses totales{NBSP}: 1{NNBSP}234{NNBSP}567,50{NBSP}€",
    ),
    (
        "redemption_rate_90d",
        {"redemption_rate_90d": 5.1},
        None,
        "Points redeemed in the last 3\u00a0months: 5.1× those earned",
        f"Points utilisés sur 3{NBSP}mois{NBSP}: 5,1{NBSP}fois les points gagnés",
    ),
    (
        "redemption_rate_90d",
        {"redemption_rate_90d": 0.25},
        {"redemption_rate_90d": 0.5},
        "Points redeemed in the last 3\u00a0months: 25% of those earned (median customer: 50%)",
        f"Points utilisés sur 3{NBSP}mois{NBSP}: 25{NNBSP}% des points gagnés (client médian{NBSP}: 50{NNBSP}%)",
    ),
    (
        "purchase_count_365d",
        {"purchase_count_365d": 1},
        {"purchase_count_365d": 5},
        "Purchases in the last 12\u00a0months: 1 (median customer: 5)",
        f"Achats sur 12{NBSP}mois{NBSP}: 1 (client médian{NBSP}: 5)",
    ),
    (
        "ces_mean",
        {"ces_mean": 5.5},
        {"ces_mean": 3},
        "Average customer effort (CES): 5.5/7 (median customer: 3/7)",
        f"Effort client moyen (CES){NBSP}: 5,5/7 (client médian{NBSP}: 3/7)",
    ),
    (
        "ces_mean",
        {"ces_mean": 3.01},
        {"ces_mean": 3},
        "Average customer effort (CES): 3/7",
        f"Effort client moyen (CES){NBSP}: 3/7",
    ),  # never "3/7 (median customer: 3/7)"
    (
        "tier_downgraded_90d",
        {"tier_downgraded_90d": 1.0},
        None,
        "Loyalty tier downgrade in the last 3\u00a0months",
        f"Baisse de niveau de fidélité sur 3{NBSP}mois",
    ),
    (
        "program_enrolled",
        {"program_enrolled": 0.0},
        None,
        "Not a loyalty program member",
        "Non-membre du programme de fidélité",
    ),
    (
        "tier_rank",
        {"tier_rank": 1.0},
        {"tier_rank": 2.0},
        "Loyalty tier: Silver (median customer: Gold)",
        f"Niveau de fidélité{NBSP}: Argent (client médian{NBSP}: Or)",
    ),
    (
        "nps_category",
        {"nps_category": "detractor"},
        None,
        "Latest NPS answer: detractor",
        f"Dernière réponse NPS{NBSP}: détracteur",
    ),
    (
        "attr_acquisition_channel",
        {"attr_acquisition_channel": "paid_social"},
        None,
        "Acquisition channel: paid social",
        f"Acquisition channel{NBSP}: paid social",
    ),
    (
        "support_handle_minutes_mean",
        {"support_handle_minutes_mean": 7.5},
        None,
        "Average support handling time: 7.5\u00a0min",
        f"Durée moyenne de traitement au service client{NBSP}: 7,5{NBSP}min",
    ),
    (
        "overdue_ratio",
        {"overdue_ratio": 4.64},
        {"overdue_ratio": 0.8},
        "Time since the last purchase: 4.6× the usual gap (median customer: 0.8×)",
        f"Temps depuis le dernier achat{NBSP}: 4,6{NBSP}fois l'écart habituel (client médian{NBSP}: 0,8{NBSP}fois)",
    ),
]


@pytest.mark.parametrize(
    ("name", "row", "reference", "en", "fr"), SENTENCES, ids=[f"{s[0]}-{i}" for i, s in enumerate(SENTENCES)]
)
def test_sentences_at_edge_values(name, row, reference, en, fr):
    assert render_reason(name, row, "en", reference) == en
    assert render_reason(name, row, "fr", reference) == fr
    assert not french_typography_errors(fr)


def test_missing_values_give_no_sentence_and_labels_are_configurable():
    for name in ("days_since_last_purchase", "csat_last", "tier", "spend_90d", "attr_country"):
        assert render_reason(name, {name: float("nan")}, "fr") is None
        assert render_reason(name, {}, "en") is None
    labels = {"acquisition_channel": "Canal d'acquisition", "paid_social": "réseaux sociaux payants"}
    assert render_reason(
        "attr_acquisition_channel", {"attr_acquisition_channel": "paid_social"}, "fr", labels=labels
    ) == (f"Canal d'acquisition{NBSP}: réseaux sociaux payants")
    assert (
        render_reason("spend_90d", {"spend_90d": 12.0}, "en", currency="USD")
        == "Spend in the last 3\u00a0months: $12.00"
    )


def test_every_sentence_of_every_feature_is_typeset_in_french():
    catalog = feature_catalog(FeatureConfig(), extra_categoricals=["country"], extra_numerics=["age"])
    for value in (0, 1, 2.5, 61, 400, 1e9):
        for name, spec in catalog.items():
            row = {name: "FR" if spec.unit == "category" else value, "purchase_gap_mean_days": 12}
            text = render_reason(name, row, "fr", {name: 3})
            assert text and not french_typography_errors(text), (name, value, text)
            assert not french_typography_errors(spec.description("fr") + spec.label("fr") + spec.short("fr"))


def test_values_are_formatted_by_unit():
    assert format_value(1234567.891, "amount") == "€1,234,567.89"
    assert format_value(12.5, "amount", "fr") == f"12,50{NBSP}€"
    assert format_value(0.256, "share") == "26%"
    assert format_value(0.256, "share", "fr") == f"26{NNBSP}%"
    assert format_value(4.64, "ratio", "fr") == f"4,6{NBSP}fois"
    assert format_value(0.0, "days", "fr") == f"0{NBSP}jour"
    assert format_value(2.0, "days") == "2\u00a0days"
    assert format_value(90.0, "days_ago") == "3\u00a0months ago"
    assert format_value(7.5, "minutes") == "7.5\u00a0min"
    assert format_value(-3.0, "points") == "\u22123\u00a0points"
    assert format_value(1e300, "count")  # every finite number can be formatted


def test_bad_language_is_refused():
    with pytest.raises(ValueError, match="language must be one of en, fr, got 'de'"):
        render_reason("spend_90d", {"spend_90d": 1.0}, "de")
    with pytest.raises(ValueError, match="language must be one of en, fr"):
        catalog_frame(lang="es")


def test_catalog_frame_lists_every_feature_in_the_language():
    frame = catalog_frame(FeatureConfig(), lang="fr")
    assert list(frame.columns) == ["name", "family", "concept", "unit", "risk_direction", "description"]
    assert list(frame["name"]) == list(feature_catalog(FeatureConfig()))
    row = frame.set_index("name").loc["spend_30d"]
    assert row["description"] == f"Montant dépensé sur 30{NBSP}jours, remboursements déduits"
    assert (row["family"], row["concept"], row["unit"]) == ("achats", "volume d'achats", "montant")
    assert CATALOG_VERSION
