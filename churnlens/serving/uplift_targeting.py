"""Whom to contact and with which action, by expected incremental value (``score --target uplift``).

For a customer with value ``v`` and an action ``a`` of cost ``c_a`` whose expected uplift (the
churn probability it takes away, from the uplift model) is ``u_a``::

    expected incremental value  = u_a * v - c_a

Each customer gets the action of highest expected incremental value among the ``[[actions]]``
rules whose eligibility holds and whose contact pressure does not block them, or no action
when none is positive. Customers are then taken by incremental value per unit of cost (the
greedy rule of a budgeted knapsack), each within its action's capacity (a customer whose best
action is full falls to their next positive one) and within the budget (a customer whose action
no longer fits falls to a cheaper positive one, else is passed over for cheaper customers).
Without a budget, every customer with a positive value is contacted, capacities allowing.

Two steps, so that partitions can score apart (like :mod:`churnlens.serving.actions`):
:func:`uplift_candidates` per partition (row-wise), :func:`select_by_uplift` on the pooled
candidates. :func:`risk_list` is the list the churn-risk targeting would send at the same
budget, for the side-by-side figure of the summary.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churnlens.config import ActionRule, ScoringSettings
from churnlens.errors import InputError
from churnlens.i18n import Words
from churnlens.serving.actions import Assignment, RuleInputs, assign_actions, rule_fits, rule_inputs
from churnlens.uplift.model import UPLIFT_COLUMN_PREFIX, UpliftModel, uplift_column

#: Column of the chosen action's expected incremental value in the campaign list.
VALUE_COLUMN = "expected_incremental_value"
#: Per action, its expected incremental value in the candidates (not written to the list).
_NET = "net:"


def learnt_rules(
    rules: Sequence[ActionRule], model: UpliftModel, *, lang: str = "en"
) -> tuple[list[ActionRule], list[str]]:
    """The rules whose action the uplift model learnt, and notes on the others (in ``lang``)."""
    words = Words(lang)
    learnt = [r for r in rules if r.name in model.actions]
    notes = [words("uplift-no-model", action=r.name) for r in rules if r.name not in model.actions]
    if not learnt:
        raise InputError(
            f"--target uplift: the uplift model learnt {model.actions}, none of the [[actions]] rules "
            f"{[r.name for r in rules]}; train-uplift on campaigns that sent these actions"
        )
    return learnt, notes


def uplift_scores(model: UpliftModel, snapshot: pd.DataFrame, rules: Sequence[ActionRule]) -> pd.DataFrame:
    """``expected_uplift_<a>`` of every rule's action for every snapshot row (positional index)."""
    matrix = model.matrix(snapshot)
    return pd.DataFrame({uplift_column(r.name): model.uplift_of_matrix(matrix, r.name) for r in rules})


def incremental_values(scores: pd.DataFrame, rules: Sequence[ActionRule], settings: ScoringSettings) -> np.ndarray:
    """``uplift x value - cost`` per row and rule (rows x rules)."""
    value = np.asarray(settings.economics.values(scores["customer_value"].to_numpy(dtype="float64")))
    value = np.broadcast_to(value, (len(scores),))
    out = np.empty((len(scores), len(rules)))
    for k, rule in enumerate(rules):
        out[:, k] = scores[uplift_column(rule.name)].to_numpy(dtype="float64") * value - float(rule.cost)
    return out


def uplift_candidates(
    settings: ScoringSettings,
    rules: Sequence[ActionRule],
    scores: pd.DataFrame,
    snapshot: pd.DataFrame,
    reasons: pd.DataFrame | None,
) -> pd.DataFrame:
    """A partition's customers that some action could pay for, with each rule's verdict on them.

    Parameters
    ----------
    settings : ScoringSettings
    rules : sequence of ActionRule
        The rules the uplift model learnt (:func:`learnt_rules`), by priority.
    scores : DataFrame
        Scored rows with their ``expected_uplift_<a>`` columns; only those with a positive
        incremental value for some action are passed on (the others are never contacted).
    snapshot : DataFrame
        Their snapshot (index customer_id).
    reasons : DataFrame or None
        Their churn reasons (rules may read them).

    Returns
    -------
    DataFrame
        The candidate rows of ``scores``, then ``net:<a>`` (incremental value, -inf when the
        rule does not hold or its contact pressure blocks the customer) per rule.
    """
    net = incremental_values(scores, rules, settings)
    inputs = rule_inputs(rules, scores, snapshot, reasons)
    frame = scores.reset_index(drop=True).copy()
    fits = rule_fits(rules, inputs)
    for k, rule in enumerate(rules):
        frame[_NET + rule.name] = np.where(fits[:, k], net[:, k], -np.inf)
    nets = frame[[_NET + r.name for r in rules]].to_numpy(dtype="float64")
    return frame[(nets > 0).any(axis=1)].reset_index(drop=True)


