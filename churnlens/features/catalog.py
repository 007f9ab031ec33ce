"""The feature catalog: every feature's name, family, unit, concept and risk direction.

Features are declared as data: a few templates (:data:`TEMPLATES`), each expanded over the
configured windows, generate the catalog. The catalog holds structure only; every word a
user reads about a feature (description, short chart label, noun-phrase label, reason
sentence, in English and French) is a Fluent message in ``churnlens/locales/<lang>/features.ftl``
named by the template's ``key``, worded through :class:`churnlens.i18n.Words`.

Reasons
-------
A reason is worded from the feature's message: its value pattern when it has one (a sentence
that takes ``$value``, ``$ref``, ``$window`` ...), else the generic pattern
``<label>: <value> (median customer: <ref>)``. Values are formatted by unit (durations, money,
percentages, scores, "x times") and the reference is the training median, called the
"median customer" / « client médian ». Related features form one **concept** (purchases over
30, 90 and 365 days and spend are one "activity" concept): explanations give one reason per
concept (:mod:`churnlens.serving.explain`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

import pandas as pd

from churnlens.config import FeatureConfig
from churnlens.data.schema import TIER_ORDER
from churnlens.errors import InputError
from churnlens.i18n import Words, check_lang

#: Bump when feature names or definitions change; models record it and serving checks it.
CATALOG_VERSION = "features-v2"

FAMILIES: tuple[str, ...] = ("purchases", "btyd", "program", "support", "contacts", "profile")
UNITS: tuple[str, ...] = (
    "days",
    "days_ago",
    "count",
    "amount",
    "share",
    "ratio",
    "points",
    "minutes",
    "score",
    "flag",
    "category",
    "rank",
    "number",
)
RISK_DIRECTIONS: tuple[str, ...] = ("higher", "lower", "category")

NAN = float("nan")
#: Scale (maximum) of each score feature, shown as "2/5".
SCORE_SCALES = {"csat_last": 5, "csat_mean": 5, "nps_last": 10, "ces_mean": 7}



class UnknownFeatureError(InputError, KeyError):
    """A feature name the catalog does not know (a KeyError for lookups, an InputError for the CLI)."""

    def __str__(self) -> str:  # KeyError would show the message's repr
        return str(self.args[0]) if self.args else ""

@dataclass(frozen=True)
class FeatureSpec:
    """One feature of the catalog.

    Parameters
    ----------
    name : str
        Column name in snapshots (``purchase_count_90d``).
    family : {"purchases", "btyd", "program", "support", "contacts", "profile"}
    unit : str
        One of :data:`UNITS`; fixes how values are formatted in sentences.
    risk_direction : {"higher", "lower", "category"}
        What raises churn risk: higher values, lower values, or particular categories.
    concept : str
        The idea the feature measures (several windows of one count are one concept).
    key : str
        Its Fluent message id (``features.ftl``); for customer attributes, ``attribute``.
    params : dict
        Window parameters the template was expanded with (``{"w": 90}``).
    fill_value : float
        Value for an active customer with no events in the family's table (0 for counts
        and sums, NaN where the feature is undefined).
    column : str
        For customer attributes, the ``customers`` column.
    """

    name: str
    family: str
    unit: str
    risk_direction: str
    concept: str
    key: str
    params: dict[str, int] = field(default_factory=dict, hash=False, compare=False)
    fill_value: float = NAN
    column: str | None = None

    def words(self, lang: str) -> dict[str, Any]:
        """The message arguments of this feature's windows and name (``$window`` ...)."""
        words = Words(lang)
        out: dict[str, Any] = {}
        for key, days in self.params.items():
            out[{"w": "window", "d": "window", "s": "short_window", "l": "long_window"}[key]] = words.window(days)
        if self.column is not None:
            out["attribute"] = attribute_label(self.column, lang)
        return out

    def description(self, lang: str = "en") -> str:
        """What the feature measures, in ``lang``."""
        return Words(check_lang(lang))(self.key, "description", **self.words(lang))

    def short(self, lang: str = "en") -> str:
        """A short label for charts."""
        return Words(check_lang(lang))(self.key, "short", **self.words(lang))

    def label(self, lang: str = "en") -> str:
        """The noun phrase a reason starts with ("Purchases in the last 12 months")."""
        return Words(check_lang(lang))(self.key, "label", **self.words(lang))


