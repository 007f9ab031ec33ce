"""``churnlens features``: snapshots to files, the catalog as a table, errors with exit status 2."""

from __future__ import annotations

import pandas as pd
import pytest
from test_features_builders import make_tables  # noqa: I001 (sibling test module)
from typer.testing import CliRunner

from churnlens.cli.main import app
from churnlens.data.io import write_tables
from churnlens.features import build_snapshot, snapshot_columns

runner = CliRunner()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("data")
    write_tables(make_tables(), path, fmt="parquet")
    return path


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_writes_a_snapshot(data_dir, tmp_path, suffix):
    out = tmp_path / f"snap{suffix}"
    result = runner.invoke(app, ["features", str(data_dir), "--cutoff", "2024-06-01", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 2 active customers" in result.output
    frame = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    tables = make_tables()
    assert list(frame.columns) == ["customer_id"] + snapshot_columns(tables)
    assert frame["customer_id"].tolist() == ["a", "b"]
    expected = build_snapshot(tables, "2024-06-01")
    assert frame["days_since_last_purchase"].tolist() == expected["days_since_last_purchase"].tolist()


def test_prints_the_catalog_in_french():
    result = runner.invoke(app, ["features", "--catalog", "--lang", "fr"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Catalogue des variables" in result.output
    assert "days_since_last_purchase" in result.output
    assert "Jours depuis le dernier achat du client" in result.output


def test_prints_the_catalog_in_english():
    result = runner.invoke(app, ["features", "--catalog"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Feature catalog" in result.output and "Days since the customer's last purchase" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["features", "--catalog", "--lang", "de"], "'de' is not one of 'en', 'fr'"),
        (["features"], "give a DATA_DIR"),
        (["features", "DATA", "--out", "x.parquet"], "--cutoff is required"),
        (["features", "DATA", "--cutoff", "2024-06-01"], "--out is required"),
        (["features", "DATA", "--cutoff", "2024-06-01", "--out", "x.xlsx"], "must end in .parquet or .csv"),
        (["features", "DATA", "--cutoff", "soon", "--out", "x.csv"], "cutoff 'soon' is not a date"),
    ],
)
def test_errors_exit_with_status_2(data_dir, tmp_path, args, message):
    args = [str(data_dir) if a == "DATA" else a for a in args]
    args = [str(tmp_path / a) if a.startswith("x.") else a for a in args]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_missing_data_dir_exits_with_status_2(tmp_path):
    result = runner.invoke(
        app,
        ["features", str(tmp_path / "nowhere"), "--cutoff", "2024-06-01", "--out", str(tmp_path / "x.csv")],
    )
    assert result.exit_code == 2
