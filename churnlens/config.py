"""Typed settings for every stage, with defaults and one place that validates them.

Settings are frozen dataclasses. :func:`load_config` reads a TOML file whose sections
match the dataclasses (``[features]``, ``[labels]``, ``[training]``, ``[serving]``,
``[api]``, ``[bounds]``, ``[columns.<table>]``, ``[warehouse.tables]``, ``[pipeline]``, and the top-level
``[[actions]]`` rules, which become
``ScoringSettings.actions``); anything not given keeps its default.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
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
    btyd_params : tuple of 4 float, optional
        BG/NBD population parameters (r, alpha, a, b; days). None (training): fitted at each
        cutoff on every customer's history before it. A trained model records the ones
        fitted at the end of its training data, so scoring a few customers (the API) gives
        the same features as scoring the whole base. Four NaN: the fit failed, the
        features are NaN.
    """

    windows: tuple[int, ...] = (30, 90, 365)
    active_window_days: int = 365
    downgrade_window_days: int = 90
    btyd_params: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        if not self.windows or any(int(w) <= 0 for w in self.windows):
            raise InputError(f"features.windows must be positive day counts, got {self.windows!r}")
        object.__setattr__(self, "windows", tuple(sorted(int(w) for w in self.windows)))
        if self.active_window_days <= 0:
            raise InputError("features.active_window_days must be positive")
        if self.btyd_params is not None:
            params = tuple(float(v) for v in self.btyd_params)
            unfitted = all(v != v for v in params)  # NaN: the fit failed
            if len(params) != 4 or not (unfitted or all(v > 0 for v in params)):
                raise InputError("features.btyd_params must be four positive numbers (r, alpha, a, b)")
            object.__setattr__(self, "btyd_params", params)


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


