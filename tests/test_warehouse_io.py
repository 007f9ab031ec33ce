"""Reading from PostgreSQL: the same tables, snapshots and errors as files; mapping; credentials; masking.

Against a real throw-away server (the ``postgres`` fixture of conftest.py).
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from churnlens.cli.main import app
from churnlens.data import DataValidationError, load_tables
from churnlens.errors import InputError
from churnlens.features import build_snapshot
from churnlens.warehouse import WarehouseURI, export_tables, mask_uri, read_warehouse
from churnlens.warehouse.connection import WarehouseUnavailableError


def fresh_schema(postgres, prefix: str = "s") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    postgres.execute(f"CREATE SCHEMA {name} AUTHORIZATION {postgres.user}")
    return name


def assert_same_tables(left, right) -> None:
    assert sorted(left.present()) == sorted(right.present())
    for name, frame in left.present().items():
        pd.testing.assert_frame_equal(frame, right.present()[name], check_exact=True, obj=name)


# --------------------------------------------------------------------------- URIs


def test_mask_uri_hides_every_password_and_nothing_else():
    assert mask_uri("postgresql://churn:s3cr@t@db.example:5432/shop?schema=a") == (
        "postgresql://churn:***@db.example:5432/shop?schema=a"
    )
    assert mask_uri("postgresql://churn@db/shop?schema=a") == "postgresql://churn@db/shop?schema=a"
    assert mask_uri("postgresql://db:5432/shop") == "postgresql://db:5432/shop"
    assert mask_uri("host=db password='x y' user=churn") == "host=db password=*** user=churn"
    assert mask_uri("postgresql://u@h/db?password=hunter2&schema=s") == "postgresql://u@h/db?password=***&schema=s"
    message = "cannot connect to http://admin:topsecret@mlflow:5000 and postgres://a:b@c/d"
    assert "topsecret" not in mask_uri(message) and ":b@" not in mask_uri(message)
    assert mask_uri("/data/shop") == "/data/shop"


def test_uri_parsing_keeps_libpq_options_and_takes_out_churnlens_ones():
    uri = WarehouseURI.parse("postgresql://churn:p%40ss@db:6543/shop?schema=loyalty&sslmode=disable&table=out")
    assert (uri.schema, uri.table, uri.password) == ("loyalty", "out", "p@ss")
    assert "schema=" not in uri.conninfo and "table=" not in uri.conninfo
    assert "sslmode=disable" in uri.conninfo and "application_name=churnlens" in uri.conninfo
    assert uri.shown == "postgresql://churn:***@db:6543/shop?schema=loyalty&sslmode=disable&table=out"
    assert "p%40ss" not in repr(uri) and "p@ss" not in repr(uri)
    with pytest.raises(InputError, match=r"more than once") as info:
        WarehouseURI.parse("postgresql://u:secret@h/db?schema=a&schema=b")
    assert "secret" not in str(info.value)
    with pytest.raises(InputError, match="not a PostgreSQL URI"):
        WarehouseURI.parse("mysql://u@h/db")


# --------------------------------------------------------------------------- files and database


def test_a_database_and_files_with_the_same_rows_give_identical_tables_and_snapshots(postgres, small_sim):
    schema = fresh_schema(postgres)
    files, file_report = load_tables(small_sim)
    export_tables(files, postgres.uri(schema))
    # as a warehouse would type them: tz-aware times, text times, varchar ids, integers
    postgres.execute(
        f"ALTER TABLE {schema}.purchases ALTER COLUMN timestamp TYPE timestamptz USING timestamp AT TIME ZONE 'UTC'",
        f"ALTER TABLE {schema}.purchases ALTER COLUMN customer_id TYPE varchar(32)",
        f"ALTER TABLE {schema}.cancellations ALTER COLUMN timestamp TYPE text",
        f"ALTER TABLE {schema}.support_interactions ALTER COLUMN csat TYPE integer",
    )
    database, db_report = load_tables(postgres.uri(schema))
    assert_same_tables(files, database)
    assert [r.to_dict() for r in db_report.repairs] == [r.to_dict() for r in file_report.repairs]
    assert {n: (s.rows_in, s.rows_out) for n, s in db_report.tables.items()} == {
        n: (s.rows_in, s.rows_out) for n, s in file_report.tables.items()
    }
    assert db_report.tables["purchases"].source == f"{schema}.purchases"
    cutoff = files.data_end.normalize() - pd.Timedelta(days=60)
    pd.testing.assert_frame_equal(build_snapshot(files, cutoff), build_snapshot(database, cutoff), check_exact=True)


def test_validation_errors_from_the_database_are_those_of_files(postgres, tmp_path):
    schema = fresh_schema(postgres)
    rows = [("c1", "2024-01-03 10:00:00", "3"), ("c2", "2024-01-04", "7"), ("c1", "yesterday", "")]
    (tmp_path / "purchases.csv").write_text("customer_id,timestamp,amount\nc1,2024-01-01,5\n")
    support = tmp_path / "support_interactions.csv"
    support.write_text("customer_id,timestamp,csat\n" + "".join(",".join(r) + "\n" for r in rows))
    values = ", ".join(f"('{c}', '{t}', {s or 'NULL'})" for c, t, s in rows)
    postgres.execute(
        f"CREATE TABLE {schema}.purchases AS SELECT 'c1'::text AS customer_id, '2024-01-01'::text AS timestamp, "
        "5::float8 AS amount",
        f"CREATE TABLE {schema}.support_interactions (customer_id text, timestamp text, csat integer)",
        f"INSERT INTO {schema}.support_interactions VALUES {values}",
        f"GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO {postgres.user}",
    )
    with pytest.raises(DataValidationError) as from_files:
        load_tables(tmp_path)
    with pytest.raises(DataValidationError) as from_db:
        load_tables(postgres.uri(schema))
    assert str(from_db.value) == str(from_files.value)
    assert "table 'support_interactions', column 'timestamp'" in str(from_db.value) and "row 3: 'yesterday'" in str(
        from_db.value
    )
    postgres.execute(f"UPDATE {schema}.support_interactions SET timestamp = '2024-01-05' WHERE timestamp = 'yesterday'")
    support.write_text(support.read_text().replace("yesterday", "2024-01-05"))
    with pytest.raises(DataValidationError, match=re.escape("column 'csat': is outside the allowed range 1-5")) as db:
        load_tables(postgres.uri(schema))
    with pytest.raises(DataValidationError) as files:
        load_tables(tmp_path)
    assert str(db.value) == str(files.value)
    postgres.execute(f"ALTER TABLE {schema}.purchases DROP COLUMN amount")
    with pytest.raises(DataValidationError, match=r"table 'purchases', column 'amount': is required but missing"):
        load_tables(postgres.uri(schema))


def test_a_bad_table_stops_the_reads_under_way_and_leaves_no_session(postgres, small_sim):
    """Tables arrive while validation works: an error in the first one cancels the rest and closes the session."""
    schema = fresh_schema(postgres)
    files, _ = load_tables(small_sim)
    export_tables(files, postgres.uri(schema))
    postgres.execute(
        f"ALTER TABLE {schema}.purchases ALTER COLUMN timestamp TYPE text",
        f"UPDATE {schema}.purchases SET timestamp = 'not a time' "
        f"WHERE ctid = (SELECT max(ctid) FROM {schema}.purchases)",
    )
    with pytest.raises(DataValidationError, match=r"table 'purchases', column 'timestamp'.*'not a time'"):
        load_tables(postgres.uri(schema))
    for _ in range(50):  # a backend leaves pg_stat_activity shortly after its client said goodbye
        left = postgres.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'churnlens'")
        if left == [(0,)]:
            break
        time.sleep(0.1)
    assert left == [(0,)]


def test_tables_are_read_one_ahead_of_validation(postgres, small_sim):
    """At most one raw table waits beside the one validation works on (all ahead held them all: +20 % memory)."""
    from churnlens.warehouse.connection import connect
    from churnlens.warehouse.read import ArrivingFrames, find_sources, plan_read

    schema = fresh_schema(postgres)
    files, _ = load_tables(small_sim)
    export_tables(files, postgres.uri(schema))
    uri = WarehouseURI.parse(postgres.uri(schema))
    with connect(uri) as conn, conn.cursor() as cur:
        plans = {name: plan_read(cur, source, uri, None) for name, source in find_sources(cur, uri, None).items()}
        frames = ArrivingFrames(cur, plans, uri)
        try:
            names = list(plans)
            assert len(names) >= 3
            for i, name in enumerate(names):
                assert list(frames._pending) == [name]  # the next one only, nothing further
                assert len(frames[name]) == len(files.present()[name])
                assert list(frames._pending) == names[i + 1 : i + 2]
            with pytest.raises(RuntimeError, match="already handed out"):
                frames[names[0]]
        finally:
            frames.close()


def test_mapped_tables_views_and_queries_read_only_the_contract_columns(postgres, small_sim):
    schema, sales = fresh_schema(postgres), fresh_schema(postgres, "sales")
    files, _ = load_tables(small_sim)
    export_tables(files, postgres.uri(sales))
    # a view with the user's column names, a column outside the contract, and one that fails when read
    postgres.execute(
        f"CREATE VIEW {sales}.orders_v AS SELECT customer_id AS cust, timestamp AS ordered_at, amount AS total, "
        f"channel, category, order_id, quantity, 'note'::text AS note, "
        f"(1 / (length(customer_id) - length(customer_id)))::int AS boom FROM {sales}.purchases",
        f"ALTER TABLE {sales}.customers RENAME TO people",
        f"GRANT ALL ON ALL TABLES IN SCHEMA {sales} TO {postgres.user}",
    )
    mapping = {
        "purchases": f"{sales}.orders_v",
        "customers": f"SELECT * FROM {sales}.people",  # a query: every column of customers is kept
        "program_events": f'"{sales}"."program_events"',
        "support_interactions": f"{sales}.support_interactions",
        "cancellations": f"WITH c AS (SELECT * FROM {sales}.cancellations) SELECT customer_id, timestamp FROM c",
    }
    columns = {"purchases": {"cust": "customer_id", "ordered_at": "timestamp", "total": "amount", "boom": "boom"}}
    with pytest.raises(DataValidationError, match="'boom', which is not a column of purchases"):
        load_tables(postgres.uri(schema), warehouse_tables=mapping, columns=columns)
    del columns["purchases"]["boom"]
    database, report = load_tables(postgres.uri(schema), warehouse_tables=mapping, columns=columns)
    assert_same_tables(files, database)
    ignored = [r for r in report.repairs if r.kind == "ignored_columns"]
    assert [(r.table, r.detail) for r in ignored] == [("purchases", "columns outside the contract ignored: note, boom")]
    assert report.tables["customers"].source == "query in [warehouse.tables]"
    assert report.tables["purchases"].source == f"{sales}.orders_v"

    with pytest.raises(DataValidationError, match=r"table 'purchases': is mapped in \[warehouse.tables\] to 'nope_v'"):
        load_tables(postgres.uri(schema), warehouse_tables={"purchases": "nope_v"})
    with pytest.raises(DataValidationError, match=r"table 'purchases': cannot be read from query .*syntax error"):
        load_tables(postgres.uri(schema), warehouse_tables={"purchases": "SELECT FROM WHERE"})
    with pytest.raises(DataValidationError, match=r"\[warehouse.tables\] names no known table"):
        load_tables(postgres.uri(schema), warehouse_tables={"orders": "x"})


def test_a_schema_without_purchases_or_that_does_not_exist_is_bad_input(postgres):
    empty = fresh_schema(postgres)
    with pytest.raises(DataValidationError, match=f"table 'purchases': is required but schema '{empty}'"):
        load_tables(postgres.uri(empty))
    with pytest.raises(InputError, match="schema 'no_such_schema' does not exist"):
        load_tables(postgres.uri("no_such_schema"))
    with pytest.raises(InputError, match="table= names the output tables"):
        read_warehouse(postgres.uri(empty, table="x"))


# --------------------------------------------------------------------------- credentials


def test_credentials_from_the_uri_pgpassword_pgpass_and_a_service_file(postgres, small_sim, tmp_path, monkeypatch):
    schema = fresh_schema(postgres)
    files, _ = load_tables(small_sim)
    export_tables(files.replace(program_events=None, support_interactions=None), postgres.uri(schema))
    for name in ("PGPASSWORD", "PGPASSFILE", "PGSERVICEFILE", "PGSERVICE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))  # never the real ~/.pgpass
    bare = postgres.uri(schema, password=False)
    with pytest.raises(InputError, match="no password supplied|password authentication failed"):
        load_tables(bare)

    monkeypatch.setenv("PGPASSWORD", postgres.password)
    assert len(load_tables(bare)[0].purchases) == len(files.purchases)
    monkeypatch.delenv("PGPASSWORD")

    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{postgres.port}:{postgres.database}:{postgres.user}:{postgres.password}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    assert len(load_tables(bare)[0].purchases) == len(files.purchases)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))

    services = tmp_path / "pg_service.conf"
    services.write_text(f"[churnlens_test]\nhost=127.0.0.1\nport={postgres.port}\ndbname={postgres.database}\n"
                        f"user={postgres.user}\npassword={postgres.password}\n")  # fmt: skip
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    assert len(load_tables(f"postgresql://?service=churnlens_test&schema={schema}")[0].purchases) == len(
        files.purchases
    )


def test_passwords_never_reach_the_terminal(postgres, small_sim):
    schema = fresh_schema(postgres)
    export_tables(load_tables(small_sim)[0].replace(program_events=None), postgres.uri(schema))
    runner = CliRunner()
    good = runner.invoke(app, ["validate", postgres.uri(schema)])
    assert good.exit_code == 0, good.output
    assert postgres.password not in good.output and f"{schema}.purchases" in good.output

    wrong = postgres.uri(schema).replace(postgres.password, "Wr0ngSecret")
    bad = runner.invoke(app, ["validate", wrong])
    assert bad.exit_code == 2
    assert "password authentication failed" in bad.output and "Wr0ngSecret" not in bad.output
    assert f"postgresql://{postgres.user}:***@127.0.0.1" in bad.output

    down = runner.invoke(app, ["--debug", "validate", postgres.uri(schema).replace(str(postgres.port), "1")])
    assert down.exit_code == 1, down.output  # a server that cannot be reached is a failure, not bad input
    assert postgres.password not in down.output and "***" in down.output
    with pytest.raises(WarehouseUnavailableError):
        read_warehouse(postgres.uri(schema).replace(str(postgres.port), "1"))

    dask = runner.invoke(app, ["features", postgres.uri(schema), "--cutoff", "2024-01-01", "--out",
                               "x.parquet", "--engine", "dask"])  # fmt: skip
    assert dask.exit_code == 2 and "--engine dask reads a data directory" in dask.output
    assert postgres.password not in dask.output


def test_features_and_explain_read_a_database_too(postgres, small_sim, tmp_path: Path):
    schema = fresh_schema(postgres)
    files, _ = load_tables(small_sim)
    export_tables(files, postgres.uri(schema))
    cutoff = str((files.data_end.normalize() - pd.Timedelta(days=30)).date())
    runner = CliRunner()
    for data, out in ((small_sim, tmp_path / "files.parquet"), (postgres.uri(schema), tmp_path / "db.parquet")):
        result = runner.invoke(app, ["features", str(data), "--cutoff", cutoff, "--out", str(out)])
        assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "files.parquet"), pd.read_parquet(tmp_path / "db.parquet"))
