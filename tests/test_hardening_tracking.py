"""The embedded sqlite tracking store under concurrent processes (issue 11, row 1).

Real processes, a real sqlite store: its creation and migration run under a file lock, and
"read champion → compare → move alias" is one critical section, so the champion is always the
best model registered, whatever the order the processes finish in.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
CHURNLENS = str(Path(sys.executable).parent / "churnlens")
RUN_TIMEOUT_S = 400

#: One training process: wait for the start signal, open the store, log a model of a given
#: quality and register it with the promotion rule. Prints its test AUC and registry decision.
_WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import lightgbm as lgb, mlflow, numpy as np, pandas as pd
    from sklearn.metrics import roc_auc_score
    from churnlens.model import Calibrator, ChurnModel
    from churnlens.tracking import configure_mlflow
    from churnlens.training.mlflow_log import (
        ModelEvidence, OriginTest, ensure_experiment, log_churn_model, register_and_promote,
    )

    uri, noise, go = sys.argv[1], float(sys.argv[2]), Path(sys.argv[3])
    rng = np.random.default_rng(0)  # the same data and test set in every process
    X = pd.DataFrame(rng.normal(size=(1200, 3)), columns=["a", "b", "c"])
    y = (X["a"] + 0.5 * X["b"] + rng.normal(scale=0.5, size=1200) > 0).astype(int).to_numpy()
    train, test = slice(0, 800), slice(800, None)
    flip = np.random.default_rng(int(noise * 1000)).random(800) < noise  # worse models: noisier labels
    booster = lgb.train({"objective": "binary", "num_leaves": 7, "verbose": -1, "seed": 1},
                        lgb.Dataset(X.iloc[train], np.where(flip, 1 - y[train], y[train])), 20)
    model = ChurnModel.from_parts(booster, Calibrator(), {"features": ["a", "b", "c"], "categorical_levels": {}})
    auc = float(roc_auc_score(y[test], model.predict_proba(X.iloc[test])))
    deadline = time.monotonic() + 120
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    tracking = configure_mlflow(uri)
    with mlflow.start_run(experiment_id=ensure_experiment("concurrency", tracking)):
        model_uri = log_churn_model(model, X.head(3))
        # every process trained through the same day; the test origin is after it: a head-to-head
        evidence = ModelEvidence(pd.Timestamp("2023-12-31"), "backtest", auc, ("2024-01-01",))
        origin = OriginTest(pd.Timestamp("2024-01-01"), X.iloc[test], y[test], auc)
        decision = register_and_promote(model_uri, "churnlens", evidence=evidence, origins=[origin])
    print(json.dumps({"auc": auc, "version": decision.version, "alias": decision.alias}))
    """
)


def _env() -> dict[str, str]:
    # no store from the environment (another test may have set one): the default is under test
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    return {**env, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONWARNINGS": "ignore"}


def _run_workers(root: Path, uri: str, noises: list[float]) -> list[dict]:
    go = root / f"go-{len(noises)}-{time.monotonic_ns()}"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, uri, str(noise), str(go)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=root,
        )  # fmt: skip
        for noise in noises
    ]
    time.sleep(1.0)
    go.write_text("go")  # every process is importing or waiting: they hit the store together
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=RUN_TIMEOUT_S)
        assert worker.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _store_state(db: Path) -> dict:
    with sqlite3.connect(db) as con:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type = 'table'")]
        aliases = dict(con.execute("select alias, version from registered_model_aliases"))
        versions = [r[0] for r in con.execute("select version from model_versions order by version")]
    return {"tables": tables, "aliases": aliases, "versions": versions}


def _check_store(db: Path, results: list[dict]) -> None:
    """No migration debris; one version per process; the champion is the best model of all."""
    state = _store_state(db)
    assert not [t for t in state["tables"] if t.startswith("_alembic_tmp")], state["tables"]
    assert state["versions"] == list(range(1, len(results) + 1))
    by_version = {int(r["version"]): r["auc"] for r in results}
    best = max(by_version, key=by_version.get)
    assert state["aliases"]["champion"] == best, (state["aliases"], by_version)


def _models_cli_works(root: Path, *args: str) -> None:
    models = subprocess.run(
        [CHURNLENS, "models", *args], capture_output=True, text=True, env=_env(), cwd=root, timeout=RUN_TIMEOUT_S
    )
    assert models.returncode == 0, models.stderr


def test_four_then_two_concurrent_trainings_on_a_fresh_then_existing_store(tmp_path):
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    # the best models last in the list: they tend to finish last, where an unlocked compare loses them
    first = _run_workers(tmp_path, uri, [0.45, 0.30, 0.20, 0.10])
    _check_store(db, first)
    second = _run_workers(tmp_path, uri, [0.25, 0.0])
    _check_store(db, first + second)


def test_two_train_commands_at_once_on_a_fresh_default_store_then_four_trainings(tmp_path):
    """Row 1 as reported: ``churnlens train`` twice at once where no store exists yet (the default
    ``sqlite:///mlflow.db``); then four processes on that existing store."""
    data = tmp_path / "data"
    simulate = subprocess.run(
        [CHURNLENS, "simulate", "--out", str(data), "--customers", "400", "--months", "15", "--seed", "3"],
        capture_output=True, text=True, env=_env(), timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    assert simulate.returncode == 0, simulate.stderr
    trains = [
        subprocess.Popen([CHURNLENS, "train", str(data), "--seed", str(seed), "--model-name", "retail"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
                         cwd=tmp_path)  # fmt: skip
        for seed in (1, 2)
    ]
    for train in trains:
        _, err = train.communicate(timeout=RUN_TIMEOUT_S)
        assert train.returncode == 0, err[-3000:]
    db = tmp_path / "mlflow.db"
    state = _store_state(db)
    assert state["versions"] == [1, 2] and "champion" in state["aliases"]
    assert not [t for t in state["tables"] if t.startswith("_alembic_tmp")]
    _models_cli_works(tmp_path, "--model-name", "retail")
    results = _run_workers(tmp_path, f"sqlite:///{db}", [0.3, 0.1, 0.2, 0.0])  # model "churnlens"
    _check_registered(db, "churnlens", results)
    assert not [t for t in _store_state(db)["tables"] if t.startswith("_alembic_tmp")]


def _check_registered(db: Path, name: str, results: list[dict]) -> None:
    with sqlite3.connect(db) as con:
        versions = sorted(r[0] for r in con.execute("select version from model_versions where name = ?", (name,)))
        champion = con.execute(
            "select version from registered_model_aliases where name = ? and alias = 'champion'", (name,)
        ).fetchone()[0]
    assert versions == list(range(1, len(results) + 1))
    by_version = {int(r["version"]): r["auc"] for r in results}
    assert champion == max(by_version, key=by_version.get), by_version
