"""``churnlens score``: score a whole base into a campaign list with reasons, rejects and drift."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from churnlens.cli.common import Engine, Lang, ModelUriOption, TrackingUriOption, choice, console, handle_errors
from churnlens.cli.sources import (
    DATA_HELP,
    OUT_HELP,
    data_directory,
    load_data,
    local_inputs,
    shown,
    warehouse_target,
    write_to_warehouse,
)
from churnlens.config import MEASURED, TARGETS, ChurnConfig, ScoringSettings, load_config
from churnlens.engine.cluster import check_engine
from churnlens.errors import InputError, SettingError
from churnlens.features import parse_cutoff

#: score --target: whom to contact (choices from :data:`churnlens.config.TARGETS`).
Target = Enum("Target", {name: name for name in TARGETS}, type=str)
#: What "no cutoff" means, said the same way in every command's help.
NO_CUTOFF_HELP = "default: the day after the data's last event"
#: Settings whose option is not named after them.
OPTION_NAMES = {"holdout_seed": "--seed", "assign_actions": "--actions"}

def scoring_settings(config: ChurnConfig, **given: Any) -> ScoringSettings:
    """The ``[serving]`` settings of ``config`` with the command line's given options on top.

    Options left out on the command line are None and keep the TOML value (else the default).
    """
    try:
        return config.serving.override(**given)
    except SettingError as exc:
        if given.get(exc.setting) is not None:
            if exc.setting in OPTION_NAMES:
                raise InputError(f"{OPTION_NAMES[exc.setting]} {exc.problem}") from None
            raise exc.as_option() from None
        raise


def save_rate_option(value: str | None) -> float | str | None:
    """``--save-rate``: a number in [0, 1] or ``measured``."""
    if value is None or value.strip().lower() == MEASURED:
        return None if value is None else MEASURED
    try:
        return float(value)
    except ValueError:
        raise InputError(f'--save-rate must be a number in [0, 1] or "{MEASURED}", got {value!r}') from None


def _money(x: float) -> str:
    return f"{x:,.2f}"


def _action_rows(table: Table, summary: Any) -> None:
    """Rows of the summary table about actions, the contact plan and a measured save rate."""
    if summary.save_rate:
        rate = summary.save_rate
        interval = (
            f" (95 % interval {rate['low']:.3f} to {rate['high']:.3f})"
            if rate.get("low") is not None and rate.get("high") is not None
            else ""
        )
        table.add_row(
            "save rate (measured)",
            f"{rate['value']:.3f}{interval}, campaign {rate['campaign_id']} report (run {str(rate['run_id'])[:8]})",
        )
        if rate.get("expected_saved_value_low") is not None and rate.get("expected_saved_value_high") is not None:
            table.add_row(
                "  expected saved value at the interval's ends",
                f"{_money(rate['expected_saved_value_low'])} to {_money(rate['expected_saved_value_high'])}",
            )
        for action, saved in (rate.get("expected_saved_value_by_action") or {}).items():
            measured = rate["per_action"][action]["value"]
            table.add_row(f"  {action}: expected saved value at its own rate {measured:.3f}", _money(saved))
    if summary.actions:
        counts = summary.actions
        table.add_row("actions", ", ".join(f"{k} {v:,}" for k, v in counts["actions"].items()) + f", none {counts['none']:,}")
        for rule, n in counts.get("blocked_by_pressure", {}).items():
            if n:
                table.add_row(f"  {rule}: contacted too recently", f"{n:,}")
        for rule, n in counts.get("over_capacity", {}).items():
            if n:
                table.add_row(f"  {rule}: over capacity", f"{n:,}")
        for note in counts.get("notes", []):
            table.add_row("  note", note)
    if summary.plan:
        plan = summary.plan
        table.add_row(
            f"contact plan {plan['campaign_id']} (send {plan['send_date']})",
            f"{plan['treatment']:,} treatment / {plan['control']:,} control "
            f"(holdout {plan['holdout']:g}, seed {plan['seed']}); cost {_money(plan['cost'])}",
        )


def _uplift_rows(table: Table, summary: Any, words: Any) -> None:
    """With --target uplift: the uplift list against the risk list at the same budget."""
    uplift = getattr(summary, "uplift", None)
    if not uplift:
        return
    model = uplift["model"]
    table.add_row(words("uplift-model"), f"{model['name']}" + (f" v{model['version']}" if model.get("version") else "")
                  + f" ({model['learner']})")  # fmt: skip
    for key, message in (("uplift_list", "uplift-list"), ("risk_list", "uplift-risk-list")):
        part = uplift[key]
        table.add_row(words(message), words("uplift-list-value", value=words.money(part["expected_incremental_value"]),
                                            customers=words.integer(part["contacted"]), cost=words.money(part["cost"])))  # fmt: skip
    if uplift.get("ratio") is not None:
        table.add_row(words("uplift-ratio"), words.number(uplift["ratio"], 2) + "×")
    if uplift.get("over_budget"):
        table.add_row(words("uplift-over-budget"), words.integer(uplift["over_budget"]))
    for note in uplift.get("notes", []):
        table.add_row(f"  {words('uplift-note')}", note)


def summary_table(summary: Any, paths: dict[str, Path]) -> Table:
    """The run's summary as a rich table, in the run's language."""
    from churnlens.i18n import Words
    from churnlens.serving.rejects import reject_text

    words = Words(summary.lang, getattr(summary, "currency", "EUR"))
    model = summary.model_name + (f" v{summary.model_version}" if summary.model_version else "")
    table = Table(title=words("summary-title", cutoff=words.date(summary.cutoff), model=model), show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row(words("summary-scored"), words.integer(summary.scored))
    bands = summary.bands
    high, medium = summary.band_bounds
    table.add_row(
        words("summary-bands", high=words.number(high, 2), medium=words.number(medium, 2)),
        " / ".join(words.integer(bands[b]) for b in ("high", "medium", "low")),
    )
    table.add_row(words("summary-rejected"), words.integer(summary.rejected))
    for code, count in summary.rejects_by_reason.items():
        table.add_row(f"  {reject_text(code, summary.lang)}", words.integer(count))
    table.add_row(words("summary-selected"), f"{words.integer(summary.selected)} ({summary.rule})")
    table.add_row(words("summary-cost"), _money(summary.campaign.expected_cost))
    table.add_row(words("summary-saved"), _money(summary.campaign.expected_saved_value))
    table.add_row(words("summary-net"), _money(summary.campaign.expected_net))
    table.add_row(words("summary-value"), summary.value_source)
    table.add_row(
        words("summary-explained"),
        words("summary-explained-value", customers=words.integer(summary.explained), reasons=summary.n_reasons,
              lang=summary.lang),
    )  # fmt: skip
    if getattr(summary, "reasons_hidden", None):
        table.add_row(words("summary-hidden"), words.integer(summary.reasons_hidden))
    _action_rows(table, summary)
    _uplift_rows(table, summary, words)
    flagged = summary.drift_flagged
    table.add_row(
        words("summary-drift", threshold=words.number(summary.psi_threshold, 2)),
        words("summary-no-drift")
        if not flagged
        else f"[bold red]{len(flagged)}[/]: " + ", ".join(flagged[:8]) + (" ..." if len(flagged) > 8 else ""),
    )
    for name, path in paths.items():
        table.add_row(words("summary-wrote", name=name), str(path))
    return table


@handle_errors
def score(
    data_dir: Annotated[str, typer.Argument(help=DATA_HELP)],
    out: Annotated[
        str,
        typer.Option(
            "--out",
            "-o",
            help="Campaign list to write: .csv or .parquet. Reasons, "
            "rejects, drift and a summary are written beside it; " + OUT_HELP,
        ),
    ],
    cutoff: Annotated[
        str | None,
        typer.Option(help=f"Score as of this date (YYYY-MM-DD, exclusive); {NO_CUTOFF_HELP}."),
    ] = None,
    model: ModelUriOption = None,
    tracking_uri: TrackingUriOption = None,
    lang: Annotated[Lang | None, typer.Option(help="Language of the reasons and the summary (default [serving] lang, else en).")] = None,
    reasons: Annotated[int | None, typer.Option(help="Reasons per explained customer (default 3).")] = None,
    top: Annotated[int | None, typer.Option(help="Contact the N customers most likely to churn.")] = None,
    threshold: Annotated[float | None, typer.Option(help="Contact customers with probability >= P.")] = None,
    budget: Annotated[
        float | None,
        typer.Option(help="Contact the list with the highest expected net value within this budget."),
    ] = None,
    cost_per_contact: Annotated[
        float | None,
        typer.Option(help="Cost of one contact (default [serving] cost_per_contact, else 5)."),
    ] = None,
    save_rate: Annotated[
        str | None,
        typer.Option(
            help='Share of contacted would-be churners retained, or "measured": the latest campaign report\'s '
            "(churnlens campaign-report), with its interval in the summary."
        ),
    ] = None,
    value_per_save: Annotated[
        float | None,
        typer.Option(help="Constant value of retaining one customer (default: each customer's value)."),
    ] = None,
    value_column: Annotated[
        str | None,
        typer.Option(
            help="Customer value column (snapshot or customers table); default trailing-12-month spend."
        ),
    ] = None,
    explain_all: Annotated[
        bool | None,
        typer.Option("--explain-all/--explain-selected", help="Explain every scored customer, not only the selected ones."),
    ] = None,
    high_risk: Annotated[
        float | None, typer.Option(help="Lowest probability of the high band (default 0.5).")
    ] = None,
    medium_risk: Annotated[
        float | None, typer.Option(help="Lowest probability of the medium band (default 0.2).")
    ] = None,
    psi_threshold: Annotated[
        float | None, typer.Option(help="Flag drift above this PSI (default 0.25).")
    ] = None,
    actions: Annotated[
        bool | None,
        typer.Option(
            "--actions/--no-actions",
            help="Give each selected customer the first [[actions]] rule that fits (by priority, with contact "
            "pressure and capacity), or none and why: columns action, action_label, action_rule, action_reason.",
        ),
    ] = None,
    campaign_id: Annotated[
        str | None,
        typer.Option(
            help="Draw the campaign's contact plan under this id: a random control group and <out>.contacts.csv|parquet "
            "(rows of the contacts table, control rows included) to append once the campaign is sent."
        ),
    ] = None,
    holdout: Annotated[
        float | None,
        typer.Option(help="Control share of the plan, stratified by action and risk band (default 0.1; needs --campaign-id)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the control group: the same seed draws the same groups (default 0).")
    ] = None,
    send_date: Annotated[
        str | None, typer.Option(help="Send date written in the plan (YYYY-MM-DD, default: the cutoff).")
    ] = None,
    target: Annotated[
        Target | None,
        typer.Option(
            help="Whom to contact: risk (churn probability and the targeting rule; the default, [serving] target) or "
            "uplift (each customer's [[actions]] action of highest expected incremental value, uplift x value - cost, "
            "within --budget, honouring eligibility, contact pressure and capacity; needs a model from train-uplift)."
        ),
    ] = None,
    uplift_model: Annotated[
        str | None, typer.Option(help="With --target uplift: MLflow URI of the uplift model (default models:/churnlens-uplift@champion).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config: [columns.<table>], [serving] and [[actions]]; options given here win.")] = None,
    engine: Annotated[
        Engine,
        typer.Option(
            help="local (one process, the default) or dask: score per customer bucket on a Dask cluster; "
            "--out is then a directory (campaign/ parts in rank order, selection.parquet, reasons/, "
            "rejects/, drift.csv, summary.json; see docs/scaling.md)."
        ),
    ] = Engine.local,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="With --engine dask: address of a running Dask scheduler (tcp://host:8786); "
            "default a LocalCluster on this machine."
        ),
    ] = None,
    partitions: Annotated[
        int | None,
        typer.Option(help="With --engine dask: customer buckets (default: about 3M input rows each)."),
    ] = None,
    work_dir: Annotated[
        Path | None,
        typer.Option(
            help="With --engine dask: scratch directory seen by every worker (default: beside --out)."
        ),
    ] = None,
) -> None:
    """Score every active customer at the cutoff and write a campaign list.

    Without --top, --threshold or --budget the high risk band is selected. Reasons are computed for the selected customers (all with --explain-all). Exit status 2 on bad input.
    """  # noqa: E501 (one line per paragraph: typer keeps line breaks)
    from churnlens.serving import load_model, score_base, write_outputs
    from churnlens.serving.batch import output_paths
    from churnlens.serving.output import check_out_path
    from churnlens.serving.report_tracking import resolve_save_rate

    cfg = load_config(config)
    if campaign_id is None and (holdout is not None or seed is not None or send_date is not None):
        given = [n for n, v in (("--holdout", holdout), ("--seed", seed), ("--send-date", send_date)) if v is not None]
        raise InputError(f"{', '.join(given)} shape a campaign's contact plan: give --campaign-id too")
    settings = scoring_settings(
        cfg, lang=choice(lang), reasons=reasons, top=top, threshold=threshold, budget=budget,
        cost_per_contact=cost_per_contact, save_rate=save_rate_option(save_rate), value_per_save=value_per_save,
        value_column=value_column, explain_all=explain_all, high_risk=high_risk, medium_risk=medium_risk,
        psi_threshold=psi_threshold, assign_actions=actions, campaign_id=campaign_id, holdout=holdout,
        holdout_seed=seed, send_date=send_date, target=choice(target),
    )  # fmt: skip
    settings = resolve_save_rate(settings, tracking_uri=tracking_uri)
    engine = check_engine(choice(engine), scheduler)
    target = warehouse_target(out, engine)  # --out postgresql://...: tables instead of files
    out = Path(out)
    if target is not None:
        pass
    elif engine == "local":
        output_paths(out)  # refuse a bad extension before any work
    elif out.suffix.lower() == ".csv":
        raise InputError(f"--out {out}: --engine dask writes a directory of Parquet parts, not a CSV file")
    model_path = [Path(model)] if model and Path(model).exists() else []
    if target is None:
        check_out_path(output_paths(out).values() if engine == "local" else out, [*local_inputs(data_dir), *([config] if config else []), *model_path])
    when = None if cutoff is None else parse_cutoff(cutoff, name="--cutoff")
    if when is not None:
        cfg.bounds.check_cutoff(when, what="--cutoff")
    tables = None if engine == "dask" else load_data(data_dir, cfg)[0]
    loaded = load_model(model, tracking_uri=tracking_uri)
    console.print(
        f"Model [bold]{loaded.name}[/]"
        + (f" v{loaded.version}" if loaded.version else "")
        + f" from {loaded.uri}"
    )
    loaded_uplift = None
    if settings.target == "uplift":
        from churnlens.serving.loader import load_uplift_model

        loaded_uplift = load_uplift_model(uplift_model, tracking_uri=tracking_uri)
        console.print(
            f"Uplift model [bold]{loaded_uplift.name}[/]" + (f" v{loaded_uplift.version}" if loaded_uplift.version else "")
            + f" from {loaded_uplift.uri} (learner {loaded_uplift.model.metadata.learner})"
        )
    elif uplift_model is not None:
        raise InputError("--uplift-model is read with --target uplift only")
    if engine == "dask":
        from churnlens.engine.dask_scoring import score_on_dask
        from churnlens.engine.session import dask_session

        with dask_session(
            data_directory(data_dir, "--engine dask"), out, scheduler=scheduler, partitions=partitions, work_dir=work_dir, columns=cfg.columns,
            bounds=cfg.bounds,
        ) as (client, staged):
            summary = score_on_dask(client, staged, out, loaded, settings, cutoff=when, uplift=loaded_uplift)
        parts = ("campaign", "selection.parquet", "reasons", "rejects", "drift.csv") + (
            ("contacts.parquet",) if summary.plan else ()
        )
        paths = {name: out / name for name in parts}
        console.print(summary_table(summary, paths))
        return
    with Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        result = score_base(tables, when, loaded, settings, progress=on_progress, source=shown(data_dir),
                            uplift=loaded_uplift)  # fmt: skip
    paths = write_outputs(result, out) if target is None else write_to_warehouse(result, target)
    if result.summary.scored == 0:
        console.print(f"[bold yellow]warning:[/] no active customer at cutoff {result.summary.cutoff}")
    console.print(summary_table(result.summary, paths))