@dataclass(frozen=True)
class LightGBMParams:
    """LightGBM hyper-parameters. Defaults favour compact models (small leaves, early stopping):
    explanation cost grows with trees x leaves, and 15-leaf trees matched 31-leaf AUC on
    churn-like data here while explaining 3x faster."""

    learning_rate: float = 0.1
    num_leaves: int = 15
    max_depth: int = -1
    min_child_samples: int = 100
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 1.0
    max_rounds: int = 600
    early_stopping_rounds: int = 30

    def to_lgb(self, *, seed: int, threads: int, scale_pos_weight: float) -> dict[str, Any]:
        """LightGBM parameter dict (deterministic, seeded)."""
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": self.bagging_freq,
            "lambda_l2": self.lambda_l2,
            "scale_pos_weight": scale_pos_weight,
            "seed": seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": threads,
            "verbosity": -1,
        }


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run.

    Parameters
    ----------
    step_days : int
        Spacing of training cutoffs (the label horizon is ``[labels] horizon_days``).
    min_history_days : int
        Days of history before the first training cutoff.
    purge : bool
        When True (default), validation uses the latest cutoff whose horizon ends by the test
        cutoff, and training only cutoffs whose horizon ends by the validation cutoff: no
        label window overlaps a later split, as when the model is used for real (the future
        of a scored customer is unknown). When False, validation is the cutoff just before
        the test cutoff and training all earlier ones; with a horizon longer than the step,
        training labels then cover the test period and the same customers, and trees learn
        them (measured on Online Retail: step 15 days, test ROC AUC 0.77 unpurged vs 0.73
        purged, while the RFM baseline stays at 0.74) — the test metrics flatter the model.
    seed, threads : int
        Reproducibility and parallelism of LightGBM.
    class_weight : {"auto", "none"}
        ``auto`` up-weights churners by sqrt(neg/pos) when they are under 20% of rows (early
        stopping then watches validation AUC, which weighting does not distort);
        calibration on the validation cutoff restores true probabilities afterwards. The
        default ``none`` keeps the unweighted log loss, a proper score, as the stopping rule.
    calibration : {"auto", "isotonic", "platt", "none"}
        ``auto`` picks by cross-validated log loss on the validation cutoff.
    tune_trials : int
        Optuna trials (TPE, pruned) on the backtest's validation cutoffs before the evaluation
        (0: use ``lgbm`` as given); needs the ``tune`` extra.
    distributed_min_rows : int
        With a source that keeps the training rows on a cluster (``--engine dask``): above
        this many training rows LightGBM trains on the cluster (lightgbm.dask); at or below,
        the rows are collected and trained in this process, which is faster on one machine.
    local_max_rows : int
        With such a source, the most rows of one split brought into this process: validation
        and test above it are a deterministic sample of whole customers (so is the training
        sample that fits the linear base and the baselines when LightGBM trains on the cluster).
    linear_base : {"rfm", "auto", "none"}
        ``rfm`` (default) boosts the trees from the RFM logistic regression's margin, so they
        model what recency, frequency and spend do not already explain; ``none`` trains trees
        alone; ``auto`` trains both and keeps the lower validation log loss. Chosen after
        measuring both on the two data sets at hand (benchmarks/RESULTS.md): Online Retail
        test ROC AUC 0.738-0.739 with the base vs 0.734-0.735 without (seeds 1, 2, 42), the
        simulator 0.709-0.711 vs 0.709-0.714; validation could not tell them apart on Online
        Retail (AUC within 0.001), so ``auto`` is not the default.
    backtests : int
        Origins of the rolling-origin backtest that evaluates a run (each a test cutoff with its
        own purged validation and training cutoffs); fewer run when the history is too short.
    cv_folds : int
        Customer-grouped folds of the cross-validation that evaluates a run when not even one
        backtest origin fits (short histories). It is not out of time, and says so.
    calibration_folds : int
        Customer-grouped folds of the cross-fitting that gives the shipped model's calibrator
        out-of-fold margins. Fewer folds cost less (a shipped model costs about 1 + (K - 1) fits of
        its rows) and calibrated as well on the simulator's purchases (4,000 customers, 18
        months; backtest ECE 0.0195 / 0.0193 with 5 / 3 folds, 0.0214 / 0.0216 with 3 / 2 after
        the feature selection; Brier equal to 1e-5), so 2 is the default.
    calibration_cutoffs : int
        The most recent matured cutoffs the shipped model's calibrator is fitted on (one month
        apart by default). 3 by default: one cutoff's 90-day window carries its season's churn
        rate, and three average it out while staying recent. On Online Retail scored at
        2011-09-01 (benchmarks/holdout.py) ECE 0.072 with 1 cutoff, 0.035 with 3, ROC AUC
        0.7471 / 0.7461; with fewer matured cutoffs than this, all of them.
    recent_weight_half_life_days : float
        Weight training rows by ``0.5 ** (age / half_life)``, the age being the days from their
        cutoff to the latest training cutoff of the fit; 0 (default) weights all cutoffs alike.
    """

    step_days: int = 30
    min_history_days: int = 90
    purge: bool = True
    seed: int = 42
    threads: int = 2
    class_weight: Literal["auto", "none"] = "none"
    calibration: Literal["auto", "isotonic", "platt", "none"] = "auto"
    tune_trials: int = 0
    distributed_min_rows: int = 5_000_000
    local_max_rows: int = 2_000_000
    linear_base: Literal["rfm", "auto", "none"] = "rfm"
    backtests: int = 3
    cv_folds: int = 5
    calibration_folds: int = 2
    calibration_cutoffs: int = 3
    recent_weight_half_life_days: float = 0.0
    lgbm: LightGBMParams = field(default_factory=LightGBMParams)

    def __post_init__(self) -> None:
        if isinstance(self.lgbm, dict):  # the [training.lgbm] sub-table of a TOML file
            known = {f.name for f in fields(LightGBMParams)}
            unknown = set(self.lgbm) - known
            if unknown:
                raise InputError(f"config section [training.lgbm] has unknown keys: {sorted(unknown)}; "
                                 f"known: {sorted(known)}")
            _check_types(LightGBMParams, self.lgbm, "config section [training.lgbm]")
            object.__setattr__(self, "lgbm", LightGBMParams(**self.lgbm))
        _check_types(TrainConfig, {f.name: getattr(self, f.name) for f in fields(self)}, "config section [training]")
        if self.linear_base not in ("rfm", "auto", "none"):
            raise InputError(f"training.linear_base must be rfm, auto or none, got {self.linear_base!r}")
        if self.step_days <= 0 or self.min_history_days < 0:
            raise InputError("training.step_days must be positive and training.min_history_days >= 0")
        if self.class_weight not in ("auto", "none"):
            raise InputError("training.class_weight must be auto or none")
        if self.calibration not in ("auto", "isotonic", "platt", "none"):
            raise InputError("training.calibration must be auto, isotonic, platt or none")
        if self.tune_trials < 0:
            raise InputError("training.tune_trials must be >= 0")
        if self.distributed_min_rows < 0 or self.local_max_rows < 1:
            raise InputError("training.distributed_min_rows must be >= 0 and training.local_max_rows >= 1")
        if self.backtests < 1:
            raise InputError(f"training.backtests must be >= 1, got {self.backtests}")
        if self.cv_folds < 3 or self.calibration_folds < 2:
            raise InputError("training.cv_folds must be >= 3 (test, validation and training folds) and "
                             "training.calibration_folds >= 2")
        if self.calibration_cutoffs < 1:
            raise InputError(f"training.calibration_cutoffs must be >= 1, got {self.calibration_cutoffs}")
        if not self.recent_weight_half_life_days >= 0:
            raise InputError("training.recent_weight_half_life_days must be >= 0 (0: no weighting)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        """Build from a ``[training]`` config section (with its ``[training.lgbm]`` sub-table)."""
        return _build(cls, "training", raw)


def _check_types(cls: type, values: dict[str, Any], where: str) -> None:
    """An InputError naming the setting whose value is not of its default's kind (number, true/false)."""
    for f in fields(cls):
        if f.name not in values or not isinstance(f.default, int | float):
            continue
        value = values[f.name]
        if isinstance(f.default, bool) and not isinstance(value, bool):
            raise InputError(f"{where}: {f.name} must be true or false, got {value!r}")
        if not isinstance(f.default, bool) and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InputError(f"{where}: {f.name} must be a number, got {value!r}")


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