@dataclass(frozen=True)
class _Template:
    """A feature template; ``params`` says how it expands.

    ``""`` once; ``"w"`` once per window ({w}); ``"wl"`` for the longest window only;
    ``"trend"`` for the two longest windows ({s} short, {l} long); ``"d"`` with the
    downgrade window ({d}).
    """

    name: str
    family: str
    unit: str
    risk: str
    concept: str
    key: str
    params: str = ""
    fill: float = NAN


_T = _Template

#: The catalog, declared as data, in snapshot column order.
TEMPLATES: tuple[_Template, ...] = (
    # ---------------------------------------------------------------- purchases
    _T("days_since_last_purchase", "purchases", "days_ago", "higher", "recency", "days-since-last-purchase"),
    _T("days_since_first_purchase", "purchases", "days_ago", "lower", "seniority", "days-since-first-purchase"),
    _T("purchase_count_{w}d", "purchases", "count", "lower", "activity", "purchase-count", "w", 0.0),
    _T("spend_{w}d", "purchases", "amount", "lower", "activity", "spend", "w", 0.0),
    _T("avg_basket_{w}d", "purchases", "amount", "lower", "basket", "avg-basket", "w"),
    _T("refund_share_{w}d", "purchases", "share", "higher", "returns", "refund-share", "w"),
    _T("purchase_count_lifetime", "purchases", "count", "lower", "activity", "purchase-count-lifetime", "", 0.0),
    _T("spend_lifetime", "purchases", "amount", "lower", "activity", "spend-lifetime", "", 0.0),
    _T("purchase_gap_mean_days", "purchases", "days", "higher", "rhythm", "purchase-gap-mean"),
    _T("purchase_gap_std_days", "purchases", "days", "higher", "rhythm", "purchase-gap-std"),
    _T("overdue_ratio", "purchases", "ratio", "higher", "recency", "overdue-ratio"),
    _T("current_gap_vs_longest", "purchases", "ratio", "higher", "recency", "current-gap-vs-longest"),
    _T("purchase_trend_{s}d_vs_{l}d", "purchases", "ratio", "lower", "trend", "purchase-trend", "trend"),
    _T("spend_trend_{s}d_vs_{l}d", "purchases", "ratio", "lower", "trend", "spend-trend", "trend"),
    _T("distinct_categories_{w}d", "purchases", "count", "lower", "variety", "distinct-categories", "wl", 0.0),
    _T("distinct_channels_{w}d", "purchases", "count", "lower", "variety", "distinct-channels", "wl", 0.0),
    # ---------------------------------------------------------------- btyd (buy till you die: BG/NBD)
    _T("btyd_p_alive", "btyd", "share", "lower", "recency", "btyd-p-alive"),
    # ---------------------------------------------------------------- program
    _T("program_enrolled", "program", "flag", "lower", "membership", "program-enrolled", "", 0.0),
    _T("program_enrolment_age_days", "program", "days_ago", "lower", "membership", "program-enrolment-age"),
    _T("points_balance", "program", "points", "lower", "points", "points-balance", "", 0.0),
    _T("points_earned_{w}d", "program", "points", "lower", "points", "points-earned", "w", 0.0),
    _T("points_redeemed_{w}d", "program", "points", "lower", "points", "points-redeemed", "w", 0.0),
    _T("redemption_rate_{w}d", "program", "share", "lower", "points", "redemption-rate", "w"),
    _T("days_since_last_program_activity", "program", "days_ago", "higher", "program_activity",
       "days-since-last-program-activity"),
    _T("logins_{w}d", "program", "count", "lower", "program_activity", "logins", "w", 0.0),
    _T("offers_received_{w}d", "program", "count", "lower", "offers", "offers-received", "w", 0.0),
    _T("offers_viewed_{w}d", "program", "count", "lower", "offers", "offers-viewed", "w", 0.0),
    _T("offers_completed_{w}d", "program", "count", "lower", "offers", "offers-completed", "w", 0.0),
    _T("offer_completion_rate_{w}d", "program", "share", "lower", "offers", "offer-completion-rate", "w"),
    _T("program_other_events_{w}d", "program", "count", "lower", "program_activity", "program-other-events",
       "wl", 0.0),
    _T("tier", "program", "category", "category", "tier", "tier"),
    _T("tier_rank", "program", "rank", "lower", "tier", "tier-rank"),
    _T("tier_downgraded_{d}d", "program", "flag", "higher", "tier", "tier-downgraded", "d", 0.0),
    # ---------------------------------------------------------------- support
    _T("support_contacts_{w}d", "support", "count", "higher", "support_contacts", "support-contacts", "w", 0.0),
    _T("support_complaints_{w}d", "support", "count", "higher", "complaints", "support-complaints", "w", 0.0),
    _T("support_open_issues", "support", "count", "higher", "open_issues", "support-open-issues", "", 0.0),
    _T("support_fcr_rate", "support", "share", "lower", "resolution", "support-fcr-rate"),
    _T("support_handle_minutes_mean", "support", "minutes", "higher", "resolution", "support-handle-minutes"),
    _T("csat_last", "support", "score", "lower", "satisfaction", "csat-last"),
    _T("csat_mean", "support", "score", "lower", "satisfaction", "csat-mean"),
    _T("nps_last", "support", "score", "lower", "recommendation", "nps-last"),
    _T("nps_category", "support", "category", "category", "recommendation", "nps-category"),
    _T("ces_mean", "support", "score", "higher", "effort", "ces-mean"),
    _T("days_since_last_contact", "support", "days_ago", "lower", "support_contacts", "days-since-last-contact"),
    # ---------------------------------------------------------------- contacts (retention campaigns)
    _T("campaign_contacts_{w}d", "contacts", "count", "higher", "campaigns", "campaign-contacts", "w", 0.0),
    _T("campaign_holdouts_{w}d", "contacts", "count", "higher", "campaigns", "campaign-holdouts", "wl", 0.0),
    _T("campaign_cost_{w}d", "contacts", "amount", "higher", "campaigns", "campaign-cost", "wl", 0.0),
    _T("days_since_last_campaign_contact", "contacts", "days_ago", "lower", "campaigns",
       "days-since-last-campaign-contact"),
    _T("last_campaign_action", "contacts", "category", "category", "campaigns", "last-campaign-action"),
    _T("last_campaign_holdout", "contacts", "flag", "higher", "campaigns", "last-campaign-holdout", "", 0.0),
    # ---------------------------------------------------------------- profile
    _T("tenure_days", "profile", "days", "lower", "seniority", "tenure"),
)

