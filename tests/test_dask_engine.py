"""The Dask engine on a 2-worker LocalCluster: same snapshot, training set and scores as local.

One module-scoped cluster (worker processes on 127.0.0.1, no dashboard) serves every test;
each wait is bounded. The worker-kill test runs last because it restarts a worker.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("distributed")

from churnlens.cli.main import app  # noqa: E402
from churnlens.data import load_tables, write_tables  # noqa: E402
from churnlens.engine import (  # noqa: E402
    bucket_of,
    load_bucket,
    read_campaign,
    read_snapshot,
    score_on_dask,
    snapshot_to_parquet,
    stage_tables,
    training_set_on_dask,
)
from churnlens.engine.dask_scoring import as_local_campaign  # noqa: E402
from churnlens.features import build_snapshot, build_training_set, training_cutoffs  # noqa: E402
from churnlens.serving import load_model, score_base  # noqa: E402

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::UserWarning"),
]

SIM = {"n_customers": 2000, "months": 15, "seed": 3}
BUCKETS = 4
CLUSTER_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def client():
    """A 2-worker LocalCluster of processes on loopback, closed at teardown."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
        memory_limit="3GB",
    )  # fmt: skip
    c = Client(cluster, timeout=CLUSTER_TIMEOUT_S)
    try:
        c.wait_for_workers(2, timeout=CLUSTER_TIMEOUT_S)
        yield c
    finally:
        c.close(timeout=CLUSTER_TIMEOUT_S)
        cluster.close(timeout=CLUSTER_TIMEOUT_S)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from churnlens.simulate import simulate

    root = tmp_path_factory.mktemp("dask_data")
    write_tables(simulate(**SIM).tables, root / "data")
    tables, _ = load_tables(root / "data")
    return {"root": root, "dir": root / "data", "tables": tables}


@pytest.fixture(scope="module")
def staged(client, data):
    return stage_tables(client, data["dir"], data["root"] / "work", n_buckets=BUCKETS)


def _train_config(**overrides):
    from churnlens.config import LightGBMParams
    from churnlens.training import TrainConfig

    return TrainConfig(
        class_weight="none", lgbm=LightGBMParams(max_rounds=40, early_stopping_rounds=10), **overrides
    )


@pytest.fixture(scope="module")
def trained(client, data, staged):
    """A model trained by train_model from the Dask source (a small set: collected, trained here)."""
    from churnlens.engine import DaskSource
    from churnlens.training import train_model

    uri = f"sqlite:///{data['root'] / 'mlflow.db'}"
    result = train_model(DaskSource(client, staged), tracking_uri=uri, train_config=_train_config())
    return {"uri": uri, "result": result, "loaded": load_model(tracking_uri=uri)}


# --------------------------------------------------------------------------- buckets


def test_bucket_of_normalises_ids_and_is_the_same_on_a_worker(client):
    text = pd.Series(["7", "8", "C000123", "é-1"], dtype="string")
    assert np.array_equal(bucket_of(pd.Series([7, 8]), 16), bucket_of(text[:2], 16))
    assert np.array_equal(bucket_of(pd.Series([7.0, 8.0]), 16), bucket_of(text[:2], 16))
    on_worker = client.submit(bucket_of, text, 16).result(timeout=30)
    assert np.array_equal(on_worker, bucket_of(text, 16))
    assert bucket_of(text, 16).min() >= 0 and bucket_of(text, 16).max() < 16


def test_every_customer_sits_in_one_bucket_and_tables_equal_the_local_ones(data, staged):
    tables = data["tables"]
    assert staged.n_buckets == BUCKETS
    assert (staged.data_start, staged.data_end) == (tables.data_start, tables.data_end)
    seen: set[str] = set()
    parts = [load_bucket(staged, b) for b in range(BUCKETS)]
    for part in parts:
        ids = set(part.customer_ids())
        assert not ids & seen, "a customer appears in two buckets"
        seen |= ids
    assert seen == set(tables.customer_ids())
    for name, local in tables.present().items():
        merged = pd.concat([p.present()[name] for p in parts], ignore_index=True)
        key = ["customer_id", "timestamp"] if "timestamp" in local.columns else ["customer_id"]
        pd.testing.assert_frame_equal(
            merged.sort_values(key, kind="stable").reset_index(drop=True),
            local.sort_values(key, kind="stable").reset_index(drop=True),
        )
    assert staged.report.tables["purchases"].rows_out == len(tables.purchases)