#: Words an action rule's name may use (it is written into the ``contacts`` table).
_RULE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class ActionRule:
    """One retention action and who may get it: an ``[[actions]]`` entry of the TOML.

    Parameters
    ----------
    name : str
        Identifier, written in the ``action`` column of the list and of the contact plan.
    label_en, label_fr : str
        What the action is called, in English and in French.
    cost : float
        Cost of one contact with this action (>= 0).
    eligible : str
        Who may get it: an expression over the scored columns (see
        :mod:`churnlens.expressions` and :func:`churnlens.serving.actions.rule_names`),
        parsed safely, never evaluated as Python.
    priority : int
        Rules are tried in increasing priority; a customer gets the first one that fits.
    min_days_since_contact : int
        Contact pressure: only customers not contacted (a ``treatment`` row of
        ``contacts``) in the last N days before the cutoff; 0 = no limit.
    capacity : int or None
        At most this many customers per run (those with the highest value at risk); the
        others fall to their next eligible action. None = no limit.
    channel : str or None
        Contact channel written in the contact plan (``phone``, ``email``, ...).
    """

    name: str
    label_en: str
    label_fr: str
    cost: float
    eligible: str
    priority: int
    min_days_since_contact: int = 0
    capacity: int | None = None
    channel: str | None = None

    def __post_init__(self) -> None:
        from churnlens.expressions import parse

        where = f"action rule {self.name!r}"
        if not isinstance(self.name, str) or not _RULE_NAME.match(self.name):
            raise InputError(
                f"action rule name {self.name!r} must start with a letter and hold only letters, digits, _ or -"
            )
        for key in ("label_en", "label_fr"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key).strip():
                raise InputError(f"{where}: {key} must be a non-empty text")
        if isinstance(self.cost, bool) or not isinstance(self.cost, int | float) or not self.cost >= 0:
            raise InputError(f"{where}: cost must be a non-negative number, got {self.cost!r}")
        object.__setattr__(self, "cost", float(self.cost))
        for key in ("priority", "min_days_since_contact"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"{where}: {key} must be a whole number >= 0, got {value!r}")
        if self.capacity is not None and (
            isinstance(self.capacity, bool) or not isinstance(self.capacity, int) or self.capacity < 0
        ):
            raise InputError(f"{where}: capacity must be a whole number >= 0, got {self.capacity!r}")
        if self.channel is not None and (not isinstance(self.channel, str) or not self.channel.strip()):
            raise InputError(f"{where}: channel must be a non-empty text, got {self.channel!r}")
        try:
            parse(self.eligible)
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None

    def label(self, lang: str) -> str:
        """The action's label in ``lang``."""
        return self.label_fr if lang == "fr" else self.label_en


