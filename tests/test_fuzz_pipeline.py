"""Fuzzing validate → features → score with hypothesis-generated tables (issue 11, item 9).

Whatever the tables hold (types, values, timestamps, ids; empty and large tables), the pipeline
either refuses them with an :class:`~churnlens.errors.InputError` (exit status 2, a message naming
the problem) or scores them with every input customer either scored or listed in the rejects.
Anything else is a traceback, and fails the test. Derandomized and bounded: reproducible in CI,
well under two minutes.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from churnlens.data import load_tables
from churnlens.errors import InputError
from churnlens.serving import score_base, write_outputs
from churnlens.serving.batch import default_cutoff

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::FutureWarning")
NOW = pd.Timestamp("2026-06-01")
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # the same examples in every CI run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)

NFC, NFD = unicodedata.normalize("NFC", "Zoë"), unicodedata.normalize("NFD", "Zoë")
WEIRD_IDS = [
    "C1", " C1", "C1 ", "c1", NFC, NFD, "=HYPERLINK(\"http://x\",\"y\")", "+33", "-1", "@SUM(A1)", "", "   ",
    "NA", "null", "0", "007", "x" * 300, "日本", "\u200bC2", "C,3", 'C"4', "C\n5", None,
]  # fmt: skip
ids = st.one_of(
    st.sampled_from(WEIRD_IDS),
    st.integers(-5, 30).map(lambda i: f"C{i}"),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.text(max_size=8),
)
good_times = st.datetimes(
    min_value=pd.Timestamp("2022-01-01").to_pydatetime(), max_value=pd.Timestamp("2024-06-30").to_pydatetime()
)
any_times = st.datetimes(min_value=pd.Timestamp("1600-01-01").to_pydatetime())  # to 9999-12-31
odd_times = [
    "2204-03-01", "1850-01-01", "2024-13-45", "yesterday", "05/02/2024", "", "NaT",
    "2024-05-02T10:00:00+02:00", "2024-05-02T10:00:00Z",
]  # fmt: skip
times = st.one_of(
    good_times,
    good_times.map(lambda t: t.isoformat()),
    good_times.map(lambda t: t.strftime("%Y-%m-%d")),
    any_times.map(str),
    st.sampled_from(odd_times),
    st.integers(-(2**40), 2**40),
    st.none(),
)
amounts = st.one_of(
    st.floats(min_value=-5000, max_value=5000, allow_nan=False),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e30, -1e30, 1e12, 1.0000001e12, 5e-324, -0.0, "12.5", "1e400", "abc", "", "NA", True, None]),
    st.integers(-(2**63), 2**63 - 1),
)
flags = st.one_of(st.booleans(), st.sampled_from(["yes", "no", "1", "0", "maybe", "", None, 2, 0.5]))


clean_ids = st.integers(0, 12).map(lambda i: f"C{i}")
clean_amounts = st.floats(-500, 5000, allow_nan=False)


@st.composite
def purchases(draw, clean: bool) -> pd.DataFrame:
    n = draw(st.integers(0, 40))
    rows = {
        "customer_id": draw(st.lists(clean_ids if clean else ids, min_size=n, max_size=n)),
        "timestamp": draw(st.lists(good_times if clean else times, min_size=n, max_size=n)),
        "amount": draw(st.lists(clean_amounts if clean else amounts, min_size=n, max_size=n)),
    }
    if draw(st.booleans()):
        rows["channel"] = draw(st.lists(st.sampled_from(["web", "store", "=cmd", "", None, 3]), min_size=n, max_size=n))
    if draw(st.booleans()):
        rows["quantity"] = draw(st.lists(clean_amounts if clean else amounts, min_size=n, max_size=n))
    return pd.DataFrame(rows)


@st.composite
def data_sets(draw) -> dict[str, pd.DataFrame]:
    """Half of the data sets are valid but odd (most of them reach scoring), half anything at all."""
    clean = draw(st.booleans())
    tables = {"purchases": draw(purchases(clean))}
    if draw(st.booleans()):
        n = draw(st.integers(0, 15))
        unique_ids = st.lists(clean_ids, min_size=n, max_size=n, unique=True)
        tables["customers"] = pd.DataFrame(
            {
                "customer_id": draw(
                    unique_ids if clean else st.lists(st.one_of(ids, clean_ids), min_size=n, max_size=n)
                ),
                "signup_at": draw(st.lists(good_times if clean else times, min_size=n, max_size=n)),
                "vip": draw(st.lists(st.booleans() if clean else flags, min_size=n, max_size=n)),
                "score": draw(st.lists(clean_amounts if clean else amounts, min_size=n, max_size=n)),
            }
        )
    if draw(st.booleans()):
        n = draw(st.integers(0, 6))
        tables["cancellations"] = pd.DataFrame(
            {
                "customer_id": draw(st.lists(clean_ids, min_size=n, max_size=n)),
                "timestamp": draw(st.lists(good_times if clean else times, min_size=n, max_size=n)),
            }
        )
    return tables


def _write(tables: dict[str, pd.DataFrame], folder: Path, fmt: str) -> None:
    folder.mkdir(parents=True)
    for name, frame in tables.items():
        if fmt == "parquet":
            try:
                frame.to_parquet(folder / f"{name}.parquet", index=False)
                continue
            except Exception:  # noqa: BLE001 - mixed types Parquet cannot hold: write that table as CSV
                pass
        frame.to_csv(folder / f"{name}.csv", index=False)


def _check_pipeline(folder: Path, model, out: Path, cutoff: str | None) -> str:
    """validate → features → score → outputs; returns what happened."""
    try:
        tables, _ = load_tables(folder, now=NOW)
    except InputError as exc:
        assert str(exc).strip(), "an error without a message"
        return "refused"
    try:
        result = score_base(tables, cutoff, model, lang="fr", reasons=2, explain_all=True)
    except InputError as exc:  # e.g. a cutoff before any purchase
        assert str(exc).strip()
        return "refused at scoring"
    scored = set(result.campaign["customer_id"])
    rejected = set(result.rejects["customer_id"])
    assert not scored & rejected
    assert scored | rejected == set(tables.customer_ids()), "a customer was neither scored nor rejected"
    assert result.campaign["churn_probability"].between(0, 1).all()
    write_outputs(result, out / "campaign.csv")
    back = pd.read_csv(out / "campaign.rejects.csv", dtype=str, keep_default_na=False)
    assert len(back) == len(result.rejects)
    return "scored"


@FUZZ
@given(
    data=data_sets(),
    fmt=st.sampled_from(["csv", "parquet"]),
    cutoff=st.sampled_from([None, None, "2024-01-01", "2023-06-15"]),
)
def test_any_table_is_refused_cleanly_or_fully_accounted_for(purchases_model, tmp_path_factory, data, fmt, cutoff):
    root = tmp_path_factory.mktemp("fuzz")
    _write(data, root / "data", fmt)
    _check_pipeline(root / "data", purchases_model["model"], root / "out", cutoff)


def test_an_empty_table_and_a_header_only_table_are_refused(purchases_model, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "purchases.csv").write_text("")
    assert _check_pipeline(tmp_path / "a", purchases_model["model"], tmp_path / "o", None) == "refused"
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "purchases.csv").write_text("customer_id,timestamp,amount\n")
    assert _check_pipeline(tmp_path / "b", purchases_model["model"], tmp_path / "o", None) == "refused"


@pytest.mark.slow
def test_a_large_noisy_table_is_scored_with_every_customer_accounted_for(purchases_model, tmp_path):
    """200k purchases of 20k customers with a share of odd values: whitespace ids, NFD names,
    formulas, duplicates, refunds, a lone outlier date, customers with only late events."""
    rng = np.random.default_rng(0)
    n, customers = 200_000, 20_000
    base = pd.Timestamp("2022-01-01")
    frame = pd.DataFrame(
        {
            "customer_id": np.char.add("C", rng.integers(0, customers, n).astype(str)).astype(object),
            "timestamp": base + pd.to_timedelta(rng.integers(0, 900 * 24 * 60, n), unit="min"),
            "amount": np.round(rng.gamma(2.0, 30.0, n) * np.where(rng.random(n) < 0.05, -1, 1), 2),
        }
    )
    odd = rng.choice(n, 2_000, replace=False)
    frame.loc[odd[:500], "customer_id"] = " " + frame.loc[odd[:500], "customer_id"] + " "
    frame.loc[odd[500:600], "customer_id"] = NFD
    frame.loc[odd[600:700], "customer_id"] = '=HYPERLINK("http://x","y")'
    frame.loc[odd[700], "timestamp"] = pd.Timestamp("2026-05-01")  # a typo, within the bounds
    frame = pd.concat([frame, frame.iloc[odd[800:1200]]], ignore_index=True)  # duplicates
    (tmp_path / "data").mkdir()
    frame.to_parquet(tmp_path / "data" / "purchases.parquet", index=False)
    assert _check_pipeline(tmp_path / "data", purchases_model["model"], tmp_path / "out", None) == "scored"
    tables, report = load_tables(tmp_path / "data", now=NOW)
    assert default_cutoff(tables) < pd.Timestamp("2024-07-01")  # the typo moved nothing
    assert {r.kind for r in report.repairs} >= {"normalised_ids", "duplicate_rows", "isolated_late_events"}
