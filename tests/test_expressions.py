"""Eligibility expressions: the grammar, its semantics on missing values and texts, and refusal of anything else."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnlens.errors import InputError
from churnlens.expressions import MAX_DEPTH, MAX_LENGTH, parse

ROWS = {
    "band": ["high", "medium", None, "low"],
    "probability": [0.9, 0.4, 0.7, np.nan],
    "points_balance": [300.0, 100.0, np.nan, 250.0],
    "flag": [1.0, 0.0, np.nan, 2.0],
    "reason_families": [frozenset({"support", "purchases"}), frozenset({"program"}), frozenset(), frozenset()],
}


def run(text: str) -> list[bool]:
    return parse(text).evaluate(ROWS, 4).tolist()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('band == "high"', [True, False, False, False]),
        ("band == 'high'", [True, False, False, False]),
        ('band != "high"', [False, True, False, True]),  # a missing band is neither equal nor different
        ("probability >= 0.7", [True, False, True, False]),
        ("probability < 0.7", [False, True, False, False]),  # NaN: false
        ("not probability >= 0.7", [False, True, False, True]),  # not of a false comparison
        ("0.3 < probability <= 0.8", [False, True, True, False]),  # chained
        ("points_balance >= 250 and probability > 0.5", [True, False, False, False]),
        ("points_balance >= 250 or probability > 0.5", [True, False, True, True]),
        ('band in ["high", "medium"]', [True, True, False, False]),
        ('band not in ("high", "medium")', [False, False, False, True]),  # missing: false
        ("points_balance in [100, 250]", [False, True, False, True]),
        ('"support" in reason_families', [True, False, False, False]),
        ('"support" not in reason_families', [False, True, True, True]),
        ("flag", [True, False, False, True]),
        ("not flag", [False, True, True, False]),
        ("points_balance is None", [False, False, True, False]),
        ("probability is not None", [True, True, True, False]),
        ("true", [True, True, True, True]),
        ("False or band == 'low'", [False, False, False, True]),
        ("probability > -1", [True, True, True, False]),
        ("(band == 'high' or band == 'low') and not points_balance < 260", [True, False, False, False]),
    ],
)
def test_expressions_evaluate_column_wise(text, expected):
    assert run(text) == expected


def test_names_and_series_inputs():
    e = parse('band == "high" and points_balance > 1 or "x" in reason_families')
    assert e.names == {"band", "points_balance", "reason_families"}
    frame = pd.DataFrame({"band": pd.array(["high", pd.NA], dtype="string"), "v": pd.array([1, None], dtype="Int64")})
    got = parse('band == "high" and v >= 1').evaluate({"band": frame["band"], "v": frame["v"]}, 2)
    assert got.tolist() == [True, False]
    cat = pd.Series(["a", "b"], dtype="category")
    assert parse("c == 'b'").evaluate({"c": cat}, 2).tolist() == [False, True]


@pytest.mark.parametrize(
    "text",
    [
        '__import__("os").system("id")',
        "open('/etc/passwd')",
        "band.upper() == 'HIGH'",
        "points_balance.__class__",
        "reason_families[0] == 'x'",
        "points_balance + 1 > 2",
        "points_balance * 2 > 2",
        "lambda: 1",
        "[x for x in band]",
        "(x for x in band)",
        "{'a': 1}",
        "f'{band}' == 'x'",
        "band if flag else probability",
        "(y := 1)",
        "band == b'high'",
        "1",
        "'text'",
        "band in reason_families[0]",
        "band in [probability]",
        "band is 'high'",
        "*band",
    ],
)
def test_anything_beyond_the_grammar_is_refused(text):
    with pytest.raises(InputError, match="is not (allowed|valid)"):
        parse(text)


def test_syntax_errors_say_where_and_hint_at_double_equals():
    with pytest.raises(InputError, match=r"not valid: .* at column \d+ \(use == to compare\)"):
        parse("band = 'high'")
    with pytest.raises(InputError, match="empty eligibility expression"):
        parse("   ")
    with pytest.raises(InputError, match="must be text"):
        parse(3)  # type: ignore[arg-type]


def test_long_and_deep_expressions_are_refused_before_any_work():
    with pytest.raises(InputError, match=f"longer than {MAX_LENGTH}"):
        parse("flag or " * 400 + "flag")
    with pytest.raises(InputError, match="nest"):
        parse("not " * (MAX_DEPTH + 5) + "flag")
    with pytest.raises(InputError, match="nest|not valid"):
        parse("(" * 600 + "flag" + ")" * 600)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("band > 'a'", "texts compare only with ==, != or in"),
        ("band == 1", r"cannot compare band \(text\) with 1.0 \(number\)"),
        ("band", "holds texts"),
        ("'x' in band", "is not a set of texts"),
        ("reason_families == 'x'", "is a set of texts: use 'in'"),
        ("band in [1, 'a']", "mixes texts and numbers"),
        ("probability in ['a']", "against a list of texts"),
        ("unknown > 1", r"unknown name\(s\) \['unknown'\]"),
    ],
)
def test_type_clashes_are_clear_errors(text, message):
    with pytest.raises(InputError, match=message):
        run(text)


def test_parsed_expressions_are_picklable_and_cached():
    import pickle

    e = parse("probability > 0.5")
    assert pickle.loads(pickle.dumps(e)) == e
    assert parse("probability > 0.5") is e
