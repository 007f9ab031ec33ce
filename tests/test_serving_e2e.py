"""Serving end to end: a small simulation, a model trained and registered in a temp sqlite MLflow store,
batch scoring, the CLI, model loading by every URI form and the errors users meet."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churnlens.cli.main import app
from churnlens.data.io import load_tables, write_tables
from churnlens.features import build_snapshot
from churnlens.i18n import Words
from churnlens.serving import (
    IncompatibleModelError,
    ModelNotFoundError,
    load_model,
    score_base,
    shap_contributions,
    write_outputs,
)
from churnlens.serving.batch import model_feature_config
from churnlens.serving.explain import concept_map

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")

SIM = {"n_customers": 3000, "months": 18, "seed": 5}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Simulated data on disk and a model trained through churnlens.training into a sqlite store."""
    from churnlens.config import LightGBMParams
    from churnlens.simulate import simulate
    from churnlens.training import TrainConfig, train_model

    root = tmp_path_factory.mktemp("serving")
    sim = simulate(**SIM)
    data = root / "data"
    write_tables(sim.tables, data, fmt="parquet")
    tables, _ = load_tables(data)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    result = train_model(
        tables,
        tracking_uri=uri,
        train_config=TrainConfig(class_weight="none", lgbm=LightGBMParams(max_rounds=150)),
    )
    return {"root": root, "data": data, "tables": tables, "uri": uri, "result": result}


@pytest.fixture(scope="module")
def loaded(store):
    return load_model(tracking_uri=store["uri"])


@pytest.fixture(scope="module")
def scored(store, loaded):
    return score_base(store["tables"], None, loaded, top=120, explain_all=True, lang="en")


def test_batch_scores_equal_pyfunc_predictions_and_cover_every_customer(store, loaded, scored):
    from churnlens.training.mlflow_log import signature_frame

    campaign = scored.campaign
    meta = loaded.metadata
    snapshot = build_snapshot(store["tables"], scored.summary.cutoff, model_feature_config(loaded.model))
    pyfunc = mlflow.pyfunc.load_model(loaded.resolved_uri)
    expected = pyfunc.predict(signature_frame(snapshot, meta["features"], meta["categorical_levels"]))
    got = campaign.set_index("customer_id")["churn_probability"].reindex(snapshot.index)
    np.testing.assert_allclose(got.to_numpy(), expected["churn_probability"].to_numpy(), rtol=0, atol=1e-12)
    # every input customer is scored or rejected, never both
    scored_ids, rejected_ids = set(campaign["customer_id"]), set(scored.rejects["customer_id"])
    assert not scored_ids & rejected_ids
    assert scored_ids | rejected_ids == set(store["tables"].customer_ids())
    assert scored.rejects["reason"].notna().all()
    # ranks follow probability; bands follow the bounds; value at risk = p * value
    assert campaign["rank"].tolist() == list(range(1, len(campaign) + 1))
    assert campaign["churn_probability"].is_monotonic_decreasing
    high = campaign["churn_probability"] >= 0.5
    assert (campaign.loc[high, "risk_band"] == "high").all()
    np.testing.assert_allclose(
        campaign["value_at_risk"], campaign["churn_probability"] * campaign["customer_value"].clip(lower=0)
    )
    assert campaign["selected"].sum() == 120 and campaign["selected"].iloc[:120].all()
    assert scored.summary.campaign.contacted == 120


def test_reasons_plus_base_value_reproduce_the_raw_score(store, loaded, scored):
    model = loaded.model
    snapshot = build_snapshot(store["tables"], scored.summary.cutoff, model_feature_config(model))
    contributions = shap_contributions(model, snapshot)
    np.testing.assert_allclose(contributions.sum(axis=1), model.raw_margin(snapshot), atol=1e-9)
    reasons = scored.reasons
    concepts = concept_map(model)
    per_concept = contributions[model.features].to_numpy() @ concepts.member
    rows = snapshot.index.get_indexer(reasons["customer_id"])
    picked = per_concept[rows, [concepts.concepts.index(c) for c in reasons["concept"]]]
    np.testing.assert_allclose(reasons["contribution"], picked, atol=1e-12)
    assert (reasons["contribution"] > 0).all() and (reasons["effect"] > -1e-12).all()
    # each customer's reasons come strongest first
    assert (reasons.groupby("customer_id", sort=False)["effect"].diff().dropna() <= 1e-12).all()
    # explain-all: the list's reason columns are the reasons' sentences
    wide = scored.campaign.set_index("customer_id")
    first = reasons[reasons["rank"] == 1].set_index("customer_id")["text"]
    assert (wide.loc[first.index, "reason_1"] == first).all()
    assert wide["reason_1"].notna().sum() == len(first)


