"""``churnlens explain``: why one customer is at risk, in words, optionally as an HTML card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from churnlens.cli.common import Lang, ModelUriOption, TrackingUriOption, choice, console, handle_errors
from churnlens.cli.score_cmd import NO_CUTOFF_HELP, scoring_settings
from churnlens.cli.sources import DATA_HELP, load_data, local_inputs, shown
from churnlens.config import load_config
from churnlens.data.tables import Tables
from churnlens.errors import InputError
from churnlens.features import parse_cutoff


def one_customer(tables: Tables, customer_id: str) -> Tables:
    """The tables restricted to one customer (features are per-customer functions of their events)."""
    return tables.replace(
        **{
            name: frame[(frame["customer_id"] == customer_id).to_numpy(dtype=bool)].reset_index(drop=True)
            for name, frame in tables.present().items()
        }
    )


@handle_errors
def explain(
    data_dir: Annotated[str, typer.Argument(help=DATA_HELP)],
    customer: Annotated[str, typer.Option("--customer", help="Customer id to explain.")],
    cutoff: Annotated[
        str | None, typer.Option(help=f"As of this date (YYYY-MM-DD, exclusive); {NO_CUTOFF_HELP}.")
    ] = None,
    model: ModelUriOption = None,
    tracking_uri: TrackingUriOption = None,
    lang: Annotated[Lang | None, typer.Option(help="Language of the reasons and the table (default [serving] lang, else en).")] = None,
    reasons: Annotated[int | None, typer.Option(help="Number of reasons (default 3).")] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a one-page explanation card (HTML).")
    ] = None,
    value_column: Annotated[
        str | None, typer.Option(help="Customer value column; default trailing-12-month spend.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config: [columns.<table>] and [serving]; options given here win.")] = None,
) -> None:
    """Print the churn probability, risk band and top reasons of one customer; --html writes a card."""
    from churnlens.features import build_snapshot
    from churnlens.i18n import Words
    from churnlens.serving import load_model
    from churnlens.serving.batch import default_cutoff
    from churnlens.serving.card import explain_customer, write_card
    from churnlens.serving.core import customer_values, feature_config_of
    from churnlens.serving.loader import check_compatible
    from churnlens.serving.output import check_out_path
    from churnlens.serving.rejects import find_rejects
    from churnlens.serving.timeline import customer_timeline

    cfg = load_config(config)
    settings = scoring_settings(cfg, lang=choice(lang), reasons=reasons, value_column=value_column)
    if html is not None and html.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"--html {html} must end in .html")
    if html is not None:
        check_out_path(html, [*local_inputs(data_dir), *([config] if config else [])])
    when = None if cutoff is None else parse_cutoff(cutoff, name="--cutoff")
    if when is not None:
        cfg.bounds.check_cutoff(when, what="--cutoff")
    tables, _ = load_data(data_dir, cfg)
    when = default_cutoff(tables) if when is None else when
    if customer not in tables.customer_ids():
        raise InputError(f"customer {customer!r} is not in the data in {shown(data_dir)}")
    loaded = load_model(model, tracking_uri=tracking_uri)
    mine = one_customer(tables, customer)
    features = feature_config_of(loaded.model)
    snapshot = build_snapshot(mine, when, features)
    if customer not in snapshot.index:
        rejects = find_rejects(mine, when, snapshot.index, active_window_days=features.active_window_days)
        reason = rejects["reason"].iloc[0] if len(rejects) else "not active"
        raise InputError(f"customer {customer!r} is not scored at cutoff {when.date()}: {reason}")
    check_compatible(loaded, snapshot, tables=tables)
    values, _ = customer_values(mine, snapshot, when, settings.value_column)
    explanation = explain_customer(
        loaded.model, snapshot, customer, cutoff=str(when.date()), settings=settings,
        customer_value=float(values[0]), model_name=loaded.name, model_version=loaded.version,
    )  # fmt: skip
    words = Words(settings.lang, settings.currency)
    table = Table(
        title=words(
            "explain-title", customer=customer, cutoff=words.date(when), probability=words.percent(explanation.probability, 1),
            band=words("risk-band", band=explanation.risk_band),
        ),
        show_header=True,
    )
    table.add_column(words("explain-rank"), justify="right")
    table.add_column(words("explain-reason"))
    table.add_column(words("explain-effect"), justify="right")
    for row in explanation.reasons.itertuples():
        table.add_row(str(row.rank), str(row.text), words.points(row.effect))
    if explanation.reasons.empty:
        table.add_row("", words("explain-no-reason"), "")
    console.print(table, highlight=False)
    if explanation.value_at_risk is not None:
        console.print(
            words("explain-value", value=words.money(explanation.customer_value),
                  at_risk=words.money(explanation.value_at_risk)),
            highlight=False,
        )  # fmt: skip
    if html is not None:
        timeline = customer_timeline(mine, when, words)
        path = write_card(explanation, html, timeline=timeline)
        console.print(words("explain-card", path=str(path)), highlight=False)
