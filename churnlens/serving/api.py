"""HTTP API (FastAPI): health, model info and scoring of customers from raw events or features.

Endpoints
---------
- ``GET /health`` — liveness and the model served (no token needed);
- ``GET /v1/model`` — name, version, trained_at, horizon, label mode, features, test metrics;
- ``POST /v1/score`` — churn probability, risk band and reasons per customer
  (shapes in :mod:`churnlens.serving.schemas`, OpenAPI at ``/openapi.json`` and ``/docs``).

Scoring goes through the scoring core batch scoring uses (:func:`~churnlens.serving.core.score_rows`,
:func:`~churnlens.serving.core.explain_rows`, with the server's
:class:`~churnlens.config.ScoringSettings`), so an API answer equals the batch answer for the
same customer. Raw events are validated by the same rules as files.

Each uvicorn worker loads the model once, at startup, and scores requests without a lock
(``churnlens serve --workers N`` runs N such processes).

Safety: the model is loaded once at startup; nothing from a request is ever unpickled
(JSON only). Each request meets, in this order (:class:`RequestGuard`, limits from
:class:`~churnlens.config.ApiSettings`, the ``[api]`` section):

0. its headers must be complete within ``read_timeout`` seconds (in uvicorn's protocol,
   :mod:`churnlens.serving.protocol`, before the app sees the request: 408);
1. when ``CHURNLENS_API_TOKEN`` is set, every ``/v1`` endpoint requires ``Authorization: Bearer
   <token>``, compared in constant time before a byte of the body is read (401);
2. the body's size: a ``Content-Length`` over the limit is refused at once, a body without one
   as soon as the bytes read pass it (413);
3. the body's pace: a body with no byte for ``read_timeout`` seconds, or arriving slower on
   average than ``min_body_kib_per_s``, is dropped (408);
4. the JSON's shape, with strict numbers and booleans (a string or a boolean where a number
   belongs is 422 naming the field);
5. customers per request, events per customer and events per request (422 naming the field).

An answer sent before the body was read in full closes the connection (``Connection: close``)
rather than draining the rest. Every error is JSON ``{"detail": [{"loc": [...], "msg": ...,
"type": ...}]}`` and bad input is always a 4xx.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import hmac
import json
import logging
import math
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic_core import to_json
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from churnlens.config import ApiSettings, ScoringSettings
from churnlens.data.bounds import DEFAULT_BOUNDS, InputBounds
from churnlens.data.errors import DataValidationError
from churnlens.data.schema import TABLE_SPECS
from churnlens.data.tables import Tables
from churnlens.errors import InputError
from churnlens.features import observed_until
from churnlens.model import ChurnModel
from churnlens.serving.core import explain_matrix, feature_config_of, score_matrix
from churnlens.serving.explain import row_dicts
from churnlens.serving.loader import LoadedModel, check_compatible, load_model
from churnlens.serving.rejects import find_rejects, reject_text
from churnlens.serving.schemas import (
    ErrorResponse,
    EventsCustomer,
    FeaturesCustomer,
    Health,
    ModelInfo,
    ModelRef,
    ScoreRequest,
    ScoreResponse,
)

logger = logging.getLogger(__name__)

TOKEN_ENV = "CHURNLENS_API_TOKEN"
#: JSON options of :func:`create_app` for worker processes (``churnlens serve --workers N``).
OPTIONS_ENV = "CHURNLENS_SERVE_OPTIONS"
#: Paths that need the bearer token (when the server has one).
PROTECTED_PREFIX = "/v1"
#: Fields of a customer given as raw events, by table.
EVENT_FIELDS = ("purchases", "program_events", "support_interactions", "cancellations", "contacts")
_DTYPES = {
    "id": "string",
    "text": "string",
    "category": pd.CategoricalDtype(pd.Index([], dtype="string")),
    "time": "datetime64[us]",
    "number": "float64",
    "flag": "boolean",
}
_ROW = re.compile(r"row (\d+)")
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (400, "Malformed JSON"),
        (401, "Missing or wrong bearer token"),
        (408, "Request body arrived too slowly"),
        (413, "Request body too large"),
        (422, "Invalid input; `loc` names the field at fault"),
    )
}


class ApiError(Exception):
    """A 4xx answer naming the field at fault."""

    def __init__(self, status: int, loc: Sequence[str | int], msg: str, kind: str) -> None:
        super().__init__(msg)
        self.status, self.loc, self.msg, self.kind = status, list(loc), msg, kind


def _error(status: int, loc: Sequence[str | int], msg: str, kind: str, **headers: str) -> JSONResponse:
    body = {"detail": [{"loc": list(loc), "msg": msg, "type": kind}]}
    return JSONResponse(body, status_code=status, headers=headers or None)


# --------------------------------------------------------------------------- raw events -> tables


def _empty_table(name: str) -> pd.DataFrame:
    """A validated-looking table with no rows (a family the model needs but nobody sent)."""
    return _empty_template(name).copy()  # built once per table: a copy costs a fraction of building it


@functools.cache
def _empty_template(name: str) -> pd.DataFrame:
    spec = TABLE_SPECS[name]
    return pd.DataFrame({c.name: pd.Series([], dtype=_DTYPES[c.kind]) for c in spec.columns})


def _event_frames(
    customers: Sequence[tuple[int, EventsCustomer]],
) -> tuple[dict[str, pd.DataFrame], dict[str, list[tuple[int, int]]]]:
    """One raw frame per event table with rows in request order, and where each row came from."""
    frames: dict[str, pd.DataFrame] = {}
    origin: dict[str, list[tuple[int, int]]] = {}
    for name in EVENT_FIELDS:
        columns = [c.name for c in TABLE_SPECS[name].columns if c.name != "customer_id"]
        data: dict[str, list[Any]] = {"customer_id": [], **{c: [] for c in columns}}
        where: list[tuple[int, int]] = []
        for position, customer in customers:
            events = getattr(customer, name)
            data["customer_id"].extend([customer.customer_id] * len(events))
            for column in columns:
                data[column].extend([getattr(e, column) for e in events])
            where.extend((position, j) for j in range(len(events)))
        if where:  # one block of objects (a frame per column costs more than the values)
            block = np.empty((len(where), len(data)), dtype=object)
            for j, values in enumerate(data.values()):
                block[:, j] = values
            frames[name] = pd.DataFrame(block, columns=list(data), dtype=object, copy=False)
            origin[name] = where
    return frames, origin


def _customers_frame(customers: Sequence[tuple[int, EventsCustomer]], model: ChurnModel) -> pd.DataFrame:
    """The ``customers`` table of the request: one row per customer, every model attribute as a column."""
    for position, customer in customers:
        if "customer_id" in customer.attributes:
            raise ApiError(
                422,
                ["body", "customers", position, "attributes", "customer_id"],
                "customer_id goes beside attributes, not inside them",
                "value_error",
            )
    levels = model.metadata.categorical_levels
    for position, customer in customers:  # strict like every number: "35" for a numeric attribute is refused
        for name, value in customer.attributes.items():
            if f"attr_{name}" in model.features and f"attr_{name}" not in levels and isinstance(value, str):
                raise ApiError(
                    422,
                    ["body", "customers", position, "attributes", name],
                    f"attribute {name!r} is a number for this model: give a number (or true/false), not a string",
                    "float_type",
                )
    # one block of objects, columns as a frame of the records would have them (in order of first
    # appearance, NaN where a customer lacks one); attributes nobody sent are missing values (None),
    # as in batch
    columns: dict[str, None] = {"customer_id": None}
    for _, c in customers:
        columns.update(dict.fromkeys(c.attributes))
    for name in model.features:
        if name.startswith("attr_"):
            columns.setdefault(name[5:])
    sent = {name for _, c in customers for name in c.attributes}
    block = np.empty((len(customers), len(columns)), dtype=object)  # filled with None
    for i, (_, c) in enumerate(customers):
        row = {"customer_id": c.customer_id, **c.attributes}
        for j, name in enumerate(columns):
            if name in row:
                block[i, j] = row[name]
            elif name in sent:  # sent for another customer: NaN, as a frame of the records has it
                block[i, j] = math.nan
    return pd.DataFrame(block, columns=list(columns), dtype=object, copy=False)


def _validation_loc(exc: DataValidationError, origin: dict[str, list[tuple[int, int]]]) -> list[str | int]:
    """Where a DataValidationError points in the request body."""
    if exc.table == "customers":
        return ["body", "customers", "attributes"] + ([exc.column] if exc.column else [])
    rows = [int(m.group(1)) for r in exc.rows if (m := _ROW.search(r))]
    where = origin.get(exc.table, [])
    if rows and 0 < rows[0] <= len(where):
        position, j = where[rows[0] - 1]
        loc: list[str | int] = ["body", "customers", position, exc.table, j]
    else:
        loc = ["body", "customers", exc.table]
    return loc + ([exc.column] if exc.column else [])


def events_to_tables(
    customers: Sequence[tuple[int, EventsCustomer]], *, model: ChurnModel, bounds: InputBounds | None = None
) -> Tables | None:
    """Validate the raw events of ``customers`` into tables (None when nobody sent a purchase).

    Tables the model was trained with but nobody sent are added empty, so every customer
    gets the same features as in batch (counts 0, no program/support activity).

    Raises
    ------
    ApiError
        422 naming the customer, table, event and column of the first problem.
    """
    from churnlens.data import validate_tables

    frames, origin = _event_frames(customers)
    trained_with = set(model.metadata.tables)
    if "customers" in trained_with or any(c.attributes for _, c in customers):
        frames["customers"] = _customers_frame(customers, model)
    if "purchases" not in frames:
        return None
    try:
        tables, _ = validate_tables(frames, bounds=bounds)
    except DataValidationError as exc:
        raise ApiError(422, _validation_loc(exc, origin), str(exc), "data_validation") from None
    missing = {n: _empty_table(n) for n in trained_with if n in EVENT_FIELDS and getattr(tables, n) is None}
    if "customers" in trained_with and tables.customers is None:
        missing["customers"] = _empty_table("customers")
    return tables.replace(**missing) if missing else tables


# --------------------------------------------------------------------------- feature rows -> snapshot


def _finite_number(value: Any) -> bool:
    """A JSON number, finite; a boolean is not a number here (strict, never converted)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(float(value))


