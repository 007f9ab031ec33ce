"""``churnlens campaign-report``: the measured effect of a sent campaign, once its horizon has passed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from churnlens.cli.common import Lang, TrackingUriOption, choice, console, handle_errors
from churnlens.cli.sources import load_data
from churnlens.config import load_config
from churnlens.i18n import check_lang

#: The effects are shown in two tables: churn and uplift, then value and cost.
CHURN_COLUMNS = ("col-action", "col-treated", "col-control", "col-churn-treated", "col-churn-control", "col-uplift",
                 "col-save-rate")  # fmt: skip
VALUE_COLUMNS = ("col-action", "col-saved-value", "col-cost", "col-roi")


def effects_table(texts: dict, columns: tuple[str, ...], title: str | None = None, caption: str | None = None) -> Table:
    """Some columns of a report's effects as a rich table (intervals on a second line)."""
    table = Table(title=title, caption=caption, caption_justify="left")
    headers = dict(zip(texts["columns"], texts["headers"], strict=True))
    for i, column in enumerate(columns):
        table.add_column(headers[column], justify="left" if i == 0 else "right")
    for k, row in enumerate(texts["rows"]):
        cells = []
        for column in columns:
            interval = row.get(f"{column}:interval")
            cells.append(row[column] + (f"\n[dim]{interval}[/]" if interval else ""))
        table.add_row(*cells, style="bold" if k == len(texts["rows"]) - 1 else None)
    return table


def quality_tables(texts: dict) -> list[Table]:
    """The model's realised quality: its figures, then the calibration deciles."""
    quality = texts["quality"]
    if quality is None:
        return []
    facts = Table(title=texts["quality_title"], caption=quality["population"], caption_justify="left",
                  show_header=False)  # fmt: skip
    facts.add_column("what")
    facts.add_column("value", justify="right")
    for label, value in quality["facts"]:
        facts.add_row(label, value)
    calibration = Table(title=quality["calibration_title"])
    for i, header in enumerate(quality["calibration_headers"]):
        calibration.add_column(header, justify="left" if i == 0 else "right")
    for row in quality["calibration"]:
        calibration.add_row(row["decile"], row["customers"], row["predicted"], row["observed"])
    return [facts, calibration]


@handle_errors
def campaign_report(
    data_dir: Annotated[str, typer.Argument(help="Directory of input tables or postgresql://...?schema=NAME, with the campaign's rows in contacts.")],
    campaign: Annotated[str, typer.Option("--campaign", help="Campaign id (contacts.campaign_id).")],
    horizon: Annotated[
        int | None,
        typer.Option(help="Days of outcome after the send date (default: the scoring model's horizon, else [labels] horizon_days)."),
    ] = None,
    scored_list: Annotated[
        Path | None,
        typer.Option(
            "--list",
            help="The campaign list the campaign was drawn from (written by churnlens score --campaign-id, its "
            "summary beside it): adds the model's realised quality and links the report to the model version.",
        ),
    ] = None,
    label_mode: Annotated[
        str | None,
        typer.Option(help="What churn means: non_contractual (no purchase) or contractual (a cancellation); default the scoring model's, else [labels] mode."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Report files <out>.json and <out>.html (default campaign-report-<ID>)."),
    ] = None,
    lang: Annotated[Lang | None, typer.Option(help="Language of the report (default [serving] lang).")] = None,
    tracking_uri: TrackingUriOption = None,
    log: Annotated[
        bool, typer.Option("--log/--no-log", help="Log the report to MLflow as a monitoring run (default: log).")
    ] = True,
    config: Annotated[Path | None, typer.Option(help="TOML config: [columns.<table>], [labels], [[actions]] costs.")] = None,
) -> None:
    """Measure a sent campaign: churn of treated vs control customers per action, uplift, saved value and ROI.

    Refuses (exit status 2) until send date + horizon has passed in the data, saying when the report will be possible. With --list it also reports the model's ROC AUC and calibration on the customers the campaign did not treat. Writes a JSON and an HTML report and logs them to MLflow, tagging the model version that scored the list.
    """  # noqa: E501 (one line per paragraph: typer keeps line breaks)
    from churnlens.serving.campaign_report import campaign_report as build_report
    from churnlens.serving.campaign_report import read_scored_list
    from churnlens.serving.report_render import report_texts, write_report
    from churnlens.serving.report_tracking import log_campaign_report

    cfg = load_config(config)
    language = check_lang(choice(lang) or cfg.serving.lang)
    scored = None if scored_list is None else read_scored_list(scored_list)
    with console.status("reading the data"):
        tables = load_data(data_dir, cfg)[0]
    report = build_report(tables, campaign, horizon_days=horizon, mode=label_mode, scored=scored, config=cfg)
    target = out if out is not None else Path(f"campaign-report-{campaign}")
    files = write_report(report, target, language)
    logged = None
    if log:
        logged = log_campaign_report(report, files, tracking_uri=tracking_uri)
        files = write_report(report, target, language, mlflow_run=logged["run_id"], experiment=logged["experiment"])
    texts = report_texts(report, language)
    console.print(effects_table(texts, CHURN_COLUMNS, texts["title"], f"{texts['sent']} {texts['churn']}"))
    console.print(effects_table(texts, VALUE_COLUMNS, caption=f"{texts['value_source']} {texts['cost_source']}"))
    console.print(texts["reading"], style="dim", highlight=False)
    for table in quality_tables(texts) or [texts["no_quality"]]:
        console.print(table, highlight=False)
    for note in texts["notes"]:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    for name, path in files.items():
        console.print(f"wrote {name}: {path}", highlight=False)
    if logged is not None:
        console.print(f"MLflow run {logged['run_id']} in {logged['experiment']}; {logged['linked']}", highlight=False)
