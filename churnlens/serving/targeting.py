"""Whom to contact: top N, probability threshold, or a budget maximising expected net value.

Economics of one contacted customer *i* with churn probability ``p_i`` and value ``v_i``
(the margin kept if a would-be churner is retained)::

    expected saved value  = p_i * save_rate * v_i
    expected net          = p_i * save_rate * v_i - cost_per_contact

Every rule returns a :class:`Selection`: a boolean mask over the scored customers and the
:class:`CampaignSummary` of the contacted set under the given economics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnlens.config import Economics, ScoringSettings
from churnlens.errors import InputError


@dataclass(frozen=True)
class CampaignSummary:
    """Expected outcome of contacting a list of customers.

    Parameters
    ----------
    contacted : int
        Customers in the list.
    expected_cost : float
        ``contacted * cost_per_contact``.
    expected_saved_value : float
        Sum over the list of ``p * save_rate * value``.
    expected_net : float
        ``expected_saved_value - expected_cost``.
    """

    contacted: int
    expected_cost: float
    expected_saved_value: float
    expected_net: float

    def to_dict(self) -> dict[str, float | int]:
        """Plain-dict form."""
        return {
            "contacted": int(self.contacted),
            "expected_cost": float(self.expected_cost),
            "expected_saved_value": float(self.expected_saved_value),
            "expected_net": float(self.expected_net),
        }


@dataclass(frozen=True)
class Selection:
    """A contact list: ``mask`` over the scored customers, its rule and summary.

    ``ids`` holds the selected labels when the scores came as a Series (else positions).
    """

    mask: np.ndarray
    summary: CampaignSummary
    rule: str
    ids: pd.Index


def _scores(scores: pd.Series | np.ndarray) -> tuple[np.ndarray, pd.Index]:
    if isinstance(scores, pd.Series):
        p, index = scores.to_numpy(dtype="float64", na_value=np.nan), scores.index
    else:
        p = np.asarray(scores, dtype="float64")
        index = pd.RangeIndex(len(p))
    if p.ndim != 1:
        raise InputError(f"scores must be one-dimensional, got shape {p.shape}")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise InputError("scores must be probabilities in [0, 1] without missing values")
    return p, index


def _values(value: float | pd.Series | np.ndarray, n: int) -> np.ndarray:
    v = (
        np.broadcast_to(np.asarray(value, dtype="float64"), (n,))
        if np.ndim(value) == 0
        else np.asarray(value, dtype="float64")
    )
    if v.shape != (n,):
        raise InputError(f"value must be a number or one value per customer ({n}), got shape {v.shape}")
    return np.nan_to_num(v, nan=0.0)


def _check_economics(cost_per_contact: float, save_rate: float) -> None:
    if not 0 <= save_rate <= 1:
        raise InputError(f"save rate must lie in [0, 1], got {save_rate}")
    if cost_per_contact < 0:
        raise InputError(f"cost per contact must be non-negative, got {cost_per_contact}")


def expected_net(
    scores: pd.Series | np.ndarray, *, cost_per_contact: float, save_rate: float, value: float | np.ndarray
) -> np.ndarray:
    """Expected net value of contacting each customer: ``p * save_rate * value - cost``."""
    p, _ = _scores(scores)
    _check_economics(cost_per_contact, save_rate)
    return p * save_rate * _values(value, len(p)) - cost_per_contact


def summarize(
    scores: pd.Series | np.ndarray,
    mask: np.ndarray,
    *,
    cost_per_contact: float,
    save_rate: float,
    value: float | np.ndarray,
) -> CampaignSummary:
    """The :class:`CampaignSummary` of contacting the customers in ``mask``."""
    p, _ = _scores(scores)
    _check_economics(cost_per_contact, save_rate)
    mask = np.asarray(mask, dtype=bool)
    saved = float(np.sum(p[mask] * save_rate * _values(value, len(p))[mask]))
    contacted = int(mask.sum())
    cost = float(contacted * cost_per_contact)
    return CampaignSummary(contacted, cost, saved, saved - cost)


def _order(key: np.ndarray, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Positions by ``key`` descending; ties by ``tiebreak`` ascending, else in input order."""
    if tiebreak is None:
        return np.argsort(-key, kind="stable")
    return np.lexsort((np.asarray(tiebreak), -key))


