"""Line-level transactions -> purchases: aggregation per order, returns, missing customers reported."""

from __future__ import annotations

import pandas as pd
import pytest

from churnlens.data import DataValidationError, load_tables
from churnlens.data.transactions import TransactionColumns, transactions_to_purchases

LINES = pd.DataFrame(
    {
        "Invoice": ["A1", "A1", "A2", "CA3", "A4", "A5"],
        "Customer": [17850.0, 17850.0, 12345.0, 17850.0, None, 12345.0],
        "When": pd.to_datetime(["2024-01-02 10:00", "2024-01-02 10:00", "2024-01-05 09:00", "2024-01-09 12:00",
                                "2024-01-10 08:00", "2024-02-01 08:00"]),
        "Qty": [2, 1, 3, -1, 5, 1],
        "Price": [10.0, 5.0, 2.0, 10.0, 1.0, 7.5],
        "Sku": ["X", "Y", "Z", "X", "Q", "Z"],
    }
)
COLUMNS = TransactionColumns(customer_id="Customer", timestamp="When", quantity="Qty", unit_price="Price",
                             order_id="Invoice", category="Sku")


def test_lines_are_summed_per_order_and_returns_are_negative():
    purchases, report = transactions_to_purchases(LINES, COLUMNS)
    assert purchases["customer_id"].tolist() == ["12345", "12345", "17850", "17850"]
    assert purchases["order_id"].tolist() == ["A2", "A5", "A1", "CA3"]
    assert purchases["amount"].tolist() == [6.0, 7.5, 25.0, -10.0]
    assert purchases["quantity"].tolist() == [3.0, 1.0, 3.0, -1.0]
    assert (report.input_rows, report.rows_without_customer, report.amount_without_customer) == (6, 1, 5.0)
    assert (report.purchases, report.customers, report.refunds) == (4, 2, 1)
    assert "1 lines (16.7%, amount 5.00) have no customer id" in report.lines()[1]


def test_imported_purchases_pass_validation(tmp_path):
    purchases, _ = transactions_to_purchases(LINES, COLUMNS)
    purchases.to_csv(tmp_path / "purchases.csv", index=False)
    tables, _ = load_tables(tmp_path)
    assert len(tables.purchases) == 4 and tables.purchases["amount"].sum() == pytest.approx(28.5)


def test_mapping_errors_are_named():
    with pytest.raises(DataValidationError, match="table 'transactions', column 'Nope': is mapped to 'order_id'"):
        transactions_to_purchases(LINES, TransactionColumns(customer_id="Customer", timestamp="When", amount="Qty",
                                                            order_id="Nope"))
    bad = LINES.assign(Qty=["2", "x", "3", "-1", "5", "1"])
    with pytest.raises(DataValidationError, match=r"column 'Qty': is not numeric; offending rows: row 1: 'x'"):
        transactions_to_purchases(bad, COLUMNS)
    with pytest.raises(ValueError, match="needs an amount column, or both quantity and unit_price"):
        TransactionColumns(customer_id="c", timestamp="t", quantity="q")


def test_cli_import_transactions(tmp_path):
    from typer.testing import CliRunner

    from churnlens.cli.main import app

    LINES.to_csv(tmp_path / "lines.csv", index=False)
    (tmp_path / "map.toml").write_text(
        '[transactions]\ncustomer_id = "Customer"\ntimestamp = "When"\nquantity = "Qty"\n'
        'unit_price = "Price"\norder_id = "Invoice"\n'
    )
    result = CliRunner().invoke(app, ["import-transactions", str(tmp_path / "lines.csv"), "--out",
                                      str(tmp_path / "data"), "--mapping", str(tmp_path / "map.toml")])
    assert result.exit_code == 0, result.output
    assert "have no customer id" in result.output
    assert len(pd.read_parquet(tmp_path / "data" / "purchases.parquet")) == 4
    result = CliRunner().invoke(app, ["import-transactions", str(tmp_path / "lines.csv"), "--out", str(tmp_path / "d2"),
                                      "--customer-id", "Customer", "--timestamp", "When", "--amount", "Nope"])
    assert result.exit_code == 2 and "column 'Nope'" in result.output
