"""Loading and validating input tables: hard errors, repairs, dtypes, CSV/Parquet parity, CLI."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from churnlens.cli import validate_cmd
from churnlens.data import (
    DataValidationError,
    Repair,
    Tables,
    ValidationReport,
    load_tables,
    validate_tables,
    write_tables,
)
from churnlens.data.validate import string_categories

S = pd.StringDtype()

PURCHASES_CSV = """customer_id,timestamp,amount,channel
c1,2024-01-03 00:00:00,7,web
c2,2024-01-02,-3,store
c1,2024-01-01T10:00:00,10.5,web
"""


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def fails(match: str, data_dir: Path, **kwargs) -> DataValidationError:
    """Assert load_tables raises a DataValidationError whose message contains ``match`` verbatim."""
    with pytest.raises(DataValidationError, match=re.escape(match)) as info:
        load_tables(data_dir, **kwargs)
    return info.value


@pytest.fixture
def good_dir(tmp_path: Path) -> Path:
    write(tmp_path, "purchases.csv", PURCHASES_CSV)
    write(tmp_path, "README.md", "not data: ignored")
    return tmp_path


# --------------------------------------------------------------------------- good input


def test_good_csv_loads_to_exact_typed_sorted_frame(good_dir: Path) -> None:
    tables, report = load_tables(good_dir)
    expected = pd.DataFrame(
        {
            "customer_id": pd.array(["c1", "c1", "c2"], dtype=S),
            "timestamp": pd.to_datetime(
                ["2024-01-01 10:00:00", "2024-01-03 00:00:00", "2024-01-02 00:00:00"]
            ).as_unit("us"),
            "amount": [10.5, 7.0, -3.0],
            "channel": pd.Categorical(
                ["web", "web", "store"], categories=pd.Index(["store", "web"], dtype=S)
            ),
        }
    )
    pd.testing.assert_frame_equal(tables.purchases, expected)
    assert tables.customers is None and tables.program_events is None
    summary = report.tables["purchases"]
    assert (summary.rows_in, summary.rows_out, summary.customers) == (3, 3, 2)
    assert summary.start == pd.Timestamp("2024-01-01 10:00") and summary.end == pd.Timestamp("2024-01-03")
    assert summary.source == "purchases.csv"
    assert report.repairs == []


def test_ids_keep_leading_zeros_and_text_is_string(tmp_path: Path) -> None:
    write(tmp_path, "purchases.csv", "customer_id,timestamp,amount,order_id\n007,2024-01-01,1,0042\n")
    tables, _ = load_tables(tmp_path)
    assert tables.purchases["customer_id"].tolist() == ["007"]
    assert tables.purchases["order_id"].tolist() == ["0042"]


def _raw_frames() -> dict[str, pd.DataFrame]:
    """Raw tables with real timestamps/numbers/bools, as a user's pipeline would hold them."""

    def ts(values: list[str | None]) -> pd.DatetimeIndex:
        return pd.to_datetime(values, format="ISO8601")

    return {
        "purchases": pd.DataFrame(
            {
                "customer_id": ["b", "a", "a", "c"],
                "timestamp": ts(["2024-02-01 12:30", "2024-01-05", "2024-01-02 08:00:01", "2024-03-01"]),
                "amount": [12.5, 3.0, -1.25, 100.0],
                "quantity": [1, 2, 1, 5],
                "channel": ["web", None, "store", "web"],
            }
        ),
        "customers": pd.DataFrame(
            {
                "customer_id": ["a", "b", "c"],
                "signup_at": ts(["2023-01-01", "2023-06-15", None]),
                "country": ["FR", "DE", None],
                "age": [34.0, None, 51.0],
            }
        ),
        "program_events": pd.DataFrame(
            {
                "customer_id": ["a", "b"],
                "timestamp": ts(["2024-01-03", "2024-01-04"]),
                "event_type": ["points_earned", "login"],
                "points": [120.0, None],
                "tier": ["gold", None],
            }
        ),
        "support_interactions": pd.DataFrame(
            {
                "customer_id": ["a", "c"],
                "timestamp": ts(["2024-01-10 09:00", "2024-02-11 17:45"]),
                "resolved": pd.array([True, None], dtype="boolean"),
                "complaint": pd.array([False, True], dtype="boolean"),
                "handle_minutes": [12.5, 0.0],
                "csat": [5.0, 1.0],
                "nps": [10.0, None],
                "ces": [7.0, 1.0],
            }
        ),
        "cancellations": pd.DataFrame({"customer_id": ["c"], "timestamp": ts(["2024-03-02"])}),
    }