_PARAM_FIELDS = {"w": ("w",), "wl": ("w",), "trend": ("s", "l"), "d": ("d",), "": ()}

def _param_sets(params: str, config: FeatureConfig) -> list[dict[str, int]]:
    windows = config.windows
    if params == "":
        return [{}]
    if params == "w":
        return [{"w": w} for w in windows]
    if params == "wl":
        return [{"w": windows[-1]}]
    if params == "trend":
        return [{"s": windows[-2], "l": windows[-1]}] if len(windows) >= 2 else []
    if params == "d":
        return [{"d": config.downgrade_window_days}]
    raise AssertionError(params)  # pragma: no cover - templates are fixed


def _fill(text: str, values: Mapping[str, int]) -> str:
    for key, val in values.items():
        text = text.replace("{" + key + "}", str(val))
    return text


def _expand(template: _Template, values: Mapping[str, int]) -> FeatureSpec:
    return FeatureSpec(
        name=_fill(template.name, values),
        family=template.family,
        unit=template.unit,
        risk_direction=template.risk,
        concept=template.concept,
        key=template.key,
        params=dict(values),
        fill_value=template.fill,
    )


def attribute_spec(column: str, *, categorical: bool = True) -> FeatureSpec:
    """Generic catalog entry for a static customer attribute (``attr_<column>``).

    Parameters
    ----------
    column : str
        Column of the ``customers`` table.
    categorical : bool
        True for text attributes (pandas categoricals), False for numeric ones.

    Returns
    -------
    FeatureSpec
    """
    return FeatureSpec(
        name=f"attr_{column}",
        family="profile",
        unit="category" if categorical else "number",
        risk_direction="category" if categorical else "higher",
        concept=f"attr_{column}",
        key="attribute",
        column=column,
    )


