"""HTTP API against a real uvicorn server on 127.0.0.1 (``churnlens serve`` in a subprocess).

A small model is fitted directly with LightGBM on one snapshot of a small simulation and
saved as an MLflow pyfunc directory (the full training pipeline is tested elsewhere and
takes too long for this file); the server loads it by path. The server runs with
``CHURNLENS_API_TOKEN`` set and the shared client sends the token; the no-token case is
checked in process.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import lightgbm as lgb
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from conftest import free_port, wait_for_http

from churnlens.config import ScoringSettings
from churnlens.data.io import load_tables, write_tables
from churnlens.features import CATALOG_VERSION, build_labels, build_snapshot
from churnlens.model import Calibrator, ChurnModel
from churnlens.model_store import save_model
from churnlens.monitoring import reference_statistics
from churnlens.serving import load_model, score_base
from churnlens.serving.batch import model_feature_config

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning",
    "ignore::FutureWarning",
    "ignore:Using `httpx` with `starlette.testclient` is deprecated",
)

TRAIN_CUTOFF = pd.Timestamp("2023-11-01")
CUTOFF = "2024-02-01"
TOKEN = "s3cret-token"
MAX_CUSTOMERS = 40
MAX_EVENTS = 2000
MAX_BODY_MB = 2.0
SERVER_LIFETIME_S = 180


# --------------------------------------------------------------------------- fixtures


def _fit_model(tables) -> ChurnModel:
    from dataclasses import asdict

    from churnlens.config import FeatureConfig
    from churnlens.features.btyd import population_params

    snapshot = build_snapshot(tables, TRAIN_CUTOFF)
    # as train_model does: the BG/NBD parameters of the whole base go with the model, so a request's
    # few customers get the features the batch run gives them
    features = FeatureConfig(btyd_params=population_params(tables, TRAIN_CUTOFF, FeatureConfig()).as_tuple())
    labels = build_labels(tables, TRAIN_CUTOFF, snapshot.index, horizon_days=90)
    categorical = [c for c in snapshot.columns if isinstance(snapshot[c].dtype, pd.CategoricalDtype)]
    metadata = {
        "features": list(snapshot.columns),
        "categorical_levels": {c: [str(x) for x in snapshot[c].cat.categories] for c in categorical},
        "model_name": "churnlens",
        "catalog_version": CATALOG_VERSION,
        "label_mode": "non_contractual",
        "horizon_days": 90,
        "tables": sorted(tables.present()),
        "trained_at": "2026-11-25T10:00:00+00:00",
        "test_cutoff": "2023-12-01",
        "test_metrics": {"roc_auc": 0.75},
        "feature_config": asdict(features),
    }
    model = ChurnModel.from_parts(None, Calibrator(method="platt", a=0.9, b=-0.1), metadata)
    X = model.prepare(snapshot)
    params = {
        "objective": "binary",
        "num_leaves": 7,
        "min_data_in_leaf": 20,
        "verbose": -1,
        "seed": 1,
        "num_threads": 1,
        "deterministic": True,
    }
    model.booster = lgb.train(
        params, lgb.Dataset(X, label=labels.reindex(snapshot.index).to_numpy()), num_boost_round=40
    )
    model.metadata = model.metadata.replace(reference=reference_statistics(snapshot[model.features]))
    return model


def _start_server(root: Path, model_dir: Path, tracking: str) -> tuple[subprocess.Popen, Any, str]:
    """``churnlens serve`` in a subprocess on a free port of 127.0.0.1, with the API token set."""
    port = free_port()
    cmd = [
        "timeout",  # bounds the server's life even if the test session dies before teardown
        str(SERVER_LIFETIME_S),
        sys.executable,
        "-m",
        "churnlens.cli.main",
        "serve",
        "--model",
        str(model_dir),
        "--tracking-uri",
        tracking,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-customers",
        str(MAX_CUSTOMERS),
        "--max-events",
        str(MAX_EVENTS),
        "--max-body-mb",
        str(MAX_BODY_MB),
        "--log-level",
        "warning",
    ]
    log = open(root / "server.log", "w")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "CHURNLENS_API_TOKEN": TOKEN}
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env)
    return process, log, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Simulated data, a model saved as a pyfunc directory, a server on it, and batch scores."""
    from churnlens.simulate import simulate

    root = tmp_path_factory.mktemp("api")
    sim = simulate(n_customers=1000, months=15, seed=5)
    write_tables(sim.tables, root / "data", fmt="parquet")
    tables, _ = load_tables(root / "data")
    model = _fit_model(tables)
    model_dir = root / "model"
    # from code, as training logs it (no pickle), with the SHA-256 manifest serving checks
    save_model(model, model_dir, pip_requirements=["churnlens"])  # inferring requirements costs seconds
    # Create the sqlite store before the server opens it (MLflow runs its migrations once).
    tracking = f"sqlite:///{root / 'mlflow.db'}"
    loaded = load_model(str(model_dir), tracking_uri=tracking)
    process, log, url = _start_server(root, model_dir, tracking)
    try:
        batch = score_base(tables, CUTOFF, model, lang="fr", reasons=3, explain_all=True)  # while it boots
        wait_for_http(f"{url}/health", 120, process)
        yield {
            "root": root,
            "tables": tables,
            "model": model,
            "loaded": loaded,
            "model_dir": model_dir,
            "batch": batch,
            "tracking": tracking,
            "url": url,
        }
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def client(world):
    """A client of the real server that sends the right token."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=world["url"], timeout=30, headers=headers) as c:
        yield c


# --------------------------------------------------------------------------- helpers


def _plain(value):
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict]:
    columns = {c: frame[c].tolist() for c in frame.columns}
    return [{c: _plain(columns[c][i]) for c in columns} for i in range(len(frame))]


def _events_customer(tables, cid: str) -> dict:
    out: dict = {"customer_id": cid}
    for name in ("purchases", "program_events", "support_interactions", "cancellations"):
        table = getattr(tables, name)
        if table is not None:
            out[name] = _records(table[table["customer_id"] == cid].drop(columns="customer_id"))
    if tables.customers is not None:
        row = tables.customers[tables.customers["customer_id"] == cid].drop(columns="customer_id")
        out["attributes"] = _records(row)[0] if len(row) else {}
    return out


def _features_customer(snapshot: pd.DataFrame, cid: str) -> dict:
    row = snapshot.loc[[cid]]
    return {"customer_id": cid, "features": _records(row.astype(object))[0]}


def _small_customers(world, n: int) -> list[str]:
    """Scored customers with the fewest events (keeps bodies small), in a fixed order."""
    scored = world["batch"].campaign["customer_id"]
    counts = world["tables"].purchases["customer_id"].value_counts()
    return counts.reindex(scored).sort_values(kind="stable").index[:n].tolist()


def _assert_matches_batch(result: dict, world) -> None:
    batch = world["batch"]
    row = batch.campaign.set_index("customer_id").loc[result["customer_id"]]
    assert result["status"] == "scored"
    assert result["churn_probability"] == pytest.approx(row["churn_probability"], abs=1e-9, rel=0)
    assert result["risk_band"] == row["risk_band"]
    expected = batch.reasons[batch.reasons["customer_id"] == result["customer_id"]].sort_values("rank")
    assert [r["feature"] for r in result["reasons"]] == expected["feature"].tolist()
    assert [r["text"] for r in result["reasons"]] == expected["text"].tolist()
    np.testing.assert_allclose(
        [r["contribution"] for r in result["reasons"]], expected["contribution"], rtol=0, atol=1e-9
    )
    for got, (value, label) in zip(
        result["reasons"], expected[["value", "value_label"]].itertuples(index=False), strict=True
    ):
        if isinstance(value, float) and math.isfinite(value):
            assert got["value"] == pytest.approx(value, abs=1e-9)
        else:
            assert got["value"] == (None if pd.isna(label) else label)


def _detail(response) -> dict:
    body = response.json()
    assert set(body) == {"detail"}, body
    return body["detail"][0]


# --------------------------------------------------------------------------- service endpoints


def test_health_model_info_and_openapi(client, world):
    assert client.get("/health").json() == {"status": "ok", "model": {"name": "churnlens", "version": None}}
    info = client.get("/v1/model").json()
    meta = world["model"].metadata
    assert info["features"] == meta["features"] and info["horizon_days"] == 90
    assert info["label_mode"] == "non_contractual" and info["trained_at"] == "2026-11-25T10:00:00+00:00"
    assert info["test_metrics"] == {"roc_auc": 0.75} and info["risk_bands"] == {"high": 0.5, "medium": 0.2}
    spec = client.get("/openapi.json").json()
    assert {"/health", "/v1/model", "/v1/score"} <= set(spec["paths"])
    assert {"EventsCustomer", "FeaturesCustomer", "ScoreResponse", "ErrorResponse"} <= set(
        spec["components"]["schemas"]
    )
    assert spec["paths"]["/v1/score"]["post"]["responses"]["413"]["description"] == "Request body too large"
    assert client.get("/docs").status_code == 200


# --------------------------------------------------------------------------- scoring equals batch


def test_raw_events_answer_equals_batch_scoring(client, world):
    ids = _small_customers(world, 12)
    rejected = world["batch"].rejects.iloc[0]
    customers = [_events_customer(world["tables"], cid) for cid in ids]
    customers.insert(3, _events_customer(world["tables"], rejected["customer_id"]))
    response = client.post(
        "/v1/score", json={"cutoff": CUTOFF, "lang": "fr", "reasons": 3, "customers": customers}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {"name": "churnlens", "version": None} and body["cutoff"] == CUTOFF
    assert [r["customer_id"] for r in body["results"]] == [c["customer_id"] for c in customers]
    not_scored = body["results"].pop(3)
    assert not_scored == {
        "customer_id": rejected["customer_id"],
        "status": "not_scored",
        "churn_probability": None,
        "risk_band": None,
        "reasons": [],
        "reason": rejected["reason"],
    }
    for result in body["results"]:
        _assert_matches_batch(result, world)
    assert any(r["reasons"] for r in body["results"])
    # the pyfunc model agrees too
    snapshot = build_snapshot(world["tables"], CUTOFF, model_feature_config(world["model"])).loc[ids]
    expected = mlflow.pyfunc.load_model(str(world["model_dir"])).predict(snapshot)["churn_probability"]
    np.testing.assert_allclose([r["churn_probability"] for r in body["results"]], expected, rtol=0, atol=1e-9)


def test_feature_rows_answer_equals_batch_scoring_and_mixes_with_events(client, world):
    snapshot = build_snapshot(world["tables"], CUTOFF, model_feature_config(world["model"]))
    by_events = _small_customers(world, 1)[0]
    ids = [c for c in world["batch"].campaign["customer_id"].iloc[::40] if c != by_events][:10]
    customers = [_features_customer(snapshot, cid) for cid in ids]
    customers.append(_events_customer(world["tables"], by_events))
    response = client.post("/v1/score", json={"cutoff": CUTOFF, "lang": "fr", "customers": customers})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 11
    for result in results:
        _assert_matches_batch(result, world)
    assert {r["risk_band"] for r in results} >= {"low"}


def test_english_answer_and_reason_count(client, world):
    cid = world["batch"].reasons["customer_id"].iloc[0]
    snapshot = build_snapshot(world["tables"], CUTOFF, model_feature_config(world["model"]))
    body = {"customers": [_features_customer(snapshot, cid)], "reasons": 1}
    en = client.post("/v1/score", json=body).json()["results"][0]
    fr = client.post("/v1/score", json={**body, "lang": "fr"}).json()["results"][0]
    assert len(en["reasons"]) == 1 and en["reasons"][0]["feature"] == fr["reasons"][0]["feature"]
    assert en["reasons"][0]["text"] != fr["reasons"][0]["text"]


def test_customer_without_any_purchase_is_reported_not_failed(client):
    customers = [
        {"customer_id": "only-login", "program_events": [{"timestamp": "2024-01-05", "event_type": "login"}]},
        {"customer_id": "nothing"},
    ]
    response = client.post("/v1/score", json={"cutoff": CUTOFF, "customers": customers})
    assert response.status_code == 200, response.text
    assert [(r["status"], r["reason"]) for r in response.json()["results"]] == [
        ("not_scored", "no purchase before the cutoff"),
        ("not_scored", "no event in any table (listed in customers only)"),
    ]


def test_minimal_customer_scores_with_missing_optional_tables_filled_empty(client):
    customers = [
        {"customer_id": "new", "purchases": [{"timestamp": "2024-01-10", "amount": 20.0}]},
        {"customer_id": "late", "purchases": [{"timestamp": "2024-03-01T10:00:00+02:00", "amount": 5}]},
    ]
    results = client.post("/v1/score", json={"cutoff": CUTOFF, "customers": customers}).json()["results"]
    assert results[0]["status"] == "scored" and 0 <= results[0]["churn_probability"] <= 1
    assert results[1] == {
        "customer_id": "late",
        "status": "not_scored",
        "churn_probability": None,
        "risk_band": None,
        "reasons": [],
        "reason": "first event after the cutoff",
    }


def test_contacts_are_accepted_and_checked_like_files(client):
    contact = {"timestamp": "2024-01-05", "campaign_id": "c-01", "action": "win_back", "group": "treatment"}
    base = {"customer_id": "kept", "purchases": [{"timestamp": "2024-01-10", "amount": 20.0}]}
    body = {"cutoff": CUTOFF, "customers": [{**base, "contacts": [contact]}]}
    plain = client.post("/v1/score", json={"cutoff": CUTOFF, "customers": [base]}).json()["results"][0]
    with_contacts = client.post("/v1/score", json=body).json()["results"][0]
    assert with_contacts["status"] == "scored"
    # the served model has no contacts features: a past contact changes nothing for it
    assert with_contacts["churn_probability"] == plain["churn_probability"]
    bad = {"cutoff": CUTOFF, "customers": [{**base, "contacts": [{**contact, "group": "maybe"}]}]}
    response = client.post("/v1/score", json=bad)
    assert response.status_code == 422
    assert _detail(response)["loc"][:5] == ["body", "customers", 0, "contacts", 0]


# --------------------------------------------------------------------------- bad input: always 4xx JSON


def test_malformed_json_is_400(client):
    response = client.post(
        "/v1/score", content=b'{"customers": [', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert _detail(response)["type"] == "json_invalid"


def test_missing_fields_are_named(client):
    response = client.post("/v1/score", json={"customers": [{"purchases": [{"amount": 3}]}]})
    assert response.status_code == 422
    locs = [d["loc"] for d in response.json()["detail"]]
    assert ["body", "customers", 0, "customer_id"] in locs
    assert ["body", "customers", 0, "purchases", 0, "timestamp"] in locs
    response = client.post("/v1/score", json={"lang": "fr"})
    assert response.status_code == 422 and _detail(response)["loc"] == ["body", "customers"]


@pytest.mark.parametrize(
    ("event", "loc", "message"),
    [
        (
            {"support_interactions": [{"timestamp": "2024-01-02", "csat": 9}]},
            ["body", "customers", 1, "support_interactions", 0, "csat"],
            r"table 'support_interactions', column 'csat'",
        ),
        (
            {
                "purchases": [
                    {"timestamp": "2024-01-02", "amount": 1},
                    {"timestamp": "05/02/2024", "amount": 1},
                ]
            },
            ["body", "customers", 1, "purchases", 1, "timestamp"],
            r"table 'purchases', column 'timestamp': .*ISO 8601",
        ),
    ],
)
def test_bad_event_values_name_customer_table_row_and_column(client, event, loc, message):
    ok = {"customer_id": "a", "purchases": [{"timestamp": "2024-01-01", "amount": 2}]}
    bad = {"customer_id": "b", "purchases": [{"timestamp": "2024-01-01", "amount": 2}], **event}
    response = client.post("/v1/score", json={"cutoff": CUTOFF, "customers": [ok, bad]})
    assert response.status_code == 422, response.text
    detail = _detail(response)
    assert detail["loc"] == loc and detail["type"] == "data_validation"
    assert re.search(message, detail["msg"]), detail["msg"]


def test_feature_rows_are_checked_against_the_model(client, world):
    snapshot = build_snapshot(world["tables"], CUTOFF, model_feature_config(world["model"]))
    row = _features_customer(snapshot, snapshot.index[0])
    first = world["model"].features[0]
    missing = {"customer_id": "x", "features": {k: v for k, v in row["features"].items() if k != first}}
    response = client.post("/v1/score", json={"customers": [missing]})
    assert response.status_code == 422
    assert _detail(response)["loc"] == ["body", "customers", 0, "features", first]
    assert "1 model feature(s) missing" in _detail(response)["msg"]
    category = next(iter(world["model"].metadata["categorical_levels"]))
    wrong = {"customer_id": "x", "features": {**row["features"], category: 3}}
    response = client.post("/v1/score", json={"customers": [wrong]})
    assert (
        response.status_code == 422
        and _detail(response)["msg"] == f"feature {category!r} is a category: give a string"
    )
    text = {"customer_id": "x", "features": {**row["features"], first: "many"}}
    response = client.post("/v1/score", json={"customers": [text]})
    assert (
        response.status_code == 422
        and _detail(response)["msg"] == f"feature {first!r} must be a finite number"
    )


def test_too_many_customers_and_events_are_refused_naming_the_field(client):
    customers = [{"customer_id": f"c{i}"} for i in range(MAX_CUSTOMERS + 1)]
    response = client.post("/v1/score", json={"customers": customers})
    assert response.status_code == 422
    assert _detail(response) == {
        "loc": ["body", "customers"],
        "type": "too_long",
        "msg": f"at most {MAX_CUSTOMERS} customers per request, got {MAX_CUSTOMERS + 1}",
    }
    many = [{"timestamp": "2024-01-01", "amount": 1}] * (MAX_EVENTS + 1)
    response = client.post("/v1/score", json={"customers": [{"customer_id": "a", "purchases": many}]})
    assert response.status_code == 422
    assert _detail(response)["loc"] == ["body", "customers", 0, "purchases"]
    assert _detail(response)["msg"] == f"at most {MAX_EVENTS} events per customer, got {MAX_EVENTS + 1}"
    twice = [{"customer_id": "a"}, {"customer_id": "a"}]
    response = client.post("/v1/score", json={"customers": twice})
    assert response.status_code == 422 and _detail(response)["loc"] == ["body", "customers", 1, "customer_id"]


def test_oversize_body_is_413_before_parsing(client):
    size = int(MAX_BODY_MB * 1024 * 1024) + 10
    junk = b"[" + b" " * size + b"]"  # not even valid for the endpoint: refused for its size first
    response = client.post("/v1/score", content=junk, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert _detail(response) == {
        "loc": ["body"],
        "type": "body_too_large",
        "msg": f"request body larger than {size - 10} bytes",
    }

    def chunks():  # no Content-Length: counted while read
        for _ in range(size // 65536 + 1):
            yield b" " * 65536

    response = client.post("/v1/score", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


@pytest.mark.parametrize(
    "body",
    [
        [],
        "x",
        {"customers": "x"},
        {"customers": [1]},
        {"customers": []},
        {"customers": [{"customer_id": "a", "features": "x"}]},
        {"customers": [{"customer_id": "a", "features": {"days_since_last_purchase": 1}}], "lang": "de"},
        {"customers": [{"customer_id": "a"}], "cutoff": "someday"},
        {"customers": [{"customer_id": "a"}], "reasons": 0},
        {"customers": [{"customer_id": "a", "purchases": [{"timestamp": "2024-01-01", "amount": "x"}]}]},
        {"customers": [{"customer_id": "a", "purchases": [], "typo": 1}]},
        {
            "customers": [
                {
                    "customer_id": "a",
                    "attributes": {"customer_id": "b"},
                    "purchases": [{"timestamp": "2024-01-01", "amount": 1}],
                }
            ]
        },
        {"customers": [{"customer_id": "a", "purchases": [{"timestamp": "2024-01-01", "amount": 1e400}]}]},
    ],
)
def test_bad_input_is_never_a_500(client, body):
    response = client.post(
        "/v1/score", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text
    detail = _detail(response)
    assert detail["loc"][0] == "body" and detail["msg"]


# --------------------------------------------------------------------------- token


def test_bearer_token_is_required_when_set(world):
    body = {"customers": [{"customer_id": "nothing"}]}
    with httpx.Client(base_url=world["url"], timeout=30) as c:
        assert c.get("/health").status_code == 200  # liveness stays open
        for headers, why in (
            ({}, "missing bearer token"),
            ({"Authorization": "Bearer nope"}, "wrong bearer token"),
            ({"Authorization": f"Bearer {TOKEN}x"}, "wrong bearer token"),
            ({"Authorization": f"Basic {TOKEN}"}, "missing bearer token"),
        ):
            for response in (
                c.get("/v1/model", headers=headers),
                c.post("/v1/score", json=body, headers=headers),
            ):
                assert response.status_code == 401
                assert response.headers["www-authenticate"] == "Bearer"
                assert _detail(response) == {
                    "loc": ["header", "authorization"],
                    "msg": why,
                    "type": "unauthorized",
                }
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert c.get("/v1/model", headers=good).status_code == 200
        assert c.post("/v1/score", json=body, headers=good).json()["results"][0]["status"] == "not_scored"


def test_no_token_needed_when_the_variable_is_unset(world, monkeypatch):
    from fastapi.testclient import TestClient

    from churnlens.serving.api import create_app

    monkeypatch.delenv("CHURNLENS_API_TOKEN", raising=False)
    app = create_app(loaded=world["loaded"])
    with TestClient(app) as c:
        assert c.get("/v1/model").status_code == 200
        response = c.post("/v1/score", json={"customers": [{"customer_id": "nothing"}]})
        assert response.status_code == 200 and response.json()["results"][0]["status"] == "not_scored"
    monkeypatch.setenv("CHURNLENS_API_TOKEN", "")  # empty = unset
    with TestClient(create_app(loaded=world["loaded"])) as c:
        assert c.get("/v1/model").status_code == 200


def test_create_app_refuses_bad_limits(world):
    from churnlens.serving.api import create_app

    with pytest.raises(ValueError, match=r"max_customers must be a whole number >= 1, got 0"):
        create_app(str(world["model_dir"]), max_customers=0)
    with pytest.raises(ValueError, match=r"risk band bounds must satisfy"):
        create_app(str(world["model_dir"]), settings=ScoringSettings(high_risk=0.1, medium_risk=0.5))


def test_serve_cli_refuses_a_missing_model(world, tmp_path):
    from typer.testing import CliRunner

    from churnlens.cli.main import app

    missing = tmp_path / "nope"
    result = CliRunner().invoke(app, ["serve", "--model", str(missing), "--tracking-uri", world["tracking"]])
    assert result.exit_code == 2
    assert f"model path {missing} does not exist" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["serve", "--port", "70000"])
    assert result.exit_code == 2 and "--port must be between 1 and 65535, got 70000" in result.output


def test_server_log_has_no_traceback(world):
    text = (world["root"] / "server.log").read_text()
    assert "Traceback" not in text, text[-2000:]