def test_csv_and_parquet_of_the_same_data_load_identically(tmp_path: Path) -> None:
    for name, df in _raw_frames().items():
        (tmp_path / "csv").mkdir(exist_ok=True)
        (tmp_path / "pq").mkdir(exist_ok=True)
        df.to_csv(tmp_path / "csv" / f"{name}.csv", index=False)
        df.to_parquet(tmp_path / "pq" / f"{name}.parquet", index=False)
    from_csv, report_csv = load_tables(tmp_path / "csv")
    from_pq, report_pq = load_tables(tmp_path / "pq")
    assert list(from_csv.present()) == [
        "purchases",
        "customers",
        "program_events",
        "support_interactions",
        "cancellations",
    ]
    for name, df in from_csv.present().items():
        pd.testing.assert_frame_equal(df, from_pq.present()[name], obj=name)
    assert report_csv.to_dict()["tables"]["purchases"]["rows_out"] == 4
    assert [r.kind for r in report_csv.repairs] == [r.kind for r in report_pq.repairs] == []
    si = from_csv.support_interactions
    assert si.dtypes.astype(str).to_dict() == {
        "customer_id": "string",
        "timestamp": "datetime64[us]",
        "resolved": "boolean",
        "handle_minutes": "float64",
        "complaint": "boolean",
        "csat": "float64",
        "nps": "float64",
        "ces": "float64",
    }
    assert si["resolved"].tolist() == [True, pd.NA]
    cust = from_csv.customers
    assert cust.dtypes.astype(str).to_dict() == {
        "customer_id": "string",
        "signup_at": "datetime64[us]",
        "country": "string",
        "age": "float64",
    }
    assert from_csv.purchases["quantity"].dtype == np.float64


def test_low_cardinality_text_is_categorical_with_the_values_present_sorted() -> None:
    raw = _raw_frames()
    raw["purchases"]["category"] = ["toys", "", "books", "toys"]
    tables, _ = validate_tables(raw)
    for table, col, values in [
        ("purchases", "channel", ["store", "web"]),
        ("purchases", "category", ["books", "toys"]),
        ("program_events", "event_type", ["login", "points_earned"]),
        ("program_events", "tier", ["gold"]),
    ]:
        column = getattr(tables, table)[col]
        assert isinstance(column.dtype, pd.CategoricalDtype), (table, col)
        assert list(column.cat.categories) == values and column.cat.categories.dtype == S, (table, col)
    assert tables.purchases["category"].astype(S).fillna("-").tolist() == ["books", "-", "toys", "toys"]
    assert tables.purchases["customer_id"].dtype == S
    assert tables.customers["country"].dtype == S  # attributes stay text


def test_categories_of_dropped_rows_are_dropped_too() -> None:
    raw = _raw_frames()
    late = raw["purchases"].iloc[[0]].assign(timestamp=pd.Timestamp("2025-06-01"), channel="kiosk")
    dup = raw["purchases"].iloc[[0]]
    raw["purchases"] = pd.concat([raw["purchases"], late, dup], ignore_index=True)
    tables, report = validate_tables(raw, data_end="2025-01-01")
    assert sorted(r.kind for r in report.repairs) == ["after_data_end", "duplicate_rows"]
    assert list(tables.purchases["channel"].cat.categories) == ["store", "web"]


def test_categorical_input_is_normalised_like_text_input() -> None:
    raw = _raw_frames()
    text = raw["program_events"].assign(tier=["7", None], event_type=["login", "login"])
    cat = text.assign(
        tier=pd.Categorical([7.0, None], categories=[7.0, 2.5]),  # 2.5 unused: "7", not "7.0"
        event_type=pd.Categorical(["login", "login"], categories=["zzz", "login", ""]),
    )
    from_text, _ = validate_tables({**raw, "program_events": text})
    from_cat, _ = validate_tables({**raw, "program_events": cat})
    pd.testing.assert_frame_equal(from_cat.program_events, from_text.program_events)
    assert list(from_cat.program_events["tier"].cat.categories) == ["7"]


def test_string_categories_restores_what_parquet_drops(tmp_path: Path) -> None:
    tables, _ = validate_tables(_raw_frames())
    tables.purchases.to_parquet(tmp_path / "p.parquet", index=False)
    back = pd.read_parquet(tmp_path / "p.parquet")
    pd.testing.assert_frame_equal(string_categories(back), tables.purchases)


