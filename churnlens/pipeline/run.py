"""``churnlens run``: one scheduled run — validate, retrain if due, score, write, report matured campaigns.

Each step prints one summary line and is recorded in the run's JSON log
(:mod:`churnlens.pipeline.state`). The run holds the pipeline's lock, so two runs never overlap.
The outcome is an exit status: :data:`EXIT_DONE`, :data:`EXIT_NOTHING_TO_DO` (the cutoff was
already scored on the same data and config, no retraining or report is due),
:data:`EXIT_BAD_INPUT`, :data:`EXIT_FAILURE`, or :data:`EXIT_BUSY` (another run holds the lock).

Each run's campaign id is ``<[pipeline] campaign_prefix>-<cutoff date>``, so running a day
again replaces that day's rows in a database output. Campaigns the pipeline planned get their
``campaign-report`` in the first run whose data covers their horizon, once their contact plan
is in the ``contacts`` input table (appended by whoever sends the campaign).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from churnlens.config import ChurnConfig, load_config
from churnlens.errors import InputError
from churnlens.pipeline.retrain import (
    labels_through,
    registry_state,
    retrain_decision,
    train_champion,
)
from churnlens.pipeline.state import PipelineState, StepRecord, pipeline_lock, run_log_name, write_run_log
from churnlens.warehouse.uri import is_warehouse_uri, mask_uri

EXIT_DONE = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_NOTHING_TO_DO = 3
EXIT_BUSY = 4
#: Exit status -> outcome word (the log's ``status``).
OUTCOMES = {EXIT_DONE: "done", EXIT_FAILURE: "failure", EXIT_BAD_INPUT: "bad input",
            EXIT_NOTHING_TO_DO: "nothing to do", EXIT_BUSY: "busy"}  # fmt: skip

Echo = Callable[[str], None]


@dataclass(frozen=True)
class PipelineOutcome:
    """How a run ended."""

    exit_code: int
    run_id: str
    log: Path | None
    steps: list[StepRecord]

    @property
    def status(self) -> str:
        return OUTCOMES[self.exit_code]


class _Run:
    """One run's context: settings, paths, state, steps and their printed lines."""

    def __init__(self, cfg: ChurnConfig, config_path: Path, as_of: pd.Timestamp, echo: Echo) -> None:
        self.cfg = cfg
        self.settings = cfg.pipeline
        self.base = config_path.resolve().parent
        self.config_path = config_path
        self.as_of = as_of
        self.echo = echo
        self.run_id = uuid.uuid4().hex
        self.steps: list[StepRecord] = []
        self.state_dir = self.path(self.settings.state_dir)
        self.state = PipelineState.load(self.state_dir)

    def path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base / path

    def step(self, name: str, status: str, line: str, started: float, **details: Any) -> None:
        record = StepRecord(name, status, mask_uri(line), time.perf_counter() - started, details)
        self.steps.append(record)
        self.echo(f"{name:<9} {status:<8} {record.line} ({record.seconds:.1f} s)")

    @property
    def data(self) -> str:
        data = self.settings.data
        if data is None:
            raise InputError(f"[pipeline] data is not set in {self.config_path}: a data directory or postgresql:// URI")
        return data if is_warehouse_uri(data) else str(self.path(data))


def _today() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").tz_localize(None).normalize()


def _signature(report: Any, config_path: Path) -> str:
    """What the run read: per table rows and date range, and the config file's bytes."""
    tables = {name: [s.rows_in, s.rows_out, s.customers, str(s.start), str(s.end)] for name, s in report.tables.items()}
    digest = hashlib.sha256(json.dumps(tables, sort_keys=True).encode())
    digest.update(config_path.read_bytes())
    return digest.hexdigest()


