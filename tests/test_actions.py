"""Action rules: TOML, eligibility over scored rows, snapshot and reasons, contact pressure and capacity.

Six hand-made customers; every expected action is worked out by hand from the rules below.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnlens.config import DEFAULT_ACTION_RULES, ActionRule, ScoringSettings, config_from_dict, load_config
from churnlens.errors import InputError
from churnlens.serving.actions import assign_actions, pool_inputs, rule_inputs, suggest_actions

IDS = ["a", "b", "c", "d", "e", "f"]
SCORED = pd.DataFrame(
    {
        "customer_id": pd.array(IDS, dtype="string"),
        "churn_probability": [0.9, 0.8, 0.7, 0.6, 0.55, 0.3],
        "risk_band": pd.array(["high", "high", "high", "high", "high", "medium"], dtype="string"),
        "customer_value": [100.0, 400.0, 300.0, 200.0, 50.0, 10.0],
    }
).assign(value_at_risk=lambda f: f["churn_probability"] * f["customer_value"])
# value at risk: a 90, b 320, c 210, d 120, e 27.5, f 3
SNAPSHOT = pd.DataFrame(
    {
        "support_complaints_30d": [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        "support_open_issues": [0.0, 2.0, 1.0, 0.0, 0.0, 0.0],
        "days_since_last_contact": [5.0, 20.0, 200.0, np.nan, np.nan, np.nan],
        "points_balance": [0.0, 500.0, 300.0, 260.0, 100.0, 0.0],
        "days_since_last_program_activity": [3.0, 60.0, 90.0, 50.0, 100.0, np.nan],
        "overdue_ratio": [0.5, 2.0, 1.5, 1.2, 0.9, 3.0],
        "days_since_last_purchase": [20.0, 100.0, 70.0, 40.0, 30.0, 200.0],
        "days_since_last_campaign_contact": [np.nan, np.nan, 10.0, np.nan, np.nan, 45.0],
        "attr_country": pd.Categorical(["FR", "DE", "FR", "FR", "DE", "FR"]),
    },
    index=pd.Index(IDS, dtype="string", name="customer_id"),
).iloc[::-1]  # rows in another order than the scored rows: matched by id
REASONS = pd.DataFrame(
    {
        "customer_id": ["e", "e", "d", "a"],
        "rank": [2, 1, 1, 1],
        "feature": ["days_since_last_purchase", "csat_last", "days_since_last_purchase", "points_balance"],
    }
)


def rule(name, eligible, priority, **kw) -> ActionRule:
    return ActionRule(name=name, label_en=name.title(), label_fr=f"fr {name}", cost=1.0, eligible=eligible,
                      priority=priority, **kw)  # fmt: skip


def assign(rules, scored=SCORED, snapshot=SNAPSHOT, reasons=REASONS, lang="en"):
    rules = tuple(sorted(rules, key=lambda r: r.priority))
    return assign_actions(rules, rule_inputs(rules, scored, snapshot, reasons), lang=lang)


def actions_of(assignment) -> dict[str, str | None]:
    rows = assignment.rows
    return {c: (None if pd.isna(a) else a) for c, a in zip(rows["customer_id"], rows["action"], strict=True)}


def test_default_rules_by_hand():
    # service_recovery: e's top reason is support (csat_last); a complained; b has open issues and a
    #   contact 20 days ago; c's open issue is 200 days old -> a, b, e
    # points_reminder: >= 250 points and > 45 days without program activity -> b, c, d; c was
    #   contacted 10 days ago (pressure 30) -> blocked, falls to win_back, blocked too -> none
    # win_back: overdue >= 1 or > 60 days without purchase -> b, c, d, f (f contacted 45 days ago: fine)
    got = assign(DEFAULT_ACTION_RULES)
    assert actions_of(got) == {"a": "service_recovery", "b": "service_recovery", "c": None,
                               "d": "points_reminder", "e": "service_recovery", "f": "win_back"}  # fmt: skip
    rows = got.rows.set_index("customer_id")
    assert rows.loc["c", "action_reason"] == (
        "points_reminder: contacted 10 days ago, the rule wants 30 days without contact; "
        "win_back: contacted 10 days ago, the rule wants 30 days without contact"
    )
    assert pd.isna(rows.loc["a", "action_reason"])
    assert rows.loc["d", "action_label"] == "Points reminder or bonus"
    assert rows.loc["d", "action_rule"] == DEFAULT_ACTION_RULES[1].eligible
    assert got.counts["actions"] == {"service_recovery": 3, "points_reminder": 1, "win_back": 1}
    assert got.counts["none"] == 1
    assert got.counts["blocked_by_pressure"] == {"service_recovery": 0, "points_reminder": 1, "win_back": 1}


def test_capacity_goes_to_the_highest_value_at_risk_and_the_others_fall_to_the_next_rule():
    rules = [rule("call", "overdue_ratio >= 1", 1, capacity=2), rule("mail", "probability > 0", 2)]
    got = assign(rules)
    # overdue: b (320), c (210), d (120), f (3) -> call for b and c; d and f fall to mail
    assert actions_of(got) == {"a": "mail", "b": "call", "c": "call", "d": "mail", "e": "mail", "f": "mail"}
    rows = got.rows.set_index("customer_id")
    assert rows.loc["d", "action_reason"] == "call: capacity of 2 reached"
    assert got.counts["over_capacity"] == {"call": 2}
    # without a next rule the capacity leaves them with none, and says why
    got = assign([rule("call", "overdue_ratio >= 1", 1, capacity=1)])
    rows = got.rows.set_index("customer_id")
    assert actions_of(got)["b"] == "call" and rows.loc["c", "action_reason"] == "call: capacity of 1 reached"
    assert rows.loc["a", "action_reason"] == "no action rule fits"
    # capacity 0 switches an action off
    assert set(actions_of(assign([rule("call", "true", 1, capacity=0)])).values()) == {None}


def test_capacity_ties_are_broken_by_customer_id_whatever_the_row_order():
    scored = SCORED.assign(value_at_risk=1.0)
    rules = (rule("call", "true", 1, capacity=3),)
    first = actions_of(assign(rules, scored=scored))
    shuffled = actions_of(assign(rules, scored=scored.iloc[[4, 2, 0, 5, 1, 3]]))
    assert first == shuffled and [c for c, a in first.items() if a] == ["a", "b", "c"]


def test_pooled_partitions_give_the_answer_of_one_pass():
    rules = (rule("call", "overdue_ratio >= 1", 1, capacity=2), rule("mail", "band == 'high'", 2, capacity=1))
    whole = assign(rules)
    parts = [rule_inputs(rules, SCORED.iloc[i], SNAPSHOT, REASONS) for i in ([0, 3, 5], [1, 2, 4])]
    pooled = assign_actions(rules, pool_inputs(parts))
    pd.testing.assert_frame_equal(pooled.rows, whole.rows)
    assert pooled.counts == whole.counts


def test_names_scored_columns_reasons_attributes():
    cases = {
        'band == "medium"': {"f"},
        "value >= 300": {"b", "c"},
        "value_at_risk > 200": {"b", "c"},
        "probability >= 0.8": {"a", "b"},
        'top_reason_feature == "days_since_last_purchase"': {"d"},
        'top_reason_family == "purchases"': {"d"},
        '"purchases" in reason_families': {"d", "e"},
        '"points_balance" in reason_features': {"a"},
        'country == "DE"': {"b", "e"},
        'attr_country == "DE"': {"b", "e"},
        "days_since_last_campaign_contact is None": {"a", "b", "d", "e"},
    }
    for text, expected in cases.items():
        got = actions_of(assign([rule("x", text, 1)]))
        assert {c for c, a in got.items() if a} == expected, text


def test_catalog_features_the_data_lacks_count_as_missing_and_are_noted():
    snapshot = SNAPSHOT.drop(columns=["support_complaints_30d", "support_open_issues", "days_since_last_contact"])
    got = assign(DEFAULT_ACTION_RULES, snapshot=snapshot, reasons=None)
    assert actions_of(got)["a"] is None and actions_of(got)["b"] == "points_reminder"
    assert got.counts["absent_features"] == {
        "service_recovery": ["days_since_last_contact", "support_complaints_30d", "support_open_issues"]
    }
    assert got.counts["notes"][0].startswith("rule service_recovery reads days_since_last_contact, ")


def test_unknown_names_are_errors_naming_the_rule_and_what_exists():
    with pytest.raises(InputError, match=r"action rule 'x': unknown name 'contry'.*attributes \['country'\]"):
        assign([rule("x", "contry == 'FR'", 1)])
    with pytest.raises(InputError, match="cannot compare"):
        assign([rule("x", "country == 1", 1)])


def test_french_labels_and_reasons():
    got = assign(DEFAULT_ACTION_RULES, lang="fr").rows.set_index("customer_id")
    assert got.loc["d", "action_label"] == "Rappel des points ou bonus de points"
    assert got.loc["c", "action_reason"].startswith("points_reminder\u00a0: contacté il y a 10 jours")


def test_suggest_actions_honours_pressure_but_not_capacity():
    rules = (rule("call", "overdue_ratio >= 1", 1, capacity=0, min_days_since_contact=30),)
    got = suggest_actions(rules, SCORED, SNAPSHOT, REASONS)
    assert list(got.columns) == ["customer_id", "action", "action_label", "action_rule", "action_reason"]
    assert {c: a for c, a in zip(got["customer_id"], got["action"].fillna("-"), strict=True)} == {
        "a": "-", "b": "call", "c": "-", "d": "call", "e": "-", "f": "call"
    }  # fmt: skip
    one = suggest_actions(rules, SCORED.iloc[[1]], SNAPSHOT, None)
    assert one["action"].tolist() == ["call"]


def test_empty_selection():
    got = assign(DEFAULT_ACTION_RULES, scored=SCORED.iloc[:0], reasons=REASONS.iloc[:0])
    assert len(got.rows) == 0 and got.counts["none"] == 0


# --------------------------------------------------------------------------- TOML


def test_toml_rules_replace_the_defaults_sorted_by_priority(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        """
[serving]
lang = "fr"