def test_write_tables_round_trips_through_csv_and_parquet(tmp_path: Path) -> None:
    tables, _ = validate_tables(_raw_frames())
    for fmt in ("csv", "parquet"):
        written = write_tables(tables, tmp_path / fmt, fmt=fmt)
        assert sorted(p.name for p in written.values()) == sorted(f"{n}.{fmt}" for n in tables.present())
        again, _ = load_tables(tmp_path / fmt)
        for name, df in tables.present().items():
            pd.testing.assert_frame_equal(again.present()[name], df, obj=f"{fmt}:{name}")
    with pytest.raises(ValueError, match="purchases.csv already exists"):
        write_tables(tables, tmp_path / "csv", fmt="parquet")
    with pytest.raises(ValueError, match="fmt must be 'parquet' or 'csv'"):
        write_tables(tables, tmp_path / "x", fmt="xlsx")


def test_partitioned_parquet_directory_loads_like_a_file(tmp_path: Path) -> None:
    raw = _raw_frames()["purchases"]
    raw.to_parquet(tmp_path / "flat.parquet", index=False)
    (tmp_path / "one").mkdir()
    raw.to_parquet(tmp_path / "one" / "purchases.parquet", index=False)
    raw.dropna(subset=["channel"]).to_parquet(
        tmp_path / "parts" / "purchases", partition_cols=["channel"], index=False
    )
    flat, _ = load_tables(tmp_path / "one")
    parts, report = load_tables(tmp_path / "parts")
    expected = flat.purchases[flat.purchases["channel"].notna()].reset_index(drop=True)
    pd.testing.assert_frame_equal(parts.purchases[expected.columns], expected)
    assert report.tables["purchases"].source == "purchases/"


def test_tz_aware_timestamps_are_normalised_to_naive_utc(tmp_path: Path) -> None:
    write(
        tmp_path / "csv",
        "purchases.csv",
        "customer_id,timestamp,amount\n"
        "a,2024-03-31T01:30:00+02:00,1\n"  # 2024-03-30 23:30 UTC
        "a,2024-04-01T12:00:00Z,2\n"
        "a,2024-04-02 08:00:00,3\n",  # naive: taken as UTC
    )
    tables, _ = load_tables(tmp_path / "csv")
    assert tables.purchases["timestamp"].tolist() == [
        pd.Timestamp("2024-03-30 23:30"),
        pd.Timestamp("2024-04-01 12:00"),
        pd.Timestamp("2024-04-02 08:00"),
    ]
    assert str(tables.purchases["timestamp"].dtype) == "datetime64[us]"
    paris = pd.DataFrame(
        {
            "customer_id": ["a", "a"],
            "timestamp": pd.to_datetime(["2024-07-01 02:00", "2024-01-15 09:00"]).tz_localize("Europe/Paris"),
            "amount": [1.0, 2.0],
        }
    )
    (tmp_path / "pq").mkdir()
    paris.to_parquet(tmp_path / "pq" / "purchases.parquet")
    tables, _ = load_tables(tmp_path / "pq")
    # summer: UTC+2, winter: UTC+1; sorted by time
    assert tables.purchases["timestamp"].tolist() == [
        pd.Timestamp("2024-01-15 08:00"),
        pd.Timestamp("2024-07-01 00:00"),
    ]
    tables, report = load_tables(tmp_path / "pq", data_end=pd.Timestamp("2024-06-30T23:00:00-01:00"))
    assert tables.purchases["timestamp"].tolist() == [
        pd.Timestamp("2024-01-15 08:00"),
        pd.Timestamp("2024-07-01 00:00"),
    ]
    tables, report = load_tables(tmp_path / "pq", data_end="2024-06-30T22:59:59-01:00")
    assert len(tables.purchases) == 1 and report.repairs_of("after_data_end")[0].rows_affected == 1


def test_column_mapping_renames_user_columns(tmp_path: Path) -> None:
    write(tmp_path, "purchases.csv", "CustomerID,Date,Total,Shop\nx,2024-01-01,5,web\n")
    columns = {
        "purchases": {"CustomerID": "customer_id", "Date": "timestamp", "Total": "amount", "Shop": "channel"}
    }
    tables, _ = load_tables(tmp_path, columns=columns)
    assert list(tables.purchases.columns) == ["customer_id", "timestamp", "amount", "channel"]
    assert tables.purchases.iloc[0].tolist() == ["x", pd.Timestamp("2024-01-01"), 5.0, "web"]