def run_pipeline(
    config_path: str | Path, *, as_of: str | pd.Timestamp | None = None, wait_s: float = 0.0, echo: Echo = print
) -> PipelineOutcome:
    """Run the pipeline of ``config_path`` once (see the module docstring).

    Parameters
    ----------
    config_path : str or Path
        TOML with ``[pipeline]`` (data, outputs ...) and the usual sections.
    as_of : str or Timestamp, optional
        The run's day: scoring cutoff and retraining clock (default today, UTC). For backfills and tests.
    wait_s : float, default 0
        How long to wait for another run's lock before giving up with :data:`EXIT_BUSY`.
    echo : callable(str)
        Receives each summary line.

    Returns
    -------
    PipelineOutcome
    """
    config_path = Path(config_path)
    run_id = uuid.uuid4().hex
    try:
        cfg = load_config(config_path)
        day = _today() if as_of is None else pd.Timestamp(as_of)
        if pd.isna(day):
            raise InputError(f"--as-of {as_of!r} is not a date")
        run = _Run(cfg, config_path, day.normalize(), echo)
    except InputError as exc:
        echo(f"config    failed   {mask_uri(exc)}")
        return PipelineOutcome(EXIT_BAD_INPUT, run_id, None, [])
    run.run_id = run_id
    started_at = pd.Timestamp.now(tz="UTC")
    with contextlib.ExitStack() as stack:
        try:
            held = stack.enter_context(pipeline_lock(run.state_dir, wait_s))
        except OSError as exc:
            echo(f"lock      failed   cannot take the lock in {run.state_dir}: {mask_uri(exc)}")
            return PipelineOutcome(EXIT_FAILURE, run_id, None, [])
        if not held:
            echo(f"lock      busy     another run holds {run.state_dir / 'run.lock'}; nothing done")
            return PipelineOutcome(EXIT_BUSY, run_id, None, [])
        error: str | None = None
        traceback_text: str | None = None
        try:
            code = _run_steps(run)
        except InputError as exc:
            code, error = EXIT_BAD_INPUT, mask_uri(exc)
        except Exception as exc:  # noqa: BLE001 - a scheduled run reports every failure in its log and exit status
            code, error = EXIT_FAILURE, mask_uri(f"{type(exc).__name__}: {exc}")
            traceback_text = mask_uri(traceback.format_exc())
        if error is not None:
            run.echo(f"{'failed':<9} {OUTCOMES[code]:<8} {' '.join(error.split())}")
        record = {
            "run_id": run_id, "config": str(config_path.resolve()), "as_of": str(run.as_of.date()),
            "started_at": started_at.isoformat(), "finished_at": pd.Timestamp.now(tz="UTC").isoformat(),
            "status": OUTCOMES[code], "exit_code": code, "error": error,
            "steps": [s.to_dict() for s in run.steps],
        }  # fmt: skip
        if code == EXIT_FAILURE:
            record["traceback"] = traceback_text
        log = write_run_log(run.state_dir, run_log_name(started_at, run_id), record)
        echo(f"{'log':<9} {OUTCOMES[code]:<8} {log}")
        return PipelineOutcome(code, run_id, log, run.steps)