def feature_catalog(
    config: FeatureConfig = FeatureConfig(),
    extra_categoricals: Sequence[str] = (),
    extra_numerics: Sequence[str] = (),
) -> dict[str, FeatureSpec]:
    """All features for a configuration, by name, in snapshot column order.

    Parameters
    ----------
    config : FeatureConfig
        Windows and downgrade window the templates are expanded with.
    extra_categoricals : sequence of str
        Text columns of the ``customers`` table; each gets an ``attr_<col>`` entry
        (family "profile", unit "category").
    extra_numerics : sequence of str
        Numeric columns of the ``customers`` table (``attr_<col>``, unit "number").

    Returns
    -------
    dict of str to FeatureSpec
    """
    specs: dict[str, FeatureSpec] = {}
    for template in TEMPLATES:
        for values in _param_sets(template.params, config):
            spec = _expand(template, values)
            specs[spec.name] = spec
    for col in extra_categoricals:
        spec = attribute_spec(col, categorical=True)
        specs[spec.name] = spec
    for col in extra_numerics:
        spec = attribute_spec(col, categorical=False)
        specs[spec.name] = spec
    return specs


def catalog_frame(
    config: FeatureConfig = FeatureConfig(), lang: str = "en", extra_categoricals: Sequence[str] = ()
) -> pd.DataFrame:
    """The catalog as a table for display, every word in ``lang``: name, family, concept, unit,
    risk direction, description.

    Parameters
    ----------
    config : FeatureConfig
    lang : {"en", "fr"}
    extra_categoricals : sequence of str
        Static attribute columns to list too.

    Returns
    -------
    DataFrame
        One row per feature, in catalog order.
    """
    words = Words(check_lang(lang))
    specs = feature_catalog(config, extra_categoricals)
    rows = [
        {
            "name": s.name,
            "family": words("family", kind=s.family),
            "concept": words("concept", kind=s.concept) if not s.concept.startswith("attr_") else s.short(lang),
            "unit": words("unit", kind=s.unit),
            "risk_direction": words("risk-direction", kind=s.risk_direction),
            "description": s.description(lang),
        }
        for s in specs.values()
    ]
    return pd.DataFrame(rows, columns=["name", "family", "concept", "unit", "risk_direction", "description"])


# --------------------------------------------------------------------------- lookup


@lru_cache(maxsize=1)
def _template_patterns() -> tuple[tuple[re.Pattern[str], _Template], ...]:
    out = []
    for template in TEMPLATES:
        pattern = re.escape(template.name)
        for key in _PARAM_FIELDS[template.params]:
            pattern = pattern.replace(re.escape("{" + key + "}"), f"(?P<{key}>[0-9]+)")
        out.append((re.compile(f"^{pattern}$"), template))
    return tuple(out)


@lru_cache(maxsize=4096)
def spec_for(name: str) -> FeatureSpec:
    """The catalog entry of a feature name, whatever windows it was built with.

    ``purchase_count_60d`` resolves even though 60 is not a default window;
    ``attr_<col>`` gives the generic attribute entry.

    Raises
    ------
    KeyError
        When no template produces this name.
    """
    for pattern, template in _template_patterns():
        match = pattern.match(name)
        if match:
            return _expand(template, {k: int(v) for k, v in match.groupdict().items()})
    if name.startswith("attr_") and len(name) > 5:
        return attribute_spec(name[5:])
    raise UnknownFeatureError(f"feature {name!r} is not in the feature catalog ({CATALOG_VERSION})")