def test_flags_accept_boolean_words_in_any_case(tmp_path: Path) -> None:
    write(tmp_path, "purchases.csv", "customer_id,timestamp,amount\nc,2024-01-01,1\n")
    write(
        tmp_path,
        "support_interactions.csv",
        "customer_id,timestamp,resolved\nc,2024-01-01,YES\nc,2024-01-02,no\nc,2024-01-03,1\n"
        "c,2024-01-04,0\nc,2024-01-05,True\nc,2024-01-06,false\nc,2024-01-07,\n",
    )
    tables, _ = load_tables(tmp_path)
    assert tables.support_interactions["resolved"].tolist() == [True, False, True, False, True, False, pd.NA]


# --------------------------------------------------------------------------- hard errors


def test_missing_required_column(tmp_path: Path) -> None:
    write(tmp_path, "purchases.csv", "customer_id,timestamp,price\nc1,2024-01-01,3\n")
    err = fails(
        "table 'purchases', column 'amount': is required but missing; "
        "columns found: customer_id, timestamp, price",
        tmp_path,
    )
    assert (err.table, err.column) == ("purchases", "amount")


def test_missing_purchases_file(tmp_path: Path) -> None:
    write(tmp_path, "customers.csv", "customer_id\nc1\n")
    fails("table 'purchases': is required but", tmp_path)


def test_bad_timestamp_names_rows_and_values(tmp_path: Path) -> None:
    write(
        tmp_path,
        "purchases.csv",
        "customer_id,timestamp,amount\nc1,2024-01-01,1\nc2,yesterday,2\nc3,2024-13-45,3\nc4,05/02/2024,4\n",
    )
    err = fails(
        "table 'purchases', column 'timestamp': is not a valid timestamp (expected ISO 8601",
        tmp_path,
    )
    assert "(3 rows); offending rows: row 2: 'yesterday'; row 3: '2024-13-45'; row 4: '05/02/2024'" in str(
        err
    )


def test_null_timestamp_is_missing(tmp_path: Path) -> None:
    write(tmp_path, "purchases.csv", "customer_id,timestamp,amount\nc1,2024-01-01,1\nc2,,2\n")
    fails(
        "table 'purchases', column 'timestamp': is missing (the column is required) (1 row); "
        "offending rows: row 2: <missing>",
        tmp_path,
    )


def test_numeric_timestamps_are_refused(tmp_path: Path) -> None:
    pd.DataFrame({"customer_id": ["a"], "timestamp": [1714608000], "amount": [1.0]}).to_parquet(
        tmp_path / "purchases.parquet"
    )
    fails("column 'timestamp': holds numbers, not timestamps", tmp_path)


def test_text_in_amount(tmp_path: Path) -> None:
    write(
        tmp_path,
        "purchases.csv",
        "customer_id,timestamp,amount\nc1,2024-01-01,1\nc2,2024-01-02,2\nc3,2024-01-03,abc\n",
    )
    fails(
        "table 'purchases', column 'amount': is not a number (1 row); offending rows: row 3: 'abc'", tmp_path
    )


def test_text_in_amount_far_down_a_large_csv(tmp_path: Path) -> None:
    """Arrow infers types from the first block; a bad value beyond it must still be named."""
    n = 120_000
    amounts = np.arange(n).astype(str)
    amounts[100_000] = "12,50"
    frame = pd.DataFrame({"customer_id": "c", "timestamp": "2024-01-01", "amount": amounts})
    frame.to_csv(tmp_path / "purchases.csv", index=False)
    fails("column 'amount': is not a number (1 row); offending rows: row 100001: '12,50'", tmp_path)


def test_csat_out_of_range(tmp_path: Path) -> None:
    write(tmp_path, "purchases.csv", PURCHASES_CSV)
    write(
        tmp_path,
        "support_interactions.csv",
        "customer_id,timestamp,csat,handle_minutes\nc1,2024-01-01,5,3\nc1,2024-01-02,9,4\n",
    )
    fails(
        "table 'support_interactions', column 'csat': is outside the allowed range 1-5 (1 row); "
        "offending rows: row 2: 9",
        tmp_path,
    )