def _selection(p: np.ndarray, index: pd.Index, mask: np.ndarray, rule: str, econ: dict) -> Selection:
    return Selection(mask=mask, summary=summarize(p, mask, **econ), rule=rule, ids=index[mask])


def _cap(n: int, count: float) -> int:
    return min(n, int(count))


def select_mask(
    rule: Rule,
    p: np.ndarray,
    customer_value: np.ndarray | float,
    economics: Economics,
    *,
    tiebreak: np.ndarray | None = None,
) -> np.ndarray:
    """Which customers ``rule`` contacts: the one selection routine of every scoring path.

    Selecting is *mergeable*: the selection of a union of partitions equals the selection
    of the union of each partition's selection (top N of the tops N, best nets within the
    cap of the best nets, everyone above a threshold). So a partitioned run selects per
    partition, pools the selected rows and selects again, with the same result as one pass.

    Parameters
    ----------
    rule : TopN, Threshold, Budget or HighRisk
    p : array of float
        Churn probabilities.
    customer_value : array or float
        Each customer's value (used when ``economics.value_per_save`` is None).
    economics : Economics
    tiebreak : array, optional
        Ties in the ranking key go to the smaller ``tiebreak`` (customer ids when pooling
        partitions); default input order.

    Returns
    -------
    ndarray of bool
    """
    p = np.asarray(p, dtype="float64")
    mask = np.zeros(len(p), dtype=bool)
    if isinstance(rule, TopN):
        if int(rule.n) != rule.n or rule.n < 0:
            raise InputError(f"top N must be a non-negative whole number, got {rule.n}")
        mask[_order(p, tiebreak)[: int(rule.n)]] = True
    elif isinstance(rule, Threshold | HighRisk):
        bound = rule.probability if isinstance(rule, Threshold) else rule.bound
        if not 0 <= bound <= 1:
            raise InputError(f"probability threshold must lie in [0, 1], got {bound}")
        mask = p >= bound
    elif isinstance(rule, Budget):
        if rule.amount < 0:
            raise InputError(f"budget must be non-negative, got {rule.amount}")
        net = expected_net(p, cost_per_contact=economics.cost_per_contact, save_rate=economics.save_rate,
                           value=economics.values(customer_value))
        cost = economics.cost_per_contact
        cap = len(p) if cost == 0 else int(np.floor(rule.amount / cost + 1e-9))
        mask[_order(net, tiebreak)[: _cap(cap, (net > 0).sum())]] = True
    else:
        raise TypeError(f"unknown targeting rule {rule!r}")
    return mask


def select_top_n(
    scores: pd.Series | np.ndarray,
    n: int,
    *,
    cost_per_contact: float = 0.0,
    save_rate: float = 1.0,
    value: float | np.ndarray = 0.0,
) -> Selection:
    """The ``n`` customers most likely to churn (ties in input order).

    Parameters
    ----------
    scores : Series or array of float
        Churn probabilities, one per customer.
    n : int
        List size (all customers if larger than the base).
    cost_per_contact, save_rate, value
        Economics used only for the summary.

    Returns
    -------
    Selection
    """
    p, index = _scores(scores)
    econ = {"cost_per_contact": cost_per_contact, "save_rate": save_rate, "value": value}
    mask = select_mask(TopN(n), p, 0.0, Economics(cost_per_contact, save_rate, 0.0))
    return _selection(p, index, mask, describe(TopN(n)), econ)


def select_threshold(
    scores: pd.Series | np.ndarray,
    threshold: float,
    *,
    cost_per_contact: float = 0.0,
    save_rate: float = 1.0,
    value: float | np.ndarray = 0.0,
) -> Selection:
    """Every customer whose churn probability is at least ``threshold``.

    Parameters
    ----------
    scores : Series or array of float
        Churn probabilities.
    threshold : float
        In [0, 1].
    cost_per_contact, save_rate, value
        Economics used only for the summary.

    Returns
    -------
    Selection
    """
    p, index = _scores(scores)
    econ = {"cost_per_contact": cost_per_contact, "save_rate": save_rate, "value": value}
    mask = select_mask(Threshold(threshold), p, 0.0, Economics(cost_per_contact, save_rate, 0.0))
    return _selection(p, index, mask, describe(Threshold(threshold)), econ)


