"""The web app in a real browser: Debian's Chromium driven by Playwright against ``churnlens serve
--campaign`` (a real uvicorn on 127.0.0.1, its life bounded by ``timeout``).

The campaign is scored from a small simulation with a small model fitted directly (as in
``test_api``); the server runs with ``CHURNLENS_API_TOKEN`` set. Tests skip only when
Chromium or Playwright is missing, saying why (``.ci/run`` installs Chromium with apt-get).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pandas as pd
import pytest
from conftest import free_port, wait_for_http
from test_api import CUTOFF, _fit_model

from churnlens.config import ScoringSettings
from churnlens.data.io import load_tables, write_tables
from churnlens.features import build_snapshot
from churnlens.model_store import save_model
from churnlens.serving import load_model, score_base, write_outputs
from churnlens.serving.card import explain_customer
from churnlens.serving.core import feature_config_of
from churnlens.serving.webapp.customers import CustomerTables

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning"),
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TOKEN = "web-s3cret"
SERVER_LIFETIME_S = 600
PAGE_TIMEOUT_MS = 30_000
NNBSP = "\u202f"


def browser_problem() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: pip install -e '.[dev]'"
    if not os.path.exists(CHROMIUM):
        why = os.environ.get("CHURNLENS_CHROMIUM_MISSING", "")
        return f"Debian's Chromium is not at {CHROMIUM} (.ci/run installs it: apt-get install -y chromium)" + (
            f"; the install failed: {why}" if why else ""
        )
    return None


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Data, a model, a scored campaign in a folder, and ``churnlens serve --campaign`` on it."""
    from churnlens.simulate import simulate

    root = tmp_path_factory.mktemp("webapp")
    sim = simulate(n_customers=1000, months=15, seed=5)
    data = root / "data"
    write_tables(sim.tables, data, fmt="parquet")
    tables, _ = load_tables(data)
    model = _fit_model(tables)
    model_dir = root / "model"
    save_model(model, model_dir, pip_requirements=["churnlens"])
    tracking = f"sqlite:///{root / 'mlflow.db'}"
    loaded = load_model(str(model_dir), tracking_uri=tracking)
    result = score_base(tables, CUTOFF, loaded, lang="fr", top=150, explain_all=True, source=str(data),
                        assign_actions=True)
    campaigns = root / "campaigns"
    write_outputs(result, campaigns / "spring.csv")
    port = free_port()
    cmd = ["timeout", str(SERVER_LIFETIME_S), sys.executable, "-m", "churnlens.cli.main", "serve",
           "--campaign", str(campaigns), "--tracking-uri", tracking, "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning"]  # fmt: skip
    log = open(root / "server.log", "w")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "CHURNLENS_API_TOKEN": TOKEN}
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", 120, process)
        yield {"root": root, "data": data, "tables": tables, "loaded": loaded, "result": result,
               "campaigns": campaigns, "url": f"http://127.0.0.1:{port}", "log": root / "server.log"}  # fmt: skip
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    problem = browser_problem()
    if problem:
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def new_page(browser, **options):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    return context, page


def login(page, url: str, token: str = TOKEN) -> None:
    page.goto(url + "/")
    page.fill("#token", token)
    page.click("form.login button[type=submit]")
    page.wait_for_url(lambda address: "/login" not in address)


def follow(page, selector: str) -> None:
    """Click something that loads a new page, and wait for that page."""
    with page.expect_navigation():
        page.click(selector)


def shown_ids(page) -> list[str]:
    return page.locator("#customers tbody th a").all_inner_texts()


def explained_texts(world, customer_id: str, lang: str) -> list[str]:
    """The reasons the card must show, computed here through the same scoring core."""
    tables = CustomerTables(world["tables"], "test").customer(customer_id)
    model = world["loaded"].model
    snapshot = build_snapshot(tables, pd.Timestamp(CUTOFF), feature_config_of(model))
    explanation = explain_customer(model, snapshot, customer_id, cutoff=CUTOFF,
                                   settings=ScoringSettings(lang=lang, reasons=3))  # fmt: skip
    return explanation.reasons["text"].tolist()


# --------------------------------------------------------------------------- the marketer's path


