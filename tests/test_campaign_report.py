"""campaign-report: intervals (known values and coverage), a report worked out by hand, refusal before
the horizon, coverage of the simulator's true uplift, and the whole loop through score, MLflow and
``save_rate = "measured"``."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churnlens.cli.main import app
from churnlens.data import validate_tables, write_tables
from churnlens.serving.campaign_report import CampaignNotMatureError, calibration_table, campaign_report
from churnlens.serving.effects import Arm, arm_effect, newcombe_interval, overall_effect, wilson_interval

# --------------------------------------------------------------------------- intervals


def test_wilson_and_newcombe_match_published_values():
    # Newcombe (1998), Statistics in Medicine 17:873-890: 56/70 vs 48/80, method 10 -> 0.0524 to 0.3339
    low, high = newcombe_interval(56, 70, 48, 80)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
    # ... and 9/10 vs 3/10 -> 0.1705 to 0.8090
    low, high = newcombe_interval(9, 10, 3, 10)
    assert (round(low, 4), round(high, 4)) == (0.1705, 0.809)
    assert tuple(round(x, 4) for x in wilson_interval(0, 10)) == (0.0, 0.2775)
    assert all(math.isnan(x) for x in newcombe_interval(1, 0, 1, 5))


def _coverage(pc, pt, nc, nt, reps, rng, stratified=False):
    hits = 0
    for _ in range(reps):
        arms = []
        for k in range(2 if stratified else 1):
            churned = np.r_[rng.random(nt[k]) < pt[k], rng.random(nc[k]) < pc[k]]
            treated = np.r_[np.ones(nt[k], bool), np.zeros(nc[k], bool)]
            arms.append(Arm.of(f"a{k}", churned, np.ones(churned.size), treated, 1.0))
        effect = overall_effect(arms) if stratified else arm_effect(arms[0])
        sizes = np.add(nt, nc)[: len(arms)]
        truth = float(np.average(np.subtract(pc, pt)[: len(arms)], weights=sizes))
        hits += effect.uplift_low <= truth <= effect.uplift_high
    return hits / reps


def test_intervals_cover_the_true_uplift_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    # a small control group and a rate near 1, where a Wald interval undercovers
    assert _coverage([0.93], [0.9], [40], [160], 2000, rng) >= 0.93
    assert _coverage([0.5], [0.42], [100], [400], 2000, rng) >= 0.93
    # two actions held out at different shares: the stratified estimate stays unbiased and covers
    assert _coverage([0.6, 0.3], [0.5, 0.28], [50, 200], [450, 200], 2000, rng, stratified=True) >= 0.93


def test_calibration_table_has_equal_deciles_even_with_ties():
    p = np.r_[np.full(50, 0.2), np.linspace(0.3, 0.9, 50)]
    y = (np.arange(100) % 3 == 0).astype(float)
    table = calibration_table(p, y)
    assert [r["customers"] for r in table] == [10] * 10
    assert table[0]["mean_predicted"] == pytest.approx(0.2) and table[-1]["max_predicted"] == pytest.approx(0.9)


# --------------------------------------------------------------------------- a report by hand

SEND = "2024-03-01"


def hand_tables(extra_purchase_days: int = 100):
    """Campaign k1 on 2024-03-01: action "call" (4 treated, 2 control), "mail" (3 treated, 3 control).

    Churn = no purchase in [send, send + 30 days). Call: treated t1 t2 t3 buy, t4 does not (churn 1/4);
    control c1 buys, c2 does not (1/2). Mail: treated m1 buys, m2 m3 do not (2/3); control n1..n3 none (3/3).
    """
    rows = [("t1", "call", "treatment", 8.0), ("t2", "call", "treatment", 8.0), ("t3", "call", "treatment", 8.0),
            ("t4", "call", "treatment", 8.0), ("c1", "call", "control", 0.0), ("c2", "call", "control", 0.0),
            ("m1", "mail", "treatment", 1.0), ("m2", "mail", "treatment", 1.0), ("m3", "mail", "treatment", 1.0),
            ("n1", "mail", "control", 0.0), ("n2", "mail", "control", 0.0), ("n3", "mail", "control", 0.0)]  # fmt: skip
    contacts = pd.DataFrame(rows, columns=["customer_id", "action", "group", "cost"]).assign(
        timestamp=SEND, campaign_id="k1"
    )
    ids = contacts["customer_id"].tolist()
    before = pd.DataFrame({"customer_id": ids, "timestamp": "2024-01-15", "amount": 100.0})
    buyers = ["t1", "t2", "t3", "c1", "m1"]
    after = pd.DataFrame({"customer_id": buyers, "timestamp": "2024-03-10", "amount": 50.0})
    last = str(pd.Timestamp(SEND) + pd.Timedelta(days=extra_purchase_days))
    end = pd.DataFrame({"customer_id": ["t1"], "timestamp": [last], "amount": [1.0]})
    return validate_tables({"purchases": pd.concat([before, after, end]), "contacts": contacts})[0]


def test_report_figures_by_hand():
    report = campaign_report(hand_tables(), "k1", horizon_days=30, mode="non_contractual")
    call, mail, overall = report.effect("call"), report.effect("mail"), report.overall
    assert (call.treated, call.control, call.churn_treated, call.churn_control) == (4, 2, 0.25, 0.5)
    assert call.uplift == pytest.approx(0.25) and call.save_rate == pytest.approx(0.5)
    assert (mail.churn_treated, mail.churn_control) == (pytest.approx(2 / 3), 1.0)
    assert mail.uplift == pytest.approx(1 / 3) and mail.save_rate == pytest.approx(1 / 3)
    # overall: weights 6/12 and 6/12 -> 0.5 * 0.25 + 0.5 * 1/3
    assert overall.uplift == pytest.approx(0.5 * 0.25 + 0.5 / 3)
    assert overall.save_rate == pytest.approx(1 - (0.5 * 0.25 + 0.5 * 2 / 3) / (0.5 * 0.5 + 0.5 * 1.0))
    # value = 365-day spend before the send = 100 each: lost value per customer control 50 vs treated 25
    assert call.saved_value == pytest.approx(4 * (0.5 * 100 - 0.25 * 100))
    assert call.cost == 32.0 and call.roi == pytest.approx((100 - 32) / 32)
    assert mail.cost == 3.0 and overall.cost == 35.0
    assert overall.saved_value == pytest.approx(call.saved_value + mail.saved_value)
    for effect in (call, mail, overall):
        assert effect.uplift_low < effect.uplift < effect.uplift_high
    assert report.send_date == SEND and report.outcome_end == "2024-03-30" and report.horizon_days == 30
    assert report.cost_source.id == "cost-contacts" and report.value_source.id == "value-spend"
    record = report.to_dict()
    assert json.loads(json.dumps(record)) == record


def test_costs_fall_back_to_the_rules_and_unmeasurable_actions_are_noted():
    tables = hand_tables()
    contacts = tables.contacts.drop(columns="cost")
    contacts = contacts[~((contacts["action"] == "mail") & (contacts["group"] == "control"))]
    tables = tables.replace(contacts=contacts.reset_index(drop=True))
    from churnlens.config import config_from_dict

    rules = [{"name": "call", "label_en": "Call", "label_fr": "Appel", "cost": 10, "eligible": "true", "priority": 1}]
    report = campaign_report(tables, "k1", horizon_days=30, mode="non_contractual",
                             config=config_from_dict({"actions": rules}))  # fmt: skip
    assert report.effect("call").cost == 40.0 and math.isnan(report.effect("mail").cost)
    assert {n.id for n in report.notes} == {"note-no-cost", "note-not-measured"}
    assert report.overall.treated == 4  # mail cannot be measured: left out
    assert report.overall.uplift == pytest.approx(0.25)


def test_an_immature_campaign_is_refused_with_the_date_it_will_be_possible(tmp_path):
    tables = hand_tables(extra_purchase_days=20)  # data ends 20 days after the send
    message = r"outcome runs to 2024-03-30, but the data ends on 2024-03-21"
    with pytest.raises(CampaignNotMatureError, match=message) as e:
        campaign_report(tables, "k1", horizon_days=30, mode="non_contractual")
    assert e.value.ready_on == pd.Timestamp("2024-03-31")
    write_tables(tables, tmp_path / "data")
    result = CliRunner().invoke(
        app, ["campaign-report", str(tmp_path / "data"), "--campaign", "k1", "--horizon", "30", "--no-log",
              "--out", str(tmp_path / "r")],  # fmt: skip
    )
    assert result.exit_code == 2, result.output
    assert "possible once the data covers 2024-03-30 (9 more day(s) of data)" in " ".join(result.output.split())
    assert not (tmp_path / "r.json").exists()
    result = CliRunner().invoke(app, ["campaign-report", str(tmp_path / "data"), "--campaign", "nope", "--no-log"])
    assert result.exit_code == 2 and "campaigns in the data: k1" in result.output


def test_cli_report_files_in_both_languages(tmp_path):
    write_tables(hand_tables(), tmp_path / "data")
    for lang in ("en", "fr"):
        out = tmp_path / f"report-{lang}"
        result = CliRunner().invoke(
            app, ["campaign-report", str(tmp_path / "data"), "--campaign", "k1", "--horizon", "30", "--no-log",
                  "--label-mode", "non_contractual", "--out", str(out), "--lang", lang],  # fmt: skip
        )
        assert result.exit_code == 0, result.output
        record = json.loads(out.with_suffix(".json").read_text())
        assert [e["action"] for e in record["effects"]] == ["call", "mail", "overall"]
        page = out.with_suffix(".html").read_text()
        assert ("Measured effect per action" if lang == "en" else "Effet mesuré par action") in page
        assert "<script" not in page and "http" not in page.split("</head>")[0]


def test_html_escapes_what_comes_from_the_data(tmp_path):
    tables = hand_tables()
    contacts = tables.contacts.copy()
    contacts["action"] = contacts["action"].astype(str).replace({"mail": "<script>alert(1)</script>"})
    tables = validate_tables({"purchases": tables.purchases, "contacts": contacts})[0]
    from churnlens.serving.report_render import render_html

    page = render_html(campaign_report(tables, "k1", horizon_days=30, mode="non_contractual"))
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --------------------------------------------------------------------------- the simulator's truth


@pytest.mark.slow
def test_report_intervals_cover_the_simulators_true_uplift():
    """One seed of benchmarks/campaign_coverage.py (the benchmark runs 20): every action's interval
    covers the true average uplift from truth_uplift."""
    from churnlens.simulate import CampaignSettings, simulate, simulate_uplift_table

    sim = simulate(8000, months=24, seed=2, campaigns=CampaignSettings(n_campaigns=1, size=4000, holdout=0.3))
    truth = simulate_uplift_table(sim, draws=64)
    truth["uplift"] = truth["p_churn_if_untreated"] - truth["p_churn_if_treated"]
    report = campaign_report(sim.tables, "camp01", mode="non_contractual")
    for effect in report.effects:
        rows = truth if effect.action == "overall" else truth[truth["action"] == effect.action]
        assert effect.treated + effect.control == len(rows)
        assert effect.uplift_low <= rows["uplift"].mean() <= effect.uplift_high, effect


# --------------------------------------------------------------------------- the whole loop


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """A small simulation, a model registered in a sqlite store, a list scored 120 days before the end."""
    from churnlens.config import LightGBMParams
    from churnlens.data.io import load_tables
    from churnlens.simulate import simulate
    from churnlens.training import TrainConfig, train_model

    root = tmp_path_factory.mktemp("loop")
    write_tables(simulate(n_customers=3000, months=18, seed=5).tables, root / "data", fmt="csv")
    (root / "churnlens.toml").write_text('[labels]\nmode = "non_contractual"\n')
    uri = f"sqlite:///{root / 'mlflow.db'}"
    tables, _ = load_tables(root / "data")
    from churnlens.config import load_config

    train_model(tables, tracking_uri=uri, config=load_config(root / "churnlens.toml"),
                train_config=TrainConfig(lgbm=LightGBMParams(max_rounds=40)))  # fmt: skip
    cutoff = (tables.data_end.floor("D") - pd.Timedelta(days=120)).date()
    return {"root": root, "uri": uri, "cutoff": str(cutoff)}


def _run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.slow
def test_score_send_append_report_and_measured_save_rate(loop, tmp_path):
    root, uri = loop["root"], loop["uri"]
    out = tmp_path / "list.csv"
    args = ["score", root / "data", "--out", out, "--tracking-uri", uri, "--cutoff", loop["cutoff"], "--top", "400",
            "--actions", "--campaign-id", "c1", "--holdout", "0.3", "--seed", "11"]  # fmt: skip
    scored = _run(*args)
    assert "contact plan c1" in scored.output
    plan = pd.read_csv(tmp_path / "list.contacts.csv")
    campaign = pd.read_csv(out)
    summary = json.loads((tmp_path / "list.summary.json").read_text())
    assert summary["plan"]["model"]["version"] == "1" and summary["plan"]["contacts_file"] == "list.contacts.csv"
    with_action = campaign[campaign["action"].notna()]
    assert set(plan["customer_id"]) == set(with_action["customer_id"])
    assert (with_action["selected"]).all() and campaign.loc[~campaign["selected"], "action"].isna().all()
    assert abs((plan["group"] == "control").sum() - 0.3 * len(plan)) <= 0.5
    # the same seed draws the same groups
    again = tmp_path / "again.csv"
    _run(*[again if a == out else a for a in args])
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "again.contacts.csv"), plan)

    # the campaign is "sent": its plan is appended to contacts
    data = tmp_path / "data"
    data.mkdir()
    for f in (root / "data").iterdir():
        (data / f.name).write_bytes(f.read_bytes())
    plan.to_csv(data / "contacts.csv", index=False)
    report_out = tmp_path / "report"
    result = _run("campaign-report", data, "--campaign", "c1", "--list", out, "--tracking-uri", uri,
                  "--out", report_out)  # fmt: skip
    record = json.loads(report_out.with_suffix(".json").read_text())
    assert record["model"]["version"] == "1" and record["label_mode"] == "non_contractual"
    assert record["quality"]["roc_auc"] > 0.6 and len(record["quality"]["calibration"]) == 10
    assert "model churnlens version 1 tagged campaign_report.c1" in " ".join(result.output.split())

    from mlflow.tracking import MlflowClient

    from churnlens.serving.report_tracking import MONITORING_EXPERIMENT, measured_save_rate

    client = MlflowClient(uri)
    run_id = record["mlflow"]["run_id"]
    run = client.get_run(run_id)
    assert run.data.tags["churnlens.kind"] == "campaign_report" and run.data.tags["churnlens.model_version"] == "1"
    assert client.get_experiment(run.info.experiment_id).name == MONITORING_EXPERIMENT
    assert client.get_model_version("churnlens", "1").tags["campaign_report.c1"] == run_id
    assert {a.path for a in client.list_artifacts(run_id)} == {"report.json", "report.html"}
    measured = measured_save_rate(uri)
    overall = record["effects"][-1]
    assert measured["value"] == pytest.approx(overall["save_rate"]) and measured["run_id"] == run_id

    # save_rate = "measured" feeds --budget economics and says so
    budget_out = tmp_path / "budget.csv"
    result = _run("score", data, "--out", budget_out, "--tracking-uri", uri, "--budget", "500",
                  "--save-rate", "measured", "--actions")  # fmt: skip
    budget = json.loads((tmp_path / "budget.summary.json").read_text())
    assert budget["save_rate"]["value"] == pytest.approx(overall["save_rate"])
    assert budget["save_rate"]["campaign_id"] == "c1" and "save rate (measured)" in result.output
    per_action = {e["action"]: e["save_rate"] for e in record["effects"][:-1] if e["save_rate"] is not None}
    assert {a: r["value"] for a, r in budget["save_rate"]["per_action"].items()} == pytest.approx(per_action)
    assert set(budget["save_rate"]["expected_saved_value_by_action"]) <= set(per_action)