def test_french_and_english_outputs_are_both_complete(store, loaded, scored):
    fr = score_base(store["tables"], None, loaded, top=120, lang="fr")
    en = scored.reasons.set_index(["customer_id", "rank"]).loc[
        fr.reasons.set_index(["customer_id", "rank"]).index
    ]
    assert len(fr.reasons) > 0
    assert fr.reasons["feature"].tolist() == en["feature"].tolist()
    assert fr.reasons["text"].notna().all() and en["text"].notna().all()
    assert (fr.reasons["text"].to_numpy() != en["text"].to_numpy()).all()
    selected = fr.campaign[fr.campaign["selected"]]
    assert selected["reason_1"].notna().all()
    assert fr.campaign.loc[~fr.campaign["selected"], "reason_1"].isna().all()  # only the list is explained
    recency = fr.reasons[fr.reasons["feature"] == "days_since_last_purchase"]["text"]
    assert recency.str.startswith("Dernier achat il y a").all()  # long dates, French wording


def test_outputs_are_written_beside_the_campaign_file(scored, tmp_path):
    paths = write_outputs(scored, tmp_path / "list.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "list.drift.csv",
        "list.parquet",
        "list.reasons.parquet",
        "list.rejects.parquet",
        "list.summary.json",
    ]
    back = pd.read_parquet(paths["campaign"])
    pd.testing.assert_frame_equal(back, scored.campaign, check_dtype=False)
    assert len(pd.read_parquet(paths["reasons"])) == len(scored.reasons)
    drift = pd.read_csv(paths["drift"])
    assert "churn_probability" in set(drift["feature"])
    assert json.loads(paths["summary"].read_text())["scored"] == len(scored.campaign)


def test_load_model_by_every_uri_form(store, loaded, tmp_path):
    result = store["result"]
    snapshot = build_snapshot(store["tables"], "2024-06-01", model_feature_config(loaded.model))
    expected = loaded.model.predict_proba(snapshot)
    local = mlflow.artifacts.download_artifacts(result.model_uri, dst_path=str(tmp_path))
    for uri in (
        "models:/churnlens@champion",
        "models:/churnlens/1",
        "models:/churnlens/latest",
        f"runs:/{result.run_id}/model",
        result.model_uri,
        local,
    ):
        other = load_model(uri, tracking_uri=store["uri"])
        np.testing.assert_array_equal(other.model.predict_proba(snapshot), expected)
    assert loaded.version == "1" and loaded.name == "churnlens"
    with pytest.raises(ModelNotFoundError, match=r"could not load model models:/m-0000"):
        load_model("models:/m-0000", tracking_uri=store["uri"])
    assert loaded.info()["features"] == loaded.model.features


def test_load_model_errors_name_the_uri_and_what_exists(store):
    uri = store["uri"]
    with pytest.raises(
        ModelNotFoundError,
        match=r"no model 'nope' in sqlite:///.*mlflow.db \(asked for "
        r"models:/nope@champion\) — registered models: \['churnlens'\]",
    ):
        load_model("models:/nope@champion", tracking_uri=uri)
    with pytest.raises(
        ModelNotFoundError,
        match=r"model 'churnlens' in .* has no alias 'gold' .* aliases: "
        r"\['champion'\], versions: \['1'\]",
    ):
        load_model("models:/churnlens@gold", tracking_uri=uri)
    with pytest.raises(ModelNotFoundError, match=r"has no version '7' .* versions: \['1'\]"):
        load_model("models:/churnlens/7", tracking_uri=uri)
    with pytest.raises(ModelNotFoundError, match=r"no run 'deadbeef' in sqlite"):
        load_model("runs:/deadbeef/model", tracking_uri=uri)
    with pytest.raises(
        ModelNotFoundError, match=r"has no model 'nomodel' .* models logged by the run: \['model'\]"
    ):
        load_model(f"runs:/{store['result'].run_id}/nomodel", tracking_uri=uri)


def test_model_trained_with_support_data_refuses_data_without_it(store, loaded):
    tables = store["tables"].replace(support_interactions=None)
    with pytest.raises(
        IncompatibleModelError,
        match=r"the model needs \d+ feature\(s\) the data does not have: "
        r"\[.*\]; the model was trained with tables .* but the data has no support_interactions "
        r"table",
    ):
        score_base(tables, None, loaded)