def test_negative_handle_minutes(tmp_path: Path) -> None:
    write(tmp_path, "purchases.csv", PURCHASES_CSV)
    write(tmp_path, "support_interactions.csv", "customer_id,timestamp,handle_minutes\nc1,2024-01-01,-2.5\n")
    fails(
        "column 'handle_minutes': is outside the allowed range >= 0 (1 row); offending rows: row 1: -2.5",
        tmp_path,
    )


def test_flag_that_is_not_boolean(tmp_path: Path) -> None:
    write(tmp_path, "purchases.csv", PURCHASES_CSV)
    write(
        tmp_path,
        "support_interactions.csv",
        "customer_id,timestamp,resolved\nc1,2024-01-01,yes\nc1,2024-01-02,maybe\n",
    )
    fails(
        "table 'support_interactions', column 'resolved': is not a boolean "
        "(expected true/false, 1/0 or yes/no) (1 row); offending rows: row 2: 'maybe'",
        tmp_path,
    )


def test_empty_files(tmp_path: Path) -> None:
    write(tmp_path / "zero", "purchases.csv", "")
    fails("table 'purchases': file purchases.csv is empty (0 bytes)", tmp_path / "zero")
    write(tmp_path / "header", "purchases.csv", "customer_id,timestamp,amount\n")
    fails("table 'purchases': has no rows", tmp_path / "header")
    write(tmp_path / "opt", "purchases.csv", PURCHASES_CSV)
    write(tmp_path / "opt", "cancellations.csv", "customer_id,timestamp\n")
    fails("table 'cancellations': has no rows", tmp_path / "opt")


def test_wrong_file_type(tmp_path: Path) -> None:
    write(tmp_path / "xlsx", "purchases.xlsx", "PK\x03\x04 not really a workbook")
    fails(
        "table 'purchases': file purchases.xlsx has an unsupported type '.xlsx'; save it as purchases.csv",
        tmp_path / "xlsx",
    )
    write(tmp_path / "fake", "purchases.parquet", PURCHASES_CSV)
    fails("table 'purchases': purchases.parquet is not a readable Parquet file", tmp_path / "fake")


def test_unknown_table_name(good_dir: Path) -> None:
    write(good_dir, "truth.parquet", "simulator labels: not a table, ignored")
    write(good_dir, "_notes.csv", "ignored")
    assert len(load_tables(good_dir)[0].purchases) == 3
    write(good_dir, "purchase.csv", PURCHASES_CSV)
    fails(
        "table 'purchase': file purchase.csv matches no known table; known tables: purchases, customers, "
        "program_events, support_interactions, cancellations",
        good_dir,
    )


def test_two_files_for_one_table(good_dir: Path) -> None:
    pd.DataFrame({"customer_id": ["a"], "timestamp": ["2024-01-01"], "amount": [1]}).to_parquet(
        good_dir / "purchases.parquet"
    )
    fails(
        "table 'purchases': has several files (purchases.csv, purchases.parquet); keep exactly one", good_dir
    )


def test_mapping_to_a_missing_column(good_dir: Path) -> None:
    err = fails(
        "table 'purchases', column 'CustomerID': is mapped to 'customer_id' in [columns.purchases] "
        "but the table has no such column; columns found: customer_id, timestamp, amount, channel",
        good_dir,
        columns={"purchases": {"CustomerID": "customer_id"}},
    )
    assert err.column == "CustomerID"
    fails("[columns.purchase] names no known table", good_dir, columns={"purchase": {"a": "b"}})
    fails(
        "column 'channel': is mapped to 'shop', which is not a column of purchases",
        good_dir,
        columns={"purchases": {"channel": "shop"}},
    )


def test_missing_customer_id_is_hard_unless_asked_to_drop(tmp_path: Path) -> None:
    write(
        tmp_path,
        "purchases.csv",
        "customer_id,timestamp,amount\nc1,2024-01-01,1\n,2024-01-02,2\nc2,2024-01-03,3\n",
    )
    fails(
        "table 'purchases', column 'customer_id': is missing (the column is required); "
        "rows without a customer can be dropped with drop_missing_customer=True "
        "(CLI: --drop-missing-customer) (1 row); "
        "offending rows: row 2: <missing>",
        tmp_path,
    )
    tables, report = load_tables(tmp_path, drop_missing_customer=True)
    assert tables.purchases["customer_id"].tolist() == ["c1", "c2"]
    (repair,) = report.repairs_of("missing_customer_id")
    assert repair == Repair(
        "purchases",
        "missing_customer_id",
        1,
        "1 row without customer_id dropped",
        ("row 2: customer_id=<missing>, timestamp=2024-01-02 00:00:00, amount=2.0",),
    )
    assert (report.tables["purchases"].rows_in, report.tables["purchases"].rows_out) == (3, 2)