[[actions]]
name = "vip_call"
label_en = "VIP call"
label_fr = "Appel VIP"
cost = 12.5
eligible = 'band == "high" and value >= 500'
priority = 2
min_days_since_contact = 60
capacity = 100
channel = "phone"

[[actions]]
name = "sms"
label_en = "Text message"
label_fr = "SMS"
cost = 0.1
eligible = "probability > 0.3"
priority = 1
"""
    )
    settings = load_config(path).serving
    assert [r.name for r in settings.actions] == ["sms", "vip_call"]
    vip = settings.actions[1]
    assert (vip.cost, vip.capacity, vip.min_days_since_contact, vip.channel, vip.label("fr")) == (
        12.5, 100, 60, "phone", "Appel VIP"
    )  # fmt: skip
    assert settings.lang == "fr"
    assert config_from_dict({}).serving.actions == DEFAULT_ACTION_RULES


def _one(**changes):
    base = {"name": "x", "label_en": "X", "label_fr": "X", "cost": 1.0, "eligible": "probability > 0.5", "priority": 1}
    return {**base, **changes}


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        ([_one(), _one(name="y")], "rules 'x' and 'y' share the priority 1"),
        ([_one(), _one(priority=2)], "rules 'x' and 'x' share the name 'x'"),
        ([_one(colour="red")], r"unknown keys \['colour'\]"),
        ([{"name": "x"}], r"lacks \['cost', 'eligible', 'label_en', 'label_fr', 'priority'\]"),
        ([_one(eligible="__import__('os')")], "action rule 'x': eligibility expression .* a function call"),
        ([_one(eligible="probability >")], "action rule 'x': eligibility expression .* is not valid"),
        ([_one(cost=-1)], "cost must be a non-negative number"),
        ([_one(capacity=1.5)], "capacity must be a whole number"),
        ([_one(min_days_since_contact=-3)], "min_days_since_contact must be a whole number"),
        ([_one(name="bad name")], "must start with a letter"),
        ([_one(label_fr="")], "label_fr must be a non-empty text"),
        (_one(), "must be an array of rules"),
    ],
)
def test_bad_rules_are_refused_when_the_config_is_read(actions, message):
    with pytest.raises(InputError, match=message):
        config_from_dict({"actions": actions})


def test_serving_cannot_hold_rules_or_a_measured_rate():
    with pytest.raises(InputError, match=r"\[serving\] cannot set \['actions'\]"):
        config_from_dict({"serving": {"actions": []}})
    with pytest.raises(InputError, match="measured_save_rate"):
        config_from_dict({"serving": {"measured_save_rate": {"value": 0.5}}})


def test_settings_round_trip_through_json_for_server_workers():
    import json
    from dataclasses import asdict

    settings = ScoringSettings(assign_actions=True, actions=(rule("x", "probability > 0.1", 1, capacity=3),))
    again = ScoringSettings(**json.loads(json.dumps(asdict(settings))))
    assert again == settings


def test_plan_settings_are_checked():
    with pytest.raises(InputError, match=r"holdout must lie in \[0, 1\)"):
        ScoringSettings(holdout=1.0)
    with pytest.raises(InputError, match="send_date must be a date YYYY-MM-DD"):
        ScoringSettings(send_date="June 1st")
    with pytest.raises(InputError, match="campaign_id must be a non-empty text"):
        ScoringSettings(campaign_id="  ")
    with pytest.raises(InputError, match='save_rate must be a number in \\[0, 1\\] or "measured"'):
        ScoringSettings(save_rate="guess")
    with pytest.raises(InputError, match='save_rate is "measured" but no campaign report was read'):
        ScoringSettings(save_rate="measured").economics  # noqa: B018