def positive_mask(scores: pd.DataFrame, rules: Sequence[ActionRule], settings: ScoringSettings) -> np.ndarray:
    """Rows with a positive incremental value for some action (before eligibility): the ones worth explaining."""
    if not len(scores):
        return np.zeros(0, dtype=bool)
    return (incremental_values(scores, rules, settings) > 0).any(axis=1)


@dataclass
class UpliftSelection:
    """The customers contacted by expected incremental value.

    Attributes
    ----------
    rows : DataFrame
        The selected candidate rows (sorted by customer id) with ``action`` (its name),
        ``action_cost`` and :data:`VALUE_COLUMN`.
    counts : dict
        ``actions`` {name: customers}, ``over_capacity`` {rule: customers who fell to another
        action or out}, ``over_budget`` (customers passed over), ``cost``, ``value``.
    """

    rows: pd.DataFrame
    counts: dict[str, Any]


def select_by_uplift(
    rules: Sequence[ActionRule], candidates: pd.DataFrame, budget: float | None
) -> UpliftSelection:
    """Pick customers and actions by incremental value per unit of cost (see the module docstring).

    Ties are broken by customer id then rule priority, so the pooled candidates of any
    partitioning give the same list.
    """
    frame = candidates.copy()
    frame["customer_id"] = frame["customer_id"].astype("string")
    frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
    n = len(frame)
    nets = frame[[_NET + r.name for r in rules]].to_numpy(dtype="float64") if n else np.zeros((0, len(rules)))
    costs = np.array([float(r.cost) for r in rules])
    # each customer's positive actions, best incremental value first (ties: rule priority)
    options = [
        [k for k in sorted(range(len(rules)), key=lambda k: (-nets[i, k], k)) if nets[i, k] > 0] for i in range(n)
    ]
    left = [r.capacity if r.capacity is not None else np.inf for r in rules]
    remaining = np.inf if budget is None else float(budget)

    def entry(i: int, k: int) -> tuple[float, int, int, int]:
        ratio = nets[i, k] / costs[k] if costs[k] > 0 else np.inf
        return (-ratio, -nets[i, k], i, k)  # i: customers sorted by id

    heap = [entry(i, opts[0]) for i, opts in enumerate(options) if opts]
    heapq.heapify(heap)
    step = [0] * n
    chosen = np.full(n, -1, dtype=np.int64)
    over_capacity = dict.fromkeys((r.name for r in rules), 0)
    over_budget = 0
    while heap:
        _, _, i, k = heapq.heappop(heap)
        if left[k] <= 0:
            over_capacity[rules[k].name] += 1
            step[i] += 1
            if step[i] < len(options[i]):
                heapq.heappush(heap, entry(i, options[i][step[i]]))
            continue
        if costs[k] > remaining:  # a cheaper positive action may still fit
            step[i] += 1
            if step[i] < len(options[i]):
                heapq.heappush(heap, entry(i, options[i][step[i]]))
            else:
                over_budget += 1
            continue
        chosen[i] = k
        left[k] -= 1
        remaining -= costs[k]
    keep = chosen >= 0
    rows = frame[keep].reset_index(drop=True)
    picked = chosen[keep]
    rows["action"] = pd.array([rules[k].name for k in picked], dtype="string")
    rows["action_cost"] = costs[picked] if len(picked) else np.zeros(0)
    rows[VALUE_COLUMN] = nets[np.flatnonzero(keep), picked] if len(picked) else np.zeros(0)
    rows = rows.drop(columns=[c for c in rows.columns if c.startswith(_NET)])
    counts = {
        "actions": {r.name: int((picked == k).sum()) for k, r in enumerate(rules)},
        "over_capacity": {k: v for k, v in over_capacity.items() if v},
        "over_budget": int(over_budget),
        "cost": float(rows["action_cost"].sum()),
        "value": float(rows[VALUE_COLUMN].sum()),
    }
    return UpliftSelection(rows, counts)