def test_customer_with_conflicting_attributes(tmp_path: Path) -> None:
    write(tmp_path, "purchases.csv", PURCHASES_CSV)
    write(tmp_path, "customers.csv", "customer_id,country\nc1,FR\nc2,DE\nc1,IT\n")
    fails(
        "table 'customers', column 'customer_id': has duplicate entries with different attributes "
        "(one row per customer expected) (2 rows); offending rows: row 1: 'c1'; row 3: 'c1'",
        tmp_path,
    )


# --------------------------------------------------------------------------- repairs


def test_duplicate_rows_dropped_and_reported(tmp_path: Path) -> None:
    write(
        tmp_path,
        "purchases.csv",
        "customer_id,timestamp,amount\n"
        "c1,2024-01-01,5\n"
        "c2,2024-01-01,5\n"
        "c1,2024-01-01,6\n"  # same customer and time, other amount: kept
        "c1,2024-01-01T00:00:00,5\n"  # duplicate of row 1 once typed
        "c1,2024-01-01,5\n",  # again
    )
    tables, report = load_tables(tmp_path)
    assert tables.purchases["amount"].tolist() == [5.0, 6.0, 5.0]
    assert tables.purchases["customer_id"].tolist() == ["c1", "c1", "c2"]
    assert report.repairs == [
        Repair(
            "purchases",
            "duplicate_rows",
            2,
            "2 exact duplicate rows dropped (first occurrence kept)",
            (
                "row 4: customer_id='c1', timestamp=2024-01-01 00:00:00, amount=5.0",
                "row 5: customer_id='c1', timestamp=2024-01-01 00:00:00, amount=5.0",
            ),
        )
    ]
    assert (report.tables["purchases"].rows_in, report.tables["purchases"].rows_out) == (5, 3)


def test_events_of_unknown_customers_are_added_to_customers(tmp_path: Path) -> None:
    write(tmp_path, "purchases.csv", PURCHASES_CSV)  # customers c1, c2
    write(tmp_path, "cancellations.csv", "customer_id,timestamp\nc9,2024-02-01\n")
    write(
        tmp_path,
        "customers.csv",
        "customer_id,country,age,signup_at\nc3,DE,40,2023-05-01\nc1,FR,30,2023-01-01\n",
    )
    tables, report = load_tables(tmp_path)
    expected = pd.DataFrame(
        {
            "customer_id": pd.array(["c1", "c2", "c3", "c9"], dtype=S),
            "signup_at": pd.to_datetime(["2023-01-01", None, "2023-05-01", None]).as_unit("us"),
            "country": pd.array(["FR", None, "DE", None], dtype=S),
            "age": [30.0, np.nan, 40.0, np.nan],
        }
    )
    pd.testing.assert_frame_equal(tables.customers, expected)
    (added,) = report.repairs_of("unknown_customers")
    assert added.rows_affected == 2
    assert added.example_rows == ("customer_id='c2'", "customer_id='c9'")
    assert "(purchases: 1; cancellations: 1)" in added.detail
    (idle,) = report.repairs_of("customers_without_events")
    assert (idle.rows_affected, idle.example_rows) == (1, ("customer_id='c3'",))
    assert report.tables["customers"].rows_in == 2 and report.tables["customers"].rows_out == 4
    assert len(tables.purchases) == 3  # events are never dropped for this


def test_events_after_data_end_dropped_and_reported(good_dir: Path) -> None:
    tables, report = load_tables(good_dir, data_end=pd.Timestamp("2024-01-02"))
    assert tables.purchases["timestamp"].tolist() == [
        pd.Timestamp("2024-01-01 10:00"),
        pd.Timestamp("2024-01-02"),
    ]
    assert report.repairs == [
        Repair(
            "purchases",
            "after_data_end",
            1,
            "1 event after the data end 2024-01-02T00:00:00 dropped",
            ("row 1: customer_id='c1', timestamp=2024-01-03 00:00:00, amount=7.0, channel='web'",),
        )
    ]
    assert report.data_end == pd.Timestamp("2024-01-02")


