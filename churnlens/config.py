"""Typed settings for every stage, with defaults and one place that validates them.

Settings are frozen dataclasses. :func:`load_config` reads a TOML file whose sections
match the dataclasses (``[features]``, ``[labels]``, ``[training]``, ``[serving]``,
``[columns.<table>]``); anything not given keeps its default.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from churnlens.data.bounds import InputBounds
from churnlens.errors import InputError, SettingError


@dataclass(frozen=True)
class FeatureConfig:
    """How snapshots are built.

    Parameters
    ----------
    windows : tuple of int
        Trailing windows in days for windowed aggregates.
    active_window_days : int
        A customer is active at cutoff C when they bought in ``[C - active_window_days, C)``.
    downgrade_window_days : int
        A tier downgrade within this many days before C counts as "recent".
    """

    windows: tuple[int, ...] = (30, 90, 365)
    active_window_days: int = 365
    downgrade_window_days: int = 90

    def __post_init__(self) -> None:
        if not self.windows or any(int(w) <= 0 for w in self.windows):
            raise InputError(f"features.windows must be positive day counts, got {self.windows!r}")
        object.__setattr__(self, "windows", tuple(sorted(int(w) for w in self.windows)))
        if self.active_window_days <= 0:
            raise InputError("features.active_window_days must be positive")


@dataclass(frozen=True)
class LabelConfig:
    """How churn is labelled.

    Parameters
    ----------
    horizon_days : int
        Length of the future window ``[C, C + H)``.
    mode : {"auto", "non_contractual", "contractual"}
        ``auto`` picks contractual when a cancellations table exists.
    """

    horizon_days: int = 90
    mode: Literal["auto", "non_contractual", "contractual"] = "auto"

    def __post_init__(self) -> None:
        if self.horizon_days <= 0:
            raise InputError("labels.horizon_days must be positive")
        if self.mode not in ("auto", "non_contractual", "contractual"):
            raise InputError(f"labels.mode must be auto, non_contractual or contractual, got {self.mode!r}")


LANGS: tuple[str, ...] = ("en", "fr")


@dataclass(frozen=True)
class Economics:
    """Campaign economics, for budget targeting, campaign summaries and the profit metric.

    Parameters
    ----------
    cost_per_contact : float
        Cost of contacting one customer.
    save_rate : float
        Share of contacted would-be churners the campaign retains, in [0, 1].
    value_per_save : float or None
        Constant value of retaining one customer; None (default) uses each customer's own
        value (trailing-12-month spend, or ``[serving] value_column``).
    """

    cost_per_contact: float = 5.0
    save_rate: float = 0.2
    value_per_save: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.save_rate <= 1:
            raise InputError(f"save rate must lie in [0, 1], got {self.save_rate}")
        if self.cost_per_contact < 0:
            raise InputError(f"cost per contact must be non-negative, got {self.cost_per_contact}")
        if self.value_per_save is not None and self.value_per_save < 0:
            raise InputError(f"value per saved customer must be non-negative, got {self.value_per_save}")

    @classmethod
    def from_metadata(cls, metadata: Any, **overrides: float | None) -> Economics:
        """The economics a model recorded at training (``campaign``), then ``overrides`` (None = keep)."""
        campaign = (metadata.get("campaign") if isinstance(metadata, dict) else metadata.campaign) or {}
        values: dict[str, Any] = {
            "cost_per_contact": float(campaign.get("cost_per_contact", cls.cost_per_contact)),
            "save_rate": float(campaign.get("save_rate", cls.save_rate)),
            "value_per_save": None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def values(self, customer_value: Any) -> Any:
        """Value of a save per customer: the constant, or the customers' own values (>= 0, NaN -> 0)."""
        import numpy as np

        if self.value_per_save is not None:
            return float(self.value_per_save)
        return np.clip(np.nan_to_num(np.asarray(customer_value, dtype="float64"), nan=0.0), 0.0, None)


