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


def _order(key: np.ndarray) -> np.ndarray:
    """Positions by ``key`` descending, ties kept in input order."""
    return np.argsort(-key, kind="stable")


def _selection(p: np.ndarray, index: pd.Index, mask: np.ndarray, rule: str, econ: dict) -> Selection:
    return Selection(mask=mask, summary=summarize(p, mask, **econ), rule=rule, ids=index[mask])


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
    if int(n) != n or n < 0:
        raise InputError(f"top N must be a non-negative whole number, got {n}")
    mask = np.zeros(len(p), dtype=bool)
    mask[_order(p)[: int(n)]] = True
    econ = {"cost_per_contact": cost_per_contact, "save_rate": save_rate, "value": value}
    return _selection(p, index, mask, f"top {int(n)} by churn probability", econ)


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
    if not 0 <= threshold <= 1:
        raise InputError(f"probability threshold must lie in [0, 1], got {threshold}")
    econ = {"cost_per_contact": cost_per_contact, "save_rate": save_rate, "value": value}
    return _selection(p, index, p >= threshold, f"churn probability >= {threshold:g}", econ)


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
    if budget < 0:
        raise InputError(f"budget must be non-negative, got {budget}")
    net = expected_net(p, cost_per_contact=cost_per_contact, save_rate=save_rate, value=value)
    cap = len(p) if cost_per_contact == 0 else int(np.floor(budget / cost_per_contact + 1e-9))
    order = _order(net)
    chosen = order[: min(cap, int((net > 0).sum()))]
    mask = np.zeros(len(p), dtype=bool)
    mask[chosen] = True
    econ = {"cost_per_contact": cost_per_contact, "save_rate": save_rate, "value": value}
    rule = f"budget {budget:,.2f} at {cost_per_contact:,.2f} per contact, max expected net value"
    return _selection(p, index, mask, rule, econ)


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Economics:
    """Campaign economics for summaries and budget targeting.

    Parameters
    ----------
    cost_per_contact : float
    save_rate : float
        In [0, 1].
    value_per_save : float or None
        Constant value of retaining one customer; None uses each customer's value
        (the batch's ``customer_value``: trailing-12-month spend or ``--value-column``).
    """

    cost_per_contact: float = 5.0
    save_rate: float = 0.2
    value_per_save: float | None = None

    def __post_init__(self) -> None:
        _check_economics(self.cost_per_contact, self.save_rate)
        if self.value_per_save is not None and self.value_per_save < 0:
            raise InputError(f"value per saved customer must be non-negative, got {self.value_per_save}")

    @classmethod
    def from_metadata(cls, metadata: dict, **overrides: float | None) -> Economics:
        """Defaults from the model's training ``campaign`` settings, then ``overrides`` (None = keep)."""
        campaign = metadata.get("campaign", {}) or {}
        values = {
            "cost_per_contact": float(campaign.get("cost_per_contact", cls.cost_per_contact)),
            "save_rate": float(campaign.get("save_rate", cls.save_rate)),
            "value_per_save": None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def values(self, customer_value: np.ndarray) -> float | np.ndarray:
        """Value of a save per customer: the constant, or the customers' own values (>= 0)."""
        if self.value_per_save is not None:
            return float(self.value_per_save)
        return np.clip(np.nan_to_num(np.asarray(customer_value, dtype="float64"), nan=0.0), 0.0, None)


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
    econ = {
        "cost_per_contact": economics.cost_per_contact,
        "save_rate": economics.save_rate,
        "value": economics.values(customer_value),
    }
    if isinstance(rule, TopN):
        return select_top_n(scores, rule.n, **econ)
    if isinstance(rule, Threshold):
        return select_threshold(scores, rule.probability, **econ)
    if isinstance(rule, Budget):
        return select_budget(scores, rule.amount, **econ)
    if isinstance(rule, HighRisk):
        selection = select_threshold(scores, rule.bound, **econ)
        return Selection(
            selection.mask,
            selection.summary,
            f"high risk band (probability >= {rule.bound:g})",
            selection.ids,
        )
    raise TypeError(f"unknown targeting rule {rule!r}")