def test_extra_event_columns_are_ignored_and_reported(tmp_path: Path) -> None:
    write(tmp_path, "purchases.csv", "customer_id,timestamp,amount,store_code\nc1,2024-01-01,1,S1\n")
    tables, report = load_tables(tmp_path)
    assert "store_code" not in tables.purchases.columns
    assert report.repairs == [
        Repair("purchases", "ignored_columns", 1, "columns outside the contract ignored: store_code")
    ]


# --------------------------------------------------------------------------- in memory


def test_validate_tables_in_memory_json_like_records() -> None:
    purchases = pd.DataFrame.from_records(
        [
            {"customer_id": "c1", "timestamp": "2024-05-02T10:00:00", "amount": 42.5},
            {"customer_id": "c1", "timestamp": "2024-05-01T10:00:00+02:00", "amount": "7"},
        ]
    )
    support = pd.DataFrame.from_records(
        [{"customer_id": "c1", "timestamp": "2024-05-01", "csat": 2, "resolved": False}]
    )
    tables, report = validate_tables({"purchases": purchases, "support_interactions": support})
    assert tables.purchases["timestamp"].tolist() == [
        pd.Timestamp("2024-05-01 08:00"),
        pd.Timestamp("2024-05-02 10:00"),
    ]
    assert tables.purchases["amount"].tolist() == [7.0, 42.5]
    assert tables.support_interactions["resolved"].tolist() == [False]
    assert report.tables["purchases"].source == "in memory"
    with pytest.raises(
        DataValidationError, match=re.escape("table 'orders': is not a known table; known tables: purchases")
    ):
        validate_tables({"purchases": purchases, "orders": purchases})
    with pytest.raises(DataValidationError, match=re.escape("table 'purchases': is required but missing")):
        validate_tables({"customers": pd.DataFrame({"customer_id": ["c1"]})})


def test_report_text_and_dict() -> None:
    frames = _raw_frames()
    frames["purchases"] = pd.concat([frames["purchases"], frames["purchases"].iloc[[0]]], ignore_index=True)
    tables, report = validate_tables(frames)
    assert isinstance(tables, Tables) and isinstance(report, ValidationReport)
    as_dict = json.loads(json.dumps(report.to_dict()))
    assert as_dict["tables"]["purchases"] == {
        "source": "in memory",
        "rows_in": 5,
        "rows_out": 4,
        "customers": 3,
        "start": "2024-01-02T08:00:01",
        "end": "2024-03-01T00:00:00",
    }
    assert as_dict["start"] == "2024-01-02T08:00:01" and as_dict["end"] == "2024-03-02T00:00:00"
    assert [r["kind"] for r in as_dict["repairs"]] == ["duplicate_rows"]
    text = report.to_text()
    assert text.splitlines()[0] == "Data from 2024-01-02 08:00:01 to 2024-03-02"
    assert "1 exact duplicate row dropped (first occurrence kept)" in text
    assert "row 5: customer_id='b'" in text


@pytest.mark.slow
def test_one_million_rows_load_fast(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 1_000_000
    frame = pd.DataFrame(
        {
            "customer_id": pd.array([f"c{i:06d}" for i in rng.integers(0, 100_000, n)], dtype=S),
            "timestamp": (
                pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 30_000_000, n), unit="s")
            ),
            "amount": rng.normal(50, 20, n).round(2),
        }
    )
    frame.to_parquet(tmp_path / "purchases.parquet", index=False)
    start = time.perf_counter()
    tables, report = load_tables(tmp_path)
    elapsed = time.perf_counter() - start
    assert report.tables["purchases"].rows_out == n
    assert tables.purchases["customer_id"].is_monotonic_increasing
    assert elapsed < 5, f"loading 1M rows took {elapsed:.1f} s"


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)
    app.command("validate")(validate_cmd.validate)
    app.command("other")(lambda: None)  # keeps "validate" a subcommand
    return app


