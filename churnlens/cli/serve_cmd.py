"""``churnlens serve``: the HTTP API (FastAPI) on uvicorn."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from churnlens.cli.common import LogLevel, TrackingUriOption, choice, console, handle_errors
from churnlens.config import ApiSettings, load_config
from churnlens.errors import InputError, SettingError


@handle_errors
def serve(
    model: Annotated[
        str | None,
        typer.Option(
            help="Model URI (models:/name@alias, runs:/..., a path); default models:/churnlens@champion."
        ),
    ] = None,
    tracking_uri: TrackingUriOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes; each loads the model once, scores without a lock and gets its share of "
            "the CPUs for its LightGBM/BLAS threads (OMP_NUM_THREADS etc. when not set)."
        ),
    ] = 1,
    max_customers: Annotated[
        int | None, typer.Option(help="Customers per request (default [api] max_customers, else 1000).")
    ] = None,
    max_events: Annotated[
        int | None,
        typer.Option(help="Events per customer given as raw events (default [api] max_events_per_customer, else 10000)."),
    ] = None,
    max_body_mb: Annotated[
        float | None, typer.Option(help="Request body size limit in MiB (default [api] max_body_mb, else 32).")
    ] = None,
    read_timeout: Annotated[
        float | None,
        typer.Option(help="Seconds a request's headers may take, and without a byte of its body, before it is dropped (408); default [api] read_timeout, else 10."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="TOML config: [api] (request limits, read timeout), [serving] (risk bands and scoring settings) and [bounds]."),
    ] = None,
    log_level: Annotated[LogLevel, typer.Option(help="uvicorn log level.")] = LogLevel.info,
    campaign: Annotated[
        Path | None,
        typer.Option(help="Also serve the web app at / on this campaign (the --out of churnlens score) or on a folder of campaigns; new campaigns appear without a restart."),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="With --campaign: the customers' tables for the cards (default: the directory the campaign's summary records)."),
    ] = None,
) -> None:
    """Serve churn scores over HTTP: GET /health, GET /ready, GET /v1/model, POST /v1/score (OpenAPI at /docs).

    When the CHURNLENS_API_TOKEN environment variable is set, /v1 endpoints require ``Authorization: Bearer <token>`` and the web app's pages a login with that token.

    With --campaign, the web app for marketers is served at /: the campaign list (filters, sort, search, CSV download) and each customer's card, in English and French. Without --model it serves the model that scored the newest campaign.
    """  # noqa: E501 (one line per paragraph: typer keeps line breaks)
    import uvicorn

    from churnlens.serving.api import OPTIONS_ENV, TOKEN_ENV, create_app, settle_heap
    from churnlens.serving.protocol import HEADER_TIMEOUT_ENV, HeaderDeadlineProtocol

    if not 0 < port < 65536:
        raise InputError(f"--port must be between 1 and 65535, got {port}")
    if workers < 1:
        raise InputError(f"--workers must be >= 1, got {workers}")
    cfg = load_config(config)
    settings = cfg.serving
    api = api_settings(
        cfg.api, max_customers=max_customers, max_events_per_customer=max_events, max_body_mb=max_body_mb,
        read_timeout=read_timeout,
    )  # fmt: skip
    if data is not None and campaign is None:
        raise InputError("--data needs --campaign (it holds the customers' tables for the web app's cards)")
    if data is not None and not data.is_dir():
        raise InputError(f"--data {data} is not a directory")
    if campaign is not None and model is None:
        model = campaign_model(campaign)
    options = {"model_uri": model, "tracking_uri": tracking_uri}
    if campaign is not None:
        options.update(campaign=str(campaign), data_dir=None if data is None else str(data), columns=cfg.columns)
    app = create_app(**options, api=api, settings=settings, bounds=cfg.bounds)  # loads the model: a bad URI fails here
    service = app.state.service
    secured = "token required" if os.environ.get(TOKEN_ENV) else f"no token ({TOKEN_ENV} not set)"
    console.print(
        f"Serving {service.loaded.name} version {service.loaded.version or '-'} "
        f"({service.loaded.resolved_uri}) on http://{host}:{port} with {workers} worker(s) — {secured}; docs at /docs"
    )
    if campaign is not None:
        console.print(f"Web app on {campaign}: open http://{host}:{port}/")
    os.environ[HEADER_TIMEOUT_ENV] = str(api.read_timeout)  # workers inherit it
    if workers == 1:
        settle_heap()
        uvicorn.run(app, host=host, port=port, log_level=choice(log_level), http=HeaderDeadlineProtocol)
        return
    # Workers are new processes: each builds the app (and loads the model) from these options.
    options["model_uri"] = service.loaded.resolved_uri  # every worker serves the same version
    pin_threads(workers)
    os.environ[OPTIONS_ENV] = json.dumps(
        {**options, "api": asdict(api), "settings": asdict(settings), "bounds": asdict(cfg.bounds)}, default=str
    )
    uvicorn.run(
        "churnlens.serving.api:app_from_environment", factory=True, workers=workers,
        host=host, port=port, log_level=choice(log_level), http=HeaderDeadlineProtocol,
    )  # fmt: skip


#: Thread-pool sizes read by OpenMP (LightGBM), OpenBLAS, MKL and numexpr when a process starts.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def pin_threads(workers: int) -> int:
    """Give each of ``workers`` worker processes its share of the CPUs as thread pools (at least 1).

    Set in the environment the workers inherit, before they start (a variable already set
    is kept). Without it every worker's LightGBM (OpenMP) and BLAS pools size themselves to
    the whole machine, and N workers fight over the same cores. Returns the threads per worker.
    """
    threads = max(1, (os.cpu_count() or 1) // workers)
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    return threads


#: Settings whose option is not named after them.
OPTION_NAMES = {"max_events_per_customer": "--max-events"}


def api_settings(configured: ApiSettings, **given: Any) -> ApiSettings:
    """The ``[api]`` settings with the command line's given options on top (None = not given).

    A bad value given on the command line is reported under the option's name.
    """
    try:
        return configured.override(**given)
    except SettingError as exc:
        if given.get(exc.setting) is None:
            raise
        option = OPTION_NAMES.get(exc.setting, "--" + exc.setting.replace("_", "-"))
        raise InputError(f"{option} {exc.problem}") from None


def campaign_model(campaign: Path) -> str | None:
    """The model URI the newest campaign at ``campaign`` was scored with (None: not recorded)."""
    from churnlens.serving.webapp import find_campaigns

    refs = find_campaigns(campaign)
    if not refs:
        return None
    summary = json.loads(refs[0].summary.read_text(encoding="utf-8"))
    return summary.get("model_uri") or None