@dataclass(frozen=True)
class ScoringSettings:
    """How a base is scored, explained and targeted: the ``[serving]`` section.

    Built once (TOML, then the command line's given options on top) and validated here;
    batch, Dask, the API, cards and the web app all read the same object.

    Parameters
    ----------
    lang : {"en", "fr"}
        Language of everything the user reads (reasons, bands, cards).
    reasons : int
        Reasons per explained customer.
    high_risk, medium_risk : float
        Lowest churn probability of the high and the medium risk band.
    psi_threshold : float
        Population stability index above which a feature's drift is flagged.
    value_column : str or None
        Customer value: a numeric snapshot column or ``customers`` column; None = the
        trailing-12-month spend.
    explain_all : bool
        Explain every scored customer, not only the selected ones.
    top, threshold, budget : optional
        The targeting rule (at most one): the ``top`` N by probability, every customer at or
        above ``threshold``, or the list of highest expected net value within ``budget``.
        None of them: the high risk band.
    cost_per_contact, save_rate, value_per_save : float
        Campaign economics (:class:`Economics`).
    currency : str
        ISO 4217 code of amounts in sentences, cards and the web app.
    labels : dict
        Display labels per language (``[serving.labels.fr]``): attribute names and category
        values as marketers should read them (``acquisition_channel = "Canal d'acquisition"``,
        ``paid_social = "réseaux sociaux payants"``); anything not listed reads as written.
    """

    lang: Literal["en", "fr"] = "en"
    reasons: int = 3
    high_risk: float = 0.5
    medium_risk: float = 0.2
    psi_threshold: float = 0.25
    value_column: str | None = None
    explain_all: bool = False
    top: int | None = None
    threshold: float | None = None
    budget: float | None = None
    cost_per_contact: float = 5.0
    save_rate: float = 0.2
    value_per_save: float | None = None
    currency: str = "EUR"
    labels: dict[str, dict[str, str]] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.currency, str) or not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise SettingError("currency", f"must be an ISO 4217 code such as EUR or USD, got {self.currency!r}")
        from babel.numbers import list_currencies

        if self.currency not in list_currencies():
            raise SettingError("currency", f"is not a known currency code: {self.currency!r}")
        if not isinstance(self.labels, dict) or set(self.labels) - set(LANGS) or not all(
            isinstance(v, dict) and all(isinstance(a, str) and isinstance(b, str) for a, b in v.items())
            for v in self.labels.values()
        ):
            raise SettingError(
                "labels", f'must be tables [serving.labels.en] / [serving.labels.fr] of name = "label", '
                f"got {self.labels!r}",
            )
        if self.lang not in LANGS:
            raise SettingError("lang", f"must be en or fr, got {self.lang!r}")
        if isinstance(self.reasons, bool) or int(self.reasons) != self.reasons or self.reasons < 1:
            raise SettingError("reasons", f"must be a whole number >= 1, got {self.reasons}")
        object.__setattr__(self, "reasons", int(self.reasons))
        if not 0 <= self.medium_risk < self.high_risk <= 1:
            raise InputError(
                "risk band bounds must satisfy 0 <= medium < high <= 1, got "
                f"high={self.high_risk}, medium={self.medium_risk}"
            )
        if self.psi_threshold < 0:
            raise SettingError("psi_threshold", f"must be non-negative, got {self.psi_threshold}")
        given = [name for name in ("top", "threshold", "budget") if getattr(self, name) is not None]
        if len(given) > 1:
            raise InputError(f"choose one targeting rule, got {' and '.join('--' + g for g in given)}")
        if self.top is not None and (int(self.top) != self.top or self.top < 0):
            raise SettingError("top", f"must be a non-negative whole number, got {self.top}")
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise SettingError("threshold", f"must lie in [0, 1], got {self.threshold}")
        if self.budget is not None and self.budget < 0:
            raise SettingError("budget", f"must be non-negative, got {self.budget}")
        self.economics  # noqa: B018 - validates the economics

    @property
    def bands(self) -> tuple[float, float]:
        """Lower bounds of the (high, medium) risk bands."""
        return (float(self.high_risk), float(self.medium_risk))

    @property
    def economics(self) -> Economics:
        """The campaign economics of these settings."""
        return Economics(float(self.cost_per_contact), float(self.save_rate),
                         None if self.value_per_save is None else float(self.value_per_save))

    def override(self, **given: Any) -> ScoringSettings:
        """These settings with the options actually given (None = not given) on top, validated."""
        changes = {k: v for k, v in given.items() if v is not None}
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise InputError(f"unknown scoring settings: {sorted(unknown)}")
        if {"top", "threshold", "budget"} & set(changes):  # a rule given replaces the configured one
            changes = {"top": None, "threshold": None, "budget": None, **changes}
        return replace(self, **changes)


#: Families of the feature catalog, the order reasons' families are shown in.
REASON_FAMILIES: tuple[str, ...] = ("purchases", "program", "support", "profile")


@dataclass(frozen=True)
class FamilyActions:
    """One language's suggested retention action per reason family (``[actions.en]``, ``[actions.fr]``)."""

    purchases: str
    program: str
    support: str
    profile: str