def select_budget(
    scores: pd.Series | np.ndarray,
    budget: float,
    cost_per_contact: float,
    save_rate: float,
    value: float | np.ndarray,
) -> Selection:
    """The list with the highest expected net value whose contact cost fits the budget.

    With one cost per contact the budget caps the list at ``floor(budget / cost)``
    customers, so the optimum is exact and greedy: customers ranked by expected net
    ``p * save_rate * value - cost``, keeping only those with a positive expected net, up
    to the cap. This is generally *not* the top N by probability when values differ.

    Parameters
    ----------
    scores : Series or array of float
        Churn probabilities.
    budget : float
        Money available for contacts (>= 0).
    cost_per_contact : float
        Cost of one contact (>= 0; 0 means the budget does not bind).
    save_rate : float
        Share of contacted would-be churners the campaign retains, in [0, 1].
    value : float or array of float
        Value of retaining each customer (a constant or one per customer).

    Returns
    -------
    Selection

    Examples
    --------
    >>> s = select_budget([0.9, 0.5], budget=10, cost_per_contact=10, save_rate=0.5, value=[20, 200])
    >>> s.mask.tolist(), s.summary.expected_net
    ([False, True], 40.0)
    """
    p, index = _scores(scores)
    _check_economics(cost_per_contact, save_rate)
    econ = {"cost_per_contact": cost_per_contact, "save_rate": save_rate, "value": value}
    mask = select_mask(Budget(budget), p, _values(value, len(p)), Economics(cost_per_contact, save_rate, None))
    return _selection(p, index, mask, describe(Budget(budget), Economics(cost_per_contact, save_rate)), econ)


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class TopN:
    """Contact the ``n`` customers most likely to churn."""

    n: int


@dataclass(frozen=True)
class Threshold:
    """Contact every customer with churn probability >= ``probability``."""

    probability: float


@dataclass(frozen=True)
class Budget:
    """Contact the list with the highest expected net value within ``amount``."""

    amount: float


@dataclass(frozen=True)
class HighRisk:
    """Default rule: contact the customers of the high risk band (probability >= ``bound``)."""

    bound: float = 0.5


Rule = TopN | Threshold | Budget | HighRisk


def rule_of(settings: ScoringSettings) -> Rule:
    """The targeting rule of the settings: ``top``, ``threshold`` or ``budget``, else the high band."""
    if settings.top is not None:
        return TopN(int(settings.top))
    if settings.threshold is not None:
        return Threshold(float(settings.threshold))
    if settings.budget is not None:
        return Budget(float(settings.budget))
    return HighRisk(settings.high_risk)


def describe(rule: Rule, economics: Economics | None = None) -> str:
    """The rule in words, for summaries."""
    if isinstance(rule, TopN):
        return f"top {int(rule.n)} by churn probability"
    if isinstance(rule, Threshold):
        return f"churn probability >= {rule.probability:g}"
    if isinstance(rule, HighRisk):
        return f"high risk band (probability >= {rule.bound:g})"
    if isinstance(rule, Budget):
        cost = (economics or Economics()).cost_per_contact
        return f"budget {rule.amount:,.2f} at {cost:,.2f} per contact, max expected net value"
    raise TypeError(f"unknown targeting rule {rule!r}")


def apply_rule(
    rule: Rule, scores: pd.Series | np.ndarray, customer_value: np.ndarray, economics: Economics
) -> Selection:
    """Apply a targeting rule with the given economics.

    Parameters
    ----------
    rule : TopN, Threshold, Budget or HighRisk
    scores : Series or array
        Churn probabilities.
    customer_value : array
        Value of each customer (used when ``economics.value_per_save`` is None).
    economics : Economics

    Returns
    -------
    Selection
    """
    p, index = _scores(scores)
    value = economics.values(customer_value)
    mask = select_mask(rule, p, customer_value, economics)
    econ = {"cost_per_contact": economics.cost_per_contact, "save_rate": economics.save_rate, "value": value}
    return _selection(p, index, mask, describe(rule, economics), econ)
