"""Point-in-time correctness: events at or after the cutoff never change a snapshot."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnlens.data import Tables
from churnlens.features import build_snapshot

C = pd.Timestamp("2024-06-01")
IDS = ["c1", "c2", "c3", "c4"]
MINUTE = pd.Timedelta(minutes=1)
EVENT_TYPES = [
    "enrolled",
    "points_earned",
    "points_redeemed",
    "tier_changed",
    "login",
    "offer_received",
    "offer_viewed",
    "offer_completed",
    "other",
]
TIERS = [None, "basic", "silver", "gold", "platinum"]
NEW_FEATURES = ["btyd_p_alive", "current_gap_vs_longest"]

# minutes relative to C: history is negative, the future is >= 0 (0 is exactly at C).
past_minutes = st.integers(-500 * 1440, -1)
future_minutes = st.integers(0, 200 * 1440)
amounts = st.sampled_from([-20.0, 0.0, 5.0, 12.5, 80.0])
flags = st.sampled_from([True, False, None])


def purchase_rows(minutes):
    return st.lists(
        st.tuples(
            st.sampled_from(IDS),
            minutes,
            amounts,
            st.sampled_from(["web", "store"]),
            st.sampled_from(["x", "y", None]),
        ),
        max_size=25,
    )


def program_rows(minutes):
    return st.lists(
        st.tuples(
            st.sampled_from(IDS),
            minutes,
            st.sampled_from(EVENT_TYPES),
            st.sampled_from([None, 50.0, -30.0]),
            st.sampled_from(TIERS),
        ),
        max_size=20,
    )


def support_rows(minutes):
    return st.lists(
        st.tuples(
            st.sampled_from(IDS),
            minutes,
            flags,
            flags,
            st.sampled_from([1.0, 3.0, 5.0]),
            st.sampled_from([0.0, 7.0, 10.0, None]),
        ),
        max_size=10,
    )


def cancel_rows(minutes):
    return st.lists(st.tuples(st.sampled_from(IDS), minutes), max_size=2)


def _frames(purchases, program, support, cancels) -> dict[str, pd.DataFrame]:
    def times(rows):
        return pd.Series([C + m * MINUTE for m in (r[1] for r in rows)], dtype="datetime64[us]")

    def ids(rows):
        return pd.array([r[0] for r in rows], dtype="string")

    return {
        "purchases": pd.DataFrame(
            {
                "customer_id": ids(purchases),
                "timestamp": times(purchases),
                "amount": pd.Series([r[2] for r in purchases], dtype="float64"),
                "channel": pd.array([r[3] for r in purchases], dtype="string"),
                "category": pd.array([r[4] for r in purchases], dtype="string"),
            }
        ),
        "program_events": pd.DataFrame(
            {
                "customer_id": ids(program),
                "timestamp": times(program),
                "event_type": pd.array([r[2] for r in program], dtype="string"),
                "points": pd.Series([np.nan if r[3] is None else r[3] for r in program], dtype="float64"),
                "tier": pd.array([r[4] for r in program], dtype="string"),
            }
        ),
        "support_interactions": pd.DataFrame(
            {
                "customer_id": ids(support),
                "timestamp": times(support),
                "resolved": pd.array([r[2] for r in support], dtype="boolean"),
                "complaint": pd.array([r[3] for r in support], dtype="boolean"),
                "csat": pd.Series([r[4] for r in support], dtype="float64"),
                "nps": pd.Series([np.nan if r[5] is None else r[5] for r in support], dtype="float64"),
            }
        ),
        "cancellations": pd.DataFrame({"customer_id": ids(cancels), "timestamp": times(cancels)}),
    }


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["customer_id", "timestamp"], kind="stable").reset_index(drop=True)


CUSTOMERS = pd.DataFrame(
    {
        "customer_id": pd.array(IDS, dtype="string"),
        "signup_at": pd.Series(
            [C - pd.Timedelta(days=400), C + pd.Timedelta(days=3), pd.NaT, C - MINUTE], dtype="datetime64[us]"
        ),
        "segment": pd.array(["a", "b", None, "a"], dtype="string"),
    }
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    past=st.tuples(
        purchase_rows(past_minutes),
        program_rows(past_minutes),
        support_rows(past_minutes),
        cancel_rows(past_minutes),
    ),
    future=st.tuples(
        purchase_rows(future_minutes),
        program_rows(future_minutes),
        support_rows(future_minutes),
        cancel_rows(future_minutes),
    ),
    more_future=st.tuples(
        purchase_rows(future_minutes),
        program_rows(future_minutes),
        support_rows(future_minutes),
        cancel_rows(future_minutes),
    ),
    seed=st.integers(0, 2**16),
)
def test_events_at_or_after_cutoff_never_change_the_snapshot(past, future, more_future, seed):
    base_frames = _frames(*[p + f for p, f in zip(past, future, strict=True)])
    base = Tables(customers=CUSTOMERS, **{k: _sorted(v) for k, v in base_frames.items()})
    expected = build_snapshot(base, C)
    # the buy-till-you-die and gap-regularity features are part of the property
    assert set(NEW_FEATURES) <= set(expected.columns)

    # Remove every future event, add other future events, and shuffle all rows.
    rng = np.random.default_rng(seed)
    changed = {}
    for (name, frame), extra in zip(_frames(*past).items(), _frames(*more_future).values(), strict=True):
        both = pd.concat([frame, extra], ignore_index=True)
        changed[name] = both.iloc[rng.permutation(len(both))].reset_index(drop=True)
    got = build_snapshot(Tables(customers=CUSTOMERS, **changed), C)
    pd.testing.assert_frame_equal(got, expected)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(past=purchase_rows(past_minutes), future=purchase_rows(future_minutes))
def test_purchases_exactly_at_cutoff_are_future(past, future):
    at_cutoff = [(cid, 0, 50.0, "web", "x") for cid in IDS]
    frames = _frames(past + future, [], [], [])
    with_edge = _frames(past + future + at_cutoff, [], [], [])
    a = build_snapshot(Tables(purchases=_sorted(frames["purchases"])), C)
    b = build_snapshot(Tables(purchases=_sorted(with_edge["purchases"])), C)
    pd.testing.assert_frame_equal(a, b)


def contact_rows(minutes):
    return st.lists(
        st.tuples(
            st.sampled_from(IDS),
            minutes,
            st.sampled_from(["k1", "k2"]),
            st.sampled_from(["win_back", "points_reminder", "service_recovery"]),
            st.sampled_from(["treatment", "control"]),
            st.sampled_from([0.0, 0.5, 8.0]),
        ),
        max_size=15,
    )


def _contacts(rows) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.array([r[0] for r in rows], dtype="string"),
            "timestamp": pd.Series([C + r[1] * MINUTE for r in rows], dtype="datetime64[us]"),
            "campaign_id": pd.array([r[2] for r in rows], dtype="string"),
            "action": pd.array([r[3] for r in rows], dtype="string"),
            "group": pd.array([r[4] for r in rows], dtype="string"),
            "cost": pd.Series([r[5] for r in rows], dtype="float64"),
        }
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    purchases=purchase_rows(past_minutes),
    past=contact_rows(past_minutes),
    future=contact_rows(future_minutes),
    more_future=contact_rows(future_minutes),
    seed=st.integers(0, 2**16),
)
def test_contacts_at_or_after_cutoff_never_change_the_snapshot(purchases, past, future, more_future, seed):
    bought = _sorted(_frames(purchases, [], [], [])["purchases"])
    expected = build_snapshot(Tables(purchases=bought, contacts=_sorted(_contacts(past + future))), C)
    rng = np.random.default_rng(seed)
    changed = _contacts(past + more_future)
    changed = changed.iloc[rng.permutation(len(changed))].reset_index(drop=True)
    got = build_snapshot(Tables(purchases=bought, contacts=changed), C)
    pd.testing.assert_frame_equal(got, expected)
    if len(expected):
        assert "campaign_contacts_30d" in expected.columns
