"""Writing campaigns to PostgreSQL: round trip, one transaction, atomic replace, a killed write, no password shown.

Against a real throw-away server (the ``postgres`` fixture of conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import adbc_driver_postgresql.dbapi as dbapi
import lightgbm as lgb
import pandas as pd
import pytest
from typer.testing import CliRunner

from churnlens.cli.main import app
from churnlens.config import ScoringSettings
from churnlens.errors import InputError
from churnlens.features import CATALOG_VERSION, build_labels, build_snapshot
from churnlens.model import Calibrator, ChurnModel
from churnlens.model_store import save_model
from churnlens.monitoring import reference_statistics
from churnlens.serving import score_base
from churnlens.simulate import simulate
from churnlens.warehouse import export_tables, write_campaign
from churnlens.warehouse.write import RUN_COLUMNS, read_campaign

#: How long a subprocess may take to reach the locked table (imports, scoring).
KILL_DEADLINE_S = 240


@pytest.fixture(scope="module")
def scoring(tmp_path_factory):
    """Simulated tables and a small model whose lists carry reasons, saved as training saves models."""
    root = tmp_path_factory.mktemp("warehouse_write")
    tables = simulate(n_customers=3000, months=18, seed=11).tables
    cutoff = tables.data_end.normalize() - pd.Timedelta(days=89)
    snapshot = build_snapshot(tables, cutoff)
    labels = build_labels(tables, cutoff, snapshot.index, horizon_days=90)
    categorical = [c for c in snapshot.columns if isinstance(snapshot[c].dtype, pd.CategoricalDtype)]
    metadata = {
        "features": list(snapshot.columns),
        "categorical_levels": {c: [str(x) for x in snapshot[c].cat.categories] for c in categorical},
        "model_name": "churnlens", "catalog_version": CATALOG_VERSION, "label_mode": "non_contractual",
        "horizon_days": 90, "tables": sorted(tables.present()), "reference": reference_statistics(snapshot),
    }  # fmt: skip
    model = ChurnModel.from_parts(None, Calibrator(method="platt", a=0.9, b=-0.1), metadata)
    params = {"objective": "binary", "num_leaves": 7, "min_data_in_leaf": 10, "verbose": -1, "seed": 1,
              "num_threads": 1, "deterministic": True}  # fmt: skip
    model.booster = lgb.train(params, lgb.Dataset(model.prepare(snapshot), label=labels.to_numpy()), 30)
    path = save_model(model, root / "model", pip_requirements=["churnlens"])
    return {"tables": tables, "model": model, "path": path, "root": root}


def score(scoring, **settings):
    return score_base(scoring["tables"], None, scoring["model"], ScoringSettings(**settings))


def query(postgres, sql: str, *params) -> pd.DataFrame:
    with dbapi.connect(postgres.uri(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql, params or None)
        return cur.fetch_arrow_table().to_pandas()


def out_uri(postgres, schema: str, prefix: str = "churn") -> str:
    return postgres.uri(schema, table=prefix)


def new_schema() -> str:
    return f"out_{uuid.uuid4().hex[:8]}"


def test_a_campaign_round_trips_through_the_database(postgres, scoring):
    schema = new_schema()
    result = score(scoring, top=200, assign_actions=True, campaign_id="spring", holdout=0.2)
    written = write_campaign(result, out_uri(postgres, schema))
    assert written.campaign_id == "spring" and postgres.password not in written.target
    assert written.rows == {
        f"{schema}.churn_campaign": len(result.campaign), f"{schema}.churn_reasons": len(result.reasons),
        f"{schema}.churn_rejects": len(result.rejects), f"{schema}.churn_drift": len(result.drift),
        f"{schema}.churn_contacts": len(result.contacts), f"{schema}.churn_runs": 1,
    }  # fmt: skip
    assert len(result.reasons) > 0 and len(result.contacts) > 0

    for part, frame in (("campaign", result.campaign), ("reasons", result.reasons), ("rejects", result.rejects),
                        ("contacts", result.contacts), ("drift", result.drift)):  # fmt: skip
        stored = query(postgres, f"SELECT * FROM {schema}.churn_{part}")
        assert list(stored.columns[:5]) == list(RUN_COLUMNS)
        assert set(stored["run_id"]) == {written.run_id} and set(stored["campaign_id"]) == {"spring"}
        assert set(stored["cutoff"]) == {pd.Timestamp(result.summary.cutoff)}
        assert stored["scored_at"].notna().all()
        keys = [c for c in ("customer_id", "rank", "feature") if c in frame.columns][:2]
        stored = stored.sort_values(keys).reset_index(drop=True)[[c for c in frame.columns if c != "campaign_id"]]
        expected = frame.sort_values(keys).reset_index(drop=True)[stored.columns]
        for column in stored.columns:  # values as written, whatever pandas dtype each side reads them as
            left = stored[column].astype("string" if stored[column].dtype == object else stored[column].dtype)
            right = expected[column]
            if pd.api.types.is_numeric_dtype(left.dtype) and pd.api.types.is_numeric_dtype(right.dtype):
                pd.testing.assert_series_equal(left.astype("float64"), right.astype("float64"), check_names=False)
            else:
                pd.testing.assert_series_equal(left.astype("string"), right.astype("string"), check_names=False)

    summary = json.loads(query(postgres, f"SELECT summary FROM {schema}.churn_runs")["summary"][0])
    assert summary["plan"]["campaign_id"] == "spring" and summary["scored"] == len(result.campaign)
    indexes = query(postgres, "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = $1", schema)
    for part in ("campaign", "rejects", "contacts", "reasons"):
        definition = indexes.loc[indexes["tablename"] == f"churn_{part}", "indexdef"].iloc[0]
        assert "UNIQUE INDEX" in definition and "(campaign_id, customer_id" in definition, definition

    scores, recorded = read_campaign(out_uri(postgres, schema), "spring")
    assert len(scores) == len(result.campaign) and recorded["plan"]["campaign_id"] == "spring"
    assert read_campaign(out_uri(postgres, schema), "autumn") is None


def test_writing_a_campaign_again_replaces_its_rows_and_leaves_the_others_alone(postgres, scoring):
    schema = new_schema()
    uri = out_uri(postgres, schema)
    plain = score(scoring, top=150)  # no actions, no plan: the first write creates narrower tables
    first = write_campaign(plain, uri)
    assert first.campaign_id == first.run_id  # a run without a campaign id is its own campaign
    a1 = write_campaign(score(scoring, top=200, assign_actions=True, campaign_id="A"), uri)
    b = write_campaign(score(scoring, top=100, assign_actions=True, campaign_id="B", holdout=0.3), uri)
    columns = set(query(postgres, f"SELECT * FROM {schema}.churn_campaign LIMIT 0").columns)
    assert {"action", "group"} <= columns  # added when the second run brought them
    before = query(postgres, f"SELECT * FROM {schema}.churn_campaign WHERE campaign_id = 'B' ORDER BY customer_id")

    a2 = write_campaign(score(scoring, top=50, assign_actions=True, campaign_id="A", holdout=0.5), uri)
    counts = query(postgres, f"SELECT campaign_id, run_id, count(*) AS n, sum(selected::int) AS selected "
                             f"FROM {schema}.churn_campaign GROUP BY 1, 2 ORDER BY 1")  # fmt: skip
    by_campaign = {row.campaign_id: (row.run_id, int(row.selected)) for row in counts.itertuples()}
    assert by_campaign["A"] == (a2.run_id, 50) and by_campaign["B"] == (b.run_id, 100)
    assert by_campaign[first.run_id] == (first.run_id, 150)
    assert a1.run_id not in set(query(postgres, f"SELECT run_id FROM {schema}.churn_contacts")["run_id"])
    after = query(postgres, f"SELECT * FROM {schema}.churn_campaign WHERE campaign_id = 'B' ORDER BY customer_id")
    pd.testing.assert_frame_equal(before, after)
    runs = query(postgres, f"SELECT campaign_id, run_id FROM {schema}.churn_runs ORDER BY campaign_id")
    assert dict(zip(runs["campaign_id"], runs["run_id"], strict=True)) == {
        "A": a2.run_id, "B": b.run_id, first.run_id: first.run_id
    }
    plan = query(postgres, f'SELECT "group", count(*) AS n FROM {schema}.churn_contacts WHERE campaign_id = $1 '
                           'GROUP BY 1', "A")  # fmt: skip
    assert set(plan["group"]) == {"treatment", "control"}

    postgres.execute(f"ALTER TABLE {schema}.churn_campaign ALTER COLUMN churn_probability TYPE boolean "
                     "USING churn_probability > 0.5")  # fmt: skip
    with pytest.raises(InputError, match="column 'churn_probability' of .*churn_campaign is boolean"):
        write_campaign(score(scoring, top=10, campaign_id="C"), uri)
    assert query(postgres, f"SELECT count(*) AS n FROM {schema}.churn_runs WHERE campaign_id = 'C'")["n"][0] == 0
    with pytest.raises(InputError, match="add &table=PREFIX"):
        write_campaign(plain, postgres.uri(schema))


def test_a_write_killed_midway_leaves_no_row_of_its_run(postgres, scoring, tmp_path):
    schema = new_schema()
    data = f"in_{uuid.uuid4().hex[:8]}"
    export_tables(scoring["tables"], postgres.uri(data))
    uri = out_uri(postgres, schema)
    old = write_campaign(score(scoring, top=100, assign_actions=True, campaign_id="A"), uri)
    old_counts = {p: int(query(postgres, f"SELECT count(*) AS n FROM {schema}.churn_{p}")["n"][0])
                  for p in ("campaign", "reasons", "rejects", "contacts", "drift", "runs")}  # fmt: skip

    holder = dbapi.connect(postgres.uri(user="admin"))  # holds the contact plan's table: the writer stops there
    cursor = holder.cursor()
    cursor.execute(f"LOCK TABLE {schema}.churn_contacts IN ACCESS EXCLUSIVE MODE")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "MLFLOW_DISABLE_TELEMETRY": "true"}  # fmt: skip
    command = [sys.executable, "-m", "churnlens.cli.main", "score", postgres.uri(data), "--out", uri, "--model",
               str(scoring["path"]), "--campaign-id", "A", "--actions", "--top", "400"]  # fmt: skip
    writer = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + KILL_DEADLINE_S
        waiting = pd.DataFrame()
        while waiting.empty:
            assert writer.poll() is None, writer.stdout.read().decode()
            assert time.monotonic() < deadline, "the writer never reached the locked table"
            time.sleep(0.2)
            waiting = query(postgres, "SELECT pid, query FROM pg_stat_activity WHERE application_name = 'churnlens' "
                                      "AND wait_event_type = 'Lock'")  # fmt: skip
        assert "churn_contacts" in waiting["query"][0]
        # mid-write: the list, reasons, rejects and drift of the new run are sent, in its open transaction
        held = query(postgres, "SELECT relation::regclass::text AS name FROM pg_locks WHERE pid = $1 "
                               "AND mode = 'RowExclusiveLock' AND granted", int(waiting["pid"][0]))  # fmt: skip
        assert {f"{schema}.churn_{p}" for p in ("campaign", "reasons", "rejects", "drift")} <= set(held["name"])
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
        holder.rollback()
        holder.close()
    deadline = time.monotonic() + 60
    while not query(postgres, "SELECT pid FROM pg_stat_activity WHERE application_name = 'churnlens'").empty:
        assert time.monotonic() < deadline, "the killed writer's session never ended"
        time.sleep(0.2)
    for part, n in old_counts.items():
        rows = query(postgres, f"SELECT run_id, count(*) AS n FROM {schema}.churn_{part} GROUP BY run_id")
        assert rows.empty and n == 0 or (list(rows["run_id"]) == [old.run_id] and int(rows["n"][0]) == n), part


def test_score_writes_to_the_database_and_never_shows_the_password(postgres, scoring, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    schema, data = new_schema(), f"in_{uuid.uuid4().hex[:8]}"
    export_tables(scoring["tables"], postgres.uri(data))
    result = CliRunner().invoke(app, ["score", postgres.uri(data), "--out", out_uri(postgres, schema, "crm"),
                                      "--model", str(scoring["path"]), "--campaign-id", "june", "--top", "25"])
    assert result.exit_code == 0, result.output
    assert postgres.password not in result.output
    assert f"postgresql://{postgres.user}:***@127.0.0.1" in result.output
    stored = query(postgres, f"SELECT * FROM {schema}.crm_runs")
    assert postgres.password not in stored.to_csv()
    summary = json.loads(stored["summary"][0])
    assert summary["data_source"] == postgres.uri(data).replace(postgres.password, "***")
    assert int(query(postgres, f"SELECT sum(selected::int) AS n FROM {schema}.crm_campaign")["n"][0]) == 25
    assert not list(Path(tmp_path).glob("*.csv"))  # nothing written beside: the database is the output

    bad = CliRunner().invoke(app, ["score", postgres.uri(data), "--out", out_uri(postgres, schema, "crm"),
                                   "--model", str(scoring["path"]), "--engine", "dask"])  # fmt: skip
    assert bad.exit_code == 2 and "write to a database with --engine local" in bad.output
    assert postgres.password not in bad.output
