"""``churnlens run``: the retraining rule, and scheduled runs from an empty registry against a real PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import adbc_driver_postgresql.dbapi as dbapi
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from churnlens.cli.main import app
from churnlens.data.tables import EVENT_TABLES
from churnlens.pipeline import (
    EXIT_BAD_INPUT,
    EXIT_BUSY,
    EXIT_DONE,
    EXIT_FAILURE,
    EXIT_NOTHING_TO_DO,
    ModelState,
    retrain_decision,
)
from churnlens.pipeline.state import pipeline_lock, run_log_name
from churnlens.simulate import simulate
from churnlens.warehouse import export_tables
from churnlens.warehouse.write import arrow_column

D = pd.Timestamp


# --------------------------------------------------------------------------- the rule


def decide(champion, newest=None, *, through="2024-06-30", as_of="2024-07-01", every=None, min_days=30):
    return retrain_decision(champion, newest, labels_through=D(through), as_of=D(as_of), retrain_every_days=every,
                            min_new_label_days=min_days)  # fmt: skip


def campaigns_in(postgres, table: str) -> set[str]:
    with dbapi.connect(postgres.uri()) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT DISTINCT campaign_id FROM {table}")
        return {row[0] for row in cur.fetchall()}


def test_the_retraining_rule():
    assert decide(None).retrain and "no champion" in decide(None).reason
    old = ModelState("3", None, D("2024-01-01"))
    assert decide(old).retrain and "records no trained-through day" in decide(old).reason
    recent = ModelState("4", D("2024-06-10"), D("2024-06-11"))
    assert not decide(recent).retrain and "20 new day(s), retrain at 30" in decide(recent).reason
    assert decide(recent, through="2024-07-10").retrain
    assert "30 days of new labels matured since 2024-06-10" in decide(recent, through="2024-07-10").reason
    assert decide(recent, min_days=20).retrain
    assert decide(recent, every=20).retrain and "is 20 days old" in decide(recent, every=20).reason
    assert not decide(recent, every=21).retrain
    # a challenger trained on the newer labels counts: the same labels are not trained on again
    challenger = ModelState("5", D("2024-07-09"), D("2024-07-10"))
    assert not decide(recent, challenger, through="2024-07-10").retrain


def test_run_logs_sort_in_start_order_within_one_second():
    # a quick "nothing to do" and the next run can start in the same second; random run ids must not reorder them
    second = D("2024-01-01 06:00:00", tz="UTC")
    starts = [second + pd.Timedelta(microseconds=m) for m in (0, 7, 999_999)]
    for ids in (["ffffffff", "00000000", "88888888"], ["00000000", "ffffffff", "11111111"]):
        names = [run_log_name(t, run_id) for t, run_id in zip(starts, ids, strict=True)]
        assert sorted(names) == names


# --------------------------------------------------------------------------- scheduled runs


def events_before(tables, day: pd.Timestamp):
    kept = {n: f[f["timestamp"] < day].reset_index(drop=True) for n, f in tables.present().items() if n in EVENT_TABLES}
    return tables.replace(**kept)


def append(postgres, schema: str, frames: dict[str, pd.DataFrame]) -> None:
    """What the warehouse's loading does between two runs: new rows appended to the tables."""
    with dbapi.connect(postgres.uri()) as conn, conn.cursor() as cur:
        for name, frame in frames.items():
            data = pa.table({str(c): arrow_column(frame[c]) for c in frame.columns})
            cur.adbc_ingest(name, data, mode="append", db_schema_name=schema)
        conn.commit()


def run(config: Path, day: pd.Timestamp) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--as-of", str(day.date())])
    return result.exit_code, result.output


def last_log(state: Path) -> dict:
    return json.loads(sorted((state / "runs").glob("*.json"))[-1].read_text())


