"""Web app pieces on hand-made data: formatting, texts, actions, campaign queries, lookups, sessions, charts."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from starlette.requests import Request

from churnlens.config import REASON_FAMILIES, ScoringSettings, config_from_dict
from churnlens.data.tables import Tables
from churnlens.errors import InputError
from churnlens.i18n import MINUS, NBSP, NNBSP, Words
from churnlens.serving.actions import reason_family
from churnlens.serving.timeline import customer_events, customer_timeline
from churnlens.serving.waterfall import waterfall
from churnlens.serving.webapp.auth import SESSION_COOKIE, Access, safe_next
from churnlens.serving.webapp.campaigns import CampaignStore, Query, find_campaigns, load_campaign
from churnlens.serving.webapp.customers import Blocks, CustomerTables
from churnlens.serving.webapp.views import export_csv

# --------------------------------------------------------------------------- formatting and texts


def test_french_and_english_numbers_amounts_dates_and_points():
    fr, en = Words("fr", "EUR"), Words("en", "EUR")
    assert fr.number(1234567.891, 2) == f"1{NNBSP}234{NNBSP}567,89"
    assert en.number(1234567.891, 2) == "1,234,567.89"
    assert fr.percent(0.38) == f"38{NNBSP}%" and en.percent(0.38) == "38%"
    assert fr.percent(0.45, 1, fixed=True) == f"45,0{NNBSP}%"
    assert fr.money(1234.565) == f"1{NNBSP}234,57{NBSP}€" and en.money(1234.565) == "€1,234.57"  # halves round up
    assert fr.money(43.391) == f"43,39{NBSP}€" and fr.money(-174) == f"{MINUS}174,00{NBSP}€"
    assert Words("fr", "USD").money(10) == f"10,00{NBSP}$US"
    assert fr.date("2025-01-01", "short") == f"1{NBSP}janv.{NBSP}2025"
    assert en.date("2025-01-01", "short") == f"1{NBSP}Jan{NBSP}2025"
    assert fr.date("2024-08-31") == f"31{NBSP}août{NBSP}2024"
    assert fr.points(0.06) == f"+6{NBSP}pts" and fr.points(-0.004) == f"{MINUS}0,4{NBSP}pt"
    assert en.points(0.01) == "+1\u00a0pt" and en.points(0.025) == "+3\u00a0pts" and en.points(0) == "0\u00a0pts"
    assert fr.days(1) == f"1{NBSP}jour" and en.days(90) == "90\u00a0days"
    assert fr.money(None) == fr.percent(float("nan")) == "—"
    with pytest.raises(ValueError, match="language must be one of"):
        Words("de")


def _messages(lang: str) -> dict[str, str]:
    from churnlens.i18n import _bundle

    return {key: text for key, text in _bundle(lang)._messages.items()}


def test_every_text_exists_in_both_languages_and_counts_agree():
    assert set(_messages("en")) == set(_messages("fr"))
    fr, en = Words("fr"), Words("en")
    assert fr("n_purchases", n=0) == "0 achat" and fr("n_purchases", n=1) == "1 achat"
    assert fr("n_purchases", n=1234) == f"1{NNBSP}234 achats"
    assert en("n_purchases", n=0) == "0 purchases" and en("n_purchases", n=1) == "1 purchase"
    assert fr("chart_desc", average="A", start="1", this="B", end="2", steps="x") == (
        f"Cascade de «{NNBSP}A{NNBSP}» (1) à «{NNBSP}B{NNBSP}» (2), une barre par facteur{NBSP}: x."
    )


def test_currency_settings():
    cfg = config_from_dict({"serving": {"currency": "USD"}})
    assert cfg.serving.currency == "USD" and ScoringSettings().currency == "EUR"
    with pytest.raises(InputError, match="currency must be an ISO 4217 code"):
        config_from_dict({"serving": {"currency": "euro"}})


def test_reason_families_come_from_the_catalog():
    assert reason_family("days_since_last_purchase") == "purchases"
    assert reason_family("support_complaints_90d") == "support"
    assert reason_family("attr_country") == "profile"
    assert reason_family("not_a_feature") is None and reason_family(None) is None
    assert set(REASON_FAMILIES) == {"purchases", "btyd", "program", "support", "contacts", "profile"}


# --------------------------------------------------------------------------- campaigns


def write_campaign(folder, name: str, n: int, seed: int, fmt: str = "csv", lang: str = "en") -> pd.DataFrame:
    """A campaign as churnlens score writes it (list, reasons, summary), with random scores."""
    rng = np.random.default_rng(seed)
    ids = [f"C{i:05d}" for i in rng.permutation(n)]
    proba = rng.random(n).round(4)
    value = np.where(rng.random(n) < 0.1, np.nan, rng.gamma(2, 100, n).round(2))
    order = np.lexsort((np.array(ids), -proba))
    rank = np.empty(n, dtype=int)
    rank[order] = np.arange(1, n + 1)
    frame = pd.DataFrame({
        "customer_id": ids, "churn_probability": proba,
        "risk_band": np.where(proba >= 0.5, "high", np.where(proba >= 0.2, "medium", "low")), "rank": rank,
        "customer_value": value, "value_at_risk": proba * np.nan_to_num(value), "selected": rank <= n // 3,
    }).sort_values("rank").reset_index(drop=True)  # fmt: skip
    features = np.array(["days_since_last_purchase", "support_complaints_90d", "points_balance", "attr_country"])
    explained = frame[frame["selected"]]
    reasons = pd.DataFrame({
        "customer_id": explained["customer_id"], "rank": 1,
        "feature": features[rng.integers(0, 4, len(explained))], "value": 1.0, "value_label": "1",
        "contribution": 0.3, "effect": rng.random(len(explained)) / 10, "text": "reason of " + explained["customer_id"],
    })  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame.to_csv(folder / f"{name}.csv", index=False)
        reasons.to_csv(folder / f"{name}.reasons.csv", index=False)
    else:
        frame.to_parquet(folder / f"{name}.parquet", index=False)
        reasons.to_parquet(folder / f"{name}.reasons.parquet", index=False)
    summary = {"cutoff": "2024-09-01", "model_name": "m", "model_version": "2", "scored": n, "lang": lang,
               "bands": frame["risk_band"].value_counts().to_dict(), "selected": int(frame["selected"].sum()),
               "campaign": {"expected_cost": 10.0, "expected_saved_value": 30.0, "expected_net": 20.0},
               "targeting": {"top": n // 3, "threshold": None, "budget": None}}  # fmt: skip
    (folder / f"{name}.summary.json").write_text(json.dumps(summary))
    return frame.merge(reasons[["customer_id", "feature", "effect"]], on="customer_id", how="left")


def reference_rows(frame: pd.DataFrame, query: Query) -> list[str]:
    """The query answered the slow obvious way, with pandas."""
    keep = pd.Series(True, index=frame.index)
    if query.band:
        keep &= frame["risk_band"] == query.band
    if query.selected:
        keep &= frame["selected"] == (query.selected == "yes")
    if query.family:
        keep &= frame["feature"].map(lambda f: reason_family(f) if isinstance(f, str) else None) == query.family
    if query.q:
        keep &= frame["customer_id"].str.startswith(query.q)
    rows = frame[keep]
    column = {"top_reason": "effect", "customer_id": "customer_id"}.get(query.sort, query.sort)
    if query.sort == "risk_band":
        key = rows["risk_band"].map({"low": 0, "medium": 1, "high": 2})
    elif query.sort == "customer_id":
        key = rows["customer_id"].rank()
    else:
        key = rows[column]
    key = key.astype(float)
    key = key if query.direction == "asc" else -key
    ordered = rows.assign(_k=key.fillna(np.inf)).sort_values(["_k", "rank"], kind="stable")
    return ordered["customer_id"].tolist()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_campaign_queries_equal_a_pandas_reference(tmp_path, fmt):
    frame = write_campaign(tmp_path, "spring", 700, seed=3, fmt=fmt)
    campaign = load_campaign(find_campaigns(tmp_path)[0])
    assert len(campaign) == 700 and campaign.lang == "en"
    rng = np.random.default_rng(0)
    for _ in range(60):
        sort = str(rng.choice(["rank", "customer_id", "churn_probability", "risk_band", "customer_value",
                               "value_at_risk", "selected", "top_reason"]))  # fmt: skip
        query = Query.parse({
            "band": str(rng.choice(["", "high", "medium", "low"])), "selected": str(rng.choice(["", "yes", "no"])),
            "family": str(rng.choice(["", *REASON_FAMILIES])), "q": str(rng.choice(["", "C0", "C001", "C0042"])),
            "sort": sort, "dir": str(rng.choice(["asc", "desc"])),
        })  # fmt: skip
        got = [str(campaign.ids[i]) for i in campaign.rows(query)]
        assert got == reference_rows(frame, query), query
    page = campaign.page(Query.parse({"size": "25", "page": "3"}))
    assert page.total == 700 and page.pages == 28 and page.page == 3
    assert [int(campaign.rank[i]) for i in page.rows] == list(range(51, 76))
    assert campaign.page(Query.parse({"page": "999"})).page == 14  # beyond the end: the last page
    assert campaign.position("C00007") is not None and campaign.position("nobody") is None


def test_bad_query_values_fall_back_to_defaults():
    query = Query.parse({"band": "<x>", "sort": "drop table", "dir": "up", "page": "-3", "size": "7", "q": "x" * 500})
    assert (query.band, query.sort, query.direction, query.page, query.size) == ("", "rank", "asc", 1, 50)
    assert len(query.q) == 100
    assert Query.parse({"sort": "value_at_risk"}).direction == "desc"
    assert Query.parse({"sort": "value_at_risk", "page": "2"}).params(page=1) == {"sort": "value_at_risk"}


def test_export_has_the_file_columns_in_the_query_order(tmp_path):
    write_campaign(tmp_path, "spring", 300, seed=5)
    campaign = load_campaign(find_campaigns(tmp_path)[0])
    query = Query.parse({"band": "high", "sort": "value_at_risk"})
    rows = campaign.rows(query)
    text = b"".join(export_csv(campaign, rows)).decode("utf-8")
    exported = pd.read_csv(pd.io.common.StringIO(text), dtype={"customer_id": str})
    assert exported["customer_id"].tolist() == [str(campaign.ids[i]) for i in rows]
    assert list(exported.columns[:7]) == ["customer_id", "churn_probability", "risk_band", "rank", "customer_value",
                                          "value_at_risk", "selected"]  # fmt: skip
    assert set(exported["risk_band"]) == {"high"}
    assert set(exported["reason_family"].dropna()) <= set(REASON_FAMILIES)
    empty = b"".join(export_csv(campaign, rows[:0])).decode("utf-8")
    assert empty.splitlines()[0].startswith('"customer_id"') and len(empty.splitlines()) == 1


def test_a_new_or_rewritten_campaign_is_seen_without_restart(tmp_path):
    write_campaign(tmp_path, "spring", 50, seed=1)
    store = CampaignStore(tmp_path)
    first = store.get(None)
    assert first.name == "spring" and store.get("spring") is first
    time.sleep(0.01)
    write_campaign(tmp_path / "q3", "autumn", 80, seed=2, fmt="parquet")
    assert [r.name for r in store.refs()] == ["q3/autumn", "spring"]
    assert len(store.get(None)) == 80 and store.get("../spring") is None
    time.sleep(0.01)
    write_campaign(tmp_path, "spring", 60, seed=3)
    assert len(store.get("spring")) == 60
    (tmp_path / "half.csv").write_text("customer_id\n")  # no summary yet: not a campaign
    assert "half" not in [r.name for r in store.refs()]
    with pytest.raises(InputError, match="has no half.summary.json beside it"):
        CampaignStore(tmp_path / "half.csv")
    with pytest.raises(InputError, match="does not exist"):
        CampaignStore(tmp_path / "nowhere")


# --------------------------------------------------------------------------- customers' rows


def test_one_customers_rows_by_binary_search_equal_a_mask():
    rng = np.random.default_rng(4)
    ids = np.sort(rng.choice([f"C{i:04d}" for i in range(300)], 5000))
    days = pd.to_timedelta(rng.integers(0, 300, 5000), "D")
    purchases = pd.DataFrame({"customer_id": pd.array(ids, dtype="string"),
                              "timestamp": pd.Timestamp("2024-01-01") + days, "amount": rng.random(5000)})  # fmt: skip
    tables = CustomerTables(Tables(purchases=purchases), "memory")
    for cid in ["C0000", "C0150", "C0299", "C9999", "", "C01"]:
        got = tables.customer(cid).purchases
        expected = purchases[purchases["customer_id"] == cid].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected)
    with pytest.raises(ValueError, match="not sorted"):
        Blocks.of(pd.Series(["b", "a"], dtype="string"))


def test_timeline_takes_the_12_months_before_the_cutoff_only():
    cutoff = pd.Timestamp("2024-09-01")
    day = pd.Timestamp
    tables = Tables(
        purchases=pd.DataFrame({"customer_id": "c", "timestamp": [day("2023-08-31"), day("2024-01-05"),
                                                                   day("2024-03-01"), day("2024-09-01")],
                                "amount": [5.0, 20.0, -8.0, 99.0]}),
        program_events=pd.DataFrame({"customer_id": "c", "timestamp": [day("2024-05-01")] * 3,
                                     "event_type": pd.Categorical(["login", "login", "points_earned"])}),
        support_interactions=pd.DataFrame({"customer_id": "c", "timestamp": [day("2024-06-01"), day("2024-07-01")],
                                           "complaint": pd.array([True, False], dtype="boolean"),
                                           "resolved": pd.array([True, False], dtype="boolean")}),
    )  # fmt: skip
    events = customer_events(tables, cutoff)
    assert events["kind"].tolist() == ["purchase", "return", "login", "login", "points", "complaint", "unresolved"]
    timeline = customer_timeline(tables, cutoff, Words("fr"))
    assert len(timeline.marks) == 6  # the two logins of one day are one mark
    login = next(m for m in timeline.marks if "connexion" in m.title)
    assert login.title == f"1{NBSP}mai{NBSP}2024 — connexion (2 fois)" and login.shape == "tick"
    assert "2 achats (1 retour)" in timeline.desc and "1 réclamation" in timeline.desc
    assert len(timeline.months) == 12 and timeline.months[0][1] == "sept."
    assert customer_timeline(Tables(purchases=tables.purchases.iloc[:0]), cutoff, Words("en")).empty


def test_waterfall_goes_from_the_average_risk_to_the_customers_in_steps_of_the_effects():
    effects = {"a": 0.10, "b": -0.04, "c": 0.02, "d": 0.01, "e": -0.005}
    labels = {k: (f"feature {k}", "1") for k in effects}
    chart = waterfall(average=0.20, probability=0.285, effects=effects, labels=labels, order=list(effects),
                      fmt=Words("en"), top=3)  # fmt: skip
    kinds = [b.kind for b in chart.bars]
    assert kinds == ["start", "up", "down", "up", "up", "end"]
    assert [b.text for b in chart.bars] == ["20%", f"+10{NBSP}pts", f"{MINUS}4{NBSP}pts", f"+2{NBSP}pts",
                                            f"+0.5{NBSP}pts", "28%"]  # fmt: skip
    assert chart.bars[4].lines == ("2 other factors",)
    start, end = chart.bars[0], chart.bars[-1]
    assert end.connector == pytest.approx(end.x0, abs=0.02)  # the steps land on the customer's probability
    assert start.x0 < end.x0 and chart.bars[1].x0 == pytest.approx(start.x0)
    assert "20%" in chart.desc and "28%" in chart.desc and chart.ticks[0][1].endswith("%")


# --------------------------------------------------------------------------- access


def _request(cookies: dict[str, str]) -> Request:
    header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [(b"cookie", header.encode())],
                    "scheme": "http", "server": ("127.0.0.1", 80), "query_string": b""})  # fmt: skip


def test_sessions_are_signed_expire_and_are_revoked():
    access = Access("s3cret", max_age=3600)
    cookie = access.new_session()
    assert "s3cret" not in cookie
    assert access.allowed(_request({SESSION_COOKIE: cookie}))
    assert not access.allowed(_request({}))
    assert not access.allowed(_request({SESSION_COOKIE: cookie[:-2] + "xx"}))  # tampered
    assert not Access("other", max_age=3600).allowed(_request({SESSION_COOKIE: cookie}))  # another token
    assert not Access("s3cret", max_age=-1).allowed(_request({SESSION_COOKIE: cookie}))  # expired
    access.revoke(_request({SESSION_COOKIE: cookie}))
    assert not access.allowed(_request({SESSION_COOKIE: cookie}))
    assert Access(None).allowed(_request({})) and Access("t").check_token("t") and not Access("t").check_token("T")
    assert safe_next("/?campaign=a") == "/?campaign=a"
    for bad in ("//evil.example", "https://evil.example", "javascript:alert(1)", "/\\evil", None, ""):
        assert safe_next(bad) == "/"


def test_serve_refuses_a_missing_campaign_and_data_without_campaign(tmp_path):
    from typer.testing import CliRunner

    from churnlens.cli.main import app

    result = CliRunner().invoke(app, ["serve", "--campaign", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = CliRunner().invoke(app, ["serve", "--data", str(tmp_path)])
    assert result.exit_code == 2 and "--data needs --campaign" in result.output


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_every_reason_family_has_a_filter_label(lang):
    from churnlens.config import REASON_FAMILIES
    from churnlens.i18n import Words

    words = Words(lang)
    for family in REASON_FAMILIES:
        assert words(f"family_label_{family}").strip(), family
        assert words(f"family_{family}").strip(), family  # "for a risk related to …" on the card