# --------------------------------------------------------------------------- wording


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | int) and not isinstance(value, bool):
        return not math.isfinite(value)
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def readable(name: str) -> str:
    """A column or category name as words: ``acquisition_channel`` -> ``acquisition channel``."""
    return re.sub(r"[_\s]+", " ", str(name)).strip()


def attribute_label(column: str, lang: str, labels: Mapping[str, str] | None = None) -> str:
    """What an attribute column is called: ``[serving.labels.<lang>]``, else its name as words, capitalised."""
    if labels and column in labels:
        return str(labels[column])
    text = readable(column)
    return text[:1].upper() + text[1:]


def category_label(value: Any, lang: str, labels: Mapping[str, str] | None = None) -> str:
    """How a category value reads: ``[serving.labels.<lang>]``, else the shipped words
    (tiers, NPS categories, retention actions), else the value with underscores as spaces."""
    text = str(value)
    if labels and text in labels:
        return str(labels[text])
    words = Words(lang)
    return words(f"value-{text}") if words.has(f"value-{text}") else readable(text)


def format_value(
    value: Any, unit: str, lang: str = "en", *, name: str | None = None, labels: Mapping[str, str] | None = None,
    currency: str = "EUR",
) -> str:
    """A feature value as a sentence shows it: durations, money, percentages, scores, ratios.

    Parameters
    ----------
    value : number or str
    unit : str
        One of :data:`UNITS`.
    lang : {"en", "fr"}
    name : str, optional
        The feature (a score's scale, a tier rank's tier names).
    labels : mapping, optional
        Display labels of category values (``[serving.labels.<lang>]``).
    currency : str
        ISO code of amounts.
    """
    words = Words(check_lang(lang), currency=currency)
    if unit == "category":
        return category_label(value, lang, labels)
    number = float(value)
    if not math.isfinite(number):
        return "—"
    if unit == "days":
        return words.duration(number)
    if unit == "days_ago":
        return words.ago(number)
    if unit == "amount":
        return words.money(number)
    if unit == "share":
        return words.percent(number) if number <= 1.05 else words.times(number)
    if unit == "ratio":
        return words.times(number)
    if unit == "points":
        return words("points-count", count=number, shown=words.number(number))
    if unit == "minutes":
        return words("minutes", shown=words.number(number, 0 if abs(number) >= 10 else 1))
    if unit == "score":
        scale = SCORE_SCALES.get(name or "", 10)
        return words("score", shown=words.number(number, 1), scale=scale)
    if unit == "rank":
        rank = int(round(number))
        return category_label(TIER_ORDER[rank], lang, labels) if 0 <= rank < len(TIER_ORDER) else words.number(number)
    if unit == "flag":
        return words("yes-no", flag=1 if number >= 0.5 else 0)
    if unit == "count":
        return words.number(number, 0 if number == round(number) else 1)
    return words.number(number, 2)


def _shown(name: str, spec: FeatureSpec, value: Any, lang: str, labels: Mapping[str, str] | None,
           currency: str) -> str | None:
    if _missing(value):
        return None
    try:  # the same value of the same feature reads the same: keep it (a float by its repr: -0.0 is not 0.0)
        kind, exact = (float, repr(float(value))) if isinstance(value, float) else (type(value), value)
        return _shown_memo(name, spec, kind, exact, lang, tuple(sorted(labels.items())) if labels else (),
                           currency)  # fmt: skip
    except TypeError:  # a value that cannot be a key
        return _shown_value(name, spec, value, lang, labels, currency)


@lru_cache(maxsize=16_384)
def _shown_memo(name: str, spec: FeatureSpec, kind: type, exact: Any, lang: str, labels: tuple[tuple[str, str], ...],
                currency: str) -> str | None:
    value = float(exact) if kind is float else exact
    return _shown_value(name, spec, value, lang, dict(labels) or None, currency)