#: The shipped rules. Their data conditions are those the simulator's campaigns apply
#: (``churnlens.simulate.campaigns.eligibility``); the reason clause needs a model.
DEFAULT_ACTION_RULES: tuple[ActionRule, ...] = (
    ActionRule(
        name="service_recovery",
        label_en="Service recovery call",
        label_fr="Appel de rattrapage du service client",
        cost=8.0,
        eligible='top_reason_family == "support" or support_complaints_30d > 0 '
        "or (support_open_issues > 0 and days_since_last_contact <= 90)",
        priority=1,
        min_days_since_contact=30,
        channel="phone",
    ),
    ActionRule(
        name="points_reminder",
        label_en="Points reminder or bonus",
        label_fr="Rappel des points ou bonus de points",
        cost=0.5,
        eligible="points_balance >= 250 and days_since_last_program_activity > 45",
        priority=2,
        min_days_since_contact=30,
        channel="email",
    ),
    ActionRule(
        name="win_back",
        label_en="Win-back offer",
        label_fr="Offre de reconquête",
        cost=5.0,
        eligible="overdue_ratio >= 1 or days_since_last_purchase > 60",
        priority=3,
        min_days_since_contact=30,
        channel="email",
    ),
)


def action_rules(raw: Any, where: str = "[[actions]]") -> tuple[ActionRule, ...]:
    """Typed, checked rules from ``[[actions]]`` tables (or ActionRule objects), by priority.

    Raises
    ------
    InputError
        A rule with unknown or missing keys, a bad value, or two rules sharing a name or a priority.
    """
    if isinstance(raw, dict):
        raise InputError(
            f"{where} must be an array of rules ([[actions]] tables, one per action), got a single table"
        )
    if not isinstance(raw, list | tuple):
        raise InputError(f"{where} must be an array of rules, got {raw!r}")
    known = {f.name for f in fields(ActionRule)}
    required = {f.name for f in fields(ActionRule) if f.default is MISSING}
    rules: list[ActionRule] = []
    for i, item in enumerate(raw, start=1):
        if isinstance(item, ActionRule):
            rules.append(item)
            continue
        if not isinstance(item, dict):
            raise InputError(f"{where} rule {i} must be a table of settings, got {item!r}")
        label = f"{where} rule {i} ({item.get('name', 'no name')!r})"
        unknown, absent = set(item) - known, required - set(item)
        if unknown:
            raise InputError(f"{label} has unknown keys {sorted(unknown)}; known: {sorted(known)}")
        if absent:
            raise InputError(f"{label} lacks {sorted(absent)}")
        rules.append(ActionRule(**item))
    for key in ("name", "priority"):
        seen: dict[Any, str] = {}
        for rule in rules:
            value = getattr(rule, key)
            if value in seen:
                raise InputError(f"{where}: rules {seen[value]!r} and {rule.name!r} share the {key} {value!r}")
            seen[value] = rule.name
    return tuple(sorted(rules, key=lambda r: r.priority))


#: What ``score --target`` accepts: whom to contact by churn risk, or by expected incremental value.
TARGETS: tuple[str, ...] = ("risk", "uplift")

