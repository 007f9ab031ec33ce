"""Retention actions: which action each selected customer gets, by the ``[[actions]]`` rules.

Two steps, so that a partitioned run gives the answer of a single pass:

1. :func:`rule_inputs` — per partition, row-wise: each rule's eligibility on the selected
   rows (its expression over the scored columns, the snapshot and the reasons) and the days
   since the customer's last contact;
2. :func:`assign_actions` — on the whole selection: rules in increasing priority, each
   customer gets the first rule that fits, unless the rule's contact pressure blocks it (a
   contact in its last ``min_days_since_contact`` days) or its capacity is used up (the
   capacity goes to the highest value at risk, ties by customer id); then the next rule.

:func:`suggest_actions` is the same choice for any customers without capacity (one
customer's card in the web app: a capacity is a limit of a campaign, not of a customer).

Names a rule may use (:func:`rule_names`): ``probability``, ``band``, ``value``,
``value_at_risk``, ``top_reason_feature``, ``top_reason_family``, ``reason_features`` and
``reason_families`` (sets: ``"support" in reason_families``), every snapshot feature
(``points_balance``, ``days_since_last_purchase``, ...) and customer attribute (``country`` or
``attr_country``). A catalog feature the data cannot build (no support table, say) is
missing for every customer: comparisons with it are false.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from churnlens.config import ActionRule
from churnlens.errors import InputError
from churnlens.expressions import parse
from churnlens.i18n import Words

#: Scored names a rule may use, and the column of the scored rows each one reads.
SCORED_NAMES: dict[str, str] = {
    "probability": "churn_probability",
    "band": "risk_band",
    "value": "customer_value",
    "value_at_risk": "value_at_risk",
}
#: Names computed from the customer's reasons.
REASON_NAMES: tuple[str, ...] = ("top_reason_feature", "top_reason_family", "reason_features", "reason_families")
#: Snapshot feature holding the days since the last contact received (the contacts family).
CONTACT_DAYS = "days_since_last_campaign_contact"
#: Action given to every selected customer when a contact plan is drawn without rules.
GENERIC_ACTION = "contact"
#: Columns :func:`assign_actions` adds to the campaign list, in order.
ACTION_COLUMNS = ["action", "action_label", "action_rule", "action_reason"]
_ELIGIBLE = "eligible:"


def rule_names() -> list[str]:
    """The names every rule may use beside the snapshot's features and attributes."""
    return [*SCORED_NAMES, *REASON_NAMES]


@lru_cache(maxsize=4096)
def reason_family(feature: Any) -> str | None:
    """The catalog family of a reason's feature (None when unknown or missing)."""
    from churnlens.features import spec_for

    if feature is None or feature is pd.NA or (isinstance(feature, float) and feature != feature):
        return None
    try:
        return spec_for(str(feature)).family
    except KeyError:
        return None


def _reason_columns(ids: pd.Index, reasons: pd.DataFrame | None) -> dict[str, np.ndarray]:
    """Top reason feature and family, and the sets of reason features and families, per id."""
    n = len(ids)
    top_feature = np.full(n, None, dtype=object)
    top_family = np.full(n, None, dtype=object)
    features = np.full(n, frozenset(), dtype=object)
    families = np.full(n, frozenset(), dtype=object)
    if reasons is not None and len(reasons):
        frame = reasons[["customer_id", "rank", "feature"]].copy()
        frame["customer_id"] = frame["customer_id"].astype("string")
        frame = frame[frame["customer_id"].isin(ids)].sort_values(["customer_id", "rank"], kind="stable")
        names = frame["feature"].astype("string").fillna("")
        family_of = {f: reason_family(f) for f in names.unique()}
        frame["family"] = names.map(family_of)
        position = pd.Index(ids).get_indexer(frame["customer_id"])
        first = ~frame["customer_id"].duplicated().to_numpy()
        top_feature[position[first]] = names.to_numpy(dtype=object)[first]
        top_family[position[first]] = frame["family"].to_numpy(dtype=object)[first]
        grouped = frame.groupby("customer_id", sort=False)
        feature_sets = grouped["feature"].agg(lambda s: frozenset(str(v) for v in s))
        family_sets = grouped["family"].agg(lambda s: frozenset(str(v) for v in s if v is not None))
        at = pd.Index(ids).get_indexer(feature_sets.index)
        features[at] = feature_sets.to_numpy(dtype=object)
        families[at] = family_sets.reindex(feature_sets.index).to_numpy(dtype=object)
    return {
        "top_reason_feature": top_feature,
        "top_reason_family": top_family,
        "reason_features": features,
        "reason_families": families,
    }