# --------------------------------------------------------------------------- features


@pytest.mark.parametrize("cutoff", ["2024-01-01", "2023-02-15", "2020-01-01"])
def test_dask_snapshot_equals_local_snapshot_exactly(client, data, staged, tmp_path, cutoff):
    out = tmp_path / "snapshot"
    rows = snapshot_to_parquet(client, staged, cutoff, out)
    got = read_snapshot(out)
    expected = build_snapshot(data["tables"], cutoff)
    assert rows == len(expected)
    assert len(list(out.glob("part-*.parquet"))) == BUCKETS and (out / "_SUCCESS").is_file()
    # rows, columns, values, dtypes and categorical levels
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_categorical=True)


def test_dask_training_set_equals_local_training_set(client, data, staged):
    cutoffs = training_cutoffs(data["tables"], horizon_days=90, step_days=30)[-3:]
    got = training_set_on_dask(client, staged, cutoffs=cutoffs, horizon_days=90)
    expected = build_training_set(data["tables"], cutoffs=cutoffs, horizon_days=90)
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_categorical=True)


def test_cli_features_on_dask_writes_parts_equal_to_local(client, data, tmp_path):
    out = tmp_path / "snap"
    result = CliRunner().invoke(
        app,
        ["features", str(data["dir"]), "--cutoff", "2024-01-01", "--out", str(out), "--engine", "dask",
         "--scheduler", client.scheduler.address, "--partitions", "3", "--work-dir", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(read_snapshot(out), build_snapshot(data["tables"], "2024-01-01"))
    assert not list(tmp_path.glob(".churnlens-work-*")), "scratch buckets left behind"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--engine", "spark"], "'spark' is not one of 'local', 'dask'"),  # a click choice: a usage error
        (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler only applies with --engine dask"),
    ],
)
def test_cli_engine_options_are_checked(data, tmp_path, args, message):
    result = CliRunner().invoke(
        app,
        ["features", str(data["dir"]), "--cutoff", "2024-01-01", "--out", str(tmp_path / "s.parquet"), *args],
    )
    assert result.exit_code == 2
    assert message in result.output


# --------------------------------------------------------------------------- training and scoring


def _local_btyd(tables):
    from churnlens.training.source import LocalSource

    return LocalSource(tables).btyd_params(tables.data_end.floor("D") + pd.Timedelta(days=1))


def test_training_from_the_dask_source_equals_local_training(client, data, staged, trained, tmp_path):
    from mlflow import MlflowClient

    from churnlens.training import train_model

    result = trained["result"]
    assert result.model_version == "1" and result.alias == "champion"
    assert trained["loaded"].version == "1"
    local = train_model(
        data["tables"], tracking_uri=f"sqlite:///{tmp_path / 'local.db'}", train_config=_train_config()
    )
    pd.testing.assert_frame_equal(result.metrics, local.metrics, check_exact=True)
    for a, b in zip(result.evaluation.folds, local.evaluation.folds, strict=True):
        pd.testing.assert_frame_equal(a.metrics, b.metrics, check_exact=True)
    assert (result.rows, result.n_trees, result.refit_cutoffs, result.trained_through) == (
        local.rows, local.n_trees, local.refit_cutoffs, local.trained_through)
    # the BG/NBD parameters were fitted on the whole base, not per bucket
    assert trained["loaded"].model.metadata["feature_config"]["btyd_params"] == pytest.approx(
        list(_local_btyd(data["tables"])))
    run = MlflowClient(trained["uri"]).get_run(result.run_id)
    assert run.data.params["model.trained_on"] == "this process"
    assert run.data.tags["data.start"] == str(data["tables"].data_start)


def test_lightgbm_trains_on_the_cluster_above_the_size_threshold(client, data, staged, trained, tmp_path):
    from mlflow import MlflowClient

    from churnlens.engine import DaskSource
    from churnlens.training import train_model

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result, again = (
        train_model(DaskSource(client, staged), tracking_uri=uri, train_config=_train_config(distributed_min_rows=0))
        for _ in range(2)
    )
    # reproducible: same data, config and workers give the same model and metrics
    pd.testing.assert_frame_equal(result.metrics, again.metrics, check_exact=True)
    assert again.model_version == "2" and again.alias == "challenger"  # equal AUC does not beat the champion
    run = MlflowClient(uri).get_run(result.run_id)
    assert run.data.params["model.trained_on"] == "cluster (lightgbm.dask)"
    local = trained["result"]
    assert result.rows == local.rows and run.data.metrics["rows_refit"] == local.rows["refit"]
    assert 1 <= result.n_trees <= 40
    metrics = result.metrics
    # a real model: it ranks test customers about as well as the one trained in one process
    assert metrics.loc["model", "roc_auc"] > metrics.loc["recency", "roc_auc"]
    assert abs(metrics.loc["model", "roc_auc"] - local.metrics.loc["model", "roc_auc"]) < 0.05
    loaded = load_model(tracking_uri=uri)
    assert loaded.model.metadata["trees"] == result.n_trees
    snapshot = build_snapshot(data["tables"], local.evaluation.folds[-1].test_cutoff)
    assert np.isfinite(loaded.model.predict_proba(snapshot)).all()


def test_cli_train_on_dask_never_loads_the_tables_here(client, data, tmp_path):
    config = tmp_path / "churnlens.toml"
    config.write_text(
        '[training]\ndistributed_min_rows = 0\nclass_weight = "none"\n[training.lgbm]\nmax_rounds = 20\n'
    )
    result = CliRunner().invoke(
        app,
        ["train", str(data["dir"]), "--engine", "dask", "--scheduler", client.scheduler.address,
         "--work-dir", str(tmp_path), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
         "--config", str(config)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Loading tables" not in result.output  # the client read no table
    assert "Registered churnlens version 1 as champion" in " ".join(result.output.split())
    assert not list(tmp_path.glob(".churnlens-work-*")), "scratch files left behind"


def test_collected_samples_are_whole_customers(client, data, staged):
    from churnlens.engine import build_training_parts

    cutoffs = training_cutoffs(data["tables"], horizon_days=90, step_days=60)
    parts = build_training_parts(client, staged, cutoffs=cutoffs, horizon_days=90)
    try:
        full = parts.collect(cutoffs)
        assert parts.rows(cutoffs) == len(full)
        sample = parts.collect(cutoffs, max_rows=len(full) // 3)
        assert 0.2 * len(full) < len(sample) < 0.5 * len(full)
        ids = set(sample.index.get_level_values("customer_id"))
        whole = full[full.index.get_level_values("customer_id").isin(ids)]
        pd.testing.assert_frame_equal(sample, whole)  # every cutoff of a sampled customer
        pd.testing.assert_frame_equal(parts.collect(cutoffs, max_rows=len(full) // 3), sample)
    finally:
        parts.remove()
    assert not parts.root.exists()


def _assert_same_scoring(out, summary, local):
    pd.testing.assert_frame_equal(read_campaign(out), local.campaign, check_exact=True)
    got, expected = summary.to_dict(), local.summary.to_dict()
    got.pop("seconds"), expected.pop("seconds")
    assert got == expected
    selection = as_local_campaign(pd.read_parquet(out / "selection.parquet"))
    expected_selection = local.campaign[local.campaign["selected"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(selection, expected_selection, check_exact=True)
    pd.testing.assert_frame_equal(pd.read_csv(out / "drift.csv"), local.drift, check_dtype=False)
    rejects = pd.concat([pd.read_parquet(f) for f in sorted((out / "rejects").glob("*.parquet"))])
    pd.testing.assert_frame_equal(
        rejects.sort_values("customer_id").reset_index(drop=True),
        local.rejects.reset_index(drop=True),
        check_dtype=False,
    )
    reasons = pd.concat([pd.read_parquet(f) for f in sorted((out / "reasons").glob("*.parquet"))])
    pd.testing.assert_frame_equal(
        reasons.sort_values(["customer_id", "rank"]).reset_index(drop=True),
        local.reasons.sort_values(["customer_id", "rank"]).reset_index(drop=True),
        check_dtype=False,
    )


@pytest.mark.parametrize(
    "rule", [{"top": 50}, {"budget": 300.0}, {"threshold": 0.1}], ids=["top", "budget", "threshold"]
)
def test_dask_scores_equal_local_scores(client, data, staged, trained, tmp_path, rule):
    out = tmp_path / "campaign"
    summary = score_on_dask(client, staged, out, trained["loaded"], **rule)
    local = score_base(data["tables"], None, trained["loaded"], **rule)
    assert summary.selected > 0
    _assert_same_scoring(out, summary, local)


def test_a_model_without_recorded_btyd_parameters_scores_as_locally(client, data, staged, tmp_path):
    """An older model records no BG/NBD parameters: the whole base's are fitted once, as one
    process fits them, not per bucket (that moved probabilities by up to 0.06)."""
    from conftest import fit_churn_model

    from churnlens.model import feature_config_of
    from churnlens.model_store import save_model

    tables = data["tables"]
    churn = fit_churn_model(tables, tables.data_end.normalize() - pd.Timedelta(days=89))
    assert "btyd_p_alive" in churn.features and feature_config_of(churn).btyd_params is None
    loaded = load_model(str(save_model(churn, tmp_path / "model", pip_requirements=["churnlens"])))
    out = tmp_path / "campaign"
    summary = score_on_dask(client, staged, out, loaded, top=50)
    local = score_base(tables, None, loaded, top=50)
    _assert_same_scoring(out, summary, local)


def test_dask_actions_and_contact_plan_equal_local(client, data, staged, trained, tmp_path):
    """Actions (capacities are global) and the stratified control group: the same as one process."""
    from dataclasses import replace

    from churnlens.config import DEFAULT_ACTION_RULES, ScoringSettings

    rules = (*DEFAULT_ACTION_RULES[:2], replace(DEFAULT_ACTION_RULES[2], capacity=5))
    settings = ScoringSettings(top=80, assign_actions=True, actions=rules, campaign_id="c1", holdout=0.3,
                               holdout_seed=4)  # fmt: skip
    out = tmp_path / "campaign"
    summary = score_on_dask(client, staged, out, trained["loaded"], settings)
    local = score_base(data["tables"], None, trained["loaded"], settings)
    assert summary.actions["over_capacity"]["win_back"] > 0 and summary.plan["control"] > 0
    _assert_same_scoring(out, summary, local)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "contacts.parquet"), local.contacts)


def test_cli_score_on_dask(client, data, trained, tmp_path):
    out = tmp_path / "campaign"
    result = CliRunner().invoke(
        app,
        ["score", str(data["dir"]), "--out", str(out), "--tracking-uri", trained["uri"], "--top", "30",
         "--engine", "dask", "--scheduler", client.scheduler.address, "--work-dir", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["selected"] == 30
    assert len(pd.read_parquet(out / "selection.parquet")) == 30
    assert "selected for contact" in result.output


# --------------------------------------------------------------------------- --target uplift

UPLIFT_TOML = (
    '[labels]\nmode = "non_contractual"\n[uplift]\nmin_treated = 40\nmin_control = 10\ntest_campaigns = 1\n'
    "rounds = 15\nthreads = 1\nmin_child_samples = 20\n"
)


@pytest.fixture(scope="module")
def uplift_setup(client, tmp_path_factory):
    """A small simulated program with three past campaigns, an uplift model (train-uplift, in a sqlite
    store: workers load it by URI), a churn model on the same features, and the tables staged."""
    from conftest import fit_churn_model

    from churnlens.config import FeatureConfig
    from churnlens.features import observed_until
    from churnlens.features.btyd import population_params
    from churnlens.model_store import save_model
    from churnlens.serving.loader import load_uplift_model
    from churnlens.simulate import CampaignSettings, simulate

    root = tmp_path_factory.mktemp("dask_uplift")
    sim = simulate(1_500, months=24, seed=5, campaigns=CampaignSettings(n_campaigns=3, size=350, holdout=0.3))
    write_tables(sim.tables, root / "data", fmt="parquet")
    tables, _ = load_tables(root / "data")
    # both models record the BG/NBD parameters of the data's end, as `train` does: a bucket
    # alone would fit other ones (the local/Dask equality needs the whole base's)
    params = population_params(tables, observed_until(tables), FeatureConfig())
    features = FeatureConfig(btyd_params=params.as_tuple())
    store = f"sqlite:///{root / 'mlflow.db'}"
    (root / "uplift.toml").write_text(UPLIFT_TOML + f"[features]\nbtyd_params = {list(params.as_tuple())!r}\n")
    result = CliRunner().invoke(
        app, ["train-uplift", str(root / "data"), "--config", str(root / "uplift.toml"), "--tracking-uri", store]
    )
    assert result.exit_code == 0, result.output
    churn = fit_churn_model(tables, tables.data_end.normalize() - pd.Timedelta(days=89), features=features)
    path = save_model(churn, root / "churn_model", pip_requirements=["churnlens"])
    return {
        "root": root, "dir": root / "data", "tables": tables, "store": store, "churn_path": path,
        "loaded": load_model(str(path)), "uplift": load_uplift_model(tracking_uri=store),
        "staged": stage_tables(client, root / "data", root / "work", n_buckets=BUCKETS),
    }  # fmt: skip


def _few_fit():
    """The default rules, each also asking ``points_balance >= 300``: most of the riskiest
    customers have no fitting action (on this base, a bound counting them spent 16 of 150)."""
    from dataclasses import replace

    from churnlens.config import DEFAULT_ACTION_RULES

    return {"actions": tuple(replace(r, eligible=f"({r.eligible}) and points_balance >= 300")
                             for r in DEFAULT_ACTION_RULES)}  # fmt: skip


@pytest.mark.parametrize(
    "options",
    [{"budget": 150.0, "campaign_id": "c7", "holdout": 0.25, "holdout_seed": 2}, {},
     {"budget": 150.0, **_few_fit()}],
    ids=["budget-and-plan", "no-budget", "budget-few-fit"],
)  # fmt: skip
def test_dask_uplift_campaign_equals_local(client, uplift_setup, tmp_path, options):
    """Same customers, actions, expected values, uplift reasons, risk list at the same budget,
    contact plan and summary as one process (timings aside); the risk list spends the budget
    to within its costliest action's cost, though customers without a fitting action are many."""
    from churnlens.config import ScoringSettings

    settings = ScoringSettings(target="uplift", **options)
    out = tmp_path / "campaign"
    summary = score_on_dask(
        client, uplift_setup["staged"], out, uplift_setup["loaded"], settings, uplift=uplift_setup["uplift"]
    )
    local = score_base(uplift_setup["tables"], None, uplift_setup["loaded"], settings, uplift=uplift_setup["uplift"])
    # not a vacuous comparison: customers chosen, uplift reasons given, both lists valued
    chosen = local.campaign[local.campaign["selected"]]
    assert summary.selected == len(chosen) > 5
    assert chosen["expected_incremental_value"].gt(0).all() and chosen["uplift_reason_1"].notna().any()
    assert summary.uplift["risk_list"]["contacted"] > 0 and summary.uplift["budget"] > 0
    _assert_same_scoring(out, summary, local)
    assert summary.uplift == local.summary.uplift
    if options.get("budget"):
        costliest = max(r.cost for r in settings.actions)
        assert options["budget"] - costliest < summary.uplift["risk_list"]["cost"] <= options["budget"]
    if options.get("campaign_id"):
        pd.testing.assert_frame_equal(pd.read_parquet(out / "contacts.parquet"), local.contacts)
        assert summary.plan["control"] > 0


def test_cli_score_target_uplift_on_dask(client, uplift_setup, tmp_path):
    out = tmp_path / "campaign"
    args = ["score", str(uplift_setup["dir"]), "--model", str(uplift_setup["churn_path"]), "--tracking-uri",
            uplift_setup["store"], "--target", "uplift", "--budget", "120", "--campaign-id", "c8"]  # fmt: skip
    result = CliRunner().invoke(
        app, [*args, "--out", str(out), "--engine", "dask", "--scheduler", client.scheduler.address,
              "--work-dir", str(tmp_path)],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    assert "risk list" in result.output
    local_out = tmp_path / "local" / "list.parquet"
    assert CliRunner().invoke(app, [*args, "--out", str(local_out)]).exit_code == 0
    summary = json.loads((out / "summary.json").read_text())
    expected = json.loads(local_out.with_name("list.summary.json").read_text())
    assert summary["target"] == "uplift" and summary["uplift"] == expected["uplift"]
    campaign = read_campaign(out)
    local = as_local_campaign(pd.read_parquet(local_out))
    pd.testing.assert_frame_equal(campaign, local, check_exact=True)
    contacts = pd.read_parquet(out / "contacts.parquet")
    assert (contacts["campaign_id"] == "c8").all()
    pd.testing.assert_frame_equal(contacts, pd.read_parquet(local_out.with_name("list.contacts.parquet")))
    assert len(pd.read_parquet(out / "selection.parquet")) == summary["selected"] > 0


def test_dask_uplift_refuses_what_it_cannot_merge_before_any_work(client, uplift_setup, tmp_path):
    from dataclasses import replace

    from churnlens.config import DEFAULT_ACTION_RULES, ScoringSettings
    from churnlens.errors import InputError

    free = tuple(replace(r, cost=0.0) if r.name == "win_back" else r for r in DEFAULT_ACTION_RULES)
    out = tmp_path / "campaign"
    with pytest.raises(InputError, match="cost 0"):
        score_on_dask(client, uplift_setup["staged"], out, uplift_setup["loaded"],
                      ScoringSettings(target="uplift", actions=free), uplift=uplift_setup["uplift"])  # fmt: skip
    with pytest.raises(InputError, match="needs an uplift model"):
        score_on_dask(client, uplift_setup["staged"], out, uplift_setup["loaded"], target="uplift")
    assert not out.exists()


# --------------------------------------------------------------------------- failures


def test_bad_input_on_a_worker_is_a_clear_cli_error(client, data, tmp_path):
    bad = tmp_path / "bad"
    tables = data["tables"]
    support = tables.support_interactions.copy()
    support.loc[support.index[5], "csat"] = 9.0
    write_tables(tables.replace(support_interactions=support), bad)
    out = tmp_path / "snap"
    result = CliRunner().invoke(
        app,
        ["features", str(bad), "--cutoff", "2024-01-01", "--out", str(out), "--engine", "dask",
         "--scheduler", client.scheduler.address, "--work-dir", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "support_interactions" in result.output and "csat" in result.output
    assert not out.exists() and not list(tmp_path.glob(".churnlens-work-*"))


def test_a_failing_scoring_run_leaves_no_output(client, data, trained, tmp_path):
    from churnlens.serving import IncompatibleModelError

    partial = tmp_path / "no_support"
    write_tables(data["tables"].replace(support_interactions=None), partial)
    staged_partial = stage_tables(client, partial, tmp_path / "work", n_buckets=2)
    out = tmp_path / "campaign"
    with pytest.raises(IncompatibleModelError, match="support"):
        score_on_dask(client, staged_partial, out, trained["loaded"], top=10)
    assert not out.exists()
    assert not list(tmp_path.glob(".campaign.tmp-*"))


def test_a_worker_killed_mid_run_is_retried_or_fails_without_complete_looking_output(
    client, data, staged, trained, tmp_path
):
    """Kill one worker process (SIGKILL) while it runs a scoring task: either the retried run
    equals the local run, or it fails with an error and leaves nothing at the output path."""
    pids = client.run(os.getpid)
    victim_address, victim = min(pids.items(), key=lambda kv: kv[1])
    out = tmp_path / "campaign"
    rule = {"top": 40}

    killed, finished = threading.Event(), threading.Event()

    def kill_when_busy() -> None:
        # kill at the first moment the victim is running a task of this run (not after a fixed
        # delay: a fast machine would finish first and nothing would be tested)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not finished.is_set():
            if client.processing(workers=[victim_address]).get(victim_address):
                os.kill(victim, signal.SIGKILL)
                killed.set()
                return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_when_busy, daemon=True)
    started = time.monotonic()
    killer.start()
    error: Exception | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            summary = score_on_dask(client, staged, out, trained["loaded"], **rule, explain_all=True)
    except Exception as exc:  # noqa: BLE001 - the error must be clear and the output absent
        error = exc
    finally:
        finished.set()
        killer.join(timeout=10)
    assert killed.is_set(), "the run ended before the worker was killed: nothing was tested"
    if error is not None:
        print(f"worker killed: the run failed after {time.monotonic() - started:.1f} s: {error!r}")
        assert str(error), "the failure has no message"
        assert not out.exists(), "a failed run left an output directory"
    else:
        print(f"worker killed: the run was retried and finished in {time.monotonic() - started:.1f} s")
        local = score_base(data["tables"], None, trained["loaded"], **rule, explain_all=True)
        _assert_same_scoring(out, summary, local)
    assert time.monotonic() - started < 150
    assert not list(tmp_path.glob(".campaign.tmp-*")), "scratch output left behind"
    # the nanny restarts the worker: the cluster is whole again
    client.wait_for_workers(2, timeout=CLUSTER_TIMEOUT_S)
    assert victim not in client.run(os.getpid).values()
