"""Randomised control groups: stratified within one customer per stratum, exact overall, reproducible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnlens.config import DEFAULT_ACTION_RULES
from churnlens.data import validate_tables
from churnlens.errors import InputError
from churnlens.serving.holdout import PLAN_COLUMNS, contact_plan, control_counts, draw_holdout


def customers(sizes: dict[tuple[str, str], int]) -> pd.DataFrame:
    rows = [(a, b) for (a, b), n in sizes.items() for _ in range(n)]
    frame = pd.DataFrame(rows, columns=["action", "risk_band"])
    frame.insert(0, "customer_id", [f"C{i:05d}" for i in range(len(frame))])
    return frame


strata_sizes = st.dictionaries(
    st.tuples(st.sampled_from(["call", "mail", "sms", "gift"]), st.sampled_from(["high", "medium", "low"])),
    st.integers(min_value=1, max_value=80),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(sizes=strata_sizes, share=st.floats(min_value=0.0, max_value=0.95), seed=st.integers(0, 2**31))
def test_every_stratum_holds_out_its_share_within_one_customer_and_the_total_is_exact(sizes, share, seed):
    frame = customers(sizes)
    control = draw_holdout(frame["customer_id"], frame[["action", "risk_band"]], share=share, seed=seed,
                           campaign_id="k")  # fmt: skip
    held = frame.assign(control=control).groupby(["action", "risk_band"])["control"].agg(["sum", "size"])
    assert (np.abs(held["sum"] - share * held["size"]) < 1).all()
    assert control.sum() == int(np.floor(share * len(frame) + 0.5))


def test_control_counts_by_largest_remainder():
    rng = np.random.default_rng(0)
    # 0.1 x (19, 15, 3, 3) = 1.9, 1.5, 0.3, 0.3: floors 1, 1, 0, 0; round(4.0) = 4 -> the two largest remainders
    assert control_counts([19, 15, 3, 3], 0.1, rng).tolist() == [2, 2, 0, 0]
    assert control_counts([10, 10], 0.0, rng).tolist() == [0, 0]
    assert control_counts([5], 0.5, rng).tolist() in ([3], [2]) and control_counts([5], 0.5, rng).sum() == 3


def test_same_seed_same_groups_whatever_the_row_order_and_other_seeds_differ():
    frame = customers({("call", "high"): 40, ("mail", "high"): 35, ("mail", "low"): 25})
    draw = lambda f, seed=3, campaign="spring": pd.Series(  # noqa: E731
        draw_holdout(f["customer_id"], f[["action", "risk_band"]], share=0.2, seed=seed, campaign_id=campaign),
        index=f["customer_id"].to_numpy(),
    ).sort_index()
    first = draw(frame)
    pd.testing.assert_series_equal(draw(frame), first)
    pd.testing.assert_series_equal(draw(frame.sample(frac=1.0, random_state=1)), first)
    assert not draw(frame, seed=4).equals(first)
    assert not draw(frame, campaign="summer").equals(first)
    # a stratum's draw does not depend on the other strata's members
    alone = draw(frame[frame["action"] == "call"])
    pd.testing.assert_series_equal(alone, first[alone.index])


def test_the_contact_plan_is_a_valid_contacts_table():
    assigned = customers({("service_recovery", "high"): 30, ("win_back", "medium"): 20, ("win_back", "high"): 10})
    assigned.loc[len(assigned)] = ["Z", None, "high"]  # no action: not in the plan
    plan = contact_plan(assigned, DEFAULT_ACTION_RULES, campaign_id="june", send_date=pd.Timestamp("2024-06-01"),
                        share=0.25, seed=1)  # fmt: skip
    contacts = plan.contacts
    assert list(contacts.columns) == PLAN_COLUMNS
    assert len(contacts) == 60 and "Z" not in set(contacts["customer_id"])
    control = contacts["group"] == "control"
    assert control.sum() == 15 == plan.summary["control"]
    assert (contacts.loc[control, "cost"] == 0).all()
    costs = contacts.loc[~control].groupby(contacts["action"].astype(str))["cost"].unique()
    assert costs.to_dict() == {"service_recovery": [8.0], "win_back": [5.0]}
    assert set(contacts.loc[contacts["action"] == "service_recovery", "channel"]) == {"phone"}
    assert (contacts["timestamp"] == pd.Timestamp("2024-06-01")).all()
    purchases = pd.DataFrame({"customer_id": contacts["customer_id"], "timestamp": "2024-05-01", "amount": 1.0})
    tables, report = validate_tables({"purchases": purchases, "contacts": contacts})
    assert len(tables.contacts) == 60 and not [r for r in report.repairs if r.table == "contacts"]
    # 0.25 x (30, 10, 20) = 7.5, 2.5, 5: one of the two half remainders gets the 15th control customer
    strata = {(s["action"], s["risk_band"]): s["control"] for s in plan.summary["strata"]}
    assert strata[("win_back", "medium")] == 5
    assert {strata[("service_recovery", "high")], strata[("win_back", "high")]} in ({7, 3}, {8, 2})
    win_back = plan.summary["by_action"]["win_back"]
    assert win_back["control"] == 5 + strata[("win_back", "high")] and sum(win_back.values()) == 30


def test_bad_shares_and_repeated_customers_are_refused():
    frame = customers({("a", "high"): 3})
    with pytest.raises(InputError, match=r"holdout share must lie in \[0, 1\)"):
        draw_holdout(frame["customer_id"], frame[["action"]], share=1.0, seed=0, campaign_id="k")
    twice = pd.concat([frame, frame])
    with pytest.raises(InputError, match="lists each customer once"):
        draw_holdout(twice["customer_id"], twice[["action"]], share=0.5, seed=0, campaign_id="k")
