"""Turn a line-level transactions file (one row per invoice line) into the ``purchases`` table.

Most users start from exactly such an export: order id, customer, timestamp, quantity and
unit price per line. Lines are summed per order (one purchase per order, so frequency
counts visits, not lines); negative quantities (returns) become refunds with negative amounts.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnlens.data.errors import DataValidationError
from churnlens.errors import InputError, MissingInputError


@dataclass(frozen=True)
class TransactionColumns:
    """Which columns of the user's file hold what. Give ``amount``, or ``quantity`` and ``unit_price``."""

    customer_id: str
    timestamp: str
    amount: str | None = None
    quantity: str | None = None
    unit_price: str | None = None
    order_id: str | None = None
    category: str | None = None
    channel: str | None = None

    def __post_init__(self) -> None:
        if self.amount is None and (self.quantity is None or self.unit_price is None):
            raise InputError("transactions mapping needs an amount column, or both quantity and unit_price columns")

    @classmethod
    def from_toml(cls, path: str | Path) -> TransactionColumns:
        """Read the ``[transactions]`` section of a TOML file (contract name = "user column")."""
        raw = tomllib.loads(Path(path).read_text()).get("transactions")
        if raw is None:
            raise InputError(f"{path} has no [transactions] section")
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise InputError(f"[transactions] in {path} has unknown keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**raw)


@dataclass(frozen=True)
class ImportReport:
    """What the import did, for the user to read; nothing is dropped silently."""

    input_rows: int
    rows_without_customer: int
    amount_without_customer: float
    purchases: int
    customers: int
    refunds: int

    def lines(self) -> list[str]:
        share = self.rows_without_customer / self.input_rows if self.input_rows else 0.0
        return [
            f"{self.input_rows:,} transaction lines read",
            f"{self.rows_without_customer:,} lines ({share:.1%}, amount {self.amount_without_customer:,.2f}) have no "
            "customer id and cannot be attributed to anyone: left out of purchases",
            f"{self.purchases:,} purchases ({self.refunds:,} refunds/returns) of {self.customers:,} customers written",
        ]


def read_table_file(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file (by extension)."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{path} does not exist")
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    if path.suffix.lower() in (".parquet", ".pq") or path.is_dir():
        return pd.read_parquet(path)
    raise InputError(f"{path}: unsupported file type '{path.suffix}' (use .csv or .parquet)")


def _customer_ids(values: pd.Series) -> pd.Series:
    """Customer ids as text; float ids from spreadsheets (17850.0) lose their '.0'."""
    if pd.api.types.is_float_dtype(values):
        whole = values.dropna()
        if (whole == np.floor(whole)).all():
            return values.astype("Int64").astype("string")
    return values.astype("string").str.strip().replace("", pd.NA)


def transactions_to_purchases(raw: pd.DataFrame, columns: TransactionColumns) -> tuple[pd.DataFrame, ImportReport]:
    """Aggregate transaction lines to one ``purchases`` row per order.

    Parameters
    ----------
    raw : DataFrame
        One row per transaction line, in the user's column names.
    columns : TransactionColumns
        Where each contract column comes from.

    Returns
    -------
    (DataFrame, ImportReport)
        Purchases (customer_id, timestamp, amount, order_id, quantity, category, channel as
        available) and what was done.

    Raises
    ------
    DataValidationError
        When a mapped column is missing or amounts are not numeric.
    """
    mapping = {f.name: getattr(columns, f.name) for f in fields(columns) if getattr(columns, f.name)}
    for target, source in mapping.items():
        if source not in raw.columns:
            raise DataValidationError(
                "transactions", source, f"is mapped to '{target}' but is not in the file (columns: {list(raw.columns)})"
            )
    out = pd.DataFrame({"customer_id": _customer_ids(raw[columns.customer_id]),
                        "timestamp": raw[columns.timestamp]})
    numeric = {}
    for name in ("amount", "quantity", "unit_price"):
        source = mapping.get(name)
        if source:
            values = pd.to_numeric(raw[source], errors="coerce")
            bad = values.isna() & raw[source].notna()
            if bad.any():
                rows = [f"row {i}: {raw[source].iloc[i]!r}" for i in np.flatnonzero(bad.to_numpy())[:5]]
                raise DataValidationError("transactions", source, "is not numeric", rows)
            numeric[name] = values.astype("float64")
    out["amount"] = numeric["amount"] if "amount" in numeric else numeric["quantity"] * numeric["unit_price"]
    if "quantity" in numeric:
        out["quantity"] = numeric["quantity"]
    for name in ("order_id", "category", "channel"):
        if name in mapping:
            out[name] = raw[mapping[name]].astype("string")
    missing = out["customer_id"].isna()
    report_missing = (int(missing.sum()), float(out.loc[missing, "amount"].sum()))
    out = out[~missing]
    if "order_id" in out:
        # Returns and purchases of one invoice share its sign; keep them apart if an invoice mixes both.
        out["_sign"] = np.sign(out["amount"]).astype("int8")
        keys = ["customer_id", "order_id", "_sign"]
        agg: dict[str, Any] = {"timestamp": "min", "amount": "sum"}
        if "quantity" in out:
            agg["quantity"] = "sum"
        for name in ("category", "channel"):
            if name in out:
                agg[name] = "first"
        out = out.groupby(keys, sort=False, observed=True, dropna=False).agg(agg).reset_index().drop(columns="_sign")
    contract = ("customer_id", "timestamp", "amount", "order_id", "quantity", "category", "channel")
    order = [c for c in contract if c in out]
    out = out[order].sort_values(["customer_id", "timestamp"], kind="stable").reset_index(drop=True)
    report = ImportReport(
        input_rows=len(raw),
        rows_without_customer=report_missing[0],
        amount_without_customer=report_missing[1],
        purchases=len(out),
        customers=int(out["customer_id"].nunique()),
        refunds=int((out["amount"] < 0).sum()),
    )
    return out, report
