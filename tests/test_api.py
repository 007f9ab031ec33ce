"""HTTP API against a real uvicorn server on 127.0.0.1 (``churnlens serve`` in a subprocess).

A small model is fitted directly with LightGBM on one snapshot of a small simulation and
saved as an MLflow pyfunc directory (the full training pipeline is tested elsewhere and
takes too long for this file); the server loads it by path. The server runs with
``CHURNLENS_API_TOKEN`` set and the shared client sends the token; the no-token case is
checked in process. Its limits come from the command line and from an ``[api]`` config (a
short read timeout, so the slow-body tests end quickly). What HTTP clients cannot do (stop in
the middle of a body, trickle it) is done on raw sockets, each with a timeout.
"""

from __future__ import annotations

import json
import math
import os
import re
import select
import socket
import subprocess
import sys
import time
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
MAX_BODY_BYTES = int(MAX_BODY_MB * 1024 * 1024)
MAX_EVENTS_PER_REQUEST = 3000
READ_TIMEOUT_S = 2.0
#: the [api] section of the server: the command line's --max-customers (40) wins over its 7
API_CONFIG = f"""
[api]
max_customers = 7
max_events_per_request = {MAX_EVENTS_PER_REQUEST}
read_timeout = {READ_TIMEOUT_S}
min_body_kib_per_s = 16
"""
SERVER_LIFETIME_S = 240


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
        "--config",
        str(root / "api.toml"),
        "--log-level",
        "warning",
    ]
    (root / "api.toml").write_text(API_CONFIG)
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


# --------------------------------------------------------------------------- raw HTTP (what clients cannot do)

SOCKET_TIMEOUT_S = 15.0


def _connect(world) -> socket.socket:
    """A TCP connection to the test server (127.0.0.1), every read and write bounded in time."""
    host, port = world["url"].removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _head(length: int | None, *, token: str | None = None, path: str = "/v1/score") -> bytes:
    """Request line and headers of a JSON POST (chunked when ``length`` is None)."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines.append("Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}")
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], dict]:
    """Status, headers and JSON body of one response (Content-Length framed, as uvicorn sends JSON)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "connection closed in the middle of the response"
        body += chunk
    return int(status_line.split()[1]), headers, json.loads(body)


def _closed_by_server(sock: socket.socket) -> bool:
    """True when the server has closed the connection (end of stream or reset)."""
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True



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
    responses = spec["paths"]["/v1/score"]["post"]["responses"]
    assert responses["413"]["description"] == "Request body too large"
    assert responses["408"]["description"] == "Request body arrived too slowly"
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
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


def test_each_customer_posted_alone_gets_the_batch_answer_exactly(world):
    """A customer posted alone takes the paths built for a few rows (features, model matrix,
    reason cells); the answer must be the batch's: the same probability (to the bit), band and
    reasons."""
    from churnlens.serving.api import Service
    from churnlens.serving.schemas import ScoreRequest

    service = Service(world["loaded"], ScoringSettings(), None)
    batch = world["batch"]
    campaign = batch.campaign.set_index("customer_id")
    ids = campaign.index.tolist()[::5][:80]
    assert len(ids) >= 60
    for cid in ids:
        customer = _events_customer(world["tables"], cid)
        request = ScoreRequest.model_validate({"cutoff": CUTOFF, "lang": "fr", "reasons": 3, "customers": [customer]})
        result = service.answer(request)["results"][0]
        assert result["status"] == "scored", result
        assert result["churn_probability"] == campaign.at[cid, "churn_probability"], cid
        assert result["risk_band"] == campaign.at[cid, "risk_band"]
        expected = batch.reasons[batch.reasons["customer_id"] == cid].sort_values("rank")
        assert [r["feature"] for r in result["reasons"]] == expected["feature"].tolist()
        assert [r["text"] for r in result["reasons"]] == expected["text"].tolist()
        # one row and the batch differ in the last bit of a contribution (LightGBM's sums; so on main too)
        assert [r["contribution"] for r in result["reasons"]] == pytest.approx(
            expected["contribution"].tolist(), abs=1e-12, rel=0
        )
        for got, (value, label) in zip(
            result["reasons"], expected[["value", "value_label"]].itertuples(index=False), strict=True
        ):
            assert got["value"] == (value if isinstance(value, float) and math.isfinite(value) else label)


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


