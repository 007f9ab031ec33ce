"""Posted events and files are checked by the same rules (issue 12, item 5).

Validation types values one of two ways: column by column with pandas and Arrow (files, the
warehouse, large frames: ``engine="columns"``), or value by value for a few rows of JSON values
(events posted to the API: ``engine="rows"``, what ``"auto"`` picks for them). The rules, repairs
and messages are one set of definitions; these tests hold the two engines to the same answers:

- the same inputs are accepted or refused by both, with the same problems (table, column,
  message, offending rows) and, when accepted, the same tables and the same report;
- the rows engine really types the JSON-shaped inputs itself (it hands a table to the column
  engine only for values outside its plain forms);
- posted events and the same events written as CSV files give the same tables and features.

The inputs: hand-written good and bad tables (the cases of the other validation tests), the
fuzz strategies of ``test_fuzz_pipeline``, and JSON-shaped random tables (hypothesis,
derandomized).
"""

from __future__ import annotations

import math
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from test_fuzz_pipeline import NFC, NFD, data_sets

from churnlens.data import DataValidationError, load_tables, validate_tables
from churnlens.data import validate as engines
from churnlens.features import build_snapshot

pytestmark = pytest.mark.filterwarnings(
    "ignore::RuntimeWarning", "ignore::FutureWarning", "ignore:Parsing integer or float values with a format"
)
NOW = pd.Timestamp("2026-06-01")
SETTINGS = dict(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


def outcome(frames: dict[str, pd.DataFrame], engine: str, **options) -> tuple:
    """What validation answers: ("ok", tables, report dict) or ("refused", message, problems)."""
    copies = {name: frame.copy() for name, frame in frames.items()}
    try:
        tables, report = validate_tables(copies, now=NOW, engine=engine, **options)
    except DataValidationError as exc:
        return "refused", str(exc), [(p.table, p.column, p.problem, p.rows) for p in exc.problems]
    return "ok", tables.present(), report.to_dict()


def assert_same(frames: dict[str, pd.DataFrame], **options) -> str:
    """Both engines give the same answer; returns "ok" or "refused"."""
    by_columns = outcome(frames, "columns", **options)
    by_rows = outcome(frames, "rows", **options)
    assert by_rows[0] == by_columns[0], (by_rows[1], by_columns[1])
    if by_columns[0] == "refused":
        assert by_rows[1] == by_columns[1]
        assert by_rows[2] == by_columns[2]
        return "refused"
    assert list(by_rows[1]) == list(by_columns[1])
    for name, frame in by_columns[1].items():
        pd.testing.assert_frame_equal(by_rows[1][name], frame, obj=name)
    assert by_rows[2] == by_columns[2]
    return "ok"


def json_frame(rows: list[dict]) -> pd.DataFrame:
    """A table as the API builds it from posted JSON: Python values, object columns."""
    return pd.DataFrame(rows, dtype=object)


P = "purchases"
GOOD = {
    P: [
        {"customer_id": "C2", "timestamp": "2024-03-01T10:00:00+02:00", "amount": 12.5, "channel": "web"},
        {"customer_id": "C1", "timestamp": "2024-01-05", "amount": 3, "channel": "store", "order_id": "o1"},
        {"customer_id": "C1", "timestamp": "2024-01-02 08:00:01.25", "amount": -1.25, "channel": None},
        {"customer_id": "C1", "timestamp": "2024-02-01T00:00Z", "amount": 100.0, "quantity": 2, "category": ""},
    ],
    "program_events": [
        {"customer_id": "C1", "timestamp": "2024-01-03", "event_type": "points_earned", "points": 120},
        {"customer_id": "C2", "timestamp": "2024-01-04T12:00:00.123456", "event_type": "login", "tier": "gold"},
    ],
    "support_interactions": [
        {
            "customer_id": "C1",
            "timestamp": "2024-01-10T09:00",
            "resolved": True,
            "csat": 5,
            "nps": None,
            "handle_minutes": 12.5,
            "complaint": False,
            "channel": "phone",
            "topic": "billing",
        },
    ],
    "cancellations": [{"customer_id": "C2", "timestamp": "2024-03-02"}],
    "contacts": [
        {"customer_id": "C1", "timestamp": "2024-02-01", "campaign_id": "k1", "action": "call", "group": "Treatment"},
        {
            "customer_id": "C2",
            "timestamp": "2024-02-01",
            "campaign_id": "k1",
            "action": "call",
            "group": "control",
            "cost": 2.5,
        },
    ],
    "customers": [
        {"customer_id": "C1", "signup_at": "2023-01-01", "country": "FR", "age": 34, "vip": True},
        {"customer_id": "C3", "signup_at": None, "country": None, "age": 51.0, "vip": None},
    ],
}


def variant(**changes: list[dict] | None) -> dict[str, pd.DataFrame]:
    """GOOD with some tables replaced (None drops a table)."""
    tables = {**GOOD, **changes}
    return {name: json_frame(rows) for name, rows in tables.items() if rows is not None}


def with_row(table: str | list[dict], row: dict, at: int | None = None) -> list[dict]:
    """The rows of a GOOD table (or the rows given) with one more."""
    rows = list(GOOD[table] if isinstance(table, str) else table)
    rows.insert(len(rows) if at is None else at, row)
    return rows


def purchase(**values) -> dict:
    return {"customer_id": "C1", "timestamp": "2024-01-20", "amount": 1.0, **values}


CASES = {
    "good": variant(),
    "purchases only": variant(
        program_events=None, support_interactions=None, cancellations=None, contacts=None, customers=None
    ),
    "one row": variant(
        purchases=[purchase()],
        program_events=None,
        support_interactions=None,
        cancellations=None,
        contacts=None,
        customers=None,
    ),
    "duplicate row": variant(purchases=with_row(P, GOOD[P][1])),
    "same time, other amount": variant(purchases=with_row(P, {**GOOD[P][1], "amount": 4.0})),
    "unsorted customers": variant(purchases=with_row(P, purchase(customer_id="C0"), at=0)),
    "unknown customer": variant(cancellations=[{"customer_id": "C9", "timestamp": "2024-03-02"}]),
    "idle customer": variant(customers=with_row("customers", {"customer_id": "C7", "country": "DE"})),
    "bad timestamp": variant(purchases=with_row(P, purchase(timestamp="05/02/2024"))),
    "impossible date": variant(purchases=with_row(P, purchase(timestamp="2024-02-30"))),
    "numeric timestamp": variant(purchases=with_row(P, purchase(timestamp=1714608000))),
    "far future": variant(purchases=with_row(P, purchase(timestamp="2204-03-01 10:00:00"))),
    "before 1900": variant(purchases=with_row(P, purchase(timestamp="1850-01-01"))),
    "missing timestamp": variant(purchases=with_row(P, purchase(timestamp=None))),
    "null word timestamp": variant(purchases=with_row(P, purchase(timestamp="NA"))),
    "text amount": variant(purchases=with_row(P, purchase(amount="abc"))),
    "numeric text amount": variant(purchases=with_row(P, purchase(amount="12.5"))),
    "boolean amount": variant(purchases=with_row(P, purchase(amount=True))),
    "infinite amount": variant(purchases=with_row(P, purchase(amount=math.inf))),
    "NaN amount": variant(purchases=with_row(P, purchase(amount=math.nan))),
    "huge amount": variant(purchases=with_row(P, purchase(amount=-2e12))),
    "huge integer": variant(purchases=with_row(P, purchase(amount=2**62))),
    "missing amount": variant(purchases=with_row(P, purchase(amount=None))),
    "csat 9": variant(
        support_interactions=with_row(
            "support_interactions", {"customer_id": "C1", "timestamp": "2024-01-02", "csat": 9}
        )
    ),
    "negative minutes": variant(
        support_interactions=with_row(
            "support_interactions", {"customer_id": "C1", "timestamp": "2024-01-02", "handle_minutes": -2.5}
        )
    ),
    "flag word": variant(
        support_interactions=with_row(
            "support_interactions", {"customer_id": "C1", "timestamp": "2024-01-02", "resolved": "maybe"}
        )
    ),
    "flag yes": variant(
        support_interactions=with_row(
            "support_interactions", {"customer_id": "C1", "timestamp": "2024-01-02", "resolved": "yes"}
        )
    ),
    "missing id": variant(purchases=with_row(P, purchase(customer_id=None))),
    "empty id": variant(purchases=with_row(P, purchase(customer_id=""))),
    "blank id": variant(purchases=with_row(P, purchase(customer_id=" \t "))),
    "padded id": variant(purchases=with_row(P, purchase(customer_id=" C1 "))),
    "NFC and NFD ids": variant(purchases=with_row(with_row(P, purchase(customer_id=NFC)), purchase(customer_id=NFD))),
    "formula id": variant(purchases=with_row(P, purchase(customer_id='=HYPERLINK("http://x","y")'))),
    "numeric id": variant(purchases=with_row(P, purchase(customer_id=7))),
    "null word id": variant(purchases=with_row(P, purchase(customer_id="NA"))),
    "unknown group": variant(contacts=with_row("contacts", {**GOOD["contacts"][0], "group": "other"})),
    "both groups": variant(contacts=with_row("contacts", {**GOOD["contacts"][0], "group": "control"})),
    "conflicting customer": variant(customers=with_row("customers", {**GOOD["customers"][0], "country": "IT"})),
    "repeated customer": variant(customers=with_row("customers", GOOD["customers"][0])),
    "no purchases rows": variant(purchases=[]),
    "missing required column": {P: json_frame([{"customer_id": "C1", "timestamp": "2024-01-01"}])},
    "category of other types": variant(purchases=with_row(P, purchase(channel=3))),
    "attribute of mixed types": variant(customers=with_row("customers", {"customer_id": "C5", "age": "old"})),
}


@pytest.mark.parametrize(
    "options",
    [{}, {"drop_missing_customer": True}, {"data_end": "2024-02-15"}],
    ids=["defaults", "drop-missing", "data-end"],
)
@pytest.mark.parametrize("case", list(CASES))
def test_both_engines_accept_and_refuse_the_same_inputs(case, options):
    assert_same(CASES[case], **options)


def test_the_cases_include_good_and_bad_inputs():
    answers = [assert_same(frames) for frames in CASES.values()]
    assert answers.count("ok") >= 10 and answers.count("refused") >= 15


@pytest.mark.parametrize(
    "case",
    [
        "good",
        "duplicate row",
        "unsorted customers",
        "unknown customer",
        "csat 9",
        "far future",
        "missing timestamp",
        "missing amount",
        "both groups",
    ],
)
def test_the_rows_engine_types_json_values_itself(case, monkeypatch):
    """No table of these cases goes to the column engine: its typing is never called."""

    def column_engine(*args, **kwargs):
        raise AssertionError("the rows engine handed a table to the column engine")

    monkeypatch.setattr(engines, "_coerce_table", column_engine)
    outcome(CASES[case], "rows")
    outcome(CASES[case], "auto")


def test_other_values_are_typed_by_the_column_engine(monkeypatch):
    """A value outside the plain forms sends its table, and only it, to the column engine."""
    typed_by_columns = []
    column_engine = engines._coerce_table

    def spy(df, spec, **kwargs):
        typed_by_columns.append(spec.name)
        return column_engine(df, spec, **kwargs)

    monkeypatch.setattr(engines, "_coerce_table", spy)
    outcome(CASES["padded id"], "rows")
    assert typed_by_columns == [P]
    typed_by_columns.clear()
    big = json_frame([purchase(amount=float(i)) for i in range(engines.FEW_ROWS + 1)])
    outcome({P: big}, "auto")
    assert typed_by_columns == [P]


# --------------------------------------------------------------------------- random inputs

offsets = st.sampled_from(["", "", "Z", "+02:00", "-05:30", "+00:00", "-23:59", "+14:00"])


@st.composite
def iso_times(draw, start: str = "1890-01-01", end: str = "2027-12-31") -> str:
    day = draw(st.dates(min_value=pd.Timestamp(start).date(), max_value=pd.Timestamp(end).date())).isoformat()
    form = draw(st.integers(0, 8))
    if form == 0:
        return day
    hh, mm, ss, us = draw(
        st.tuples(st.integers(0, 23), st.integers(0, 59), st.integers(0, 59), st.integers(0, 10**6 - 1))
    )
    text = f"{day}T{hh:02d}:{mm:02d}" if form == 1 else f"{day} {hh:02d}:{mm:02d}:{ss:02d}"
    if form > 2:
        text = f"{day}T{hh:02d}:{mm:02d}:{ss:02d}.{us:06d}"[: 20 + form - 2]
    return text + draw(offsets)


odd_times = st.sampled_from(
    [
        "2024-02-30",
        "2024-13-01",
        "2024-05-02T24:00:00",
        "05/02/2024",
        "yesterday",
        "",
        "NA",
        None,
        "2024-5-2",
        "20240502",
        "2204-03-01",
        "1850-01-01",
        "2024-05-02T10:00:00+24:00",
        "2024-05-02T10:00:60",
        "0999-01-01",
        "\u0662\u0660\u0662\u0664-05-02",
        "2024-05-02Z",
        " 2024-05-02",
        "2024-05-02T10:00:00.123456789",
    ]
)
odd_numbers = st.sampled_from(
    [None, 0.0, -0.0, 1e12, 1.5e12, -2e12, math.inf, math.nan, 2**60, True, "12.5", "abc", 6.0, -1.0]
)


@st.composite
def json_tables(draw, plain: bool) -> dict[str, pd.DataFrame]:
    """Random posted tables: ``plain`` ones hold only the forms the rows engine reads itself."""
    time = iso_times("2020-01-01", "2025-12-31") if plain else st.one_of(iso_times(), odd_times)
    number = (
        st.one_of(st.floats(0, 1e4), st.integers(0, 1000), st.none())
        if plain
        else st.one_of(st.floats(-1e4, 1e4), st.integers(-1000, 1000), odd_numbers)
    )
    ident = st.integers(0, 4).map(lambda i: f"C{i}")
    if not plain:
        ident = st.one_of(ident, st.sampled_from(["C1 ", "", None, NFD, "NA", "007"]))
    text = st.sampled_from(["web", "store", "app", "", None, "Web", " web"])
    flag = st.sampled_from([True, False, None] if plain else [True, False, None, "yes", 1])

    def table(columns: dict, most: int) -> pd.DataFrame:
        n = draw(st.integers(1 if plain else 0, most))
        return pd.DataFrame({c: draw(st.lists(s, min_size=n, max_size=n)) for c, s in columns.items()}, dtype=object)

    out = {
        P: table(
            {
                "customer_id": ident,
                "timestamp": time,
                "amount": st.floats(-100, 1e4) if plain else number,
                "order_id": st.sampled_from(["o1", None, ""]),
                "quantity": number,
                "channel": text,
                "category": text,
            },
            15,
        )
    }
    if draw(st.booleans()):
        out["program_events"] = table(
            {
                "customer_id": ident,
                "timestamp": time,
                "points": number,
                "event_type": st.sampled_from(["login", "points_earned"]),
                "tier": st.sampled_from(["gold", None]),
            },
            8,
        )
    if draw(st.booleans()):
        out["support_interactions"] = table(
            {
                "customer_id": ident,
                "timestamp": time,
                "channel": text,
                "topic": text,
                "resolved": flag,
                "complaint": flag,
                "handle_minutes": number,
                "csat": st.sampled_from([1.0, 5, None, 3.5, 0, 6]),
                "nps": number,
                "ces": st.sampled_from([1, 7.0, None]),
            },
            8,
        )
    if draw(st.booleans()):
        out["cancellations"] = table({"customer_id": ident, "timestamp": time}, 3)
    if draw(st.booleans()):
        out["contacts"] = table(
            {
                "customer_id": ident,
                "timestamp": time,
                "campaign_id": st.sampled_from(["k1", "k2"]),
                "action": st.sampled_from(["call", "mail"]),
                "channel": text,
                "cost": number,
                "group": st.sampled_from(["treatment", "control", "Control", "other"]),
            },
            6,
        )
    if draw(st.booleans()):
        out["customers"] = table(
            {
                "customer_id": ident,
                "signup_at": time,
                "age": number,
                "country": st.sampled_from(["FR", "DE", None]),
                "vip": flag,
            },
            6,
        )
    if draw(st.booleans()):  # an exact duplicate
        out[P] = pd.concat([out[P], out[P].iloc[:1]], ignore_index=True)
    return out


@settings(max_examples=300, **SETTINGS)
@given(
    data=st.booleans().flatmap(json_tables),
    drop=st.booleans(),
    end=st.sampled_from([None, None, "2024-01-01", "2023-06-01T12:00:00+02:00"]),
)
def test_random_posted_tables_get_the_same_answer_from_both_engines(data, drop, end):
    assert_same(data, drop_missing_customer=drop, data_end=end)


@settings(max_examples=150, **SETTINGS)
@given(data=data_sets(), drop=st.booleans())
def test_the_fuzz_tables_get_the_same_answer_from_both_engines(data, drop):
    """test_fuzz_pipeline's tables, held as Python objects as the API holds posted values."""
    assert_same({name: frame.astype(object) for name, frame in data.items()}, drop_missing_customer=drop)


@settings(max_examples=1500, **SETTINGS)
@given(
    text=st.one_of(iso_times(), odd_times.filter(lambda v: v is not None), st.text("0123456789-T:.Z+ ", max_size=26))
)
def test_timestamps_read_by_the_rows_engine_are_pandas_timestamps(text):
    """Every form the rows engine reads itself means what pandas' ISO 8601 parser says (to the microsecond)."""
    try:
        mine = engines._read_time(text)
    except engines._NotFewRows:
        return  # left to pandas
    parsed = pd.to_datetime(pd.Series([text], dtype=object), utc=True, format="ISO8601", errors="coerce")
    theirs = parsed.dt.tz_localize(None).astype("datetime64[us]").iloc[0]
    assert not pd.isna(theirs), text
    assert np.datetime64(mine, "us") == theirs.to_datetime64(), text


_GOOD_DAYS, _BAD_DAYS = (
    ("1100-01-01", "2024-02-29", "8999-12-31"),
    ("1099-12-31", "2023-02-29", "2024-02-30", "2024-13-01", "9000-01-01"),
)
_GOOD_CLOCKS = ("", "T00:00", " 23:59", "T12:30:05.5", "T12:30:05.12", "T12:30:05.1234", "T12:30:05.123456")
_BAD_CLOCKS = ("T24:00", "T24:00:00", "T12:60", "T12:30:60", "T12:30:05.1234567")
_GOOD_OFFSETS, _BAD_OFFSETS = ("", "Z", "+00:00", "-05:30", "+23:59"), ("+24:00", "+05:60")


@pytest.mark.parametrize(
    ("day", "clock", "offset"),
    [
        (d, c, o)
        for d in _GOOD_DAYS + _BAD_DAYS
        for c in _GOOD_CLOCKS + _BAD_CLOCKS
        for o in _GOOD_OFFSETS + _BAD_OFFSETS
        if c or not o
    ],  # fmt: skip
)
def test_timestamps_at_the_edges_of_each_field_mean_what_pandas_says(day, clock, offset):
    """At each field's edges (leap days, hour 24, 60 minutes or seconds, 1-7 fraction digits,
    offsets past 23:59, the years left to pandas) the rows engine reads every plain timestamp
    itself, to pandas' value, and leaves every other one to pandas."""
    text = day + clock + offset
    plain = day in _GOOD_DAYS and clock in _GOOD_CLOCKS and offset in _GOOD_OFFSETS
    try:
        engines._read_time(text)
    except engines._NotFewRows:
        assert not plain, text
        return
    assert plain, text
    test_timestamps_read_by_the_rows_engine_are_pandas_timestamps.hypothesis.inner_test(text=text)


# --------------------------------------------------------------------------- posted events vs files


def _as_csv_files(frames: dict[str, pd.DataFrame], folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name, frame in frames.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


@pytest.mark.parametrize(
    "case",
    ["good", "duplicate row", "unsorted customers", "unknown customer", "idle customer", "one row", "purchases only"],
)
def test_posted_events_and_the_same_rows_as_files_give_the_same_tables_and_features(case, tmp_path):
    frames = CASES[case]
    posted, _ = validate_tables({n: f.copy() for n, f in frames.items()}, now=NOW)  # "auto": the rows engine
    files, _ = load_tables(_as_csv_files(frames, tmp_path / "data"), now=NOW)
    assert list(posted.present()) == list(files.present())
    for name, frame in files.present().items():
        pd.testing.assert_frame_equal(posted.present()[name], frame, obj=name)
    for cutoff in ("2024-02-01", "2024-04-01"):
        pd.testing.assert_frame_equal(build_snapshot(posted, cutoff), build_snapshot(files, cutoff))


@pytest.mark.parametrize(
    "case",
    [
        "bad timestamp",
        "impossible date",
        "far future",
        "missing timestamp",
        "text amount",
        "huge amount",
        "csat 9",
        "negative minutes",
        "flag word",
        "missing id",
        "blank id",
        "unknown group",
        "both groups",
        "conflicting customer",
    ],
)
def test_posted_events_and_the_same_rows_as_files_are_refused_for_the_same_problems(case, tmp_path):
    """The same table, column, problem and rows; values are shown as each input holds them
    (a posted number is a number, the same number read from a CSV file may be text)."""
    frames = CASES[case]
    with pytest.raises(DataValidationError) as posted:
        validate_tables({n: f.copy() for n, f in frames.items()}, now=NOW)
    with pytest.raises(DataValidationError) as files:
        load_tables(_as_csv_files(frames, tmp_path / "data"), now=NOW)

    def where(exc: DataValidationError) -> list[tuple]:
        return [(p.table, p.column, p.problem, [r.split(":")[0] for r in p.rows]) for p in exc.problems]

    assert where(posted.value) == where(files.value)
