"""Randomised control groups and the campaign's contact plan (rows of the ``contacts`` table).

The control group is drawn within the customers who get an action, stratified by (action,
risk band): a stratum of ``n`` customers holds out ``floor(share * n)`` or ``ceil(share * n)``
of them, so every stratum is within one customer of its share, and the strata that hold out
one more are chosen so the whole plan holds out ``round(share * N)`` (largest remainders,
ties drawn at random). Who is held out in a stratum is a seeded permutation of its customers
sorted by id: the draw depends only on the seed, the campaign id, the stratum and its
members, never on row order or on how the base was partitioned. The same seed gives the
same groups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churnlens.config import ActionRule
from churnlens.data.schema import TABLE_SPECS
from churnlens.errors import InputError

#: Columns of the contact plan: the ``contacts`` table's, in its order.
PLAN_COLUMNS = [c.name for c in TABLE_SPECS["contacts"].columns]
TREATMENT, CONTROL = "treatment", "control"


def _key(text: str) -> int:
    """A stable 64-bit number of a text (Python's ``hash`` changes between processes)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def _rng(seed: int, campaign_id: str, part: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), _key(campaign_id), _key(part)])


def control_counts(sizes: Sequence[int], share: float, rng: np.random.Generator) -> np.ndarray:
    """Customers to hold out per stratum: floor or ceil of ``share * size``, ``round(share * total)`` in all.

    Parameters
    ----------
    sizes : sequence of int
        Customers per stratum.
    share : float
        Control share in [0, 1).
    rng : Generator
        Breaks ties between strata with equal remainders.

    Returns
    -------
    ndarray of int
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    exact = share * sizes
    base = np.floor(exact).astype(np.int64)
    remainder = exact - base
    target = int(np.floor(share * sizes.sum() + 0.5))
    extra = max(target - int(base.sum()), 0)
    if extra:
        # largest remainders first, ties in random order; only strata with a remainder qualify
        order = np.lexsort((rng.permutation(len(sizes)), -remainder))
        order = order[remainder[order] > 1e-12][:extra]
        base[order] += 1
    return base


def draw_holdout(
    customer_id: Sequence[str] | pd.Series,
    strata: pd.DataFrame,
    *,
    share: float,
    seed: int,
    campaign_id: str,
) -> np.ndarray:
    """Which customers are held out (True = control), stratified by the columns of ``strata``.

    Parameters
    ----------
    customer_id : sequence of str
        Distinct customer ids.
    strata : DataFrame
        One row per customer: the stratum columns (action, risk_band).
    share : float
        Control share in [0, 1).
    seed : int
    campaign_id : str
        Part of the random streams: two campaigns with the same seed draw different groups.

    Returns
    -------
    ndarray of bool
        In the order of ``customer_id``.
    """
    if not 0 <= share < 1:
        raise InputError(f"holdout share must lie in [0, 1), got {share}")
    ids = pd.Series(customer_id, dtype="string").reset_index(drop=True)
    if ids.duplicated().any():
        raise InputError(f"a contact plan lists each customer once; repeated: {ids[ids.duplicated()].head(5).tolist()}")
    keys = strata.reset_index(drop=True).astype("string").fillna("<none>")
    label = keys.iloc[:, 0]
    for column in keys.columns[1:]:
        label = label.str.cat(keys[column], sep="\x1f")
    control = np.zeros(len(ids), dtype=bool)
    if not len(ids) or share == 0:
        return control
    groups = {name: np.asarray(pos) for name, pos in label.groupby(label, sort=True).indices.items()}
    names = sorted(groups)
    counts = control_counts([groups[s].size for s in names], share, _rng(seed, campaign_id, "\x1estrata"))
    for name, k in zip(names, counts, strict=True):
        if not k:
            continue
        members = groups[name][np.argsort(ids.iloc[groups[name]].to_numpy(dtype=str), kind="stable")]
        picked = _rng(seed, campaign_id, name).permutation(members.size)[:k]
        control[members[picked]] = True
    return control


@dataclass
class ContactPlan:
    """A campaign's contact plan.

    Attributes
    ----------
    contacts : DataFrame
        :data:`PLAN_COLUMNS` (the ``contacts`` table), one row per customer with an action,
        sorted by customer id; control rows cost 0.
    summary : dict
        campaign_id, send_date, holdout, seed, customers, treatment, control, per action
        and per stratum counts.
    """

    contacts: pd.DataFrame
    summary: dict[str, Any]


def contact_plan(
    assigned: pd.DataFrame,
    rules: Sequence[ActionRule],
    *,
    campaign_id: str,
    send_date: pd.Timestamp,
    share: float,
    seed: int,
    generic_cost: float = 0.0,
) -> ContactPlan:
    """Draw the control group among customers with an action and write their contact plan.

    Parameters
    ----------
    assigned : DataFrame
        customer_id, action (NA = no action: not in the plan), risk_band.
    rules : sequence of ActionRule
        For each action's cost and channel (an action without a rule costs ``generic_cost``).
    campaign_id : str
    send_date : Timestamp
        The plan's ``timestamp``.
    share : float
        Control share.
    seed : int
    generic_cost : float
        Cost of an action that has no rule (the generic contact: the cost per contact).

    Returns
    -------
    ContactPlan
    """
    rows = assigned[assigned["action"].notna()].sort_values("customer_id", kind="stable").reset_index(drop=True)
    control = draw_holdout(
        rows["customer_id"], rows[["action", "risk_band"]], share=share, seed=seed, campaign_id=campaign_id
    )
    by_name = {r.name: r for r in rules}
    action = rows["action"].astype("string")
    cost = action.map(lambda a: by_name[a].cost if a in by_name else float(generic_cost)).to_numpy(dtype="float64")
    channel = action.map(lambda a: by_name[a].channel if a in by_name else None)
    n = len(rows)
    contacts = pd.DataFrame(
        {
            "customer_id": pd.array(rows["customer_id"], dtype="string"),
            "timestamp": pd.Series(np.full(n, pd.Timestamp(send_date).to_datetime64()), dtype="datetime64[us]"),
            "campaign_id": pd.array([campaign_id] * n, dtype="string"),
            "action": pd.array(action, dtype="string"),
            "group": pd.array(np.where(control, CONTROL, TREATMENT), dtype="string"),
            "channel": pd.array(channel.to_numpy(dtype=object), dtype="string"),
            "cost": np.where(control, 0.0, cost),
        }
    )[PLAN_COLUMNS]
    strata = (
        pd.DataFrame({"action": action, "risk_band": rows["risk_band"].astype("string"), "control": control})
        .groupby(["action", "risk_band"], sort=True, dropna=False)["control"]
        .agg(customers="size", control="sum")
        .reset_index()
    )
    names = action.to_numpy(dtype=object)
    by_action = {
        str(a): {"treatment": int((~control[names == a]).sum()), "control": int(control[names == a].sum())}
        for a in sorted(action.unique())
    }
    summary = {
        "campaign_id": campaign_id,
        "send_date": str(pd.Timestamp(send_date).date()),
        "holdout": float(share),
        "seed": int(seed),
        "customers": n,
        "treatment": int((~control).sum()),
        "control": int(control.sum()),
        "cost": float(contacts["cost"].sum()),
        "by_action": by_action,
        "strata": [
            {"action": str(r.action), "risk_band": str(r.risk_band), "customers": int(r.customers),
             "control": int(r.control)}
            for r in strata.itertuples(index=False)
        ],  # fmt: skip
    }
    return ContactPlan(contacts, summary)