@pytest.mark.slow
def test_scheduled_runs_from_an_empty_registry_retrain_when_labels_mature(postgres, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sim = simulate(n_customers=3000, months=24, seed=5).tables
    d1 = D("2024-01-01")
    d2, d3 = d1 + pd.Timedelta(days=7), d1 + pd.Timedelta(days=91)
    shop, crm = "shop", "crm"
    postgres.execute(f"CREATE SCHEMA {shop} AUTHORIZATION {postgres.user}")
    export_tables(events_before(sim, d1), postgres.uri(shop))
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = tmp_path / "pipeline.toml"
    config.write_text(f"""
[pipeline]
data = "{postgres.uri(shop)}"
outputs = ["{postgres.uri(crm, table='churn')}", "exports/churn-{{date}}.parquet"]
tracking_uri = "{tracking}"
state_dir = "state"
min_new_label_days = 30

[serving]
top = 300
assign_actions = true
holdout = 0.2

[training]
threads = 1
calibration = "platt"
linear_base = "none"

[training.lgbm]
max_rounds = 60
""")
    state = tmp_path / "state"

    # 1. an empty registry: train, score, write both outputs
    code, output = run(config, d1)
    assert code == EXIT_DONE, output
    log = last_log(state)
    assert [s["step"] for s in log["steps"]] == ["validate", "train", "score", "write", "report"]
    assert log["steps"][1]["status"] == "ok" and "no champion registered yet" in log["steps"][1]["line"]
    assert log["status"] == "done" and log["exit_code"] == 0
    for step in ("validate", "train", "score", "write", "report"):
        assert sum(line.startswith(step) for line in output.splitlines()) == 1, output  # one line per step
    assert (tmp_path / "exports" / "churn-2024-01-01.parquet").is_file()

    # 2. the same day again, nothing new: nothing to do
    code, output = run(config, d1)
    assert code == EXIT_NOTHING_TO_DO, output
    assert last_log(state)["status"] == "nothing to do"

    # 3. another run holds the lock
    with pipeline_lock(state) as held:
        assert held
        code, output = run(config, d2)
    assert code == EXIT_BUSY and "another run holds" in output

    # 4. a week of new events: scored, not retrained (7 days of new labels < 30)
    append(postgres, shop, {n: f[(f["timestamp"] >= d1) & (f["timestamp"] < d2)]
                            for n, f in sim.present().items() if n in EVENT_TABLES})  # fmt: skip
    # a campaign file that cannot be written (a folder in its place): a failure, and no row in the database
    blocker = tmp_path / "exports" / "churn-2024-01-08.summary.json"
    blocker.mkdir()
    code, output = run(config, d2)
    assert code == EXIT_FAILURE and "IsADirectoryError" in output, output
    assert last_log(state)["status"] == "failure"
    assert "churn-2024-01-08" not in campaigns_in(postgres, "crm.churn_campaign")
    assert "churn-2024-01-08" not in campaigns_in(postgres, "crm.churn_contacts")
    assert not (tmp_path / "exports" / "churn-2024-01-08.parquet").exists()
    blocker.rmdir()

    code, output = run(config, d2)
    assert code == EXIT_DONE, output
    log = last_log(state)
    assert log["steps"][1]["status"] == "skipped" and "7 new day(s), retrain at 30" in log["steps"][1]["line"]
    assert log["steps"][2]["details"]["model_version"] == "1"

    # the first campaign is sent: its plan lands in the contacts table; then 12 more weeks of events
    postgres.execute(f'CREATE TABLE {shop}.contacts AS SELECT customer_id, "timestamp", campaign_id, action, "group", '
                     f"channel, cost FROM {crm}.churn_contacts WHERE campaign_id = 'churn-2024-01-01'",
                     f"ALTER TABLE {shop}.contacts OWNER TO {postgres.user}")  # fmt: skip
    append(postgres, shop, {n: f[(f["timestamp"] >= d2) & (f["timestamp"] < d3)]
                            for n, f in sim.present().items() if n in EVENT_TABLES})  # fmt: skip

    # 5. labels matured: retrained; the first campaign's horizon has passed: reported
    code, output = run(config, d3)
    assert code == EXIT_DONE, output
    log = last_log(state)
    train, report = log["steps"][1], log["steps"][4]
    assert train["status"] == "ok" and "days of new labels matured since 2023-12-31" in train["line"]
    assert train["details"]["version"] == "2" and train["details"]["trained_through"] == "2024-03-31"
    assert log["steps"][2]["details"]["campaign_id"] == "churn-2024-04-01"
    assert report["status"] == "ok" and "churn-2024-01-01: uplift" in report["line"]
    assert (tmp_path / "campaign-reports" / "campaign-report-churn-2024-01-01.html").is_file()
    assert list(report["details"]["campaigns"]) == ["churn-2024-01-01"]

    with dbapi.connect(postgres.uri()) as conn, conn.cursor() as cur:
        cur.execute("SELECT campaign_id, model_version, count(*) FROM crm.churn_campaign GROUP BY 1, 2 ORDER BY 1")
        assert [(c, v) for c, v, _ in cur.fetchall()] == [
            ("churn-2024-01-01", "1"), ("churn-2024-01-08", "1"), ("churn-2024-04-01", "2")
        ]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking, tracking)
    versions = {str(v.version): v.tags for v in client.search_model_versions("name = 'churnlens'")}
    assert versions["1"]["trained_through"] == "2023-12-31" and versions["2"]["trained_through"] == "2024-03-31"

    # 6. bad credentials: bad input, said without the password, logged
    config.write_text(config.read_text().replace(postgres.password, "Wr0ngSecret", 1))
    code, output = run(config, d3 + pd.Timedelta(days=1))
    assert code == EXIT_BAD_INPUT and "password authentication failed" in output and "Wr0ngSecret" not in output
    assert last_log(state)["status"] == "bad input" and "Wr0ngSecret" not in json.dumps(last_log(state))

    # the password is nowhere: state, logs, reports, the stored summaries, MLflow params and tags
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".json", ".html", ".csv")]
    assert written and not [p for p in written if postgres.password in p.read_text(errors="ignore")]
    for experiment in client.search_experiments():
        for logged in client.search_runs([experiment.experiment_id]):
            values = json.dumps({**logged.data.params, **logged.data.tags})
            assert postgres.password not in values
    with dbapi.connect(postgres.uri()) as conn, conn.cursor() as cur:
        cur.execute("SELECT summary FROM crm.churn_runs")
        summaries = [row[0] for row in cur.fetchall()]
    assert len(summaries) == 3 and not [s for s in summaries if postgres.password in s]
    assert all("***@" in json.loads(s)["data_source"] for s in summaries)