#: ``[serving] save_rate`` value that takes the latest campaign report's measured save rate.
MEASURED = "measured"


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
        Campaign economics (:class:`Economics`). ``save_rate = "measured"`` takes the save
        rate the latest ``campaign-report`` measured (resolved by
        :func:`churnlens.serving.report_tracking.resolve_save_rate` into ``measured_save_rate``).
    assign_actions : bool
        Give each selected customer the first action of ``actions`` that fits (``--actions``).
    actions : tuple of ActionRule
        The action rules: the top-level ``[[actions]]`` of the TOML, else
        :data:`DEFAULT_ACTION_RULES`.
    campaign_id : str or None
        Draw the campaign's contact plan (a randomised control group) under this id.
    holdout : float
        Control share of the contact plan, in [0, 1), stratified by action and risk band.
    holdout_seed : int
        Seed of the control group: the same seed and list give the same groups.
    send_date : str or None
        Send date (YYYY-MM-DD) written as the plan's ``timestamp``; None = the cutoff.
    measured_save_rate : dict or None
        Set by the resolver, not by users: the measured rate, its interval and its source.
    target : {"risk", "uplift"}
        What decides whom to contact: ``risk`` (the churn probability, with the targeting rule
        above) or ``uplift`` (``--target uplift``: each customer's action of highest expected
        incremental value, uplift x value - cost, chosen among the actions whose rule holds,
        customers by value per unit of cost within ``budget``; needs an uplift model).
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
    save_rate: float | str = 0.2
    value_per_save: float | None = None
    currency: str = "EUR"
    labels: dict[str, dict[str, str]] = field(default_factory=dict, hash=False)
    assign_actions: bool = False
    actions: tuple[ActionRule, ...] = DEFAULT_ACTION_RULES
    campaign_id: str | None = None
    holdout: float = 0.1
    holdout_seed: int = 0
    send_date: str | None = None
    measured_save_rate: dict[str, Any] | None = field(default=None, hash=False)
    target: Literal["risk", "uplift"] = "risk"

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
        if self.target not in TARGETS:
            raise SettingError("target", f"must be {' or '.join(TARGETS)}, got {self.target!r}")
        if self.target == "uplift" and (self.top is not None or self.threshold is not None):
            rule = "--top" if self.top is not None else "--threshold"
            raise InputError(
                f"{rule} ranks by churn probability; --target uplift selects by expected incremental value "
                "within --budget (or every customer with a positive one when no budget is given)"
            )
        self._check_campaign()
        if isinstance(self.save_rate, str):
            if self.save_rate != MEASURED:
                raise SettingError("save_rate", f'must be a number in [0, 1] or "{MEASURED}", got {self.save_rate!r}')
            if self.measured_save_rate is not None:
                self.economics  # noqa: B018 - validates the economics
            else:
                Economics(float(self.cost_per_contact), 0.0, self.value_per_save)  # the rest of the economics
        else:
            self.economics  # noqa: B018 - validates the economics

    def _check_campaign(self) -> None:
        """Validate the action rules and the contact plan's settings."""
        object.__setattr__(self, "actions", action_rules(list(self.actions)))
        if not isinstance(self.assign_actions, bool):
            raise SettingError("assign_actions", f"must be true or false, got {self.assign_actions!r}")
        if self.campaign_id is not None:
            if not isinstance(self.campaign_id, str) or not self.campaign_id.strip():
                raise SettingError("campaign_id", f"must be a non-empty text, got {self.campaign_id!r}")
            object.__setattr__(self, "campaign_id", self.campaign_id.strip())
        if isinstance(self.holdout, bool) or not 0 <= self.holdout < 1:
            raise SettingError("holdout", f"must lie in [0, 1), got {self.holdout}")
        if isinstance(self.holdout_seed, bool) or int(self.holdout_seed) != self.holdout_seed or self.holdout_seed < 0:
            raise SettingError("holdout_seed", f"must be a whole number >= 0, got {self.holdout_seed}")
        object.__setattr__(self, "holdout_seed", int(self.holdout_seed))
        if self.send_date is not None:
            try:
                day = dt.date.fromisoformat(str(self.send_date))
            except ValueError:
                raise SettingError("send_date", f"must be a date YYYY-MM-DD, got {self.send_date!r}") from None
            object.__setattr__(self, "send_date", day.isoformat())

    @property
    def bands(self) -> tuple[float, float]:
        """Lower bounds of the (high, medium) risk bands."""
        return (float(self.high_risk), float(self.medium_risk))

    @property
    def economics(self) -> Economics:
        """The campaign economics of these settings (a measured save rate once resolved)."""
        return Economics(float(self.cost_per_contact), self.save_rate_value,
                         None if self.value_per_save is None else float(self.value_per_save))

    @property
    def save_rate_value(self) -> float:
        """The save rate as a number: the configured one, or the measured one clipped to [0, 1]."""
        if self.save_rate != MEASURED:
            return float(self.save_rate)
        if self.measured_save_rate is None:
            raise SettingError(
                "save_rate",
                f'is "{MEASURED}" but no campaign report was read: resolve it with '
                "churnlens.serving.report_tracking.resolve_save_rate (churnlens score does)",
            )
        return min(max(float(self.measured_save_rate["value"]), 0.0), 1.0)

    def override(self, **given: Any) -> ScoringSettings:
        """These settings with the options actually given (None = not given) on top, validated."""
        changes = {k: v for k, v in given.items() if v is not None}
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise InputError(f"unknown scoring settings: {sorted(unknown)}")
        if {"top", "threshold", "budget"} & set(changes):  # a rule given replaces the configured one
            changes = {"top": None, "threshold": None, "budget": None, **changes}
        return replace(self, **changes)