def _resolve(name: str, rule: ActionRule, scored: pd.DataFrame, snapshot: pd.DataFrame, n: int) -> np.ndarray | None:
    """The values of ``name`` for the rows, or None for a catalog feature this data lacks."""
    if name in SCORED_NAMES:
        column = scored[SCORED_NAMES[name]]
        return column.to_numpy(dtype=object) if name == "band" else column.to_numpy(dtype="float64", na_value=np.nan)
    for column in (name, f"attr_{name}"):
        if column in snapshot.columns:
            values = snapshot[column]
            if isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(values.dtype):
                return values.astype(object).to_numpy()
            return values.to_numpy(dtype="float64", na_value=np.nan)
    if not name.startswith("attr_") and reason_family(name) is not None:
        return None
    attributes = sorted(c.removeprefix("attr_") for c in snapshot.columns if c.startswith("attr_"))
    raise InputError(
        f"action rule {rule.name!r}: unknown name {name!r} in {rule.eligible!r} — rules may use "
        f"{', '.join(rule_names())}, any feature of the catalog (churnlens features --catalog) and the "
        f"customer attributes {attributes}"
    )


@dataclass
class RuleInputs:
    """Each rule's verdict on some selected rows (one partition's, or pooled).

    Attributes
    ----------
    frame : DataFrame
        customer_id, value_at_risk, risk_band, days since the last contact
        (``days_since_contact``, NaN = never), one boolean ``eligible:<rule>`` column per rule.
    absent : dict of str to list of str
        Per rule, the catalog features it reads that the data cannot build.
    """

    frame: pd.DataFrame
    absent: dict[str, list[str]] = field(default_factory=dict)


def rules_read_reasons(rules: Sequence[ActionRule]) -> bool:
    """Whether any rule's eligibility reads the churn reasons (:data:`REASON_NAMES`): only then
    must the rows it decides be explained first."""
    return any(set(parse(rule.eligible).names) & set(REASON_NAMES) for rule in rules)


def rule_inputs(
    rules: Sequence[ActionRule],
    scored: pd.DataFrame,
    snapshot: pd.DataFrame,
    reasons: pd.DataFrame | None,
) -> RuleInputs:
    """Evaluate every rule's eligibility on the rows of ``scored``.

    Parameters
    ----------
    rules : sequence of ActionRule
    scored : DataFrame
        The rows to decide (scored columns: customer_id, churn_probability, risk_band,
        customer_value, value_at_risk).
    snapshot : DataFrame
        Snapshot indexed by customer_id holding at least these customers.
    reasons : DataFrame or None
        Their reasons (long table: customer_id, rank, feature ...).

    Returns
    -------
    RuleInputs
    """
    ids = pd.Index(scored["customer_id"].astype("string"), name="customer_id")
    n = len(ids)
    snap = snapshot.set_axis(pd.Index(snapshot.index.astype("string"), name="customer_id")).reindex(ids)
    from_reasons: dict[str, np.ndarray] | None = None
    frame = pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "value_at_risk": scored["value_at_risk"].to_numpy(dtype="float64", na_value=np.nan),
            "risk_band": pd.array(scored["risk_band"].astype("string").to_numpy(), dtype="string"),
            "days_since_contact": (
                snap[CONTACT_DAYS].to_numpy(dtype="float64", na_value=np.nan)
                if CONTACT_DAYS in snap.columns
                else np.full(n, np.nan)
            ),
        }
    )
    absent: dict[str, list[str]] = {}
    for rule in rules:
        expression = parse(rule.eligible)
        columns: dict[str, Any] = {}
        for name in sorted(expression.names):
            if name in REASON_NAMES:
                if from_reasons is None:
                    from_reasons = _reason_columns(ids, reasons)
                columns[name] = from_reasons[name]
                continue
            values = _resolve(name, rule, scored, snap, n)
            if values is None:
                absent.setdefault(rule.name, []).append(name)
                values = np.full(n, np.nan)
            columns[name] = values
        frame[_ELIGIBLE + rule.name] = expression.evaluate(columns, n) if n else np.zeros(0, dtype=bool)
    return RuleInputs(frame, absent)


