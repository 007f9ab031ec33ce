"""Shared fixtures: a small simulated data set on disk and a real MLflow tracking server on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

#: Small enough for a quick suite, large enough for a model to learn (mid-size churn rate).
SMALL_SIM = {"n_customers": 4000, "months": 18, "seed": 11}
SERVER_START_TIMEOUT_S = 90
SERVER_LIFETIME_S = 1800


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers 200, the process dies, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@pytest.fixture(scope="session")
def small_sim(tmp_path_factory):
    """A simulated loyalty program (all five tables + truth) written as Parquet."""
    from churnlens.data.io import write_tables
    from churnlens.features import training_cutoffs
    from churnlens.simulate import simulate, simulate_truth_table

    out = tmp_path_factory.mktemp("sim")
    sim = simulate(**SMALL_SIM)
    write_tables(sim.tables, out, fmt="parquet")
    cutoffs = training_cutoffs(sim.tables, horizon_days=90, step_days=30)[-2:]
    truth = simulate_truth_table(sim, cutoffs, horizon_days=90)
    truth.to_parquet(out / "truth.parquet")
    return out


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` (sqlite backend, artifacts proxied) on 127.0.0.1 for the session."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    cmd = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'server.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    log = open(root / "server.log", "w")
    # `timeout` bounds the server's life even if the session is killed before teardown.
    process = subprocess.Popen(
        ["timeout", str(SERVER_LIFETIME_S), *cmd],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", SERVER_START_TIMEOUT_S, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def fit_churn_model(tables, cutoff, *, rounds: int = 30, features=None):
    """A small LightGBM churn model on the snapshot of ``tables`` at ``cutoff`` (no MLflow run).

    ``features`` (a FeatureConfig) is the configuration it is trained with and records (as
    training does); None: the defaults, not recorded.
    """
    from dataclasses import asdict

    import lightgbm as lgb
    import pandas as pd

    from churnlens.config import FeatureConfig
    from churnlens.features import CATALOG_VERSION, build_labels, build_snapshot
    from churnlens.model import Calibrator, ChurnModel
    from churnlens.monitoring import reference_statistics

    snapshot = build_snapshot(tables, cutoff, features or FeatureConfig())
    labels = build_labels(tables, cutoff, snapshot.index, horizon_days=90)
    categorical = [c for c in snapshot.columns if isinstance(snapshot[c].dtype, pd.CategoricalDtype)]
    metadata = {
        "features": list(snapshot.columns),
        "categorical_levels": {c: [str(x) for x in snapshot[c].cat.categories] for c in categorical},
        "model_name": "churnlens",
        "catalog_version": CATALOG_VERSION,
        "label_mode": "non_contractual",
        "horizon_days": 90,
        "tables": sorted(tables.present()),
    }
    if features is not None:
        metadata["feature_config"] = asdict(features)
    model = ChurnModel.from_parts(None, Calibrator(method="platt", a=0.9, b=-0.1), metadata)
    params = {"objective": "binary", "num_leaves": 7, "min_data_in_leaf": 10, "verbose": -1, "seed": 1,
              "num_threads": 1, "deterministic": True}  # fmt: skip
    model.booster = lgb.train(
        params, lgb.Dataset(model.prepare(snapshot), label=labels.to_numpy()), num_boost_round=rounds
    )
    metadata["reference"] = reference_statistics(snapshot[model.features])
    return model


@pytest.fixture(scope="session")
def purchases_model(tmp_path_factory):
    """A small model trained on purchases only (any data set with a purchases table can be scored),
    saved as training logs it (models from code, SHA-256 manifest)."""
    import pandas as pd

    from churnlens.data.io import write_tables
    from churnlens.model_store import save_model
    from churnlens.simulate import simulate

    root = tmp_path_factory.mktemp("purchases_model")
    sim = simulate(n_customers=600, months=15, seed=8).tables
    # the required columns only: the features of any data set with a purchases table
    tables = sim.replace(
        purchases=sim.purchases[["customer_id", "timestamp", "amount"]],
        customers=None, program_events=None, support_interactions=None, cancellations=None,
    )  # fmt: skip
    write_tables(tables, root / "data")
    model = fit_churn_model(tables, tables.data_end.normalize() - pd.Timedelta(days=89))
    path = save_model(model, root / "model", pip_requirements=["churnlens"])
    return {"model": model, "path": path, "data": root / "data", "tables": tables}


@pytest.fixture(scope="session")
def postgres():
    """A throw-away PostgreSQL cluster on 127.0.0.1 for the session (``tests/postgres_cluster.py``):
    role ``churn`` with a password, database ``churn``; stopped and removed at the end."""
    from postgres_cluster import postgres_bindir, start_cluster

    if postgres_bindir() is None:
        reason = os.environ.get("CHURNLENS_POSTGRES_MISSING")
        if reason:  # .ci/run could not install it and said why
            pytest.skip(f"PostgreSQL is not installed: {reason}")
        pytest.fail("PostgreSQL is not installed (initdb not found): apt-get install postgresql")
    cluster = start_cluster(lifetime_s=SERVER_LIFETIME_S)
    try:
        yield cluster
    finally:
        cluster.stop()
