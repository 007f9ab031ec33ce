"""``churnlens import-transactions``: a line-level transactions file -> the purchases table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnlens.cli.common import console, handle_errors
from churnlens.errors import InputError


@handle_errors
def import_transactions(
    source: Annotated[Path, typer.Argument(help="Transactions file (.csv or .parquet), one row per line item.")],
    out: Annotated[Path, typer.Option(help="Data directory to write purchases.<format> into.")],
    mapping: Annotated[Path | None, typer.Option(help="TOML file with a [transactions] section: contract name = \"your column\".")] = None,
    customer_id: Annotated[str | None, typer.Option(help="Column holding the customer id.")] = None,
    timestamp: Annotated[str | None, typer.Option(help="Column holding the transaction time.")] = None,
    amount: Annotated[str | None, typer.Option(help="Column holding the line amount (else quantity x unit price).")] = None,
    quantity: Annotated[str | None, typer.Option(help="Column holding the quantity (negative for returns).")] = None,
    unit_price: Annotated[str | None, typer.Option(help="Column holding the unit price.")] = None,
    order_id: Annotated[str | None, typer.Option(help="Column holding the order/invoice id: lines are summed per order.")] = None,
    category: Annotated[str | None, typer.Option(help="Column holding a product category.")] = None,
    channel: Annotated[str | None, typer.Option(help="Column holding the sales channel (or country).")] = None,
    format: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
) -> None:
    """Aggregate transaction lines into one purchase per order and write `purchases` for churnlens.

    Lines without a customer id cannot be attributed: they are counted and reported, not written.
    Give the columns with --mapping FILE or with the options (options win).
    """
    from churnlens.data.transactions import TransactionColumns, read_table_file, transactions_to_purchases
    from churnlens.serving.output import check_out_path, write_table

    given = {"customer_id": customer_id, "timestamp": timestamp, "amount": amount, "quantity": quantity,
             "unit_price": unit_price, "order_id": order_id, "category": category, "channel": channel}
    base = TransactionColumns.from_toml(mapping).__dict__ if mapping else {}
    merged = {**base, **{k: v for k, v in given.items() if v}}
    if "customer_id" not in merged or "timestamp" not in merged:
        raise InputError("say which columns hold the customer id and the timestamp (--customer-id, --timestamp or --mapping)")
    if format not in ("parquet", "csv"):
        raise InputError(f"--format must be parquet or csv, not {format!r}")
    target = out / f"purchases.{format}"
    check_out_path(target, [source, *([mapping] if mapping else [])])
    purchases, report = transactions_to_purchases(read_table_file(source), TransactionColumns(**merged))
    write_table(purchases, target, format)
    for line in report.lines():
        console.print(line)
    console.print(f"Wrote [bold]{target}[/]")
