"""Bad tables a careless user sends (issue 11, rows 4-7 and 10): bounds, outlier dates, folders, ids."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from typer.testing import CliRunner

from churnlens.cli.main import app
from churnlens.data import DataValidationError, load_tables, validate_tables
from churnlens.data.bounds import InputBounds
from churnlens.data.tables import observed_end
from churnlens.errors import InputError
from churnlens.features import build_snapshot, training_cutoffs
from churnlens.features.catalog import format_value
from churnlens.features.labels import observed_until
from churnlens.i18n import Words
from churnlens.serving.batch import default_cutoff
from churnlens.serving.rejects import FIRST_EVENT_AFTER, find_rejects

NOW = pd.Timestamp("2026-06-01")
runner = CliRunner()


def _purchases(n_customers: int = 150, days: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_customers * 10
    start = pd.Timestamp("2024-01-01")
    return pd.DataFrame(
        {
            "customer_id": [f"C{i % n_customers}" for i in range(n)],
            "timestamp": start + pd.to_timedelta(np.sort(rng.integers(0, days * 24, n)), unit="h"),
            "amount": rng.gamma(2.0, 20.0, n).round(2),
        }
    )


def _write(folder: Path, purchases: pd.DataFrame, fmt: str = "csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        purchases.to_csv(folder / "purchases.csv", index=False)
    else:
        purchases.to_parquet(folder / "purchases.parquet", index=False)
    return folder


# --------------------------------------------------------------------------- row 4: a lone outlier date


def test_a_far_future_typo_is_a_hard_error_naming_the_row(tmp_path):
    purchases = _purchases()
    purchases["timestamp"] = purchases["timestamp"].astype(str)
    purchases.loc[17, "timestamp"] = "2204-03-01 10:00:00"
    result = runner.invoke(app, ["validate", str(_write(tmp_path / "d", purchases))])
    assert result.exit_code == 2
    assert "column 'timestamp'" in result.output and "row 18: 2204-03-01 10:00:00" in result.output
    assert "allowed time range" in result.output


def test_a_lone_outlier_within_the_bounds_moves_no_default_and_is_reported():
    purchases = _purchases()
    clean, _ = validate_tables({"purchases": purchases}, now=NOW)
    typo = pd.DataFrame({"customer_id": ["LATE"], "timestamp": [pd.Timestamp("2026-01-15")], "amount": [12.0]})
    tables, report = validate_tables({"purchases": pd.concat([purchases, typo], ignore_index=True)}, now=NOW)
    assert tables.last_event == pd.Timestamp("2026-01-15")
    assert tables.data_end == clean.data_end
    assert default_cutoff(tables) == default_cutoff(clean)
    assert observed_until(tables) == observed_until(clean)
    assert training_cutoffs(tables, horizon_days=90) == training_cutoffs(clean, horizon_days=90)
    (repair,) = report.repairs_of("isolated_late_events")
    assert repair.rows_affected == 1 and repair.example_rows == ("customer_id='LATE', timestamp=2026-01-15T00:00:00",)
    # the rows are kept: the customer seen only then is not lost, it is a reject with a reason
    cutoff = default_cutoff(tables)
    snapshot = build_snapshot(tables, cutoff)
    rejects = find_rejects(tables, cutoff, snapshot.index)
    assert rejects.set_index("customer_id").loc["LATE", "reason"] == FIRST_EVENT_AFTER


def test_the_data_end_follows_a_steady_stream_and_a_new_season():
    purchases = _purchases()
    tables, report = validate_tables({"purchases": purchases}, now=NOW)
    assert tables.data_end == tables.last_event and not report.repairs_of("isolated_late_events")
    season = _purchases(n_customers=40, days=30, seed=1)
    season["timestamp"] += pd.Timedelta(days=600)  # a new season after a long pause: many events
    tables, report = validate_tables({"purchases": pd.concat([purchases, season], ignore_index=True)}, now=NOW)
    assert tables.data_end == tables.last_event and not report.repairs_of("isolated_late_events")


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    gaps=st.lists(st.integers(min_value=0, max_value=89 * 24), min_size=0, max_size=300),
    repeat=st.integers(min_value=1, max_value=40),
    late_days=st.integers(min_value=1, max_value=40_000),
)
def test_one_late_event_moves_the_data_end_only_when_it_is_not_isolated(gaps, repeat, late_days):
    """Events with no gap above 90 days, then one more: it moves the end only when it is far."""
    start = np.datetime64("1990-01-01T00:00:00", "us")
    bulk = np.repeat(start + np.cumsum([0, *gaps]).astype("timedelta64[h]").astype("timedelta64[us]"), repeat)
    assert observed_end(bulk, len(bulk), pd.Timestamp(start)) == pd.Timestamp(bulk[-1])
    outlier = bulk[-1] + np.timedelta64(late_days, "D")
    end = observed_end(np.append(bulk, outlier), len(bulk) + 1, pd.Timestamp(start))
    far = late_days > 90 and late_days > 0.1 * (bulk[-1] - start) / np.timedelta64(1, "D")
    isolated = far and len(bulk) + 1 >= 1000  # below 1000 events nothing is isolated
    assert end == (pd.Timestamp(bulk[-1]) if isolated else pd.Timestamp(outlier))


# --------------------------------------------------------------------------- rows 5 and 6: bounds


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("when", ["2263-01-01", "1650-01-01", "1899-12-31", "9999-12-31"])
def test_timestamps_outside_the_bounds_are_hard_errors(tmp_path, fmt, when):
    purchases = _purchases()
    if fmt == "csv":
        purchases["timestamp"] = purchases["timestamp"].astype(str)
        purchases.loc[5, "timestamp"] = when
    else:  # microsecond Parquet timestamps reach years 1 to 9999
        stamps = purchases["timestamp"].to_numpy(dtype="datetime64[us]").copy()
        stamps[5] = np.datetime64(when, "us")
        purchases = pa.table({**{c: purchases[c] for c in ("customer_id", "amount")}, "timestamp": stamps})
    folder = tmp_path / "d"
    if fmt == "csv":
        _write(folder, purchases)
    else:
        folder.mkdir()
        pq.write_table(purchases, folder / "purchases.parquet")
    with pytest.raises(DataValidationError, match=r"allowed time range .*offending rows: row 6"):
        load_tables(folder)
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_bounds_are_configurable_and_bound_cutoffs_too():
    purchases = _purchases()
    purchases.loc[3, "timestamp"] = pd.Timestamp("1850-06-01")
    with pytest.raises(DataValidationError, match="1900-01-01"):
        validate_tables({"purchases": purchases}, now=NOW)
    tables, _ = validate_tables({"purchases": purchases}, now=NOW, bounds=InputBounds(earliest="1800-01-01"))
    assert tables.data_start == pd.Timestamp("1850-06-01")
    future = _purchases()
    future.loc[3, "timestamp"] = NOW + pd.Timedelta(days=3)
    with pytest.raises(DataValidationError, match=r"load time \+ 1 day"):
        validate_tables({"purchases": future}, now=NOW)
    validate_tables({"purchases": future}, now=NOW, bounds=InputBounds(future_days=7))
    bounds = InputBounds()
    bounds.check_cutoff("2024-06-01", now=NOW)
    with pytest.raises(InputError, match="cutoff 9999-12-31 is outside the allowed range"):
        bounds.check_cutoff("9999-12-31", now=NOW)
    with pytest.raises(InputError, match="--cutoff 1500-01-01"):
        bounds.check_cutoff("1500-01-01", what="--cutoff", now=NOW)
    with pytest.raises(InputError, match="max_abs_amount"):
        InputBounds(max_abs_amount=float("inf"))


@pytest.mark.parametrize("column, value", [("amount", 1e30), ("amount", -2e12), ("quantity", 5e13)])
def test_huge_amounts_are_hard_errors_unless_allowed(tmp_path, column, value):
    purchases = _purchases().assign(quantity=1.0)
    purchases.loc[7, column] = value
    with pytest.raises(DataValidationError, match=rf"column '{column}': is larger than the largest allowed amount"):
        validate_tables({"purchases": purchases}, now=NOW)
    result = runner.invoke(app, ["validate", str(_write(tmp_path / "d", purchases))])
    assert result.exit_code == 2 and "row 8" in result.output
    # allowed by configuration: then every feature value can still be shown
    tables, _ = validate_tables({"purchases": purchases}, now=NOW, bounds=InputBounds(max_abs_amount=1e31))
    snapshot = build_snapshot(tables, default_cutoff(tables))
    for value in snapshot.select_dtypes("number").to_numpy().ravel():
        for unit in ("amount", "count", "days", "share", "ratio", "minutes", "points", "category"):
            assert isinstance(format_value(value, unit, "fr"), str)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    value=st.floats(allow_nan=True, allow_infinity=True), decimals=st.integers(0, 4), lang=st.sampled_from(["en", "fr"])
)
def test_every_number_can_be_formatted(value, decimals, lang):
    text = Words(lang).number(value, decimals)
    assert text
    if np.isfinite(value) and abs(value) < 1e15:
        digits = text.replace("\u2212", "-")  # a real minus sign
        digits = digits.replace(",", "") if lang == "en" else digits.replace("\u202f", "").replace(",", ".")
        # half-up rounding may differ from round()'s by one unit of the last decimal, never more
        assert abs(float(digits) - round(value, decimals)) <= 10**-decimals * (1 + 1e-9)


# --------------------------------------------------------------------------- row 7: table folders


def _csv_parts(folder: Path, frame: pd.DataFrame, parts: int) -> None:
    folder.mkdir(parents=True)
    for i, chunk in enumerate(np.array_split(np.arange(len(frame)), parts)):
        frame.iloc[chunk].to_csv(folder / f"part-{i:05d}.csv", index=False)
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-00000.csv.crc").write_bytes(b"crc")


def test_a_folder_of_csv_parts_is_read_like_a_single_file(tmp_path):
    purchases = _purchases()
    customers = pd.DataFrame({"customer_id": [f"C{i}" for i in range(40)], "country": ["FR", "DE"] * 20})
    single = _write(tmp_path / "single", purchases)
    customers.to_csv(single / "customers.csv", index=False)
    folder = tmp_path / "folder"
    _csv_parts(folder / "purchases.csv", purchases, 3)
    _csv_parts(folder / "customers.csv", customers, 4)
    (folder / "customers.csv" / "part-00009.csv").write_text("")  # Spark's empty partition
    expected, _ = load_tables(single)
    got, report = load_tables(folder)
    pd.testing.assert_frame_equal(got.purchases, expected.purchases)
    pd.testing.assert_frame_equal(got.customers, expected.customers)
    assert report.tables["customers"].source == "customers.csv/"
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == 0, result.output


def test_bad_table_folders_are_errors_naming_them(tmp_path):
    purchases = _purchases()
    base = _write(tmp_path / "d", purchases)
    (base / "customers.csv").mkdir()
    (base / "customers.csv" / "_SUCCESS").write_text("")
    with pytest.raises(DataValidationError, match=r"customers.csv/ holds no readable part"):
        load_tables(base)
    (base / "customers.csv" / "part-0.csv").write_text("customer_id\nC1\n")
    (base / "customers.csv" / "notes.txt").write_text("hello")
    with pytest.raises(DataValidationError, match=r"customers.csv/ holds notes.txt"):
        load_tables(base)
    (base / "customers.csv" / "notes.txt").unlink()
    (base / "customers.csv" / "part-1.csv").write_text("id\nC2\n")
    with pytest.raises(DataValidationError, match=r"part customers.csv/part-1.csv has the header \['id'\]"):
        load_tables(base)
    (base / "customers.csv" / "part-1.csv").unlink()
    (base / "customers.csv" / "part-2.parquet").write_bytes(b"x")
    with pytest.raises(DataValidationError, match="mixes formats"):
        load_tables(base)
    (base / "customers.csv" / "part-2.parquet").unlink()
    (base / "customers.csv" / "part-0.csv").write_text("")
    with pytest.raises(DataValidationError, match="every part is empty"):
        load_tables(base)
    (base / "customers.csv" / "part-0.csv").write_text("customer_id\nC1\n")
    load_tables(base)
    (base / "customer.csv").mkdir()  # a typo: refused, not skipped
    (base / "customer.csv" / "part-0.csv").write_text("customer_id\nC1\n")
    with pytest.raises(DataValidationError, match="matches no known table"):
        load_tables(base)


# --------------------------------------------------------------------------- row 10: ids


def test_ids_are_stripped_and_nfc_normalised_as_a_reported_repair():
    nfc, nfd = unicodedata.normalize("NFC", "José"), unicodedata.normalize("NFD", "José")
    assert nfc != nfd
    purchases = pd.DataFrame(
        {
            "customer_id": [" C1", "C1 ", "C1", nfc, nfd, "\tC2\n"],
            "timestamp": pd.date_range("2024-01-01", periods=6, freq="D"),
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    tables, report = validate_tables({"purchases": purchases}, now=NOW)
    assert sorted(tables.purchases["customer_id"].unique()) == ["C1", "C2", nfc]
    (repair,) = report.repairs_of("normalised_ids")
    assert repair.rows_affected == 4
    assert repair.example_rows[0] == "row 1: ' C1' -> 'C1'"


def test_an_id_left_empty_is_an_error():
    purchases = _purchases()
    purchases.loc[4, "customer_id"] = " \t "
    with pytest.raises(DataValidationError, match=r"column 'customer_id': is blank .*row 5"):
        validate_tables({"purchases": purchases}, now=NOW)
    with pytest.raises(DataValidationError, match="is blank"):
        validate_tables({"purchases": purchases}, now=NOW, drop_missing_customer=True)


def test_customers_differing_only_by_whitespace_are_one_customer():
    purchases = _purchases()
    customers = pd.DataFrame({"customer_id": ["C1", " C1"], "country": ["FR", "FR"]})
    tables, report = validate_tables({"purchases": purchases, "customers": customers}, now=NOW)
    assert (tables.customers["customer_id"] == "C1").sum() == 1
    assert report.repairs_of("duplicate_rows")
    customers = pd.DataFrame({"customer_id": ["C1", " C1"], "country": ["FR", "DE"]})
    with pytest.raises(DataValidationError, match="duplicate entries"):
        validate_tables({"purchases": purchases, "customers": customers}, now=NOW)


def test_hive_partitioned_csv_parts_keep_their_partition_column(tmp_path):
    purchases = _purchases().assign(channel=lambda f: np.where(np.arange(len(f)) % 3 == 0, "web", "store fr"))
    single = _write(tmp_path / "single", purchases)
    folder = tmp_path / "folder" / "purchases.csv"
    for channel, part in purchases.groupby("channel"):
        where = folder / f"channel={channel.replace(' ', '%20')}"  # escaped as Spark writes it
        where.mkdir(parents=True)
        part.drop(columns="channel").to_csv(where / "part-0.csv", index=False)
    expected, _ = load_tables(single, now=NOW)
    got, _ = load_tables(tmp_path / "folder", now=NOW)
    order = ["customer_id", "timestamp", "amount"]
    pd.testing.assert_frame_equal(
        got.purchases.sort_values(order).reset_index(drop=True),
        expected.purchases.sort_values(order).reset_index(drop=True),
    )
    (folder / "channel=web" / "region=eu").mkdir()
    purchases.drop(columns="channel").head(3).to_csv(folder / "channel=web" / "region=eu" / "p.csv", index=False)
    with pytest.raises(DataValidationError, match="other partition folders"):
        load_tables(tmp_path / "folder", now=NOW)