def _snapshot_of_rows(customers: list[dict], model) -> pd.DataFrame:
    """The snapshot a request's feature rows stand for, built with pandas (the reference the fast path
    must equal): model features then the other columns in order of appearance, text columns where the
    model has a category or a customer sent text, float64 elsewhere."""
    names = dict.fromkeys(model.features)
    for c in customers:
        names.update(dict.fromkeys(c["features"]))
    levels = model.metadata.categorical_levels
    columns = {}
    for name in names:
        raw = [c["features"].get(name) for c in customers]
        if name in levels or any(isinstance(v, str) for v in raw):
            columns[name] = pd.array(raw, dtype="string")
        else:
            columns[name] = np.array([np.nan if v is None else float(v) for v in raw], dtype="float64")
    ids = pd.Index([c["customer_id"] for c in customers], dtype="string", name="customer_id")
    return pd.DataFrame(columns, index=ids)


def test_feature_rows_fast_path_equals_the_snapshot_path(world):
    """Feature rows are scored without a frame (model.matrix_of_records, score_matrix, explain_matrix):
    the same matrix, probabilities, bands and reasons, bit for bit, as the snapshot path batch scoring
    takes, also with missing values, unseen categories and extra columns of text or numbers."""
    from churnlens.serving.api import feature_rows
    from churnlens.serving.core import explain_matrix, explain_rows, score_matrix, score_rows
    from churnlens.serving.schemas import ScoreRequest

    model = world["model"]
    snapshot = build_snapshot(world["tables"], CUTOFF, model_feature_config(model))
    ids = snapshot.index[:: max(len(snapshot) // 150, 1)].tolist()
    customers = [_features_customer(snapshot, cid) for cid in ids]
    levels = model.metadata.categorical_levels
    numeric = [f for f in model.features if f not in levels]
    categorical = next(iter(levels))
    customers[0]["features"][categorical] = "never-seen-level"
    customers[1]["features"][categorical] = None
    customers[2]["features"].update({numeric[0]: None, numeric[1]: 7, "note": "vip"})
    customers[3]["features"].update({"note": 3.5, "extra_number": 12})
    customers[4]["features"]["extra_number"] = None
    settings = ScoringSettings().override(lang="fr", reasons=3)
    request = ScoreRequest.model_validate({"customers": customers})
    given = feature_rows(list(enumerate(request.customers)), model=model)
    reference = _snapshot_of_rows(customers, model)

    matrix = model.matrix_of_records(given.rows)
    np.testing.assert_array_equal(matrix, model.matrix(reference))
    np.testing.assert_array_equal(matrix[5:], model.matrix(snapshot.loc[ids[5:]]))  # untouched rows: the batch ones
    column = model.features.index(categorical)
    assert np.isnan(matrix[0, column]) and np.isnan(matrix[1, column])

    proba, bands = score_matrix(model, matrix, settings)
    scored = score_rows(model, reference, settings)
    np.testing.assert_array_equal(proba, scored["churn_probability"].to_numpy())
    assert bands.tolist() == scored["risk_band"].tolist()

    found = explain_matrix(model, matrix, given.rows_of, settings)
    expected = explain_rows(model, reference, settings)
    assert len(found) == len(expected) > 0
    assert [given.ids[r] for r in found.row] == expected["customer_id"].tolist()
    assert found.rank.tolist() == expected["rank"].tolist()
    assert found.feature.tolist() == expected["feature"].tolist()
    assert found.concept.tolist() == expected["concept"].tolist()
    assert found.text.tolist() == expected["text"].tolist()
    assert [None if v is None else v for v in found.value_label.tolist()] == [
        None if v is pd.NA else v for v in expected["value_label"].tolist()
    ]
    np.testing.assert_array_equal(found.value, expected["value"].to_numpy())
    np.testing.assert_array_equal(found.contribution, expected["contribution"].to_numpy())
    np.testing.assert_array_equal(found.effect, expected["effect"].to_numpy())
    assert found.hidden == expected.attrs["hidden"]


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


# --------------------------------------------------------------------------- token before body, size, pace (issue 11)


@pytest.mark.parametrize("declared", [MAX_BODY_BYTES - 4096, 32 * 1024 * 1024], ids=["within-limit", "32MB"])
def test_tokenless_post_is_refused_before_its_body_is_read(world, declared):
    """Issue 11 row 11: a POST without a token gets 401 after its headers alone.

    The client sends the headers and 4 KB of a large body, then waits: the answer comes while
    nearly all of the body is still unsent, so the server did not wait for (read) it; and it
    then closes the connection rather than draining the rest. A 32 MB body is refused for its
    token, not its size: the token comes first.
    """
    with _connect(world) as sock:
        sock.sendall(_head(declared) + b" " * 4096)
        status, headers, body = _read_response(sock)
        assert status == 401, body
        assert body == {"detail": [{"loc": ["header", "authorization"], "msg": "missing bearer token",
                                    "type": "unauthorized"}]}  # fmt: skip
        assert headers["www-authenticate"] == "Bearer" and headers["connection"] == "close"
        assert _closed_by_server(sock)
    with _connect(world) as sock:  # a wrong token: the same, compared before the body
        sock.sendall(_head(declared, token="nope") + b" " * 4096)
        status, headers, body = _read_response(sock)
        assert status == 401 and body["detail"][0]["msg"] == "wrong bearer token"
        assert _closed_by_server(sock)


def test_declared_oversize_body_is_413_before_a_byte_of_it_is_sent(world):
    with _connect(world) as sock:
        sock.sendall(_head(MAX_BODY_BYTES + 1, token=TOKEN))
        status, headers, body = _read_response(sock)
        assert status == 413 and headers["connection"] == "close"
        assert body["detail"][0]["type"] == "body_too_large"
        assert _closed_by_server(sock)


def test_chunked_oversize_body_is_413_once_past_the_limit(world):
    piece = b" " * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    with _connect(world) as sock:
        sock.sendall(_head(None, token=TOKEN))
        sent = 0
        for _ in range(MAX_BODY_BYTES // len(piece) + 8):  # a little past the limit, never the end
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        status, headers, body = _read_response(sock)
    assert status == 413 and body["detail"][0]["msg"] == f"request body larger than {MAX_BODY_BYTES} bytes"
    assert sent <= MAX_BODY_BYTES + 8 * len(piece)


def _trickle(sock: socket.socket, *, piece: bytes, every_s: float, at_most: int) -> int:
    """Send ``piece`` every ``every_s`` seconds until the server answers (at most ``at_most`` pieces)."""
    sent = 0
    for _ in range(at_most):
        readable, _, _ = select.select([sock], [], [], every_s)
        if readable:
            break
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(piece)
    return sent


def test_a_body_arriving_too_slowly_is_dropped(world):
    """Issue 11 item 7c: 10 bytes every 0.2 s (50 B/s, far below 16 KiB/s) is dropped with 408."""
    declared = 20_000
    with _connect(world) as sock:
        sock.sendall(_head(declared, token=TOKEN) + b"[")
        started = time.monotonic()
        sent = _trickle(sock, piece=b" " * 10, every_s=0.2, at_most=int(6 * READ_TIMEOUT_S / 0.2))
        status, headers, body = _read_response(sock)
        waited = time.monotonic() - started
        assert status == 408, body
        assert headers["connection"] == "close" and _closed_by_server(sock)
    detail = body["detail"][0]
    assert detail["loc"] == ["body"] and detail["type"] == "body_timeout"
    assert f"read timeout {READ_TIMEOUT_S:g} s, at least 16 KiB/s" in detail["msg"]
    assert sent < declared - 1  # dropped before the body was complete
    assert waited < SOCKET_TIMEOUT_S  # the pace was judged, not the socket's own timeout


def test_headers_arriving_too_slowly_are_dropped(world):
    """A request line then a header byte every 0.3 s (a slowloris) is answered 408 and closed."""
    head = _head(2, token=TOKEN).removesuffix(b"\r\n") + b"X-Slow: "  # headers never finished
    with _connect(world) as sock:
        started = time.monotonic()
        sock.sendall(head)
        sent = _trickle(sock, piece=b"x", every_s=0.3, at_most=int(6 * READ_TIMEOUT_S / 0.3))
        status, headers, body = _read_response(sock)
        waited = time.monotonic() - started
        assert status == 408 and headers["connection"] == "close" and _closed_by_server(sock)
    assert body["detail"][0]["type"] == "header_timeout" and body["detail"][0]["loc"] == ["headers"]
    assert READ_TIMEOUT_S - 0.5 < waited < SOCKET_TIMEOUT_S
    assert 0 < sent < 6 * READ_TIMEOUT_S / 0.3  # it kept sending, and was cut off before it stopped


def test_a_connection_that_sends_nothing_is_closed(world):
    with _connect(world) as sock:
        started = time.monotonic()
        status, _, body = _read_response(sock)
        assert status == 408 and body["detail"][0]["type"] == "header_timeout" and _closed_by_server(sock)
    assert READ_TIMEOUT_S - 0.5 < time.monotonic() - started < SOCKET_TIMEOUT_S


def test_a_kept_alive_connection_serves_requests_past_the_header_deadline(world):
    """The deadline is per request: a connection that keeps asking in time is never dropped."""
    payload = json.dumps({"customers": [{"customer_id": "nothing"}]}).encode()
    with _connect(world) as sock:
        deadline = time.monotonic() + 1.5 * READ_TIMEOUT_S
        answered = 0
        while time.monotonic() < deadline:
            sock.sendall(_head(len(payload), token=TOKEN) + payload)
            status, _, body = _read_response(sock)
            assert status == 200 and body["results"][0]["status"] == "not_scored"
            answered += 1
            time.sleep(0.2)
    assert answered >= 5


def test_a_body_that_stops_arriving_is_dropped(world):
    with _connect(world) as sock:
        sock.sendall(_head(100, token=TOKEN) + b'{"customers": ')  # then nothing
        status, headers, body = _read_response(sock)
    assert status == 408 and body["detail"][0]["type"] == "body_timeout"


def test_a_body_sent_in_pieces_at_a_normal_pace_is_served(world):
    payload = json.dumps({"customers": [{"customer_id": "nothing"}]}).encode()
    with _connect(world) as sock:
        sock.sendall(_head(len(payload), token=TOKEN))
        for i in range(0, len(payload), 8):
            sock.sendall(payload[i : i + 8])
            time.sleep(0.01)
        status, _, body = _read_response(sock)
    assert status == 200 and body["results"][0]["status"] == "not_scored"


# --------------------------------------------------------------------------- strict numbers and booleans (#11 row 12)

_PURCHASE = {"timestamp": "2024-01-10", "amount": 20.0}


@pytest.mark.parametrize(
    ("customer", "loc", "kind"),
    [
        ({"purchases": [{**_PURCHASE, "amount": "12.5"}]}, ["purchases", 0, "amount"], "float_type"),
        ({"purchases": [{**_PURCHASE, "amount": True}]}, ["purchases", 0, "amount"], "float_type"),
        ({"purchases": [_PURCHASE, {**_PURCHASE, "quantity": "2"}]}, ["purchases", 1, "quantity"], "float_type"),
        ({"purchases": [{**_PURCHASE, "amount": None}]}, ["purchases", 0, "amount"], "float_type"),
        (
            {"program_events": [{"timestamp": "2024-01-05", "event_type": "points_earned", "points": "10"}]},
            ["program_events", 0, "points"],
            "float_type",
        ),
        (
            {"support_interactions": [{"timestamp": "2024-01-05", "resolved": "true"}]},
            ["support_interactions", 0, "resolved"],
            "bool_type",
        ),
        (
            {"support_interactions": [{"timestamp": "2024-01-05", "complaint": 1}]},
            ["support_interactions", 0, "complaint"],
            "bool_type",
        ),
        (
            {"support_interactions": [{"timestamp": "2024-01-05", "csat": False}]},
            ["support_interactions", 0, "csat"],
            "float_type",
        ),
        (
            {"contacts": [{"timestamp": "2024-01-05", "campaign_id": "c", "action": "a", "group": "control",
                           "cost": "1.5"}]},
            ["contacts", 0, "cost"],
            "float_type",
        ),
    ],
)
def test_strings_and_booleans_are_not_numbers(client, customer, loc, kind):
    body = {"cutoff": CUTOFF, "customers": [{"customer_id": "ok", "purchases": [_PURCHASE]},
                                            {"customer_id": "x", "purchases": [_PURCHASE], **customer}]}  # fmt: skip
    response = client.post("/v1/score", json=body)
    assert response.status_code == 422, response.text
    assert {"loc": ["body", "customers", 1, *loc], "type": kind} in [
        {"loc": d["loc"], "type": d["type"]} for d in response.json()["detail"]
    ]


def test_integers_are_numbers_and_strict_values_score(client):
    as_int = {"customer_id": "x", "purchases": [{"timestamp": "2024-01-10", "amount": 20}]}
    as_float = {"customer_id": "x", "purchases": [{"timestamp": "2024-01-10", "amount": 20.0}]}
    one = client.post("/v1/score", json={"cutoff": CUTOFF, "customers": [as_int]})
    other = client.post("/v1/score", json={"cutoff": CUTOFF, "customers": [as_float]})
    assert one.status_code == 200 and one.json() == other.json()
    support = {"timestamp": "2024-01-05", "resolved": False, "complaint": True, "csat": 2}
    with_support = {**as_int, "support_interactions": [support]}
    response = client.post("/v1/score", json={"cutoff": CUTOFF, "customers": [with_support]})
    assert response.status_code == 200, response.text


def test_request_options_are_strict_too(client):
    body = {"customers": [{"customer_id": "nothing"}]}
    response = client.post("/v1/score", json={**body, "reasons": "3"})
    assert response.status_code == 422 and _detail(response)["loc"] == ["body", "reasons"]
    response = client.post("/v1/score", json={**body, "reasons": True})
    assert response.status_code == 422 and _detail(response)["loc"] == ["body", "reasons"]


def test_feature_rows_are_strict(client, world):
    snapshot = build_snapshot(world["tables"], CUTOFF)
    row = _features_customer(snapshot, snapshot.index[0])
    numeric = next(f for f in world["model"].features if f not in world["model"].metadata["categorical_levels"])
    for value in ("12.5", True):
        bad = {"customer_id": "x", "features": {**row["features"], numeric: value}}
        response = client.post("/v1/score", json={"customers": [bad]})
        assert response.status_code == 422, response.text
        assert _detail(response)["loc"] == ["body", "customers", 0, "features", numeric]


def test_too_many_events_in_one_request_are_refused(client):
    """Each customer within its own limit, the request past its total: 422 before any work."""
    each = MAX_EVENTS_PER_REQUEST // 2 + 1
    assert each <= MAX_EVENTS
    events = [{"timestamp": "2024-01-01", "amount": 1}] * each
    customers = [{"customer_id": "a", "purchases": events}, {"customer_id": "b", "purchases": events}]
    response = client.post("/v1/score", json={"customers": customers})
    assert response.status_code == 422
    assert _detail(response) == {
        "loc": ["body", "customers"],
        "type": "too_long",
        "msg": f"at most {MAX_EVENTS_PER_REQUEST} events per request (all customers), got {2 * each}",
    }


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
    from churnlens.config import ApiSettings
    from churnlens.serving.api import create_app

    with pytest.raises(ValueError, match=r"max_customers must be a whole number >= 1, got 0"):
        create_app(str(world["model_dir"]), api=ApiSettings(max_customers=0))
    with pytest.raises(ValueError, match=r"risk band bounds must satisfy"):
        create_app(str(world["model_dir"]), settings=ScoringSettings(high_risk=0.1, medium_risk=0.5))


def test_worker_processes_get_the_same_limits(world, monkeypatch):
    """``serve --workers N``: each worker rebuilds the app from JSON options, [api] limits included."""
    from dataclasses import asdict

    from churnlens.config import ApiSettings
    from churnlens.serving.api import OPTIONS_ENV, app_from_environment

    api = ApiSettings(max_customers=3, max_events_per_request=50, read_timeout=1.5, min_body_kib_per_s=2)
    options = {"model_uri": str(world["model_dir"]), "tracking_uri": world["tracking"], "api": asdict(api)}
    monkeypatch.setenv(OPTIONS_ENV, json.dumps(options))
    try:
        assert app_from_environment().state.service.api == api
    finally:
        import gc

        gc.unfreeze()  # the worker settled its heap; this test process goes on


def test_workers_share_the_cpus_for_their_thread_pools(monkeypatch):
    """``serve --workers N``: each worker's LightGBM (OpenMP) and BLAS pools get cpus // N threads
    (at least 1), unless the variables are already set."""
    from churnlens.cli.serve_cmd import THREAD_VARIABLES, pin_threads

    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert pin_threads(2) == 1 and {os.environ[n] for n in THREAD_VARIABLES} == {"1"}
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert pin_threads(8) == 1
    assert os.environ["OMP_NUM_THREADS"] == "2" and os.environ["OPENBLAS_NUM_THREADS"] == "1"


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


# --------------------------------------------------------------------------- schemathesis (issue 11 item 9b)

#: Examples per (operation, mode, token sent): the GET endpoints take no input (a few examples,
#: positive only); /v1/score gets the rest, valid and invalid bodies, and some without the token.
FUZZ_EXAMPLES = {
    ("/v1/score", "positive", True): 150,
    ("/v1/score", "negative", True): 150,
    ("/v1/score", "negative", False): 20,
    ("/v1/model", "positive", True): 5,
    ("/v1/model", "positive", False): 5,
    ("/health", "positive", False): 5,
    ("/ready", "positive", False): 5,
}


def test_schemathesis_finds_no_server_error(world):
    """Requests generated from ``/openapi.json`` (valid and invalid bodies, with and without the
    token) get a 2xx or a 4xx with the error shape, never a 5xx; bounded: a fixed number of
    examples, derandomized."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(f"{world['url']}/openapi.json", timeout=30)
    operations = {op.path: op for op in (result.ok() for result in schema.get_all_operations())}
    assert set(operations) == {path for path, _, _ in FUZZ_EXAMPLES}
    seen: dict[int, int] = {}
    for (path, mode, with_token), examples in FUZZ_EXAMPLES.items():
        headers = {"Authorization": f"Bearer {TOKEN}"} if with_token else {}
        # check() runs right here, in this iteration: binding `headers` late is what we want

        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operations[path].as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
        def check(case):
            response = case.call(base_url=world["url"], headers=dict(headers), timeout=30)  # noqa: B023
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
            if response.status_code >= 400:
                assert set(response.json()) == {"detail"}, response.text[:500]

        check()
    assert sum(seen.values()) >= 300, seen
    assert {200, 401, 422} <= set(seen), seen  # the fuzzer got past the token and the schema too