def pool_inputs(parts: Sequence[RuleInputs]) -> RuleInputs:
    """The inputs of the whole selection from its partitions' inputs (rows sorted by customer id)."""
    frames = [p.frame for p in parts if len(p.frame)]
    frame = pd.concat(frames, ignore_index=True) if frames else (parts[0].frame if parts else pd.DataFrame())
    if len(frame):
        frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
    absent: dict[str, list[str]] = {}
    for part in parts:
        for rule, names in part.absent.items():
            absent[rule] = sorted(set(absent.get(rule, [])) | set(names))
    return RuleInputs(frame, absent)


def rule_fits(rules: Sequence[ActionRule], inputs: RuleInputs) -> np.ndarray:
    """Which rules fit which rows, capacity aside (rows x rules, boolean).

    A rule fits a row when its eligibility holds and its contact pressure does not block the
    row (no contact in its last ``min_days_since_contact`` days): both row-wise, so a
    partition decides them alone. Capacity is the whole selection's (:func:`assign_actions`).
    """
    frame = inputs.frame
    n = len(frame)
    out = np.zeros((n, len(rules)), dtype=bool)
    if not n:
        return out
    days = frame["days_since_contact"].to_numpy(dtype="float64", na_value=np.nan)
    for k, rule in enumerate(rules):
        ok = frame[_ELIGIBLE + rule.name].to_numpy(dtype=bool, copy=True)
        if rule.min_days_since_contact:
            ok &= ~(days < rule.min_days_since_contact)
        out[:, k] = ok
    return out


@dataclass
class Assignment:
    """The actions of a selection.

    Attributes
    ----------
    rows : DataFrame
        customer_id, action (NA = none), action_label, action_rule (the expression that
        held), action_reason (why none, or which higher rules were blocked), risk_band,
        value_at_risk; sorted by customer id.
    counts : dict
        ``actions`` {name: customers}, ``none``, ``blocked_by_pressure`` and
        ``over_capacity`` {rule: customers}, ``absent_features`` {rule: [names]} and the
        ``notes`` in words.
    """

    rows: pd.DataFrame
    counts: dict[str, Any]


def assign_actions(
    rules: Sequence[ActionRule],
    inputs: RuleInputs,
    *,
    lang: str = "en",
    use_capacity: bool = True,
) -> Assignment:
    """Give each row the first rule (by priority) that fits and is not blocked, or none.

    Parameters
    ----------
    rules : sequence of ActionRule
        Sorted by priority (as :class:`~churnlens.config.ScoringSettings` keeps them).
    inputs : RuleInputs
        :func:`rule_inputs` of the whole selection (pooled with :func:`pool_inputs`).
    lang : {"en", "fr"}
        Language of the labels and reasons.
    use_capacity : bool
        Apply the rules' capacities (False for single customers, see :func:`suggest_actions`).

    Returns
    -------
    Assignment
    """
    words = Words(lang)
    frame = inputs.frame
    n = len(frame)
    ids = frame["customer_id"].astype("string").to_numpy(dtype=object) if n else np.zeros(0, dtype=object)
    var = np.nan_to_num(frame["value_at_risk"].to_numpy(dtype="float64", na_value=np.nan), nan=0.0)
    days = frame["days_since_contact"].to_numpy(dtype="float64", na_value=np.nan) if n else np.zeros(0)
    # capacity goes to the highest value at risk first; ties by customer id (a total order)
    order = np.lexsort((ids, -var)) if n else np.zeros(0, dtype=np.int64)
    chosen = np.full(n, -1, dtype=np.int64)
    notes: list[list[str]] = [[] for _ in range(n)]
    pressure_counts: dict[str, int] = {}
    capacity_counts: dict[str, int] = {}
    for k, rule in enumerate(rules):
        open_ = chosen < 0
        eligible = frame[_ELIGIBLE + rule.name].to_numpy(dtype=bool) & open_ if n else np.zeros(0, dtype=bool)
        blocked = eligible & (days < rule.min_days_since_contact) if rule.min_days_since_contact else np.zeros(n, bool)
        for i in np.flatnonzero(blocked):
            notes[i].append(
                words("action-pressure", rule=rule.name, days=int(max(days[i], 0)), min=rule.min_days_since_contact)
            )
        pressure_counts[rule.name] = int(blocked.sum())
        ok = eligible & ~blocked
        if use_capacity and rule.capacity is not None:
            ranked = order[ok[order]]
            over = ranked[rule.capacity :]
            ok[over] = False
            for i in over:
                notes[i].append(words("action-capacity", rule=rule.name, capacity=rule.capacity))
            capacity_counts[rule.name] = int(over.size)
        chosen[ok] = k
    names = np.array([r.name for r in rules] + [None], dtype=object)
    labels = np.array([r.label(lang) for r in rules] + [None], dtype=object)
    expressions = np.array([r.eligible for r in rules] + [None], dtype=object)
    none = words("action-none")
    reason = np.array(
        ["; ".join(note) if note else (none if c < 0 else None) for note, c in zip(notes, chosen, strict=True)],
        dtype=object,
    )
    if n == 0:
        reason = np.zeros(0, dtype=object)
    rows = pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "action": pd.array(names[chosen], dtype="string"),
            "action_label": pd.array(labels[chosen], dtype="string"),
            "action_rule": pd.array(expressions[chosen], dtype="string"),
            "action_reason": pd.array(reason, dtype="string"),
            "risk_band": pd.array(frame["risk_band"].to_numpy(dtype=object) if n else [], dtype="string"),
            "value_at_risk": var,
        }
    )
    counts = {
        "actions": {r.name: int((chosen == k).sum()) for k, r in enumerate(rules)},
        "none": int((chosen < 0).sum()),
        "blocked_by_pressure": pressure_counts,
        "over_capacity": capacity_counts,
        "absent_features": dict(inputs.absent),
        "notes": [
            words("action-absent", rule=rule, names=", ".join(names_)) for rule, names_ in inputs.absent.items()
        ],
    }
    return Assignment(rows, counts)


