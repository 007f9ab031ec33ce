"""Past retention campaigns in the simulator: contacts, control groups, true and realised uplift."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churnlens.cli.main import app
from churnlens.data import validate_tables
from churnlens.errors import InputError
from churnlens.simulate import (
    ACTIONS,
    CampaignSettings,
    simulate,
    simulate_driver_table,
    simulate_uplift_table,
)
from churnlens.simulate.campaigns import campaign_days
from churnlens.simulate.params import SimulationSettings
from churnlens.simulate.truth import states_at, uplift_columns

SETTINGS = CampaignSettings(n_campaigns=4, holdout=0.5)


@pytest.fixture(scope="module")
def sim():
    return simulate(20_000, months=24, seed=4, campaigns=SETTINGS)


@pytest.fixture(scope="module")
def uplift(sim):
    return simulate_uplift_table(sim, draws=64)


def digest(tables) -> str:
    """A digest of every value of every table (independent of pandas' own hashing)."""
    h = hashlib.sha256()
    for name, table in tables.present().items():
        h.update(name.encode())
        for col in table.columns:
            s = table[col]
            h.update(col.encode())
            if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
                h.update(s.to_numpy(dtype="float64", na_value=np.nan).tobytes())
            elif pd.api.types.is_datetime64_dtype(s.dtype):
                h.update(s.to_numpy(dtype="datetime64[us]").view("int64").tobytes())
            else:
                h.update("\x1f".join("<NA>" if pd.isna(v) else str(v) for v in s.astype(object)).encode())
    return h.hexdigest()


# --- no campaign: the simulator is unchanged --------------------------------------------------------


def test_without_campaigns_the_tables_are_those_of_the_simulator_before_campaigns():
    # digest of simulate(2_000, months=9, seed=21) computed with the simulator before campaigns existed
    expected = "4a2f20c4cd27a0ac967abbbc523150a436678dd159d378ea05aa4c939aed22e8"
    assert digest(simulate(2_000, months=9, seed=21).tables) == expected
    none = simulate(2_000, months=9, seed=21, campaigns=CampaignSettings(n_campaigns=0))
    assert digest(none.tables) == expected and none.tables.contacts is None and none.campaigns == ()


def test_history_before_the_first_campaign_is_the_history_without_campaigns():
    plain = simulate(3_000, months=12, seed=8)
    with_campaigns = simulate(3_000, months=12, seed=8, campaigns=CampaignSettings(n_campaigns=2, size=500))
    first = with_campaigns.tables.contacts["timestamp"].min()
    for name, table in plain.tables.present().items():
        if name == "customers":
            pd.testing.assert_frame_equal(table, with_campaigns.tables.customers)
            continue
        # order ids number the whole table's rows: they differ once later rows differ
        before = (
            table[table["timestamp"] < first].reset_index(drop=True).drop(columns="order_id", errors="ignore")
        )
        other = getattr(with_campaigns.tables, name)
        other = (
            other[other["timestamp"] < first].reset_index(drop=True).drop(columns="order_id", errors="ignore")
        )
        pd.testing.assert_frame_equal(before.astype(other.dtypes.to_dict()), other, check_categorical=False)


# --- the campaigns and the contacts table ------------------------------------------------------------


def test_campaigns_are_spread_over_the_history_leaving_room_for_the_horizon(sim):
    days = [c.day for c in sim.campaigns]
    assert days == campaign_days(sim.settings)
    assert days[0] == SETTINGS.first_day and days[-1] == sim.settings.n_days - SETTINGS.horizon_days
    assert np.ptp(np.diff(days)) <= 1  # evenly spaced
    assert [c.campaign_id for c in sim.campaigns] == ["camp01", "camp02", "camp03", "camp04"]


def test_contacts_table_records_treatment_and_control_rows(sim):
    contacts = sim.tables.contacts
    _, report = validate_tables({"purchases": sim.tables.purchases, "contacts": contacts})
    assert not [r for r in report.repairs if r.table == "contacts"]
    assert len(contacts) == sum(c.customers.size for c in sim.campaigns)
    costs = dict(zip(ACTIONS, SETTINGS.costs, strict=True))
    channels = {"service_recovery": "phone", "points_reminder": "email", "win_back": "email"}
    for campaign in sim.campaigns:
        rows = contacts[contacts["campaign_id"] == campaign.campaign_id]
        assert (rows["timestamp"] == sim.settings.start_ts + pd.Timedelta(days=campaign.day)).all()
        assert list(rows["customer_id"]) == list(sim.customer_id_array(campaign.customers))
        treated = (rows["group"] == "treatment").to_numpy()
        np.testing.assert_array_equal(treated, campaign.treated)
        action = rows["action"].astype(str)
        np.testing.assert_array_equal(rows["cost"], np.where(treated, action.map(costs), 0.0))
        assert (rows["channel"].astype(str) == action.map(channels)).all()
        for name in ACTIONS:  # control group: half of each action's customers, rounded
            mine = (action == name).to_numpy()
            assert (~treated[mine]).sum() == int(np.floor(0.5 * mine.sum() + 0.5)), (
                campaign.campaign_id,
                name,
            )
        assert 0 < campaign.customers.size <= campaign.selected <= SETTINGS.size


def test_actions_follow_the_default_rules_by_priority(sim, uplift):
    eligible = uplift[[f"eligible_{a}" for a in ACTIONS]].to_numpy()
    assert eligible.any(axis=1).all()
    first = np.asarray(ACTIONS)[eligible.argmax(axis=1)]
    assert (uplift["action"].to_numpy(dtype=object) == first).all()
    counts = uplift["action"].value_counts()
    # every action is used at this scale (points reminders the least: the rule reads the points the program
    # events record, which leave out the balances members had before the data starts)
    assert counts.min() > 300, counts


def test_the_simulators_rules_are_the_shipped_rules_on_what_the_data_records(sim, uplift):
    """The simulator assigns actions without a model: the data conditions of DEFAULT_ACTION_RULES.
    Evaluated on the snapshot at the send date (no reasons, so no "support drives the risk" clause),
    the shipped rules agree with the simulator's eligibility; win_back differs only near an overdue
    ratio of 1 (the features count fractional days, the simulator whole days)."""
    from churnlens.config import DEFAULT_ACTION_RULES
    from churnlens.features import build_snapshot
    from churnlens.serving.actions import rule_inputs

    for campaign_id, rows in uplift.groupby("campaign_id"):
        ids = pd.Index(rows["customer_id"].astype("string"))
        snapshot = build_snapshot(sim.tables, rows["send_date"].iloc[0])
        scored = pd.DataFrame({"customer_id": ids, "churn_probability": 0.5, "risk_band": "high",
                               "customer_value": 1.0, "value_at_risk": 1.0})  # fmt: skip
        got = rule_inputs(DEFAULT_ACTION_RULES, scored, snapshot, None).frame
        for name in ("service_recovery", "points_reminder"):
            np.testing.assert_array_equal(got[f"eligible:{name}"], rows[f"eligible_{name}"], err_msg=campaign_id)
        differ = got["eligible:win_back"].to_numpy() != rows["eligible_win_back"].to_numpy()
        assert differ.mean() < 0.01
        overdue = snapshot["overdue_ratio"].reindex(ids).to_numpy()
        assert (np.abs(overdue[differ] - 1) < 0.1).all(), overdue[differ]


def test_selected_customers_are_the_riskiest_active_ones(sim):
    """Selected by the time since the last purchase: the contacted are more often lost than the active base."""
    campaign = sim.campaigns[1]
    state = states_at(sim, [campaign.day])[campaign.day]
    lost = ~state.alive[campaign.customers]
    pu = sim.tables.purchases
    send = sim.settings.start_ts + pd.Timedelta(days=campaign.day)
    recent = pu[(pu["timestamp"] >= send - pd.Timedelta(days=365)) & (pu["timestamp"] < send)]
    ca = sim.tables.cancellations
    gone = sim.customer_numbers(ca.loc[ca["timestamp"] < send, "customer_id"].unique())
    active = np.setdiff1d(sim.customer_numbers(recent["customer_id"].unique()), gone)  # DESIGN §3
    assert np.isin(campaign.customers, active).all()
    assert lost.mean() > 2 * (~state.alive[active]).mean()


def test_campaigns_are_deterministic():
    settings = CampaignSettings(n_campaigns=2, size=400)
    a = simulate(2_500, months=12, seed=6, campaigns=settings)
    b = simulate(2_500, months=12, seed=6, campaigns=settings)
    assert digest(a.tables) == digest(b.tables)
    pd.testing.assert_frame_equal(
        simulate_uplift_table(a, draws=8), simulate_uplift_table(b, draws=8), check_exact=True
    )
    c = simulate(2_500, months=12, seed=7, campaigns=settings)
    assert digest(c.tables) != digest(a.tables)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"months": 8}, "8 months \\(243 days\\) leave no room for a campaign"),
        (
            {"months": 12, "campaigns": {"n_campaigns": 200}},
            "200 campaigns do not fit between day 180 and day 275",
        ),
        ({"campaigns": {"size": 0}}, "campaign size must be at least 1, got 0"),
        ({"campaigns": {"holdout": 1.0}}, "holdout must be in \\[0, 1\\), got 1.0"),
        ({"campaigns": {"n_campaigns": -1}}, "campaigns must be 0 or more, got -1"),
    ],
)
def test_campaign_errors(kwargs, match):
    options = {"n_campaigns": 2} | kwargs.pop("campaigns", {})
    with pytest.raises(InputError, match=match):
        campaign_days(SimulationSettings(**kwargs, campaigns=CampaignSettings(**options)))