def candidate_rules(rules: Sequence[ActionRule], candidates: pd.DataFrame) -> list[ActionRule]:
    """The rules the candidates were valued for (their ``net:<a>`` columns), by priority."""
    return [r for r in rules if _NET + r.name in candidates.columns]


def uplift_assignment(
    selection: pd.DataFrame | None, rules: Sequence[ActionRule], *, lang: str, currency: str = "EUR"
) -> Assignment:
    """The :class:`~churnlens.serving.actions.Assignment` of an uplift selection: each customer's
    chosen action, why, and the selection's counts (for the summary and the contact plan)."""
    if selection is None:
        selection = pd.DataFrame(columns=["customer_id", "action", "risk_band", "value_at_risk", VALUE_COLUMN])
    counts = dict(selection.attrs.get("uplift") or {})
    rows = uplift_assignment_rows(selection, rules, lang, currency)
    return Assignment(rows, {
        "actions": counts.get("actions", {}), "none": 0, "blocked_by_pressure": {},
        "over_capacity": counts.get("over_capacity", {}), "absent_features": {}, "notes": [],
        "over_budget": counts.get("over_budget", 0),
    })  # fmt: skip


def uplift_assignment_rows(
    selection: pd.DataFrame, rules: Sequence[ActionRule], lang: str, currency: str = "EUR"
) -> pd.DataFrame:
    """The selected customers' action columns (as :func:`churnlens.serving.actions.assign_actions` writes them)."""
    words = Words(lang, currency)
    by_name = {r.name: r for r in rules}
    names = selection["action"].astype(str).tolist()
    uplift = [float(selection[uplift_column(a)].iloc[i]) for i, a in enumerate(names)]
    return pd.DataFrame(
        {
            "customer_id": pd.array(selection["customer_id"].astype("string"), dtype="string"),
            "action": pd.array(names, dtype="string"),
            "action_label": pd.array([by_name[a].label(lang) for a in names], dtype="string"),
            "action_rule": pd.array([by_name[a].eligible for a in names], dtype="string"),
            "action_reason": pd.array(
                [words("uplift-action-reason", points=words.points(u),
                       value=words.money(float(v))) for u, v in zip(uplift, selection[VALUE_COLUMN], strict=True)],
                dtype="string",
            ),  # fmt: skip
            "risk_band": pd.array(selection["risk_band"].astype("string"), dtype="string"),
            "value_at_risk": selection["value_at_risk"].to_numpy(dtype="float64"),
        }
    )


# --------------------------------------------------------------------------- the risk list at the same budget


@dataclass(frozen=True)
class ListValue:
    """A contact list's size, cost and expected incremental value (by the uplift model)."""

    contacted: int
    cost: float
    expected_incremental_value: float
    #: the list: customer_id and action, in the order taken
    picks: pd.DataFrame | None = None

    def to_dict(self) -> dict[str, float | int]:
        return {"contacted": self.contacted, "cost": self.cost,
                "expected_incremental_value": self.expected_incremental_value}  # fmt: skip