@dataclass(frozen=True)
class WarehouseSettings:
    """Where the contract tables are in a PostgreSQL database: the ``[warehouse]`` section.

    Parameters
    ----------
    tables : dict
        ``[warehouse.tables]``: contract table -> a table or view (``orders``, ``sales.orders``;
        unqualified names are looked up in the URI's schema first) or a query (``SELECT ...``).
        Tables not listed are read under their contract name from the URI's schema.
    """

    tables: dict[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        from churnlens.data.tables import TABLE_NAMES

        if not isinstance(self.tables, dict):
            raise InputError(f'[warehouse.tables] must be a table of contract_table = "table, view or SELECT", '
                             f"got {self.tables!r}")  # fmt: skip
        for table, source in self.tables.items():
            if table not in TABLE_NAMES:
                known = ", ".join(TABLE_NAMES)
                raise InputError(f"[warehouse.tables] {table!r} is not a contract table; known: {known}")
            if not isinstance(source, str) or not source.strip():
                raise InputError(f"[warehouse.tables] {table} must be a table, a view or a SELECT, got {source!r}")


@dataclass(frozen=True)
class PipelineSettings:
    """What ``churnlens run`` does on each scheduled run: the ``[pipeline]`` section.

    Relative paths are relative to the folder of the config file.

    Parameters
    ----------
    data : str
        The input tables: a data directory or ``postgresql://...?schema=NAME``.
    outputs : tuple of str
        Where each run's campaign goes: ``postgresql://...?schema=S&table=PREFIX`` and/or
        campaign files (``.csv``/``.parquet``; ``{date}`` in the name becomes the cutoff's date).
    state_dir : str
        The pipeline's lock, state and one JSON log per run (``runs/``).
    reports_dir : str
        Where campaign reports are written.
    campaign_prefix : str
        Each run's campaign id is ``<prefix>-<cutoff date>`` (a re-run of a day replaces its rows).
    retrain_every_days : int or None
        Also retrain when the champion is this many days old; None: only when labels mature.
    min_new_label_days : int
        Retrain when at least this many days of new labels have matured since the model's
        "trained through" day.
    model_name, experiment : str
        Registered model and MLflow experiment.
    tracking_uri : str or None
        MLflow store (default: ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` in the working folder).
    """

    data: str | None = None
    outputs: tuple[str, ...] = ()
    state_dir: str = "churnlens-state"
    reports_dir: str = "campaign-reports"
    campaign_prefix: str = "churn"
    retrain_every_days: int | None = None
    min_new_label_days: int = 30
    model_name: str = "churnlens"
    experiment: str = "churnlens"
    tracking_uri: str | None = None

    def __post_init__(self) -> None:
        if self.data is not None and (not isinstance(self.data, str) or not self.data.strip()):
            raise SettingError("data", f"must be a data directory or a postgresql:// URI, got {self.data!r}")
        outputs = (self.outputs,) if isinstance(self.outputs, str) else self.outputs
        if not all(isinstance(o, str) and o.strip() for o in outputs):
            raise SettingError("outputs", f"must be a list of files or postgresql:// URIs, got {self.outputs!r}")
        object.__setattr__(self, "outputs", tuple(outputs))
        for key in ("state_dir", "reports_dir", "campaign_prefix", "model_name", "experiment"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key).strip():
                raise SettingError(key, f"must be a non-empty text, got {getattr(self, key)!r}")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,60}", self.campaign_prefix):
            raise SettingError("campaign_prefix",
                               f"must be letters, digits, '_', '.' or '-', got {self.campaign_prefix!r}")  # fmt: skip
        for key, least in (("retrain_every_days", 1), ("min_new_label_days", 0)):
            value = getattr(self, key)
            if value is None and key == "retrain_every_days":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise SettingError(key, f"must be a whole number of days >= {least}, got {value!r}")