#: Customers to score: their ids, model matrix and a lookup of their rows by position.
Part = tuple[list[str], np.ndarray, Callable[[np.ndarray], Any]]


@dataclass(frozen=True)
class FeatureRows:
    """Ready feature rows of a request, as a snapshot would hold them, without a frame.

    ``rows[i]`` maps every feature sent for customer ``ids[i]`` to its value as a snapshot row
    reads: numbers as float (NaN when missing), text (the model's categories, or any column
    where a customer sent text) as str (``pd.NA`` when missing). What one snapshot of these
    customers would hold, so scoring and reasons are the batch ones (tested).
    """

    ids: list[str]
    rows: list[dict[str, Any]]

    def rows_of(self, positions: np.ndarray) -> dict[int, dict[str, Any]]:
        """The rows at ``positions`` (what :func:`~churnlens.serving.explain.reason_arrays` reads)."""
        return {p: self.rows[p] for p in set(np.asarray(positions).tolist())}


def feature_rows(customers: Sequence[tuple[int, FeaturesCustomer]], *, model: ChurnModel) -> FeatureRows:
    """The feature rows of ``customers``, checked against the model's features.

    Raises
    ------
    ApiError
        422 naming the customer and feature: a model feature missing, a number where a
        category is expected or the reverse, a non-finite number.
    """
    levels = model.metadata.categorical_levels
    features = model.features
    known = set(features)
    extra: dict[str, None] = {}
    for position, customer in customers:
        row = customer.features
        missing = [f for f in features if f not in row]
        if missing:
            raise ApiError(
                422,
                ["body", "customers", position, "features", missing[0]],
                f"{len(missing)} model feature(s) missing (null stands for a missing value): "
                f"{missing[:10]}" + (" ..." if len(missing) > 10 else ""),
                "missing",
            )
        for name, value in row.items():
            if name not in known:
                extra.setdefault(name)
            if value is None:
                continue
            loc = ["body", "customers", position, "features", name]
            if name in levels and not isinstance(value, str):
                raise ApiError(422, loc, f"feature {name!r} is a category: give a string", "string_type")
            if name in known and name not in levels and not _finite_number(value):
                raise ApiError(422, loc, f"feature {name!r} must be a finite number", "finite_number")
    # a column is text when it is a category of the model or any customer sent text in it (as a
    # snapshot column would be), else numbers as float64
    text = set(levels) | {n for n in extra if any(isinstance(c.features.get(n), str) for _, c in customers)}
    mixed = {n for n in text - set(levels) if any(not isinstance(c.features.get(n), str | None) for _, c in customers)}
    shown: dict[str, list[Any]] = {
        n: list(pd.array([c.features.get(n) for _, c in customers], dtype="string")) for n in mixed
    }  # text columns holding numbers too: pandas' own conversion (rare)
    rows = []
    for i, (_, customer) in enumerate(customers):
        given = customer.features
        row: dict[str, Any] = {}
        for name in (*features, *extra):
            value = given.get(name)
            if name in shown:
                row[name] = shown[name][i]
            elif name in text:
                row[name] = pd.NA if value is None else value
            else:
                row[name] = np.nan if value is None else float(value)
        rows.append(row)
    return FeatureRows([c.customer_id for _, c in customers], rows)