def test_drivers_on_a_send_date_include_the_actions_sent_that_day(sim):
    campaign = sim.campaigns[2]
    send = sim.settings.start_ts + pd.Timedelta(days=campaign.day)
    drivers = simulate_driver_table(sim, [send]).set_index("customer_id")
    ids = sim.customer_id_array(campaign.customers)
    rows = pd.DataFrame(
        {"action": np.asarray(ACTIONS)[campaign.action], "treated": campaign.treated}, index=ids
    )
    rows = rows.join(drivers[["churned", "open_issue"]], how="inner")
    recovered = rows[(rows["action"] == "service_recovery") & ~rows["churned"]]
    assert (recovered.loc[recovered["treated"], "open_issue"] == 0).all()
    assert (recovered.loc[~recovered["treated"], "open_issue"] > 0).any()


# --- true uplift ------------------------------------------------------------------------------------------


def test_uplift_table_layout(sim, uplift):
    assert list(uplift.columns) == uplift_columns()
    assert len(uplift) == len(sim.tables.contacts)
    keys = uplift[["customer_id", "send_date"]]
    contacts = sim.tables.contacts.sort_values(["timestamp", "customer_id"]).reset_index(drop=True)
    assert keys["customer_id"].tolist() == contacts["customer_id"].tolist()
    assert (keys["send_date"] == contacts["timestamp"]).all()
    for col in ("p_churn_if_untreated", "p_churn_if_treated", *(f"p_churn_if_{a}" for a in ACTIONS)):
        assert uplift[col].between(0, 1).all(), col
    chosen = uplift[[f"p_churn_if_{a}" for a in ACTIONS]].to_numpy()[
        np.arange(len(uplift)), [ACTIONS.index(a) for a in uplift["action"]]
    ]
    np.testing.assert_array_equal(chosen, uplift["p_churn_if_treated"])
    assert uplift["no_purchase"].notna().all()