def _run_steps(run: _Run) -> int:
    from churnlens.data.sources import load_data, shown

    settings, cfg = run.settings, run.cfg
    if not settings.outputs:
        raise InputError(f"[pipeline] outputs is empty in {run.config_path}: list files and/or postgresql:// URIs")
    if cfg.serving.campaign_id is not None:
        raise InputError("[serving] campaign_id is set by churnlens run for each run ([pipeline] campaign_prefix "
                         "and the cutoff date): remove it from the config")  # fmt: skip
    targets = _check_outputs(run)
    cfg.bounds.check_cutoff(run.as_of, what="the run's day (--as-of)")

    t0 = time.perf_counter()
    tables, report = load_data(run.data, cfg)
    through = labels_through(tables)
    rows = sum(s.rows_out for s in report.tables.values())
    run.step("validate", "ok", f"{rows:,} rows in {len(report.tables)} tables from {shown(run.data)}; labels through "
             f"{through.date()}; {len(report.repairs)} repair(s)", t0,
             tables={n: s.rows_out for n, s in report.tables.items()}, repairs=len(report.repairs))  # fmt: skip
    signature = _signature(report, run.config_path)

    t0 = time.perf_counter()
    loaded, champion, newest = registry_state(settings.model_name, settings.tracking_uri)
    decision = retrain_decision(
        champion, newest, labels_through=through, as_of=run.as_of,
        retrain_every_days=settings.retrain_every_days, min_new_label_days=settings.min_new_label_days,
    )  # fmt: skip
    due = _reports_due(run, tables)
    last = run.state.last_run or {}
    unchanged = (last.get("as_of") == str(run.as_of.date()) and last.get("signature") == signature
                 and champion is not None and last.get("model_version") == champion.version)  # fmt: skip
    if not decision.retrain and not due and unchanged:
        run.step("train", "skipped", decision.reason, t0)
        run.echo(f"{'nothing':<9} {'to do':<8} cutoff {run.as_of.date()} was scored on the same data and config "
                 f"by run {str(last.get('run_id'))[:8]}; no retraining or campaign report is due")  # fmt: skip
        return EXIT_NOTHING_TO_DO
    if decision.retrain:
        result = train_champion(tables, report, cfg, settings)
        kept = str(result.trained_through.date())
        run.state.trainings.append({"run_id": run.run_id, "version": str(result.model_version), "alias": result.alias,
                                    "trained_through": kept, "as_of": str(run.as_of.date())})  # fmt: skip
        run.step("train", "ok", f"v{result.model_version} -> {result.alias} ({result.registry_reason}); why: "
                 f"{decision.reason}", t0, version=str(result.model_version), alias=result.alias,
                 trained_through=kept, reason=decision.reason)  # fmt: skip
        loaded = None
    else:
        run.step("train", "skipped", decision.reason, t0)

    t0 = time.perf_counter()
    result, loaded = _score(run, tables, loaded)
    summary = result.summary
    plan = summary.plan or {}
    run.step("score", "ok", f"cutoff {summary.cutoff} with {loaded.name} v{loaded.version}: {summary.scored:,} "
             f"scored, {summary.rejected:,} rejected, {summary.selected:,} selected ({summary.rule}); campaign "
             f"{plan.get('campaign_id')}: {plan.get('treatment', 0):,} treatment / {plan.get('control', 0):,} "
             "control", t0, scored=summary.scored, selected=summary.selected, campaign_id=plan.get("campaign_id"),
             model_version=loaded.version)  # fmt: skip

    t0 = time.perf_counter()
    written = _write(run, result, targets)
    run.state.campaigns[str(plan["campaign_id"])] = {
        "run_id": run.run_id, "cutoff": str(summary.cutoff), "send_date": plan.get("send_date"),
        "horizon_days": loaded.metadata.horizon_days or cfg.labels.horizon_days,
        "label_mode": loaded.metadata.label_mode, "model_version": loaded.version, "report": None,
    }  # fmt: skip
    run.step("write", "ok", "; ".join(written), t0, outputs=written)

    t0 = time.perf_counter()
    _report(run, tables, due, t0)
    run.state.last_run = {"run_id": run.run_id, "as_of": str(run.as_of.date()), "signature": signature,
                          "model_version": loaded.version}  # fmt: skip
    run.state.save()
    return EXIT_DONE


def _check_outputs(run: _Run) -> list[tuple[str, Any]]:
    """Each output as ("warehouse", parsed URI) or ("file", path template), checked before any work."""
    from churnlens.data.sources import local_inputs
    from churnlens.serving.batch import output_paths
    from churnlens.serving.output import check_out_path
    from churnlens.warehouse.write import output_uri

    targets: list[tuple[str, Any]] = []
    for out in run.settings.outputs:
        if is_warehouse_uri(out):
            targets.append(("warehouse", output_uri(out)))
            continue
        path = run.path(out.replace("{date}", str(run.as_of.date())))
        check_out_path(output_paths(path).values(), [*local_inputs(run.data), run.config_path])
        targets.append(("file", out))
    return targets


def _score(run: _Run, tables: Any, loaded: Any) -> tuple[Any, Any]:
    from churnlens.data.sources import shown
    from churnlens.serving import load_model, score_base
    from churnlens.serving.report_tracking import resolve_save_rate

    settings = run.settings
    if loaded is None:
        loaded = load_model(f"models:/{settings.model_name}@champion", tracking_uri=settings.tracking_uri)
    campaign_id = f"{settings.campaign_prefix}-{run.as_of.date()}"
    scoring = resolve_save_rate(run.cfg.serving.override(campaign_id=campaign_id), tracking_uri=settings.tracking_uri)
    result = score_base(tables, run.as_of, loaded, scoring, source=shown(run.data))
    return result, loaded


