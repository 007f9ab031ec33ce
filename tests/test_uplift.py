"""Uplift targeting: learning from randomised campaigns, held-out evaluation, selection, reasons, the CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churnlens.cli.main import app
from churnlens.config import DEFAULT_ACTION_RULES, ActionRule, ChurnConfig, LabelConfig, UpliftSettings
from churnlens.errors import InputError
from churnlens.serving.uplift_targeting import _NET, select_by_uplift
from churnlens.training.uplift.dataset import build_uplift_data
from churnlens.training.uplift.pipeline import fit_and_evaluate
from churnlens.uplift.metrics import expected_qini, qini_coefficient, uplift_by_decile

FAST = UpliftSettings(min_treated=40, min_control=10, test_campaigns=1, rounds=15, threads=1, min_child_samples=20,
                      base_rounds=15, offset_rounds=10, student_rounds=30)  # fmt: skip


@pytest.fixture(scope="module")
def campaigns(tmp_path_factory):
    """A simulated program with three past campaigns (treatment and control), written as Parquet."""
    from churnlens.data.io import write_tables
    from churnlens.simulate import CampaignSettings, simulate

    out = tmp_path_factory.mktemp("uplift_sim")
    sim = simulate(3_000, months=24, seed=5, campaigns=CampaignSettings(n_campaigns=3, size=700, holdout=0.3))
    write_tables(sim.tables, out / "data", fmt="parquet")
    return {"tables": sim.tables, "dir": out / "data"}


@pytest.fixture(scope="module")
def rows(campaigns):
    return build_uplift_data(campaigns["tables"], features=ChurnConfig().features, horizon_days=90,
                             mode="non_contractual")  # fmt: skip


def config(**changes) -> ChurnConfig:
    return ChurnConfig(labels=LabelConfig(mode="non_contractual"), uplift=replace(FAST, **changes))


# --- rows -------------------------------------------------------------------------------------------


def test_rows_are_the_contacted_customers_with_features_before_their_contact(campaigns, rows):
    contacts = campaigns["tables"].contacts
    assert len(rows.rows) <= len(contacts)
    assert set(rows.rows["campaign_id"].astype(str)) <= set(contacts["campaign_id"].astype(str))
    # the campaign's own contact is not a feature of its row: no contact "today"
    if "days_since_last_campaign_contact" in rows.features:
        assert not (rows.features["days_since_last_campaign_contact"] == 0).any()
    assert rows.rows.groupby(["campaign_id", "action"])["propensity"].nunique().max() == 1


def test_rows_do_not_change_when_events_are_added_after_the_outcome_windows(campaigns, rows):
    tables = campaigns["tables"]
    late = tables.purchases.tail(50).copy()
    late["timestamp"] = tables.data_end + pd.Timedelta(days=400)
    grown = tables.replace(purchases=pd.concat([tables.purchases, late], ignore_index=True))
    again = build_uplift_data(grown, features=ChurnConfig().features, horizon_days=90, mode="non_contractual")
    matured = rows.rows["campaign_id"].unique()
    keep = again.rows["campaign_id"].isin(matured).to_numpy()
    pd.testing.assert_frame_equal(again.rows[keep].reset_index(drop=True), rows.rows)
    pd.testing.assert_frame_equal(again.features[keep].reset_index(drop=True), rows.features)


# --- learning ----------------------------------------------------------------------------------------


def test_actions_without_enough_randomised_customers_are_skipped_with_a_message(rows):
    counts = rows.rows.groupby(rows.rows["action"].astype(str))["treated"].agg(["sum", "size"])
    smallest = counts["sum"].idxmin()
    threshold = int(counts.loc[smallest, "sum"]) + 1  # the smallest action misses it in any split
    result = fit_and_evaluate(rows, config=config(min_treated=threshold), model_name="m", tables=[])
    assert smallest in result.skipped and smallest not in result.actions
    message = result.skipped[smallest]
    assert "treated" in message and "control" in message and f"{threshold:,}" in message
    assert "min_treated" in message
    assert smallest not in result.model.actions
    with pytest.raises(InputError, match="no action has enough randomised customers"):
        fit_and_evaluate(rows, config=config(min_treated=10**9), model_name="m", tables=[])


@pytest.mark.parametrize("learner", ["t", "x", "dr", "t_shared", "nested"])
def test_two_runs_give_identical_models(rows, learner):
    first = fit_and_evaluate(rows, config=config(learner=learner), model_name="m", tables=[])
    second = fit_and_evaluate(rows, config=config(learner=learner), model_name="m", tables=[])
    assert first.actions == second.actions
    for action in first.actions:
        a = [b.model_to_string() for b, _ in first.model.boosters[action]]
        b = [b.model_to_string() for b, _ in second.model.boosters[action]]
        assert a == b
    meta = {k: v for k, v in first.model.metadata.to_dict().items() if k != "trained_at"}
    assert meta == {k: v for k, v in second.model.metadata.to_dict().items() if k != "trained_at"}
    assert first.table.equals(second.table)


@pytest.mark.parametrize("learner", ["t", "x", "dr", "t_shared", "nested"])
def test_uplift_reasons_add_up_to_the_models_output(rows, learner):
    from churnlens.serving.uplift_reasons import uplift_contributions, uplift_reasons

    model = fit_and_evaluate(rows, config=config(learner=learner), model_name="m", tables=[]).model
    keys = rows.rows["customer_id"].iloc[:300].astype(str) + "-" + rows.rows["campaign_id"].iloc[:300].astype(str)
    snapshot = rows.features.iloc[:300].set_axis(pd.Index(keys))
    actions = np.resize(np.array(model.actions, dtype=object), len(snapshot))
    contrib = uplift_contributions(model, snapshot, actions)
    matrix = model.matrix(snapshot)
    expected = np.array([model.uplift_of_matrix(matrix[i : i + 1], a)[0] for i, a in enumerate(actions)])
    np.testing.assert_allclose(contrib.sum(axis=1).to_numpy(), expected, atol=1e-9)
    assert np.abs(expected).max() > 0  # a model that learnt something
    for lang in ("en", "fr"):
        why = uplift_reasons(model, snapshot, actions, n=3, lang=lang)
        assert (why["contribution"] > 0).all() and why.groupby("customer_id").size().max() <= 3
        assert why["text"].str.contains("of effect" if lang == "en" else "d'effet").all()
        per_customer = why.groupby("customer_id")["contribution"].sum()
        total_positive = contrib.drop(columns="base_value").clip(lower=0).sum(axis=1)
        assert (per_customer <= total_positive.reindex(per_customer.index) + 1e-9).all()


@pytest.mark.parametrize("learner", ["t_shared", "nested"])
def test_shared_learners_find_whom_an_action_helps_and_an_action_that_does_nothing(learner):
    from churnlens.training.uplift.learners import fit_learner

    rng = np.random.default_rng(0)
    n = 12_000
    X = rng.normal(size=(n, 4))
    treated = rng.random(n) < 0.7
    action = np.where(rng.random(n) < 0.5, "a", "b").astype(object)
    helps = (action == "a") & (X[:, 0] > 0)  # "a" lowers churn log-odds by 1.2 where x0 > 0; "b" does nothing
    logit = -0.5 + 0.8 * X[:, 1] - 1.2 * (treated & helps)
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    settings = UpliftSettings(threads=1, rounds=60, base_rounds=100, student_rounds=100, min_child_samples=50)
    fitted = fit_learner(learner, X, churned, treated, action, np.full(n, 0.7), np.arange(n).astype(str), ["a", "b"],
                         settings, features=[f"f{j}" for j in range(4)], categorical=[])  # fmt: skip
    a, b = fitted["a"].predict(X), fitted["b"].predict(X)
    assert a[X[:, 0] > 0].mean() > 0.12  # the true uplift there is 0.21 on average
    assert abs(a[X[:, 0] <= 0].mean()) < 0.03 and np.abs(b).mean() < 0.03


def test_held_out_evaluation_compares_three_rankings(rows):
    result = fit_and_evaluate(rows, config=config(), model_name="m", tables=[])
    overall = result.evaluation("overall")
    assert set(overall.qini) == {"uplift", "churn_probability", "random"}
    test = rows.rows["campaign_id"].astype(str).isin(result.split.test) & rows.rows["action"].isin(result.actions)
    assert overall.rows == int(test.sum())  # every held-out row of a learnt action
    assert list(overall.deciles["decile"]) == list(range(1, len(overall.deciles) + 1))
    assert (overall.deciles["uplift_low"] <= overall.deciles["uplift_high"]).all()
    assert not set(result.split.test) & set(result.split.train)
    assert set(result.model.metadata.fit_campaigns) >= set(result.split.test)  # refit on everything matured
    assert set(result.extra["evaluated_model"].metadata.fit_campaigns) == set(result.split.train)


# --- metrics -----------------------------------------------------------------------------------------


def test_qini_by_hand():
    # 4 customers ranked by score: treated churner kept? control churned, treated stayed.
    score = np.array([4.0, 3.0, 2.0, 1.0])
    treated = np.array([True, False, True, False])
    churned = np.array([0, 1, 1, 0])
    # Q(k): k=1: 0; k=2: y_c=1,n_c=1,n_t=1 -> 1; k=3: 1*2/1 - 1 = 1; k=4: 1*2/2 - 1 = 0
    y = np.array([0.0, 1.0, 1.0, 0.0, 0.0]) / 4
    x = np.linspace(0, 1, 5)
    assert qini_coefficient(score, treated, churned) == pytest.approx(np.trapezoid(y, x))
    tau = np.array([0.3, 0.2, 0.1, 0.0])
    assert expected_qini(tau, tau) > expected_qini(-tau, tau)
    assert expected_qini(tau, tau) > 0 > expected_qini(-tau, tau)
    deciles = uplift_by_decile(score, treated, churned, bins=2)
    assert list(deciles["customers"]) == [2, 2]
    assert deciles["uplift"].iloc[0] == pytest.approx(1.0)


# --- selection ---------------------------------------------------------------------------------------


def _rules(capacity=None):
    return [replace(DEFAULT_ACTION_RULES[0], capacity=capacity), *DEFAULT_ACTION_RULES[1:]]


def _candidates(n=200, seed=0):
    rng = np.random.default_rng(seed)
    rules = _rules()
    frame = pd.DataFrame({"customer_id": pd.array([f"C{i:04d}" for i in range(n)], dtype="string")})
    for r in rules:
        net = rng.normal(3, 4, n)
        eligible = rng.random(n) < 0.6
        frame[_NET + r.name] = np.where(eligible, net, -np.inf)
    return frame


def test_budget_and_eligibility_are_honoured_by_the_selection():
    frame = _candidates()
    rules = _rules()
    costs = {r.name: r.cost for r in rules}
    for budget in (0.0, 7.9, 60.0, 300.0, None):
        chosen = select_by_uplift(rules, frame, budget)
        spent = sum(costs[a] for a in chosen.rows["action"])
        assert budget is None or spent <= budget + 1e-9
        assert chosen.counts["cost"] == pytest.approx(spent)
        assert chosen.rows["customer_id"].is_unique
        for _, row in chosen.rows.iterrows():  # only an eligible action with a positive value
            net = frame.loc[frame["customer_id"] == row["customer_id"], _NET + row["action"]].iloc[0]
            assert np.isfinite(net) and net > 0 and row["expected_incremental_value"] == pytest.approx(net)
    unlimited = select_by_uplift(rules, frame, None)
    best = frame[[_NET + r.name for r in rules]].max(axis=1)
    assert len(unlimited.rows) == int((best > 0).sum())  # every customer worth it
    # each customer gets their best action when nothing is scarce
    for _, row in unlimited.rows.iterrows():
        nets = frame.loc[frame["customer_id"] == row["customer_id"], [_NET + r.name for r in rules]].iloc[0]
        assert row["expected_incremental_value"] == pytest.approx(nets.max())


def test_capacity_sends_customers_to_their_next_action():
    frame = _candidates()
    rules = _rules(capacity=5)
    chosen = select_by_uplift(rules, frame, None)
    assert chosen.counts["actions"]["service_recovery"] == 5
    assert chosen.counts["over_capacity"]["service_recovery"] > 0
    free = select_by_uplift(_rules(), frame, None)
    assert len(chosen.rows) <= len(free.rows)
    # the same pooled candidates in another order give the same list
    again = select_by_uplift(rules, frame.sample(frac=1.0, random_state=3), None)
    pd.testing.assert_frame_equal(again.rows, chosen.rows)


# --- end to end: train-uplift then score --target uplift ---------------------------------------------


@pytest.fixture(scope="module")
def trained(campaigns, tmp_path_factory):
    from conftest import fit_churn_model

    from churnlens.model_store import save_model

    root = tmp_path_factory.mktemp("uplift_e2e")
    store = f"sqlite:///{root / 'mlflow.db'}"
    toml = root / "uplift.toml"
    toml.write_text("[labels]\nmode = \"non_contractual\"\n[uplift]\nmin_treated = 40\nmin_control = 10\n"
                    "test_campaigns = 1\nrounds = 15\nthreads = 1\nmin_child_samples = 20\n")  # fmt: skip
    result = CliRunner().invoke(app, ["train-uplift", str(campaigns["dir"]), "--config", str(toml),
                                      "--tracking-uri", store])  # fmt: skip
    assert result.exit_code == 0, result.output
    tables = campaigns["tables"]
    churn = fit_churn_model(tables, tables.data_end.normalize() - pd.Timedelta(days=89))
    path = save_model(churn, root / "churn_model", pip_requirements=["churnlens"])
    return {"root": root, "store": store, "output": result.output, "churn": path, "toml": toml}


def test_train_uplift_logs_registers_and_says_what_it_skipped(trained):
    import mlflow
    from mlflow.tracking import MlflowClient

    out = trained["output"]
    assert "Held-out campaigns" in out and "as champion" in out
    mlflow.set_tracking_uri(trained["store"])
    version = MlflowClient().get_model_version_by_alias("churnlens-uplift", "champion")
    run = MlflowClient().get_run(version.run_id)
    assert "test_overall.qini" in run.data.metrics and "test_overall.qini_churn_probability" in run.data.metrics
    artifacts = {a.path for a in MlflowClient().list_artifacts(version.run_id, "plots")}
    assert "plots/qini_overall.png" in artifacts and "plots/uplift_by_decile_overall.png" in artifacts


def test_a_second_run_says_what_it_skipped_and_is_not_judged_on_campaigns_the_champion_learnt(trained, campaigns):
    contacts = campaigns["tables"].contacts
    first_two = contacts[contacts["campaign_id"].astype(str).isin(["camp01", "camp02"])]
    treated = first_two[first_two["group"].astype(str) == "treatment"].groupby(
        first_two["action"].astype(str)).size().sort_values()  # fmt: skip
    assert len(treated) >= 2
    toml = trained["root"] / "skip.toml"
    fewer = f"min_treated = {int(treated.iloc[0]) + 1}"
    toml.write_text(trained["toml"].read_text().replace("min_treated = 40", fewer))
    result = CliRunner().invoke(app, ["train-uplift", str(campaigns["dir"]), "--config", str(toml),
                                      "--tracking-uri", trained["store"]])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"skipped {treated.index[0]}:" in result.output and "min_treated" in result.output
    assert "as challenger" in result.output and "was fitted on the held-out campaigns" in result.output


def test_score_target_uplift_honours_budget_eligibility_and_pressure(trained, campaigns, tmp_path):
    from churnlens.data import load_tables
    from churnlens.serving.actions import rule_inputs

    out = tmp_path / "list.csv"
    budget = 150.0
    result = CliRunner().invoke(app, [
        "score", str(campaigns["dir"]), "-o", str(out), "--model", str(trained["churn"]), "--target", "uplift",
        "--budget", str(budget), "--tracking-uri", trained["store"],
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(out.with_name("list.summary.json").read_text())
    assert summary["target"] == "uplift"
    up = summary["uplift"]
    assert up["uplift_list"]["cost"] <= budget + 1e-9 and up["risk_list"]["cost"] <= budget + 1e-9
    assert "risk list" in result.output
    listed = pd.read_csv(out, dtype={"customer_id": str})
    chosen = listed[listed["selected"]]
    assert len(chosen) == up["uplift_list"]["contacted"] > 0
    costs = {r.name: r.cost for r in DEFAULT_ACTION_RULES}
    assert sum(costs[a] for a in chosen["action"]) <= budget
    assert {"expected_uplift_win_back", "expected_incremental_value", "uplift_reason_1"} <= set(listed.columns)
    assert (chosen["expected_incremental_value"] > 0).all()
    # every chosen action's rule holds for the customer and its contact pressure does not block them
    from churnlens.features import build_snapshot

    tables = load_tables(campaigns["dir"])[0]
    snapshot = build_snapshot(tables, pd.Timestamp(summary["cutoff"]) + pd.Timedelta(days=1) * 0)
    reasons = pd.read_csv(out.with_name("list.reasons.csv"), dtype={"customer_id": str})
    scored = chosen.rename(columns={})[["customer_id", "churn_probability", "risk_band", "customer_value",
                                       "value_at_risk"]]  # fmt: skip
    verdict = rule_inputs(DEFAULT_ACTION_RULES, scored, snapshot, reasons).frame.set_index("customer_id")
    for _, row in chosen.iterrows():
        rule = next(r for r in DEFAULT_ACTION_RULES if r.name == row["action"])
        assert verdict.loc[row["customer_id"], "eligible:" + rule.name]
        days = verdict.loc[row["customer_id"], "days_since_contact"]
        assert not days < rule.min_days_since_contact
    # the web app's campaign header shows both lists' expected incremental value
    from churnlens.i18n import Words
    from churnlens.serving.webapp import views
    from churnlens.serving.webapp.campaigns import find_campaigns, load_campaign

    header = views.header(load_campaign(find_campaigns(tmp_path)[0]), Words("en"), Words("en"))
    figures = {f["label"]: f for f in header["figures"]}
    risk = figures["Expected incremental value, risk list at the same budget"]
    assert risk["value"].startswith(("€", "−€")) and "customers" in risk["note"]
    assert "Expected incremental value, this list" in figures


def test_the_risk_list_spends_the_budget_and_any_partitioning_gives_the_same_list(trained, campaigns):
    """Most of the riskiest customers have no fitting action here (every rule also asks
    ``points_balance >= 450``): they are passed over without counting against the bound, so the
    risk list still spends the budget to within its costliest action's cost, and pooling the
    pieces of any partitioning gives the list of one pass."""
    from churnlens.config import ScoringSettings
    from churnlens.features import build_snapshot
    from churnlens.serving import load_model, score_base
    from churnlens.serving.actions import rule_fits, rule_inputs
    from churnlens.serving.core import explain_rows, risk_list_at_budget, riskiest_rows
    from churnlens.serving.uplift_targeting import risk_list, risk_order
    from churnlens.uplift.model import uplift_column

    tables = campaigns["tables"]
    loaded = load_model(str(trained["churn"]))
    scored = score_base(tables, None, loaded, ScoringSettings())
    snapshot = build_snapshot(tables, pd.Timestamp(scored.summary.cutoff))
    snapshot.index = snapshot.index.astype("string")
    rules = [replace(r, eligible=f"({r.eligible}) and points_balance >= 450") for r in DEFAULT_ACTION_RULES]
    rng = np.random.default_rng(11)
    scores = scored.campaign[["customer_id", "churn_probability", "risk_band", "customer_value", "value_at_risk"]]
    scores = scores.assign(customer_id=scores["customer_id"].astype("string")).reset_index(drop=True)
    for r in rules:
        scores[uplift_column(r.name)] = rng.normal(0.02, 0.05, len(scores))
    settings = ScoringSettings(target="uplift")
    costliest = max(r.cost for r in rules)
    splits = {"one": np.zeros(len(scores), int), "four": np.arange(len(scores)) % 4,
              "uneven": rng.choice(7, size=len(scores), p=[0.5, 0.2, 0.1, 0.1, 0.05, 0.04, 0.01])}  # fmt: skip
    for budget in (60.0, 150.0):
        lists = {}
        for name, part in splits.items():
            pieces = []
            for p in np.unique(part):
                rows = scores[part == p].reset_index(drop=True)
                piece = snapshot.reindex(pd.Index(rows["customer_id"], name="customer_id"))
                pieces.append(riskiest_rows(loaded.model, rules, rows, piece, budget, settings))
            lists[name] = risk_list_at_budget(rules, pieces, budget, settings)
        one = lists["one"]
        assert budget - costliest < one.cost <= budget
        for name in ("four", "uneven"):
            assert lists[name].to_dict() == one.to_dict()
            pd.testing.assert_frame_equal(lists[name].picks, one.picks)
        # not vacuous: walking only the ceil(budget / cheapest) + 1 riskiest customers, fitting or
        # not (the bound before), leaves most of the budget unspent
        rows, inputs = riskiest_rows(loaded.model, rules, scores, snapshot, budget, settings)
        assert rule_fits(rules, inputs).any(axis=1).all() and set(one.picks["customer_id"]) <= set(rows["customer_id"])
        cheapest = min(r.cost for r in rules)
        walked = scores.iloc[risk_order(scores)[: int(np.ceil(budget / cheapest)) + 1]].reset_index(drop=True)
        why = explain_rows(loaded.model, snapshot.reindex(pd.Index(walked["customer_id"])), settings)
        before = risk_list(rules, walked, rule_inputs(rules, walked, snapshot, why), budget, settings)
        assert before.cost <= budget - costliest


def test_score_target_uplift_in_french_and_refusals(trained, campaigns, tmp_path):
    out = tmp_path / "liste.csv"
    base = ["score", str(campaigns["dir"]), "--model", str(trained["churn"]), "--tracking-uri", trained["store"]]
    result = CliRunner().invoke(app, [*base, "-o", str(out), "--target", "uplift", "--budget", "100", "--lang", "fr",
                                      "--campaign-id", "juillet", "--holdout", "0.2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    listed = pd.read_csv(out)
    plan = pd.read_csv(out.with_name("liste.contacts.csv"))  # the contact plan holds the chosen actions
    chosen = listed[listed["selected"]].set_index("customer_id")["action"]
    assert len(plan) == len(chosen) and (plan.set_index("customer_id")["action"] == chosen.reindex(
        plan["customer_id"])).all()  # fmt: skip
    assert set(plan["group"]) <= {"treatment", "control"} and (plan["group"] == "control").any()
    texts = listed["uplift_reason_1"].dropna()
    assert len(texts) and texts.str.contains("d'effet").all()
    assert listed["action_reason"].dropna().str.contains("valeur incrémentale attendue").all()
    refused = CliRunner().invoke(app, [*base, "-o", str(tmp_path / "x.csv"), "--target", "uplift", "--top", "5"])
    assert refused.exit_code == 2 and "--top" in refused.output
    missing = CliRunner().invoke(app, [*base, "-o", str(tmp_path / "y.csv"), "--target", "uplift",
                                       "--uplift-model", "models:/nope@champion"])  # fmt: skip
    assert missing.exit_code == 2
    bad = CliRunner().invoke(app, [*base, "-o", str(tmp_path / "z.csv"), "--target", "profit"])
    assert bad.exit_code == 2 and "--target" in bad.output and "is not one of" in bad.output


def test_a_churn_model_from_train_scores_with_an_uplift_model_from_train_uplift(trained, campaigns, tmp_path):
    """``train`` records BG/NBD parameters the uplift training does not: not a difference of settings."""
    toml = tmp_path / "train.toml"
    toml.write_text(trained["toml"].read_text() + "[training]\nthreads = 1\nbacktests = 1\n"
                    "[training.lgbm]\nmax_rounds = 20\n")  # fmt: skip
    store = trained["store"]
    result = CliRunner().invoke(app, ["train", str(campaigns["dir"]), "--config", str(toml), "--tracking-uri", store,
                                      "--horizon", "90"])  # fmt: skip
    assert result.exit_code == 0, result.output
    out = tmp_path / "list.csv"
    result = CliRunner().invoke(app, ["score", str(campaigns["dir"]), "-o", str(out), "--target", "uplift",
                                      "--budget", "100", "--tracking-uri", store])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(out.with_name("list.summary.json").read_text())["uplift"]["uplift_list"]["contacted"] > 0


def test_uplift_and_churn_feature_settings_are_compared_on_definitions_only(rows):
    from dataclasses import asdict
    from types import SimpleNamespace

    from churnlens.config import FeatureConfig
    from churnlens.serving.core import check_uplift_features, check_uplift_model

    def churn(config):
        return SimpleNamespace(metadata=SimpleNamespace(feature_config=asdict(config)))

    def uplift(config, features=("purchase_count_90d",)):
        return SimpleNamespace(metadata=SimpleNamespace(feature_config=asdict(config)), features=list(features))

    trained = FeatureConfig(windows=(30, 90), btyd_params=(0.5, 10.0, 0.7, 2.0))  # what train records
    check_uplift_model(uplift(FeatureConfig()), churn(trained))  # fitted parameters and windows: not settings
    with pytest.raises(InputError, match="other feature settings"):
        check_uplift_model(uplift(FeatureConfig(active_window_days=180)), churn(trained))
    snapshot = pd.DataFrame(columns=["purchase_count_30d", "purchase_count_90d"])
    check_uplift_features(uplift(FeatureConfig()), snapshot)
    with pytest.raises(InputError, match=r"1 feature\(s\) the churn model's snapshot does not have: \['spend_365d'\]"):
        check_uplift_features(uplift(FeatureConfig(), ["purchase_count_90d", "spend_365d"]), snapshot)


def test_an_uplift_model_is_read_as_data_and_a_tampered_one_refused(rows, tmp_path):
    from churnlens.model_store import ModelStoreError
    from churnlens.uplift.store import read_uplift_dir, save_uplift_model

    model = fit_and_evaluate(rows, config=config(), model_name="m", tables=[]).model
    path = save_uplift_model(model, tmp_path / "uplift", pip_requirements=["churnlens"])
    again = read_uplift_dir(path)
    X = model.matrix(rows.features.iloc[:50])
    for action in model.actions:
        np.testing.assert_array_equal(again.uplift_of_matrix(X, action), model.uplift_of_matrix(X, action))
    booster = next(path.glob("artifacts/uplift_0.txt"))
    booster.write_text(booster.read_text().replace("tree_sizes", "tree_sizez", 1))
    with pytest.raises(ModelStoreError):
        read_uplift_dir(path)


def test_rules_without_an_uplift_model_are_never_chosen():
    from churnlens.serving.uplift_targeting import learnt_rules

    class Fake:
        actions = ["win_back"]

    rules, notes = learnt_rules(DEFAULT_ACTION_RULES, Fake())
    assert [r.name for r in rules] == ["win_back"] and len(notes) == 2
    with pytest.raises(InputError, match="none of the"):
        learnt_rules([ActionRule("x", "X", "X", 1.0, "value > 0", 1)], Fake())


def test_the_risk_list_explains_only_what_its_rules_read_and_not_twice(trained, campaigns, monkeypatch):
    """Rows whose reasons the campaign already has are not explained again, and rules that read no
    reason explain nothing; the risk list is the same either way."""
    import churnlens.serving.core as core
    from churnlens.config import ScoringSettings
    from churnlens.features import build_snapshot
    from churnlens.serving import load_model, score_base
    from churnlens.serving.actions import rules_read_reasons
    from churnlens.uplift.model import uplift_column

    tables = campaigns["tables"]
    loaded = load_model(str(trained["churn"]))
    scored = score_base(tables, None, loaded, ScoringSettings())
    snapshot = build_snapshot(tables, pd.Timestamp(scored.summary.cutoff))
    snapshot.index = snapshot.index.astype("string")
    scores = scored.campaign[["customer_id", "churn_probability", "risk_band", "customer_value", "value_at_risk"]]
    scores = scores.assign(customer_id=scores["customer_id"].astype("string")).reset_index(drop=True)
    rng = np.random.default_rng(5)
    for r in DEFAULT_ACTION_RULES:
        scores[uplift_column(r.name)] = rng.normal(0.02, 0.05, len(scores))
    settings = ScoringSettings(target="uplift")
    explained: list[int] = []
    real = core.explain_rows

    def counting(model, frame, *args, **kwargs):
        explained.append(len(frame))
        return real(model, frame, *args, **kwargs)

    monkeypatch.setattr(core, "explain_rows", counting)
    reading = list(DEFAULT_ACTION_RULES)
    assert rules_read_reasons(reading)
    plain = [replace(r, eligible="days_since_last_purchase > 30") for r in reading]
    assert not rules_read_reasons(plain)
    for rules in (reading, plain):
        explained.clear()
        rows, inputs = core.riskiest_rows(loaded.model, rules, scores, snapshot, 150.0, settings)
        alone = sum(explained)
        assert (alone > 0) == (rules is reading)
        everyone = pd.Index(scores["customer_id"])
        known = core.KnownReasons(everyone, real(loaded.model, snapshot.reindex(everyone), settings))
        explained.clear()
        again, again_inputs = core.riskiest_rows(loaded.model, rules, scores, snapshot, 150.0, settings,
                                                 known=known)  # fmt: skip
        pd.testing.assert_frame_equal(again, rows)
        pd.testing.assert_frame_equal(again_inputs.frame, inputs.frame)
        assert sum(explained) == 0  # every customer's reasons were known