@dataclass(frozen=True)
class ApiSettings:
    """Limits of the HTTP API (``churnlens serve``): the ``[api]`` section.

    Every request meets them in this order: the bearer token (before any byte of the body is
    read), the body's size and pace while it is read, the JSON's shape, then these counts.

    Parameters
    ----------
    max_customers : int
        Customers per request.
    max_events_per_customer : int
        Events (all tables) of one customer given as raw events.
    max_events_per_request : int
        Events (all customers, all tables) of one request.
    max_body_mb : float
        Request body size in MiB; a larger body is refused (413) before it is parsed, as soon as
        its ``Content-Length`` or the bytes read so far exceed it.
    read_timeout : float
        Seconds: a request is dropped (408) when its headers are not complete this long after the
        connection opened or the request began, when no byte of its body arrives for this long,
        or when, this long after the headers, its body has arrived slower on average than
        ``min_body_kib_per_s``.
    min_body_kib_per_s : float
        Slowest average pace of a body, in KiB per second (a client trickling bytes to hold a
        worker is dropped).
    """

    max_customers: int = 1000
    max_events_per_customer: int = 10_000
    max_events_per_request: int = 100_000
    max_body_mb: float = 32.0
    read_timeout: float = 10.0
    min_body_kib_per_s: float = 16.0

    def __post_init__(self) -> None:
        for name in ("max_customers", "max_events_per_customer", "max_events_per_request"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value or value < 1:
                raise SettingError(name, f"must be a whole number >= 1, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("max_body_mb", "read_timeout", "min_body_kib_per_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
                raise SettingError(name, f"must be a positive number, got {value!r}")
            object.__setattr__(self, name, float(value))

    @property
    def max_body_bytes(self) -> int:
        """:attr:`max_body_mb` in bytes."""
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def min_body_bytes_per_s(self) -> float:
        """:attr:`min_body_kib_per_s` in bytes per second."""
        return self.min_body_kib_per_s * 1024

    def override(self, **given: Any) -> ApiSettings:
        """These settings with the options actually given (None = not given) on top, validated."""
        changes = {k: v for k, v in given.items() if v is not None}
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise InputError(f"unknown API settings: {sorted(unknown)}")
        return replace(self, **changes)


#: Families of the feature catalog, the order reasons' families are shown in.
REASON_FAMILIES: tuple[str, ...] = ("purchases", "btyd", "program", "support", "contacts", "profile")


#: Uplift learners ``[uplift] learner`` accepts (see :mod:`churnlens.training.uplift.learners`).
UPLIFT_LEARNERS: tuple[str, ...] = ("t", "x", "dr", "t_shared", "nested")


@dataclass(frozen=True)
class UpliftSettings:
    """How ``churnlens train-uplift`` learns the effect of each action: the ``[uplift]`` section.

    Parameters
    ----------
    learner : {"t", "x", "dr", "t_shared", "nested"}
        Meta-learner on LightGBM: ``t`` (one churn model per arm, uplift = their difference),
        ``x`` (X-learner: imputed effects regressed per arm, mixed by the treated share), ``dr``
        (doubly robust pseudo-outcomes, cross-fitted, regressed once), ``t_shared`` (a T-learner
        on the log-odds: one churn model of every row, small boosted offsets per arm, the
        uplift distilled into one regressor per action) or ``nested`` (as ``t_shared``, but each
        action's offset is boosted on top of the no-action one: it is the action's effect, and
        shrinks towards no effect where the data say little). Chosen by ``benchmarks/uplift.py``
        on validation campaigns before the held-out ones (figures in ``benchmarks/RESULTS.md``).
    min_treated, min_control : int
        An action is learnt only when its training campaigns hold at least this many treated
        and control customers; the others are skipped, and the command says why.
    test_campaigns : int
        The latest campaigns (by send date) held out to evaluate out of time.
    refit : bool
        After evaluation, refit on every matured campaign (the held-out ones too) before
        registering; False registers the evaluated model itself.
    horizon_days : int or None
        Outcome window after the contact; None = ``[labels] horizon_days``.
    seed, threads : int
        LightGBM seed and threads (deterministic: same data and settings, same model).
    rounds, learning_rate, num_leaves, min_child_samples, feature_fraction, lambda_l2
        LightGBM settings of every model of the learner (no early stopping: a fixed number of
        rounds, so that two runs give the same trees).
    folds : int
        Cross-fitting folds of the DR learner's outcome models and of the shared churn model of
        ``t_shared`` and ``nested`` (customers split by a hash of their id).
    base_rounds : int
        ``t_shared``, ``nested``: boosting rounds of the shared churn model (its other settings
        are the ones above).
    offset_leaves, offset_rounds : int
        ``t_shared``, ``nested``: size of each arm's boosted log-odds offset.
    student_leaves, student_rounds : int
        ``t_shared``, ``nested``: size of the regressor each action's uplift is distilled into
        (the model stored, served and explained).
    deciles : int
        Bins of the "uplift by decile" table.
    """

    learner: str = "nested"
    min_treated: int = 500
    min_control: int = 200
    test_campaigns: int = 2
    refit: bool = True
    horizon_days: int | None = None
    seed: int = 42
    threads: int = 2
    rounds: int = 150
    learning_rate: float = 0.05
    num_leaves: int = 7
    min_child_samples: int = 200
    feature_fraction: float = 0.8
    lambda_l2: float = 10.0
    folds: int = 2
    base_rounds: int = 500
    offset_leaves: int = 2
    offset_rounds: int = 50
    student_leaves: int = 31
    student_rounds: int = 300
    deciles: int = 10

    def __post_init__(self) -> None:
        if self.learner not in UPLIFT_LEARNERS:
            raise SettingError("learner", f"must be one of {', '.join(UPLIFT_LEARNERS)}, got {self.learner!r}")
        for name in ("min_treated", "min_control", "test_campaigns", "seed", "threads", "rounds", "num_leaves",
                     "min_child_samples", "folds", "deciles", "base_rounds", "offset_leaves", "offset_rounds",
                     "student_leaves", "student_rounds"):  # fmt: skip
            value = getattr(self, name)
            least = {"threads": 1, "rounds": 1, "num_leaves": 2, "min_child_samples": 1, "folds": 2,
                     "deciles": 2, "test_campaigns": 1, "base_rounds": 1, "offset_leaves": 2, "offset_rounds": 1,
                     "student_leaves": 2, "student_rounds": 1}.get(name, 0)  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise SettingError(name, f"must be a whole number >= {least}, got {value!r}")
        if not isinstance(self.refit, bool):
            raise SettingError("refit", f"must be true or false, got {self.refit!r}")
        if self.horizon_days is not None and (
            isinstance(self.horizon_days, bool) or not isinstance(self.horizon_days, int) or self.horizon_days < 1
        ):
            raise SettingError("horizon_days", f"must be a whole number of days >= 1, got {self.horizon_days!r}")
        if not 0 < float(self.learning_rate) <= 1:
            raise SettingError("learning_rate", f"must lie in (0, 1], got {self.learning_rate!r}")
        if not 0 < float(self.feature_fraction) <= 1:
            raise SettingError("feature_fraction", f"must lie in (0, 1], got {self.feature_fraction!r}")
        if float(self.lambda_l2) < 0:
            raise SettingError("lambda_l2", f"must be non-negative, got {self.lambda_l2!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, for logging."""
        return asdict(self)


@dataclass(frozen=True)
class ChurnConfig:
    """All settings of a run; sections are filled by later stages."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    training: TrainConfig = field(default_factory=TrainConfig)
    serving: ScoringSettings = field(default_factory=ScoringSettings)
    #: limits of the HTTP API (``[api]``: request sizes, read timeout)
    api: ApiSettings = field(default_factory=ApiSettings)
    #: limits on input values (``[bounds]``: earliest, future_days, max_abs_amount)
    bounds: InputBounds = field(default_factory=InputBounds)
    #: how uplift models are learnt (``[uplift]``)
    uplift: UpliftSettings = field(default_factory=UpliftSettings)
    #: user column name -> contract column name, per table
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    #: where the contract tables are in a PostgreSQL database (``[warehouse.tables]``)
    warehouse: WarehouseSettings = field(default_factory=WarehouseSettings)
    #: what ``churnlens run`` does (``[pipeline]``)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    #: other sections, kept as given
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, for logging."""
        return asdict(self)


_SECTIONS = {
    "features": FeatureConfig,
    "labels": LabelConfig,
    "training": TrainConfig,
    "serving": ScoringSettings,
    "api": ApiSettings,
    "bounds": InputBounds,
    "warehouse": WarehouseSettings,
    "pipeline": PipelineSettings,
    "uplift": UpliftSettings,
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
        message = str(exc)  # a sub-table's error already names its section
        prefix = "" if message.startswith("config section") else f"config section [{section}]: "
        raise InputError(prefix + message) from None
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
        if section == "serving" and isinstance(values, dict):
            internal = {"actions", "measured_save_rate"} & set(values)
            if internal:
                raise InputError(
                    f"config section [serving] cannot set {sorted(internal)}: action rules are top-level "
                    "[[actions]] tables, and the measured save rate comes from campaign reports"
                )
        if section == "training" and isinstance(values, dict):
            moved = {"horizon_days": "the label horizon is set once, in [labels] horizon_days",
                     "campaign": "campaign economics are set once, in [serving] cost_per_contact, save_rate "
                                 "and value_per_save (they also price the training profit metric)"}
            for key in sorted(set(values) & set(moved)):
                raise InputError(f"config section [training] cannot set {key}: {moved[key]}")
        if section in _SECTIONS:
            kwargs[section] = _build(_SECTIONS[section], section, values)
        elif section == "actions":
            continue
        elif section == "columns":
            for table, mapping in values.items():
                if not isinstance(mapping, dict):
                    raise InputError(f"[columns.{table}] must be a table of user_name = \"contract_name\"")
            kwargs["columns"] = {t: dict(m) for t, m in values.items()}
        else:
            extra[section] = dict(values)
    if "actions" in raw:
        rules = action_rules(raw["actions"])
        kwargs["serving"] = replace(kwargs.get("serving", ScoringSettings()), actions=rules)
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