def test_cli_good_data_prints_report(cli: typer.Typer, good_dir: Path) -> None:
    write(good_dir, "customers.csv", "customer_id\nc1\nc2\nc3\n")
    result = CliRunner().invoke(cli, ["validate", str(good_dir)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "purchases" in result.output and "customers_without_events" in result.output
    assert "2024-01-01" in result.output and "2024-01-03" in result.output
    result = CliRunner().invoke(cli, ["validate", str(good_dir), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["tables"]["purchases"]["rows_out"] == 3


def test_cli_bad_data_exits_2_without_traceback(cli: typer.Typer, tmp_path: Path) -> None:
    write(tmp_path, "purchases.csv", "customer_id,timestamp,amount\nc1,2024-01-01,1\nc2,2024-01-02,abc\n")
    result = CliRunner().invoke(cli, ["validate", str(tmp_path)], terminal_width=300)
    assert result.exit_code == 2
    assert (
        "table 'purchases', column 'amount': is not a number (1 row); offending rows: row 2: 'abc'"
        in result.stderr
    )
    assert "Traceback" not in result.output


def test_cli_debug_option_lasts_one_invocation(tmp_path: Path, monkeypatch) -> None:
    from churnlens.cli.main import app as cli

    monkeypatch.delenv("CHURNLENS_DEBUG", raising=False)
    write(tmp_path, "purchases.csv", "customer_id,timestamp,amount\nc1,2024-01-01,1\nc2,2024-01-02,abc\n")
    debugged = CliRunner().invoke(cli, ["--debug", "validate", str(tmp_path)], terminal_width=300)
    assert debugged.exit_code == 2 and "Traceback" in debugged.output
    # the next invocation in the same process did not ask for tracebacks
    plain = CliRunner().invoke(cli, ["validate", str(tmp_path)], terminal_width=300)
    assert plain.exit_code == 2 and "Traceback" not in plain.output


def test_cli_reads_column_mapping_from_config(cli: typer.Typer, tmp_path: Path) -> None:
    write(tmp_path / "data", "purchases.csv", "CustomerID,Date,amount\nx,2024-01-01,5\n")
    config = write(
        tmp_path, "churn.toml", '[columns.purchases]\nCustomerID = "customer_id"\nDate = "timestamp"\n'
    )
    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "data"), "--config", str(config)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "data")], terminal_width=300)
    assert result.exit_code == 2 and "column 'customer_id': is required but missing" in result.stderr
    result = CliRunner().invoke(
        cli, ["validate", str(tmp_path / "data"), "--data-end", "soon"], terminal_width=300
    )
    assert result.exit_code == 2 and "--data-end 'soon' is not a timestamp" in result.stderr


def test_null_words_are_missing_in_numbers_but_kept_in_ids_and_text(tmp_path: Path) -> None:
    write(
        tmp_path,
        "purchases.csv",
        "customer_id,timestamp,amount,quantity,channel\nNA,2024-01-01,1,NA,NA\nc2,2024-01-02,2,null,\n",
    )
    tables, _ = load_tables(tmp_path)
    assert tables.purchases["customer_id"].tolist() == ["NA", "c2"]
    assert tables.purchases["channel"].astype(S).tolist() == ["NA", pd.NA]
    assert tables.purchases["quantity"].isna().tolist() == [True, True]


def test_other_data_like_files_are_refused(good_dir: Path) -> None:
    write(good_dir, "orders.parquet", "x")
    fails("table 'orders': file orders.parquet matches no known table", good_dir)
    (good_dir / "orders.parquet").unlink()
    write(good_dir, "export.xlsx", "x")
    fails("table 'export': file export.xlsx matches no known table", good_dir)


@pytest.mark.parametrize("layout", ["shuffled", "by_customer_and_time", "by_time", "by_customer_only"])
def test_sort_order_is_the_stable_two_key_order_whatever_the_input_layout(layout):
    """The shortcuts for inputs already sorted give exactly the stable (customer, time) order."""
    from churnlens.data.validate import _sort_order

    rng = np.random.default_rng(7)
    codes = rng.integers(0, 50, 2_000)
    ts = rng.integers(0, 40, 2_000) * 86_400_000_000  # microseconds, as the caller passes them
    if layout == "by_customer_and_time":
        order = np.lexsort((ts, codes))
    elif layout == "by_time":
        order = np.argsort(ts, kind="stable")
    elif layout == "by_customer_only":
        order = np.argsort(codes, kind="stable")
    else:
        order = np.arange(len(ts))
    codes, ts = codes[order], ts[order]
    np.testing.assert_array_equal(_sort_order(codes, ts), np.lexsort((ts, codes)))


def test_top_values_of_timestamps_are_the_largest():
    from churnlens.data.tables import top_values

    rng = np.random.default_rng(3)
    ts = rng.integers(0, 10**15, 5_000).astype("datetime64[us]")
    got = np.sort(top_values(ts, 12))
    np.testing.assert_array_equal(got, np.sort(ts)[-12:])
    assert got.dtype == ts.dtype