# --------------------------------------------------------------------------- service


@dataclass
class Service:
    """The model served and the limits of the API."""

    loaded: LoadedModel
    settings: ScoringSettings
    token: str | None
    api: ApiSettings = field(default_factory=ApiSettings)
    bounds: InputBounds = DEFAULT_BOUNDS

    @property
    def ref(self) -> ModelRef:
        return ModelRef(name=self.loaded.name, version=self.loaded.version)

    def check_limits(self, request: ScoreRequest) -> None:
        """Customers per request, events per customer and per request within bounds, else 422 naming the field."""
        limits = self.api
        if len(request.customers) > limits.max_customers:
            raise ApiError(
                422,
                ["body", "customers"],
                f"at most {limits.max_customers} customers per request, got {len(request.customers)}",
                "too_long",
            )
        seen: dict[str, int] = {}
        for i, customer in enumerate(request.customers):
            if customer.customer_id in seen:
                raise ApiError(
                    422,
                    ["body", "customers", i, "customer_id"],
                    f"customer_id {customer.customer_id!r} repeats customers[{seen[customer.customer_id]}]",
                    "duplicate",
                )
            seen[customer.customer_id] = i
            if isinstance(customer, EventsCustomer) and customer.n_events() > limits.max_events_per_customer:
                largest = max(EVENT_FIELDS, key=lambda f: len(getattr(customer, f)))
                raise ApiError(
                    422,
                    ["body", "customers", i, largest],
                    f"at most {limits.max_events_per_customer} events per customer, got {customer.n_events()}",
                    "too_long",
                )
        total = sum(c.n_events() for c in request.customers if isinstance(c, EventsCustomer))
        if total > limits.max_events_per_request:
            raise ApiError(
                422,
                ["body", "customers"],
                f"at most {limits.max_events_per_request} events per request (all customers), got {total}",
                "too_long",
            )

    def score(self, request: ScoreRequest) -> ScoreResponse:
        """Score every customer of ``request``; the inactive ones come back ``not_scored``."""
        return ScoreResponse.model_validate(self.answer(request))

    def answer(self, request: ScoreRequest) -> dict[str, Any]:
        """:meth:`score`'s answer as JSON-ready data (what the endpoint sends, not validated again)."""
        self.check_limits(request)
        model = self.loaded.model
        settings = self.settings.override(lang=request.lang, reasons=request.reasons)
        by_events = [(i, c) for i, c in enumerate(request.customers) if isinstance(c, EventsCustomer)]
        by_features = [(i, c) for i, c in enumerate(request.customers) if isinstance(c, FeaturesCustomer)]
        parts: list[Part] = []
        not_scored: dict[str, str] = {}
        cutoff: pd.Timestamp | None = None
        if request.cutoff is not None and by_events:
            try:
                self.bounds.check_cutoff(pd.Timestamp(request.cutoff), what="cutoff")
            except InputError as exc:
                raise ApiError(422, ["body", "cutoff"], str(exc), "value_error") from None
        if by_events:
            tables = events_to_tables(by_events, model=model, bounds=self.bounds)
            if request.cutoff is not None:
                cutoff = pd.Timestamp(request.cutoff)
            elif tables is not None:  # "no cutoff": the day after the data's end, here the request's events
                cutoff = observed_until(tables)
            snapshot = self._snapshot(tables, cutoff, model) if tables is not None else None
            if snapshot is not None and len(snapshot):
                parts.append(_snapshot_part(model, snapshot))
            not_scored = self._not_scored(by_events, tables, cutoff, snapshot, model, request.lang)
        if by_features:
            given = feature_rows(by_features, model=model)
            try:
                parts.append((given.ids, model.matrix_of_records(given.rows), given.rows_of))
            except InputError as exc:  # a feature row the model cannot take; anything else is a bug (500)
                raise ApiError(422, ["body", "customers"], str(exc), "value_error") from None
        results = self._results(request, settings, parts, not_scored)
        return {
            "model": {"name": self.loaded.name, "version": self.loaded.version},
            "cutoff": None if cutoff is None else cutoff.date().isoformat(),
            "results": results,
        }

    @staticmethod
    def _snapshot(tables: Tables, cutoff: pd.Timestamp, model: ChurnModel) -> pd.DataFrame:
        from churnlens.features import build_snapshot

        try:
            snapshot = build_snapshot(tables, cutoff, feature_config_of(model))
            check_compatible(model, snapshot, tables=tables)
        except DataValidationError as exc:
            raise ApiError(422, ["body", "customers", exc.table], str(exc), "data_validation") from None
        except InputError as exc:  # any other exception is a bug: 500, logged
            raise ApiError(422, ["body", "customers"], str(exc), "value_error") from None
        return snapshot

    @staticmethod
    def _not_scored(
        customers: Sequence[tuple[int, EventsCustomer]],
        tables: Tables | None,
        cutoff: pd.Timestamp | None,
        snapshot: pd.DataFrame | None,
        model: ChurnModel,
        lang: str = "en",
    ) -> dict[str, str]:
        scored = set() if snapshot is None else set(snapshot.index)
        reasons: dict[str, str] = {}
        if all(c.customer_id in scored for _, c in customers):
            return {}
        if tables is not None and cutoff is not None:
            window = feature_config_of(model).active_window_days
            rejects = find_rejects(
                tables, cutoff, pd.Index(sorted(scored), dtype="string"), active_window_days=window, lang=lang
            )
            reasons = dict(zip(rejects["customer_id"].tolist(), rejects["reason"].tolist(), strict=True))
        out = {}
        for _, c in customers:
            if c.customer_id in scored:
                continue
            fallback = reject_text("no_purchase_before" if c.n_events() else "no_events", lang)
            out[c.customer_id] = reasons.get(c.customer_id, fallback)
        return out

    def _results(
        self,
        request: ScoreRequest,
        settings: ScoringSettings,
        parts: list[Part],
        not_scored: dict[str, str],
    ) -> list[dict[str, Any]]:
        """One JSON-ready result per customer, in request order (the fields of :class:`Result`)."""
        model = self.loaded.model
        by_id: dict[str, dict[str, Any]] = {cid: _result(cid, reason=why) for cid, why in not_scored.items()}
        for ids, matrix, rows_of in parts:
            try:
                proba, bands = score_matrix(model, matrix, settings)
                found = explain_matrix(model, matrix, rows_of, settings)
            except InputError as exc:  # a feature row the model cannot take; anything else is a bug (500)
                raise ApiError(422, ["body", "customers"], str(exc), "value_error") from None
            grouped: dict[int, list[dict[str, Any]]] = {}
            for row, feature, number, label, contribution, effect, text in zip(
                found.row.tolist(), found.feature.tolist(), found.value.tolist(), found.value_label.tolist(),
                found.contribution.tolist(), found.effect.tolist(), found.text.tolist(), strict=True,
            ):  # fmt: skip
                value = number if math.isfinite(number) else (None if label is None or label is pd.NA else str(label))
                grouped.setdefault(row, []).append(
                    {"feature": str(feature), "value": value, "contribution": contribution, "effect": effect,
                     "text": str(text)}  # fmt: skip
                )
            for i, (cid, p, band) in enumerate(zip(ids, proba.tolist(), bands.tolist(), strict=True)):
                by_id[cid] = _result(cid, probability=p, band=str(band), reasons=grouped.get(i, []))
        return [by_id[c.customer_id] for c in request.customers]