def _write(run: _Run, result: Any, targets: list[tuple[str, Any]]) -> list[str]:
    """Write every output, all or nothing as far as it can be: the database rows are inserted
    first and committed only once every campaign file is committed, so a failed file write
    leaves no row in a database; a failed database commit (rare) is the one case that can
    leave the files of a run without its rows (the next run of the day replaces both)."""
    from churnlens.serving.batch import write_outputs
    from churnlens.warehouse.write import campaign_transaction

    written = []
    with contextlib.ExitStack() as transactions:
        for kind, target in targets:
            if kind != "warehouse":
                continue
            done = transactions.enter_context(campaign_transaction(result, target, run_id=run.run_id))
            rows = done.rows.get(f"{target.schema or 'public'}.{target.table}_campaign", 0)
            written.append(f"{done.target}: {rows:,} campaign rows ({len(done.rows)} tables)")
        for kind, target in targets:
            if kind == "file":
                paths = write_outputs(result, run.path(target.replace("{date}", str(run.as_of.date()))))
                written.append(f"{paths['campaign']} (+{len(paths) - 1} files)")
    return written


def _reports_due(run: _Run, tables: Any) -> list[str]:
    """Campaigns the pipeline planned whose horizon the data now covers and that have no report yet."""
    from churnlens.serving.campaign_report import outcome_end_of_data

    until = outcome_end_of_data(tables)
    due = []
    for campaign_id, info in sorted(run.state.campaigns.items()):
        if info.get("report") is not None:
            continue
        send = pd.Timestamp(info.get("send_date") or info["cutoff"])
        if send + pd.Timedelta(days=int(info["horizon_days"])) <= until:
            due.append(campaign_id)
    return due


def _scored_list(run: _Run, campaign_id: str, info: dict[str, Any]) -> Any:
    """The list a campaign was drawn from, read back from the first output that has it (None if none does)."""
    from churnlens.serving.campaign_report import ScoredList, read_scored_list
    from churnlens.serving.output import sibling
    from churnlens.warehouse.write import output_uri, read_campaign

    for out in run.settings.outputs:
        if is_warehouse_uri(out):
            target = output_uri(out)
            found = read_campaign(target, campaign_id)
            if found is not None:
                return ScoredList(Path(f"{target.schema or 'public'}.{target.table}_campaign"), *found)
            continue
        path = run.path(out.replace("{date}", str(info["cutoff"])[:10]))
        if path.is_file() and sibling(path, "summary", ".json").is_file():
            listed = read_scored_list(path)
            if listed.plan.get("campaign_id") == campaign_id:
                return listed
    return None


def _report(run: _Run, tables: Any, due: list[str], t0: float) -> None:
    from churnlens.serving.campaign_report import campaign_contacts, campaign_report
    from churnlens.serving.report_render import write_report
    from churnlens.serving.report_tracking import log_campaign_report

    if not due:
        pending = sum(1 for info in run.state.campaigns.values() if info.get("report") is None)
        run.step("report", "skipped", f"no campaign's horizon has matured ({pending} pending)", t0)
        return
    lines, details = [], {}
    lang = run.cfg.serving.lang
    for campaign_id in due:
        info = run.state.campaigns[campaign_id]
        try:
            campaign_contacts(tables, campaign_id)
        except InputError:
            info["report"] = {"status": "not sent", "run_id": run.run_id}
            lines.append(f"{campaign_id}: no rows in contacts (never sent), no report")
            details[campaign_id] = "not sent"
            continue
        scored = _scored_list(run, campaign_id, info)
        report = campaign_report(tables, campaign_id, horizon_days=int(info["horizon_days"]),
                                 mode=info.get("label_mode"), scored=scored, config=run.cfg)  # fmt: skip
        target = run.path(run.settings.reports_dir) / f"campaign-report-{campaign_id}"
        files = write_report(report, target, lang)
        logged = log_campaign_report(report, files, tracking_uri=run.settings.tracking_uri)
        files = write_report(report, target, lang, mlflow_run=logged["run_id"], experiment=logged["experiment"])
        overall = report.overall
        info["report"] = {"status": "done", "run_id": run.run_id, "mlflow_run": logged["run_id"],
                          "file": str(files["html"])}  # fmt: skip
        lines.append(f"{campaign_id}: uplift {overall.uplift:+.3f} (95 % {overall.uplift_low:+.3f} to "
                     f"{overall.uplift_high:+.3f}), {files['html']}")  # fmt: skip
        details[campaign_id] = {"uplift": overall.uplift, "html": str(files["html"]), "mlflow_run": logged["run_id"]}
    run.step("report", "ok", "; ".join(lines), t0, campaigns=details)