@pytest.mark.slow
def test_true_uplift_matches_the_realised_treated_vs_control_difference(uplift):
    y = uplift["no_purchase"].astype(float)
    for name in ACTIONS:
        rows = uplift["action"] == name
        t, c = rows & (uplift["group"] == "treatment"), rows & (uplift["group"] == "control")
        realised = y[c].mean() - y[t].mean()
        true = (uplift.loc[rows, "p_churn_if_untreated"] - uplift.loc[rows, "p_churn_if_treated"]).mean()
        se = np.sqrt(y[t].var() / t.sum() + y[c].var() / c.sum())
        assert abs(realised - true) < 3 * se, (name, realised, true, se)
        # each group's realised churn is what its own truth says
        for group, col in ((t, "p_churn_if_treated"), (c, "p_churn_if_untreated")):
            p = uplift.loc[group, col]
            assert abs(y[group].mean() - p.mean()) < 4 * np.sqrt((p * (1 - p)).sum()) / group.sum(), (
                name,
                col,
            )
    # the recorded futures of treated customers carry the effect: far from their untreated truth
    for name in ("service_recovery", "win_back"):
        t = (uplift["action"] == name) & (uplift["group"] == "treatment")
        p = uplift.loc[t, "p_churn_if_untreated"]
        z = (p.mean() - y[t].mean()) / (np.sqrt((p * (1 - p)).sum()) / t.sum())
        assert z > 4, (name, z)