def generic_assignment(inputs: RuleInputs, *, lang: str = "en") -> Assignment:
    """Every row gets :data:`GENERIC_ACTION` (a contact plan drawn without action rules)."""
    frame = inputs.frame
    n = len(frame)
    label = Words(lang)("action-generic")
    rows = pd.DataFrame(
        {
            "customer_id": pd.array(frame["customer_id"].astype("string") if n else [], dtype="string"),
            "action": pd.array([GENERIC_ACTION] * n, dtype="string"),
            "action_label": pd.array([label] * n, dtype="string"),
            "action_rule": pd.array([None] * n, dtype="string"),
            "action_reason": pd.array([None] * n, dtype="string"),
            "risk_band": pd.array(frame["risk_band"].to_numpy(dtype=object) if n else [], dtype="string"),
            "value_at_risk": frame["value_at_risk"].to_numpy(dtype="float64") if n else np.zeros(0),
        }
    )
    counts = {"actions": {GENERIC_ACTION: n}, "none": 0, "blocked_by_pressure": {}, "over_capacity": {},
              "absent_features": {}, "notes": []}  # fmt: skip
    return Assignment(rows, counts)


def suggest_actions(
    rules: Sequence[ActionRule],
    scored: pd.DataFrame,
    snapshot: pd.DataFrame,
    reasons: pd.DataFrame | None,
    *,
    lang: str = "en",
) -> pd.DataFrame:
    """The suggested action of each customer of ``scored``: the first rule that fits, no capacity.

    What the web app shows on a customer's page: the same rules, contact pressure included,
    as ``churnlens score --actions``; capacities are limits of a campaign and do not apply.

    Parameters
    ----------
    rules : sequence of ActionRule
        Usually ``settings.actions``.
    scored : DataFrame
        Scored rows (:data:`churnlens.serving.core.SCORED_COLUMNS`).
    snapshot : DataFrame
        Their snapshot rows (index customer_id).
    reasons : DataFrame or None
        Their reasons (long table).
    lang : {"en", "fr"}

    Returns
    -------
    DataFrame
        customer_id, action, action_label, action_rule, action_reason, in the order of ``scored``.
    """
    inputs = rule_inputs(rules, scored, snapshot, reasons)
    assignment = assign_actions(rules, inputs, lang=lang, use_capacity=False)
    return assignment.rows[["customer_id", *ACTION_COLUMNS]]
