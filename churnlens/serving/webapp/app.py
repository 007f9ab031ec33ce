"""The web app's routes, mounted beside the API by :func:`churnlens.serving.api.create_app`.

Pages (server-rendered, no script, nothing from another site):

- ``GET /`` — a campaign: header, filters, sortable paginated table (``?campaign=NAME`` and
  the query of :class:`~churnlens.serving.webapp.campaigns.Query`);
- ``GET /export.csv`` — the filtered list as CSV, in the page's order;
- ``GET /customer/{id}`` — the customer's card (the ``card_body.html`` of
  ``churnlens explain --html``), suggested action and 12-month timeline;
- ``GET /campaigns`` — every campaign found;
- ``GET|POST /login``, ``POST /logout``, ``POST /lang`` — access and language;
- ``GET /static/app.css``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from churnlens.config import LANGS, ScoringSettings
from churnlens.errors import InputError
from churnlens.i18n import Words
from churnlens.serving.card import card_context, explain_customer
from churnlens.serving.loader import LoadedModel
from churnlens.serving.render import render, template_source
from churnlens.serving.timeline import customer_timeline
from churnlens.serving.webapp import views
from churnlens.serving.webapp.auth import (
    LANG_COOKIE,
    Access,
    csrf_ok,
    csrf_token,
    safe_next,
    set_csrf,
)
from churnlens.serving.webapp.campaigns import PAGE_SIZES, Campaign, CampaignStore, Query
from churnlens.serving.webapp.customers import DataStore

logger = logging.getLogger(__name__)

#: Headers of every page: nothing but this server's own style sheet and forms.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
#: Seconds a wrong token waits before its answer (slows guessing down).
LOGIN_DELAY_S = 0.5


@dataclass
class WebApp:
    """What the pages need: campaigns, data, model, settings (action rules included), access."""

    campaigns: CampaignStore
    data: DataStore
    loaded: LoadedModel
    settings: ScoringSettings
    access: Access

    # ----------------------------------------------------------------- helpers

    def lang(self, request: Request) -> str:
        chosen = request.cookies.get(LANG_COOKIE)
        return chosen if chosen in LANGS else self.settings.lang

    def formatter(self, lang: str, campaign: Campaign | None) -> Words:
        currency = (campaign.summary.get("currency") if campaign else None) or self.settings.currency
        return Words(lang, str(currency))

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        """A page of ``template`` with the context every page has (language, CSRF, campaigns)."""
        lang = context.pop("lang", None) or self.lang(request)
        token, new = csrf_token(request)
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        fmt = context.pop("fmt", None) or Words(lang, self.settings.currency)
        allowed = self.access.allowed(request)
        base = {
            "lang": lang, "t": Words(lang), "fmt": fmt, "csrf": token, "here": here,
            "secured": self.access.secured, "logged_in": allowed,
            "campaign_names": [r.name for r in self.campaigns.refs()] if allowed else [],
            "current": None,
        }  # fmt: skip
        response = HTMLResponse(render(template, **{**base, **context}), status_code=status, headers=PAGE_HEADERS)
        if new:
            set_csrf(response, request, token)
        return response

    def error(self, request: Request, status: int, title_key: str, message: str, **context: Any) -> HTMLResponse:
        t = Words(self.lang(request))
        return self.page(request, "error.html", status=status, title=t(title_key), message=message, **context)

    def login_redirect(self, request: Request) -> RedirectResponse:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + urlencode({"next": here}), status_code=303)

    # ----------------------------------------------------------------- pages

    def campaign_page(self, request: Request) -> Response:
        if not self.access.allowed(request):
            return self.login_redirect(request)
        params = dict(request.query_params)
        campaign = self.campaigns.get(params.get("campaign"))
        lang = self.lang(request)
        t = Words(lang)
        if campaign is None:
            if params.get("campaign"):
                return self.error(request, 404, "not_found", t("not_found") + f": {params['campaign']}")
            return self.error(request, 404, "not_found", t("no_campaign", path=str(self.campaigns.path)))
        fmt = self.formatter(lang, campaign)
        query = Query.parse(params)
        page = campaign.page(query)
        query = replace(query, page=page.page)
        sorted_by = t(f"col_{query.sort}")
        return self.page(
            request, "campaign.html", lang=lang, fmt=fmt, current=campaign.name, campaign=campaign, query=query,
            page=page, header=views.header(campaign, fmt, t), columns=views.columns(campaign.name, query, t),
            rows=views.rows(campaign, page.rows, query, fmt, t), page_sizes=PAGE_SIZES,
            caption=t("table_caption", n=fmt.integer(page.total), column=sorted_by,
                      direction=t("ascending" if query.direction == "asc" else "descending")),
            export_url="/export.csv?" + urlencode({"campaign": campaign.name, **query.params(page=1)}),
            previous_url=views.list_url(campaign.name, query, page=page.page - 1) if page.page > 1 else None,
            next_url=views.list_url(campaign.name, query, page=page.page + 1) if page.page < page.pages else None,
            reset_url="/?" + urlencode({"campaign": campaign.name}),
        )  # fmt: skip

    def export(self, request: Request) -> Response:
        if not self.access.allowed(request):
            return self.login_redirect(request)
        params = dict(request.query_params)
        campaign = self.campaigns.get(params.get("campaign"))
        if campaign is None:
            return self.error(request, 404, "not_found", Words(self.lang(request))("not_found"))
        positions = campaign.rows(Query.parse(params))
        filename = campaign.name.replace("/", "_") + ".filtered.csv"
        return StreamingResponse(
            views.export_csv(campaign, positions), media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store",
                     "X-Content-Type-Options": "nosniff"},
        )  # fmt: skip

    def customer_page(self, request: Request, customer_id: str) -> Response:
        if not self.access.allowed(request):
            return self.login_redirect(request)
        from churnlens.features import build_snapshot
        from churnlens.serving.core import feature_config_of
        from churnlens.serving.loader import check_compatible

        params = dict(request.query_params)
        lang = self.lang(request)
        t = Words(lang)
        campaign = self.campaigns.get(params.get("campaign"))
        if campaign is None:
            return self.error(request, 404, "not_found", t("not_found"))
        query = Query.parse(params)
        back = views.list_url(campaign.name, query)
        row = campaign.position(customer_id)
        if row is None:
            return self.error(request, 404, "not_found", t("no_customer", id=customer_id, campaign=campaign.name),
                              back=back, current=campaign.name)
        summary = campaign.summary
        source = self.data.source_of(summary)
        fmt = self.formatter(lang, campaign)
        if source is None:
            why = "the campaign's summary records no data directory: start churnlens serve with --data DIR"
            return self.error(request, 409, "not_found", t("no_data", why=why), back=back, current=campaign.name)
        try:
            data = self.data.get(source)
        except (InputError, ValueError, OSError) as exc:
            return self.error(request, 409, "not_found", t("no_data", why=str(exc)), back=back, current=campaign.name)
        model = self.loaded.model
        cutoff = pd.Timestamp(summary["cutoff"])
        mine = data.customer(customer_id)
        snapshot = build_snapshot(mine, cutoff, feature_config_of(model))
        if customer_id not in snapshot.index:
            why = f"customer {customer_id} is not active at {summary['cutoff']} in {source}"
            return self.error(request, 409, "not_found", t("no_data", why=why), back=back, current=campaign.name)
        try:
            check_compatible(model, snapshot, tables=mine)
        except ValueError as exc:
            return self.error(request, 409, "not_found", t("no_data", why=str(exc)), back=back, current=campaign.name)
        high, medium = summary.get("band_bounds") or self.settings.bands
        settings = self.settings.override(
            lang=lang, reasons=int(summary.get("n_reasons") or self.settings.reasons), high_risk=float(high),
            medium_risk=float(medium), currency=fmt.currency,
        )  # fmt: skip
        value = campaign.value[row]
        explanation = explain_customer(
            model, snapshot, customer_id, cutoff=str(cutoff.date()), settings=settings,
            customer_value=None if np.isnan(value) else float(value), model_name=self.loaded.name,
            model_version=self.loaded.version,
        )  # fmt: skip
        context = card_context(explanation, timeline=customer_timeline(mine, cutoff, fmt))
        notice = None
        scored_with = (summary.get("model_name"), summary.get("model_version"))
        if scored_with != (self.loaded.name, self.loaded.version):
            notice = t("other_model", served=_model_name(self.loaded.name, self.loaded.version),
                       scored=_model_name(*scored_with))  # fmt: skip
        return self.page(request, "customer.html", lang=lang, current=campaign.name, back=back, notice=notice,
                         **context)  # fmt: skip

    def campaigns_page(self, request: Request) -> Response:
        if not self.access.allowed(request):
            return self.login_redirect(request)
        import json

        lang = self.lang(request)
        items = []
        for ref in self.campaigns.refs():
            try:
                summary = json.loads(ref.summary.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            items.append({"name": ref.name, "url": "/?" + urlencode({"campaign": ref.name}), "summary": summary})
        return self.page(request, "campaigns.html", lang=lang, items=items)


def _model_name(name: str | None, version: str | None) -> str:
    return f"{name or '?'}" + (f" v{version}" if version else "")


def mount_webapp(app: FastAPI, web: WebApp) -> None:
    """Add the web app's routes to ``app`` (the API's)."""

    @app.get("/", include_in_schema=False)
    def campaign_page(request: Request) -> Response:
        return web.campaign_page(request)

    @app.get("/export.csv", include_in_schema=False)
    def export(request: Request) -> Response:
        return web.export(request)

    @app.get("/customer/{customer_id:path}", include_in_schema=False)
    def customer_page(request: Request, customer_id: str) -> Response:
        return web.customer_page(request, customer_id)

    @app.get("/campaigns", include_in_schema=False)
    def campaigns_page(request: Request) -> Response:
        return web.campaigns_page(request)

    @app.get("/static/app.css", include_in_schema=False)
    def style() -> Response:
        css = template_source("app.css") + "\n" + template_source("card.css")
        return Response(css, media_type="text/css; charset=utf-8", headers={"Cache-Control": "max-age=300"})

    async def checked_form(request: Request) -> dict[str, str] | None:
        """The POSTed form's fields, None when its CSRF token does not match the cookie's."""
        form = await request.form(max_files=0, max_fields=8)
        fields = {k: str(v) for k, v in form.items()}
        return fields if csrf_ok(request, fields.get("csrf")) else None

    def bad_form(request: Request) -> Response:
        return web.error(request, 400, "error", Words(web.lang(request))("bad_form"))

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request) -> Response:
        if not web.access.secured or web.access.allowed(request):
            return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        return web.page(request, "login.html", next=safe_next(request.query_params.get("next")), failed=None)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await checked_form(request)
        t = Words(web.lang(request))
        if form is None:
            return web.page(request, "login.html", status=400, next="/", failed=t("bad_form"))
        target = safe_next(form.get("next", "/"))
        if not web.access.secured:
            return RedirectResponse(target, status_code=303)
        if not web.access.check_token(form.get("token", "")):
            await asyncio.sleep(LOGIN_DELAY_S)
            logger.warning("web app: failed login from %s", request.client.host if request.client else "?")
            return web.page(request, "login.html", status=401, next=target, failed=t("bad_token"))
        response = RedirectResponse(target, status_code=303)
        web.access.set_session(response, request)
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        if await checked_form(request) is None:
            return bad_form(request)
        web.access.revoke(request)
        response = RedirectResponse("/login" if web.access.secured else "/", status_code=303)
        web.access.clear_session(response)
        return response

    @app.post("/lang", include_in_schema=False)
    async def switch_language(request: Request) -> Response:
        form = await checked_form(request)
        if form is None:
            return bad_form(request)
        lang = form.get("lang", "")
        response = RedirectResponse(safe_next(form.get("next", "/")), status_code=303)
        if lang in LANGS:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https", path="/")  # fmt: skip
        return response


__all__ = ["PAGE_HEADERS", "WebApp", "mount_webapp"]