def _result(
    customer_id: str,
    *,
    probability: float | None = None,
    band: str | None = None,
    reasons: list[dict[str, Any]] | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """A :class:`Result` as JSON-ready data: scored (a probability) or not (the reason why)."""
    return {
        "customer_id": customer_id,
        "status": "not_scored" if probability is None else "scored",
        "churn_probability": probability,
        "risk_band": band,
        "reasons": reasons or [],
        "reason": reason,
    }


def _snapshot_part(model: ChurnModel, snapshot: pd.DataFrame) -> Part:
    """Ids, model matrix and row lookup of a snapshot built from posted events."""
    try:
        matrix = model.matrix(snapshot)
    except InputError as exc:
        raise ApiError(422, ["body", "customers"], str(exc), "value_error") from None
    return [str(c) for c in snapshot.index], matrix, lambda positions: row_dicts(snapshot, positions)


def _json(answer: dict[str, Any]) -> Response:
    """The answer as JSON, written by pydantic-core as a response model would be (same bytes)."""
    return Response(to_json(answer), media_type="application/json")


#: Requests this small are scored on the event loop (:func:`is_small`).
INLINE_MAX_CUSTOMERS = 8
INLINE_MAX_EVENTS = 500


def is_small(request: ScoreRequest) -> bool:
    """At most :data:`INLINE_MAX_CUSTOMERS` customers and :data:`INLINE_MAX_EVENTS` posted events."""
    if len(request.customers) > INLINE_MAX_CUSTOMERS:
        return False
    events = sum(c.n_events() for c in request.customers if isinstance(c, EventsCustomer))
    return events <= INLINE_MAX_EVENTS


# --------------------------------------------------------------------------- request guard


def _header(scope: MutableMapping[str, Any], name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower case), None when absent."""
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value)
    return None


def token_problem(authorization: bytes | None, expected: str) -> str | None:
    """Why an ``Authorization`` header does not carry the bearer token ``expected`` (None: it does).

    The token is compared in constant time (:func:`hmac.compare_digest`).
    """
    scheme, _, given = (authorization or b"").strip().partition(b" ")
    if scheme.lower() != b"bearer" or not given.strip():
        return "missing bearer token"
    if not hmac.compare_digest(given.strip(), expected.encode()):
        return "wrong bearer token"
    return None


class RequestGuard:
    """ASGI middleware, the first thing a request meets: the token, then the body's size and pace.

    In this order, before the app parses anything:

    1. on ``/v1`` paths, when the server has a token: the bearer token, before a byte of the body is
       read (401);
    2. a ``Content-Length`` over ``api.max_body_bytes``: 413 at once;
    3. the body, read here in full, counted (413 as soon as it passes the limit) and timed (408 when no
       byte arrives for ``api.read_timeout`` seconds, or when, that long after the headers, it has
       arrived slower on average than ``api.min_body_kib_per_s``);
    4. the app gets the body read here.

    An answer sent before the whole body was read says ``Connection: close``: uvicorn then closes
    the connection instead of draining (reading) the rest of a body it refused.

    Hand-written because Starlette's ``RequestBodyLimitMiddleware`` (FastAPI's ``max_body_size``)
    counts bytes only as the app reads them and knows neither the token nor a read timeout, and
    uvicorn has no body timeout.
    """

    def __init__(self, app: Any, *, api: ApiSettings, token: str | None) -> None:
        self.app, self.api, self.token = app, api, token

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if self.token is not None and (path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")):
            why = token_problem(_header(scope, b"authorization"), self.token)
            if why is not None:
                await self._refuse(401, ["header", "authorization"], why, "unauthorized", scope, receive, send)
                return
        max_bytes = self.api.max_body_bytes
        length = _header(scope, b"content-length")
        if length is not None:
            declared = int(length) if length.strip().isdigit() else -1
            if declared < 0:
                await self._refuse(400, ["header", "content-length"], "invalid Content-Length", "header",
                                   scope, receive, send)  # fmt: skip
                return
            if declared > max_bytes:
                await self._too_large(scope, receive, send)
                return
        body = await self._read_body(scope, receive, send)
        if body is None:
            return
        sent = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read_body(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> bytes | None:
        """The whole body, or None once an answer was sent (too large, too slow) or the client left."""
        timeout, rate = self.api.read_timeout, self.api.min_body_bytes_per_s
        loop = asyncio.get_running_loop()
        start = last = loop.time()
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            # the next bytes must come within `timeout` of the last ones, and keep the average pace
            deadline = min(last + timeout, start + timeout + size / rate)
            try:
                message = await asyncio.wait_for(receive(), timeout=max(deadline - loop.time(), 0.0))
            except TimeoutError:
                msg = (
                    f"request body not received in time ({size} bytes after {loop.time() - start:.1f} s; "
                    f"read timeout {timeout:g} s, at least {self.api.min_body_kib_per_s:g} KiB/s)"
                )
                await self._refuse(408, ["body"], msg, "body_timeout", scope, receive, send)
                return None
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                last = loop.time()
                if size > self.api.max_body_bytes:
                    await self._too_large(scope, receive, send)
                    return None
                chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    async def _too_large(self, scope: Any, receive: Any, send: Any) -> None:
        msg = f"request body larger than {self.api.max_body_bytes} bytes"
        await self._refuse(413, ["body"], msg, "body_too_large", scope, receive, send)

    @staticmethod
    async def _refuse(
        status: int, loc: Sequence[str | int], msg: str, kind: str, scope: Any, receive: Any, send: Any
    ) -> None:
        headers = {"Connection": "close"}
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        await _error(status, loc, msg, kind, **headers)(scope, receive, send)


# --------------------------------------------------------------------------- app

#: Declares the bearer scheme in the OpenAPI document; the token itself is checked by
#: :class:`RequestGuard`, before the body is read (a dependency would run after).
_bearer = HTTPBearer(auto_error=False, description="Required when CHURNLENS_API_TOKEN is set.")


def _clean_loc(loc: Sequence[Any]) -> list[str | int]:
    """Pydantic's loc without the union tag it inserts after a customer's index."""
    out = [x if isinstance(x, int) else str(x) for x in loc]
    if len(out) > 3 and out[:2] == ["body", "customers"] and isinstance(out[2], int):
        if out[3] in ("events", "features") and (len(out) > 4 or out[3] == "events"):
            del out[3]
    return out


def create_app(
    model_uri: str | None = None,
    *,
    tracking_uri: str | None = None,
    api: ApiSettings | None = None,
    settings: ScoringSettings | None = None,
    token: str | None = None,
    loaded: LoadedModel | None = None,
    bounds: InputBounds | None = None,
    campaign: str | None = None,
    data_dir: str | None = None,
    columns: dict[str, dict[str, str]] | None = None,
) -> FastAPI:
    """Build the API around one model, loaded now (once), and the web app when given a campaign.

    Parameters
    ----------
    model_uri : str, optional
        Any URI :func:`churnlens.serving.load_model` accepts; default ``models:/churnlens@champion``.
    tracking_uri : str, optional
        Tracking store; else ``MLFLOW_TRACKING_URI``, else the embedded default.
    api : ApiSettings, optional
        Request limits (``[api]``): customers and events per request, body size, read timeout.
    settings : ScoringSettings, optional
        Risk bands and the other scoring settings (``[serving]``); each request sets its
        own language and number of reasons.
    token : str, optional
        Bearer token required on ``/v1``; default the ``CHURNLENS_API_TOKEN`` environment
        variable (no token when unset or empty).
    loaded : LoadedModel, optional
        An already loaded model (then ``model_uri`` and ``tracking_uri`` are not used).
    bounds : InputBounds, optional
        Limits on posted timestamps, amounts and cutoffs (``[bounds]``), as for files.
    campaign : str, optional
        A campaign written by ``churnlens score`` (or a folder of them): serves the web app at
        ``/`` (:mod:`churnlens.serving.webapp`), its pages behind a login when a token is set.
    data_dir : str, optional
        The customers' tables for the web app's cards; default the directory each campaign's
        summary records.
    columns : dict, optional
        ``[columns.<table>]`` mappings for reading those tables.

    Returns
    -------
    FastAPI
    """
    api = api or ApiSettings()
    settings = settings or ScoringSettings()
    bands = settings.bands
    token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    loaded = loaded or load_model(model_uri, tracking_uri=tracking_uri)
    service = Service(loaded, settings, token, api, bounds or DEFAULT_BOUNDS)

    app = _fastapi(
        title="churnlens",
        version="1",
        summary="Churn probability, risk band and plain-language reasons for loyalty-program customers.",
        description=(
            "Score customers given as raw events (table contract of DESIGN §2) or as ready "
            "feature rows. When the server has `CHURNLENS_API_TOKEN` set, `/v1` endpoints need "
            '`Authorization: Bearer <token>`. Errors are `{"detail": [{"loc", "msg", "type"}]}`; '
            f"limits: {api.max_customers} customers and {api.max_events_per_request} events per request, "
            f"{api.max_events_per_customer} events per customer, {api.max_body_bytes} bytes per body; "
            f"a body with no byte for {api.read_timeout:g} s, or slower than {api.min_body_kib_per_s:g} KiB/s "
            "on average, is dropped (408). Numbers and booleans are strict: a string or a boolean where a "
            "number belongs is refused (422)."
        ),
        responses=_ERRORS,
    )
    app.state.service = service

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.loc, exc.msg, exc.kind)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        status = 400 if any(e.get("type") == "json_invalid" for e in errors) else 422
        detail = [
            {
                "loc": _clean_loc(e.get("loc", ())),
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in errors[:20]
        ]
        return JSONResponse({"detail": detail}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, [], str(exc.detail), "http_error")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, [], "internal error", "internal")

    @app.get("/health", response_model=Health, tags=["service"])
    def health() -> Health:
        """Liveness: the server is up (no work beyond answering)."""
        return Health(status="ok", model=service.ref)

    @app.get("/ready", response_model=Health, tags=["service"])
    def ready() -> Health:
        """Readiness: answers once this worker's model is loaded (the app exists only after loading it)."""
        return Health(status="ready", model=service.ref)

    @app.get("/v1/model", response_model=ModelInfo, tags=["model"], dependencies=[Security(_bearer)])
    def model_info() -> ModelInfo:
        """The model served: name, version, training time, horizon, label mode, features, test metrics."""
        info = loaded.info()
        info["trained_at"] = None if info["trained_at"] is None else str(info["trained_at"])
        info["catalog_version"] = None if info["catalog_version"] is None else str(info["catalog_version"])
        info["test_cutoff"] = None if info["test_cutoff"] is None else str(info["test_cutoff"])
        info["test_metrics"] = json.loads(json.dumps(info["test_metrics"], default=str))
        return ModelInfo(**info, risk_bands={"high": bands[0], "medium": bands[1]})

    @app.post("/v1/score", response_model=ScoreResponse, tags=["score"], dependencies=[Security(_bearer)])
    async def score(request: ScoreRequest) -> Response:
        """Churn probability, risk band and top reasons per customer, in request order.

        Each customer is either raw events (`purchases`, `program_events`,
        `support_interactions`, `cancellations`, `contacts`, `attributes`) or ready features
        (`features`). Customers not in the active population at the cutoff come back with
        `status: "not_scored"` and the `reason`.
        """
        # A small request is scored on the event loop (a few milliseconds: handing it to a thread
        # would cost more); a larger one in the thread pool, so /health answers meanwhile.
        if is_small(request):
            return _json(service.answer(request))
        return _json(await run_in_threadpool(service.answer, request))

    if campaign is not None:
        from churnlens.serving.webapp import build_webapp, mount_webapp

        mount_webapp(app, build_webapp(campaign, loaded=loaded, settings=settings, token=token, data_dir=data_dir,
                                       columns=columns))  # fmt: skip
    app.add_middleware(RequestGuard, api=api, token=token)
    return app