def test_marketer_end_to_end(world, browser, tmp_path):
    url, campaign = world["url"], world["result"].campaign
    context, page = new_page(browser, accept_downloads=True)
    page.goto(url + "/?campaign=spring")
    assert "/login" in page.url
    page.fill("#token", "not the token")
    follow(page, "form.login button[type=submit]")
    assert page.locator(".error").inner_text() == "Wrong token."
    page.fill("#token", TOKEN)
    follow(page, "form.login button[type=submit]")
    assert page.url == url + "/?campaign=spring"
    cookie = {c["name"]: c for c in context.cookies()}["churnlens_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > time.time()

    # the list: the right number of rows, the header's figures
    assert len(shown_ids(page)) == min(50, len(campaign))
    assert page.locator("#match-count").inner_text() == f"{len(campaign):,} customers match"
    assert shown_ids(page) == campaign["customer_id"].head(50).tolist()
    assert f"{int(campaign['selected'].sum()):,}" in page.locator("dl.figures").inner_text()

    # in French
    follow(page, "form.lang button")
    assert page.locator("h1").inner_text() == "Campagne spring"
    assert page.locator("#match-count").inner_text() == f"{len(campaign):,} clients correspondent".replace(",", NNBSP)
    assert "1\u00a0févr.\u00a02024" in page.locator("dl.facts").inner_text()
    page.screenshot(path=tmp_path / "list_fr.png", full_page=True)

    # filter by band, sort by value at risk, search an id prefix
    band = campaign["risk_band"].value_counts().drop("low", errors="ignore").idxmax()
    page.select_option("#f-band", band)
    follow(page, "form.filters button[type=submit]")
    expected = campaign[campaign["risk_band"] == band]
    assert page.locator("#match-count").inner_text().startswith(f"{len(expected)} client")
    assert set(page.locator("#customers tbody td .band").all_inner_texts()) == {"élevé" if band == "high" else "moyen"}
    follow(page, "th.col-value_at_risk a")
    assert page.locator("th.col-value_at_risk").get_attribute("aria-sort") == "descending"
    by_risk = expected.sort_values(["value_at_risk", "rank"], ascending=[False, True], kind="stable")
    assert shown_ids(page) == by_risk["customer_id"].head(50).tolist()
    prefix = by_risk["customer_id"].iloc[0][:-1]
    page.fill("#f-q", prefix)
    follow(page, "form.filters button[type=submit]")
    searched = by_risk[by_risk["customer_id"].str.startswith(prefix)]
    assert shown_ids(page) == searched["customer_id"].tolist() and len(searched) >= 1

    # the CSV of the filtered view equals the rows shown
    with page.expect_download() as download:
        page.click("#download")
    exported = pd.read_csv(download.value.path(), dtype={"customer_id": str})
    assert exported["customer_id"].tolist() == shown_ids(page)
    mine = campaign.set_index("customer_id").loc[exported["customer_id"]]
    assert exported["churn_probability"].to_numpy() == pytest.approx(mine["churn_probability"].to_numpy())
    assert {"reason_family", "action", "action_label"} <= set(exported.columns)

    # a customer's card, in French: French reasons, the SVG waterfall, an action, the timeline
    customer = shown_ids(page)[0]
    follow(page, "#customers tbody th a")
    assert f"/customer/{customer}" in page.url
    assert page.locator("#card-title").inner_text() == f"Explication du risque d'attrition — Client {customer}"
    assert page.locator("ol.reasons .reason-text").all_inner_texts() == explained_texts(world, customer, "fr")
    effects = page.locator("ol.reasons .effect").all_inner_texts()
    assert effects and all(re.fullmatch(r"[+−]\d+(,\d)?\u00a0pts?", e) for e in effects)
    chart = page.locator("svg.waterfall")
    assert chart.get_attribute("role") == "img"
    title = page.locator("svg.waterfall > title").text_content()
    assert title == "Ce qui fait varier la probabilité d'attrition de ce client"
    assert "Risque moyen des clients" in page.locator("svg.waterfall > desc").text_content()
    assert "Ce client" in chart.text_content()
    assert page.locator("svg.timeline > desc").text_content().startswith("Activité des 12 mois")
    assert page.locator(".action-text").inner_text()
    page.screenshot(path=tmp_path / "card_fr.png", full_page=True)

    # switch to English: the same card in English
    follow(page, "form.lang button")
    assert page.locator("#card-title").inner_text() == f"Churn risk explanation — Customer {customer}"
    assert page.locator("ol.reasons .reason-text").all_inner_texts() == explained_texts(world, customer, "en")
    assert "Average customer's risk" in page.locator("svg.waterfall > desc").text_content()
    page.screenshot(path=tmp_path / "card_en.png", full_page=True)

    # back to the list with the filters kept
    follow(page, "a.back")
    kept = parse_qs(urlsplit(page.url).query)
    assert kept["band"] == [band] and kept["q"] == [prefix] and kept["sort"] == ["value_at_risk"]
    assert shown_ids(page) == searched["customer_id"].tolist()
    page.goto(url + "/?campaign=spring")
    page.screenshot(path=tmp_path / "list_en.png", full_page=True)
    for name in ("list_fr", "list_en", "card_fr", "card_en"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000

    # log out: every page is closed, the old session too
    session = {c["name"]: c for c in context.cookies()}["churnlens_session"]["value"]
    follow(page, "form.logout button")
    assert "/login" in page.url
    closed = ("/?campaign=spring", f"/customer/{customer}?campaign=spring", "/export.csv?campaign=spring", "/campaigns")
    for path in closed:
        page.goto(url + path)
        assert "/login" in page.url, path
    replay = httpx.get(url + "/", cookies={"churnlens_session": session}, follow_redirects=False)
    assert replay.status_code == 303 and replay.headers["location"].startswith("/login")
    context.close()


def test_keyboard_alone_reaches_filters_table_and_links(world, browser):
    context, page = new_page(browser)
    page.goto(world["url"] + "/")
    page.focus("#token")
    page.keyboard.type(TOKEN)
    page.keyboard.press("Enter")  # submits the login form
    page.wait_for_url(lambda address: "/login" not in address)
    page.goto(world["url"] + "/?campaign=spring&size=25")
    reached = []
    for _ in range(120):
        page.keyboard.press("Tab")
        reached.append(page.evaluate(
            "() => { const e = document.activeElement; return e.id || (e.closest('th') ? "
            "(e.closest('thead') ? 'sort:' : 'row:') + e.textContent.trim() : e.getAttribute('rel') || "
            "e.tagName.toLowerCase() + ':' + e.textContent.trim()); }"
        ))  # fmt: skip
        if reached[-1] == "next":
            break
    where = {name: reached.index(name) for name in ("f-band", "f-selected", "f-family", "f-q", "f-size", "download")}
    first_sort = next(i for i, r in enumerate(reached) if r.startswith("sort:"))
    first_row = next(i for i, r in enumerate(reached) if r.startswith("row:"))
    assert reached[0] == "a:Skip to content"
    assert where["f-band"] < where["f-selected"] < where["f-family"] < where["f-q"] < where["f-size"]
    assert where["f-size"] < where["download"] < first_sort < first_row < reached.index("next")
    assert sum(r.startswith("sort:") for r in reached) == 9 and sum(r.startswith("row:") for r in reached) == 25
    # open the focused customer with the keyboard, and come back
    for _ in range(26):
        page.keyboard.press("Shift+Tab")
        if page.evaluate("() => !!document.activeElement.closest('tbody')"):
            break
    customer = page.evaluate("() => document.activeElement.textContent.trim()")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(f"/customer/{customer}"))
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.classList.contains('back')"):
            break
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/\?campaign=spring"))
    assert "size=25" in page.url
    context.close()


LABEL_CHECK = """() => {
  const unlabelled = [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
    .map(e => e.outerHTML);
  const nameless = [...document.querySelectorAll('a')].filter(a => !a.textContent.trim()).map(a => a.outerHTML);
  const tables = [...document.querySelectorAll('table')].map(t => ({
    caption: t.caption ? t.caption.textContent.trim() : '',
    scoped: [...t.querySelectorAll('thead th')].every(th => th.getAttribute('scope') === 'col'),
  }));
  const charts = [...document.querySelectorAll('svg[role=img]')].map(s =>
    (s.getAttribute('aria-labelledby') || '').split(' ').map(id => {
      const e = document.getElementById(id); return e ? e.textContent.trim().length : -1; }));
  return {unlabelled, nameless, tables, charts, lang: document.documentElement.lang};
}"""


def test_form_controls_tables_and_charts_carry_labels(world, browser):
    context, page = new_page(browser)
    page.goto(world["url"] + "/")
    login_page = page.evaluate(LABEL_CHECK)
    assert login_page["unlabelled"] == [] and login_page["lang"] == "en"
    assert page.locator("label[for=token]").inner_text() == "Access token"
    login(page, world["url"])
    customer = world["result"].campaign["customer_id"].iloc[0]
    for path in ("/?campaign=spring", f"/customer/{customer}?campaign=spring", "/campaigns"):
        page.goto(world["url"] + path)
        found = page.evaluate(LABEL_CHECK)
        assert found["unlabelled"] == [] and found["nameless"] == [], path
        assert all(t["caption"] and t["scoped"] for t in found["tables"]), path
        assert all(n > 0 for chart in found["charts"] for n in chart), path
    assert len(found["charts"]) == 0
    page.goto(world["url"] + f"/customer/{customer}?campaign=spring")
    assert len(page.evaluate(LABEL_CHECK)["charts"]) == 2  # waterfall and timeline
    context.close()


# --------------------------------------------------------------------------- HTTP checks (no browser)


@contextmanager
def _session(url: str) -> Iterator[httpx.Client]:
    """An HTTP client logged in through the login form."""
    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as client:
        page = client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        answer = client.post("/login", data={"csrf": csrf, "token": TOKEN, "next": "/"})
        assert answer.status_code == 303 and "churnlens_session" in client.cookies
        yield client


def test_forms_need_their_csrf_token_and_pages_send_safe_headers(world):
    with httpx.Client(base_url=world["url"], timeout=30, follow_redirects=False) as anonymous:
        assert anonymous.post("/login", data={"token": TOKEN}).status_code == 400  # no CSRF token
        assert anonymous.get("/v1/model").status_code == 401  # the API keeps its bearer token
    with _session(world["url"]) as client:
        assert client.post("/lang", data={"lang": "fr", "csrf": "forged-forged-forged-forged"}).status_code == 400
        assert client.post("/logout", data={}).status_code == 400
        page = client.get("/?campaign=spring")
        assert page.status_code == 200
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff" and "frame-ancestors 'none'" in page.headers[
            "content-security-policy"]
        assert "<script" not in page.text and "http://" not in page.text and "https://" not in page.text
        assert client.get("/customer/nobody?campaign=spring").status_code == 404
        assert client.get("/?campaign=../../etc").status_code == 404
        weird = client.get("/?campaign=spring&q=%3Cscript%3E&sort=%22onmouseover")
        assert weird.status_code == 200 and "<script>" not in weird.text


def test_docs_are_served_from_local_files(world):
    with httpx.Client(base_url=world["url"], timeout=30) as client:
        docs = client.get("/docs")
        assert docs.status_code == 200 and "cdn" not in docs.text.lower()
        assets = re.findall(r'(?:src|href)="(/[^"]+\.(?:js|css))"', docs.text)
        assert assets and all(client.get(a).status_code == 200 for a in assets)


def test_a_campaign_written_while_serving_appears_without_restart(world):
    result = score_base(world["tables"], "2024-01-01", world["loaded"], lang="en", top=40, source=str(world["data"]))
    write_outputs(result, world["campaigns"] / "q1" / "winter.parquet")
    with _session(world["url"]) as client:
        listing = client.get("/campaigns").text
        assert "q1/winter" in listing and "spring" in listing
        page = client.get("/", params={"campaign": "q1/winter"})
        assert page.status_code == 200 and "Campaign q1/winter" in page.text
        assert f"{len(result.campaign):,} customers match" in page.text
        newest = client.get("/")
        assert "Campaign q1/winter" in newest.text  # the newest campaign is the default


def test_server_log_has_no_traceback(world):
    assert "Traceback" not in Path(world["log"]).read_text()