def risk_list(
    rules: Sequence[ActionRule],
    scores: pd.DataFrame,
    inputs: RuleInputs,
    budget: float,
    settings: ScoringSettings,
) -> ListValue:
    """What churn-risk targeting sends for ``budget``, and its expected incremental value by the
    uplift model.

    The rule: the customers of ``scores`` get their actions as ``score --actions`` gives them
    (:func:`~churnlens.serving.actions.assign_actions` on ``inputs``: the first rule by
    priority whose eligibility holds, whose contact pressure does not block them and whose
    capacity is not used up, capacity going to the highest value at risk). Then, customers by
    churn probability (highest first, ties by customer id): one with an action whose cost is at
    most what is left of the budget is contacted with it; one without an action, or whose
    action costs more than what is left, is passed over (a later, cheaper one may still fit).

    When ``scores`` holds :func:`riskiest_for_budget`'s rows and every one of them gets an
    action (no capacity runs out), the list spends more than ``budget`` minus the costliest
    action's cost, unless fewer than :func:`risk_bound` customers have a fitting action (then
    every one of them is walked): ``risk_bound`` contacts cost more than the budget, so one of
    them is passed over for its cost, when less than that cost is left.

    Parameters
    ----------
    rules : sequence of ActionRule
        The rules the uplift model learnt, by priority.
    scores : DataFrame
        The customers to walk (:func:`riskiest_for_budget`'s rows of the base), with their
        ``expected_uplift_<a>`` columns.
    inputs : RuleInputs
        Their :func:`~churnlens.serving.actions.rule_inputs` (the same customers).
    budget : float
    settings : ScoringSettings

    Returns
    -------
    ListValue
    """
    assignment = assign_actions(rules, inputs, lang=settings.lang)
    action = assignment.rows.set_index(assignment.rows["customer_id"].astype(str))["action"]
    ids = scores["customer_id"].astype(str).to_numpy(dtype=object)
    order = risk_order(scores)
    net = incremental_values(scores, rules, settings)
    position = {r.name: k for k, r in enumerate(rules)}
    remaining, contacted, cost, value = float(budget), 0, 0.0, 0.0
    picked: list[tuple[str, str]] = []
    for i in order:
        a = action.get(ids[i])
        if a is None or pd.isna(a):
            continue
        k = position[str(a)]
        if rules[k].cost > remaining:
            continue
        remaining -= rules[k].cost
        contacted += 1
        cost += rules[k].cost
        value += net[i, k]
        picked.append((ids[i], rules[k].name))
    return ListValue(contacted, cost, value, pd.DataFrame(picked, columns=["customer_id", "action"]))


def risk_order(scores: pd.DataFrame) -> np.ndarray:
    """Positions of ``scores`` by churn probability, highest first, ties by customer id (a total order)."""
    ids = scores["customer_id"].astype(str).to_numpy(dtype=object)
    return np.lexsort((ids, -scores["churn_probability"].to_numpy(dtype="float64")))


def risk_bound(rules: Sequence[ActionRule], budget: float) -> int | None:
    """How many customers with a fitting action the risk list needs at most: ``ceil(budget /
    cheapest cost) + 1`` (that many contacts cost more than the budget, so the walk of
    :func:`risk_list` passes one over for its cost); None (no bound) when an action is free."""
    cheapest = min((float(r.cost) for r in rules), default=0.0)
    return None if cheapest <= 0 else int(np.ceil(max(float(budget), 0.0) / cheapest)) + 1


def riskiest_for_budget(
    scores: pd.DataFrame, inputs: RuleInputs, rules: Sequence[ActionRule], budget: float
) -> np.ndarray:
    """Positions of the rows :func:`risk_list` walks for ``budget``: the riskiest rows of ``scores``
    (:func:`risk_order`) with at least one fitting rule, at most :func:`risk_bound` of them.

    A rule fits a row when its eligibility holds and its contact pressure does not block it
    (:func:`~churnlens.serving.actions.rule_fits`; capacity aside, as it is the whole list's).
    Rows without one are skipped and do not count: they would get no action. Both tests are
    row-wise and the order total, so the riskiest fitting rows of a base are among the pooled
    riskiest fitting rows of its partitions, and this function on the pool gives them again.

    Parameters
    ----------
    scores : DataFrame
        Scored rows (customer_id, churn_probability, ...).
    inputs : RuleInputs
        Their rule verdicts (:func:`~churnlens.serving.actions.rule_inputs`), rows matched by
        customer id; every row of ``scores`` must be there.
    rules : sequence of ActionRule
    budget : float

    Returns
    -------
    ndarray
        Positions into ``scores``, riskiest first.
    """
    order = risk_order(scores)
    if not len(order):
        return order
    known = pd.Index(inputs.frame["customer_id"].astype(str))
    where = known.get_indexer(scores["customer_id"].astype(str))
    if (where < 0).any():
        raise ValueError("riskiest_for_budget: rows without rule verdicts")
    fits = rule_fits(rules, inputs).any(axis=1)[where]
    kept = order[fits[order]]
    bound = risk_bound(rules, budget)
    return kept if bound is None else kept[:bound]


def uplift_columns(columns: Sequence[str]) -> list[str]:
    """The expected-uplift columns among ``columns``, in order."""
    return [c for c in columns if c.startswith(UPLIFT_COLUMN_PREFIX)]