def _fastapi(**kwargs: Any) -> FastAPI:
    """The FastAPI app, with ``/docs`` and ``/redoc`` served from local files (fastapi-offline), never
    from a CDN; without that package both pages are left out."""
    try:
        from fastapi_offline import FastAPIOffline
    except ImportError:
        return FastAPI(docs_url=None, redoc_url=None, **kwargs)
    return FastAPIOffline(**kwargs)


def settle_heap() -> None:
    """Collect once and move everything loaded so far (libraries, the model) out of the garbage
    collector's sight (:func:`gc.freeze`): its full collections then walk only what requests
    create, instead of pausing a request for the whole heap now and then. Called by a server
    process once its app is built."""
    gc.collect()
    gc.freeze()


def app_from_environment() -> FastAPI:
    """The app of one worker process: :func:`create_app` with the options in ``$CHURNLENS_SERVE_OPTIONS``.

    ``churnlens serve --workers N`` sets them and uvicorn calls this factory in each worker, so
    every worker loads the model once, at startup.
    """
    raw = json.loads(os.environ[OPTIONS_ENV])
    settings = ScoringSettings(**raw.pop("settings", {}))
    bounds = InputBounds(**raw.pop("bounds", {}))
    api = ApiSettings(**raw.pop("api", {}))
    app = create_app(**raw, api=api, settings=settings, bounds=bounds)
    settle_heap()
    return app