def _shown_value(name: str, spec: FeatureSpec, value: Any, lang: str, labels: Mapping[str, str] | None,
                 currency: str) -> str | None:
    try:
        number = float(value) if spec.unit not in ("category",) else None
    except (TypeError, ValueError):
        return None
    if spec.unit in ("amount",) and number is not None and number < 0 and spec.key in _SIGNED:
        value = -number  # worded as returns: "174.20 refunded"
    try:
        return format_value(value, spec.unit, lang, name=name, labels=labels, currency=currency)
    except (TypeError, ValueError, ArithmeticError):
        return None


#: Amount features whose negative values are worded as net returns.
_SIGNED = frozenset({"spend", "spend-lifetime"})


def reason_arguments(
    name: str,
    row: Mapping[str, Any],
    lang: str = "en",
    reference: Mapping[str, float] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    currency: str = "EUR",
) -> dict[str, Any] | None:
    """The message arguments of one feature's reason for one customer (None when its value is missing).

    ``ref`` is the reference as shown, or ``"none"`` when it is missing, not meaningful (flags,
    categories) or shown the same as the value ("3/7 — median customer: 3/7" says nothing);
    ``same_as_reference`` tells the last case apart.
    """
    spec = spec_for(name)
    value = row.get(name)
    shown = _shown(name, spec, value, lang, labels, currency)
    if shown is None:
        return None
    ref = None if reference is None else reference.get(name)
    ref_shown = None if spec.unit in ("flag", "category") else _shown(name, spec, ref, lang, labels, currency)
    number = None if spec.unit == "category" else float(value)
    usual = row.get("purchase_gap_mean_days") if spec.key == "days-since-last-purchase" else None
    usual_shown = None if _missing(usual) else Words(lang).duration(float(usual))
    return {
        **spec.words(lang),
        **({"attribute": attribute_label(spec.column, lang, labels)} if spec.column else {}),
        "value": shown,
        "ref": ref_shown if ref_shown is not None and ref_shown != shown else "none",
        "usual": usual_shown or "none",
        "sign": "negative" if number is not None and number < 0 else "positive",
        "scale": "times" if spec.unit == "share" and number is not None and number > 1.05 else "share",
        "flag": 1 if number is not None and number >= 0.5 else 0,
        "same_as_reference": ref_shown is not None and ref_shown == shown,
    }


def render_reason(
    name: str,
    row: Mapping[str, Any],
    lang: str = "en",
    reference: Mapping[str, float] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    currency: str = "EUR",
) -> str | None:
    """A plain sentence explaining one feature of one customer, or None when its value is missing.

    Parameters
    ----------
    name : str
        Feature name (any window: resolved with :func:`spec_for`).
    row : mapping
        The customer's snapshot row (feature name -> value); some sentences use another
        feature of the row (the usual purchase gap).
    lang : {"en", "fr"}
    reference : mapping, optional
        The median customer's value by feature name (training medians); shown as "(median
        customer: …)" where it says something.
    labels : mapping, optional
        Display labels of attribute names and category values (``[serving.labels.<lang>]``).
    currency : str
        ISO code of amounts.

    Returns
    -------
    str or None

    Examples
    --------
    >>> render_reason("days_since_last_purchase",
    ...               {"days_since_last_purchase": 142, "purchase_gap_mean_days": 31})
    'Last purchase 5 months ago, usually one every 31 days'
    """
    check_lang(lang)
    args = reason_arguments(name, row, lang, reference, labels=labels, currency=currency)
    return None if args is None else sentence(name, args, lang)


def sentence(name: str, args: Mapping[str, Any], lang: str) -> str:
    """The reason sentence of feature ``name`` from its :func:`reason_arguments`."""
    spec = spec_for(name)
    words = Words(lang)
    if _has_value(lang, spec.key):
        return words(spec.key, **args)
    label = words(spec.key, "label", **args)
    if args["ref"] == "none":
        return words("reason", label=label, value=args["value"])
    return words("reason-median", label=label, value=args["value"], ref=args["ref"])


@cache
def _has_value(lang: str, key: str) -> bool:
    from churnlens.i18n import _bundle

    return _bundle(lang).get_message(key).value is not None