def test_cutoff_before_any_event_scores_nobody_and_rejects_everyone(store, loaded):
    result = score_base(store["tables"], "2000-01-01", loaded)
    assert result.summary.scored == 0 and result.campaign.empty and result.reasons.empty
    assert len(result.rejects) == len(store["tables"].customer_ids())
    assert set(result.rejects["reason"]) <= {
        "first event after the cutoff",
        "no event in any table (listed in customers only)",
    }


# --------------------------------------------------------------------------- CLI


def test_cli_score_writes_the_list_and_prints_the_summary(store, tmp_path):
    out = tmp_path / "campaign.csv"
    result = CliRunner().invoke(
        app,
        [
            "score",
            str(store["data"]),
            "--out",
            str(out),
            "--tracking-uri",
            store["uri"],
            "--lang",
            "fr",
            "--budget",
            "300",
            "--cost-per-contact",
            "3",
            "--save-rate",
            "0.25",
        ],
    )
    assert result.exit_code == 0, result.output
    campaign = pd.read_csv(out)
    assert campaign["selected"].sum() == 100  # floor(300 / 3) customers with positive expected net
    summary = json.loads((tmp_path / "campaign.summary.json").read_text())
    assert summary["campaign"]["expected_cost"] == pytest.approx(300.0)
    assert "gain net attendu" in result.output and "sélectionnés pour contact" in result.output  # --lang fr
    for name in ("campaign.reasons.csv", "campaign.rejects.csv", "campaign.drift.csv"):
        assert (tmp_path / name).is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--top", "5", "--budget", "10"], "choose one targeting rule, got --top and --budget"),
        (["--cutoff", "someday"], "--cutoff 'someday' is not a date"),
        (["--lang", "de"], "'de' is not one of 'en', 'fr'"),  # a click choice: a usage error
        (["--model", "models:/nope@champion"], "no model 'nope' in sqlite"),
        (["--value-column", "nope"], "value column 'nope' is neither"),
        (["--high-risk", "0.1"], "risk band bounds must satisfy"),
    ],
)
def test_cli_score_bad_input_exits_2(store, tmp_path, args, message):
    result = CliRunner().invoke(
        app,
        [
            "score",
            str(store["data"]),
            "--out",
            str(tmp_path / "c.csv"),
            "--tracking-uri",
            store["uri"],
            *args,
        ],
    )
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_cli_score_refuses_an_unknown_extension(store, tmp_path):
    result = CliRunner().invoke(
        app, ["score", str(store["data"]), "--out", str(tmp_path / "c.xlsx"), "--tracking-uri", store["uri"]]
    )
    assert result.exit_code == 2 and "must end in .csv or .parquet" in result.output


def test_cli_explain_prints_reasons_and_writes_a_card(store, scored, tmp_path):
    customer = scored.campaign["customer_id"].iloc[0]
    card = tmp_path / "card.html"
    result = CliRunner().invoke(
        app,
        [
            "explain",
            str(store["data"]),
            "--customer",
            customer,
            "--tracking-uri",
            store["uri"],
            "--lang",
            "fr",
            "--html",
            str(card),
        ],
    )
    assert result.exit_code == 0, result.output
    page = card.read_text(encoding="utf-8")
    assert customer in page and "<svg" in page and "Risque moyen des clients" in page
    first = scored.reasons[scored.reasons["customer_id"] == customer]
    output = " ".join(result.output.split())
    fr = Words("fr")
    assert " ".join(fr.percent(scored.campaign["churn_probability"].iloc[0], 1).split()) in output
    assert "effet sur la probabilité de départ" in output and f"Client {customer} au" in output  # --lang fr
    assert "effect on churn probability" not in output
    assert len(first) >= 1
    rejected = scored.rejects.iloc[0]
    result = CliRunner().invoke(
        app,
        [
            "explain",
            str(store["data"]),
            "--customer",
            rejected["customer_id"],
            "--tracking-uri",
            store["uri"],
        ],
    )
    assert result.exit_code == 2
    assert f"is not scored at cutoff {scored.summary.cutoff}: {rejected['reason']}" in " ".join(
        result.output.split()
    )
    result = CliRunner().invoke(
        app, ["explain", str(store["data"]), "--customer", "nobody", "--tracking-uri", store["uri"]]
    )
    assert result.exit_code == 2 and "customer 'nobody' is not in the data" in result.output