@pytest.mark.slow
def test_effects_are_heterogeneous_as_specified(sim, uplift):
    states = states_at(sim, [c.day for c in sim.campaigns])
    p = sim.settings.params
    parts = []
    for campaign in sim.campaigns:
        st, i = states[campaign.day], campaign.customers
        parts.append(
            pd.DataFrame(
                {
                    "alive": st.alive[i],
                    "open_issue": st.open_issue[i],
                    "points": st.points[i],
                    "member": sim.population.member[i],
                    "engagement": sim.population.mu[i] + st.x[i] - p.engagement_dissatisfaction * st.d[i],
                }
            )
        )
    hidden = pd.concat(parts, ignore_index=True)
    gain = {a: uplift["p_churn_if_untreated"] - uplift[f"p_churn_if_{a}"] for a in ACTIONS}
    # customers already gone at the send date cannot be saved
    assert (pd.DataFrame(gain)[~hidden["alive"]] == 0).all().all()
    alive = hidden["alive"]
    # service recovery helps mainly customers with an open issue
    sr = gain["service_recovery"]
    with_issue, without = sr[alive & hidden["open_issue"]].mean(), sr[alive & ~hidden["open_issue"]].mean()
    assert with_issue > 0.08 and with_issue > 3 * without, (with_issue, without)
    # a points reminder helps members with unused points; non-members not at all (their state does not
    # change: what remains is Monte Carlo noise, other customers' changes shifting shared random streams)
    pr = gain["points_reminder"]
    assert abs(pr[alive & ~hidden["member"]].mean()) < 0.003
    many = pr[alive & hidden["member"] & (hidden["points"] >= p.redeem_unit / 2)].mean()
    few = pr[alive & hidden["member"] & (hidden["points"] < 100)].mean()
    assert many > 0.03 and many > 3 * few, (many, few)
    # a win-back offer helps lapsing customers and barely changes loyal ones
    wb = gain["win_back"]
    quartile = pd.qcut(hidden.loc[alive, "engagement"], 4, labels=False)
    by_quartile = wb[alive].groupby(quartile).mean()
    assert by_quartile[0] > 0.08 and by_quartile[3] < 0.01 and by_quartile.is_monotonic_decreasing, (
        by_quartile
    )


# --- CLI -----------------------------------------------------------------------------------------------------


def test_cli_campaigns_write_contacts_and_true_uplift(tmp_path):
    out = tmp_path / "sim"
    args = ["simulate", "-n", "2500", "--months", "12", "--seed", "3", "--out", str(out), "--draws", "8"]
    extra = ["--campaigns", "2", "--campaign-size", "500", "--holdout", "0.3", "--truth-cutoffs", "1"]
    result = CliRunner().invoke(app, [*args, *extra, "--truth-drivers"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert (
        "contacts.parquet" in names and "truth_uplift.parquet" in names and "truth_drivers.parquet" in names
    )
    uplift = pd.read_parquet(out / "truth_uplift.parquet")
    assert list(uplift.columns) == uplift_columns()
    assert set(uplift["campaign_id"]) == {"camp01", "camp02"}
    contacts = pd.read_parquet(out / "contacts.parquet")
    assert len(contacts) == len(uplift)
    control = (contacts["group"] == "control").mean()
    assert 0.25 < control < 0.35
    drivers = pd.read_parquet(out / "truth_drivers.parquet")
    truth = pd.read_parquet(out / "truth.parquet")
    assert drivers["customer_id"].tolist() == truth["customer_id"].tolist()
    assert "camp01" in result.output and "true uplift" in result.output


def test_cli_nine_months_of_history(tmp_path):
    out = tmp_path / "short"
    args = ["simulate", "-n", "1500", "--months", "9", "--seed", "2", "--out", str(out), "--draws", "8"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    purchases = pd.read_parquet(out / "purchases.parquet")
    assert purchases["timestamp"].min() >= pd.Timestamp("2023-01-01")
    assert pd.Timestamp("2023-09-25") <= purchases["timestamp"].max() < pd.Timestamp("2023-10-01")
    truth = pd.read_parquet(out / "truth.parquet")
    assert sorted(truth["cutoff"].unique()) == [
        pd.Timestamp(d) for d in ("2023-05-04", "2023-06-03", "2023-07-03")
    ]


def test_cli_refuses_campaigns_that_do_not_fit(tmp_path):
    args = ["simulate", "-n", "300", "--months", "6", "--campaigns", "2", "--out", str(tmp_path / "x")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "6 months (181 days) leave no room for a campaign" in result.output
    assert not (tmp_path / "x").exists()