_DEFAULT_ACTIONS = {
    "en": FamilyActions(
        purchases="Win-back offer: a time-limited discount or gift on the next purchase",
        program="Points reminder: remind them of their balance and offer a points bonus on the next visit",
        support="Service recovery call: settle the open issue, apologise, offer a goodwill gesture",
        profile="Welcome check-in: a personal message presenting the programme's benefits",
    ),
    "fr": FamilyActions(
        purchases="Offre de reconquête : remise ou cadeau à durée limitée sur le prochain achat",
        program="Rappel de points : rappeler le solde et offrir un bonus de points à la prochaine visite",
        support="Appel de rattrapage : régler le problème en cours, s'excuser, offrir un geste commercial",
        profile="Prise de contact : un message personnel présentant les avantages du programme",
    ),
}


@dataclass(frozen=True)
class ActionSettings:
    """Suggested retention action per reason family, per language: the ``[actions]`` section.

    The web app suggests, for each customer, the action of the family of the customer's top
    reason. Texts given in TOML replace the shipped defaults one by one::

        [actions.fr]
        support = "Appel du service client sous 48 h"

    Parameters
    ----------
    en, fr : FamilyActions or dict
        Texts by family (``purchases``, ``program``, ``support``, ``profile``); a dict
        overrides some families of the defaults.
    """

    en: FamilyActions = _DEFAULT_ACTIONS["en"]
    fr: FamilyActions = _DEFAULT_ACTIONS["fr"]

    def __post_init__(self) -> None:
        for lang in LANGS:
            given = getattr(self, lang)
            if isinstance(given, FamilyActions):
                continue
            if not isinstance(given, dict):
                raise InputError(f"[actions.{lang}] must be a table of family = \"text\", got {given!r}")
            unknown = set(given) - set(REASON_FAMILIES)
            if unknown:
                raise InputError(
                    f"[actions.{lang}] has unknown families: {sorted(unknown)}; known: {list(REASON_FAMILIES)}"
                )
            bad = [k for k, v in given.items() if not isinstance(v, str) or not v.strip()]
            if bad:
                raise InputError(f"[actions.{lang}] {bad[0]} must be a non-empty text")
            object.__setattr__(self, lang, replace(_DEFAULT_ACTIONS[lang], **given))


@dataclass(frozen=True)
class ChurnConfig:
    """All settings of a run; sections are filled by later stages."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    serving: ScoringSettings = field(default_factory=ScoringSettings)
    #: limits on input values (``[bounds]``: earliest, future_days, max_abs_amount)
    bounds: InputBounds = field(default_factory=InputBounds)
    actions: ActionSettings = field(default_factory=ActionSettings)
    #: user column name -> contract column name, per table
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    #: free-form sections owned by later stages (training, serving)
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, for logging."""
        return asdict(self)


_SECTIONS = {
    "features": FeatureConfig,
    "labels": LabelConfig,
    "serving": ScoringSettings,
    "bounds": InputBounds,
    "actions": ActionSettings,
}


def _build(cls: type, section: str, values: dict[str, Any]) -> Any:
    if not isinstance(values, dict):
        raise InputError(f"config section [{section}] must be a table of settings, got {values!r}")
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise InputError(f"config section [{section}] has unknown keys: {sorted(unknown)}; known: {sorted(known)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return cls(**values)
    except InputError as exc:
        raise InputError(f"config section [{section}]: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"config section [{section}]: {exc}") from None


def config_from_dict(raw: dict[str, Any]) -> ChurnConfig:
    """Build a :class:`ChurnConfig` from a nested dict (a parsed TOML file).

    Parameters
    ----------
    raw : dict
        Sections ``features``, ``labels``, ``columns`` and any others (kept in ``extra``).

    Returns
    -------
    ChurnConfig
    """
    kwargs: dict[str, Any] = {}
    extra: dict[str, dict[str, Any]] = {}
    for section, values in raw.items():
        if section in _SECTIONS:
            kwargs[section] = _build(_SECTIONS[section], section, values)
        elif section == "columns":
            for table, mapping in values.items():
                if not isinstance(mapping, dict):
                    raise InputError(f"[columns.{table}] must be a table of user_name = \"contract_name\"")
            kwargs["columns"] = {t: dict(m) for t, m in values.items()}
        else:
            extra[section] = dict(values)
    return ChurnConfig(**kwargs, extra=extra)


def load_config(path: str | Path | None) -> ChurnConfig:
    """Read a TOML config file; None gives the defaults.

    Parameters
    ----------
    path : str or Path or None

    Returns
    -------
    ChurnConfig
    """
    if path is None:
        return ChurnConfig()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"config file {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"config file {path} is not valid TOML: {exc}") from exc
    return config_from_dict(raw)
