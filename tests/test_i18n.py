"""The wording layer: forms chosen by value, CLDR numbers and dates, French typography."""

from __future__ import annotations

import pytest

from churnlens.errors import InputError
from churnlens.i18n import NBSP, NNBSP, Words, typography


@pytest.mark.parametrize(
    ("days", "en", "fr"),
    [
        (0, "0\u00a0days", f"0{NBSP}jour"),
        (1, "1\u00a0day", f"1{NBSP}jour"),
        (2, "2\u00a0days", f"2{NBSP}jours"),
        (59, "59\u00a0days", f"59{NBSP}jours"),
        (61, "2\u00a0months", f"2{NBSP}mois"),
        (1530, "4\u00a0years", f"4{NBSP}ans"),
        (550, "18\u00a0months", f"18{NBSP}mois"),
        (912, "2.5\u00a0years", f"2,5{NBSP}ans"),
    ],
)
def test_durations_pick_their_unit_and_form(days, en, fr):
    assert Words("en").duration(days) == en
    assert Words("fr").duration(days) == fr


def test_relative_days():
    assert [Words("fr").ago(d) for d in (0, 1, 3)] == ["aujourd'hui", "hier", f"il y a 3{NBSP}jours"]
    assert [Words("en").ago(d) for d in (0, 1, 90)] == ["today", "yesterday", "3\u00a0months ago"]


def test_numbers_money_percent_points_dates():
    fr, en = Words("fr"), Words("en")
    assert fr.number(1234567.891, 2) == f"1{NNBSP}234{NNBSP}567,89" and en.number(1234.5) == "1,235"  # halves round up
    assert fr.money(34.3) == f"34,30{NBSP}€" and en.money(34.3) == "€34.30"
    assert fr.money(1e14).endswith("€") and fr.money(1e30) == f"1E30{NBSP}EUR" and en.money(float("nan")) == "—"
    assert fr.percent(0.38) == f"38{NNBSP}%" and en.percent(0.384, 1) == "38.4%"
    assert (
        fr.points(0.061) == f"+6{NBSP}pts"
        and en.points(-0.02) == "−2\u00a0pts"
        and en.points(0.001) == "+0.1\u00a0pts"
        and en.points(0.0004) == "0\u00a0pts"
    )
    assert fr.date("2024-08-31") == f"31{NBSP}août{NBSP}2024" and en.date("2024-08-31") == f"31{NBSP}Aug{NBSP}2024"
    assert fr.date("2025-01-01", "short") == f"1{NBSP}janv.{NBSP}2025"
    assert Words("en", currency="USD").money(12) == "$12.00"


def test_french_typography():
    text = typography("Dépenses : 34 € ; vraiment ? « oui » 5 % !", "fr")
    assert text == f"Dépenses{NBSP}: 34 €{NNBSP}; vraiment{NNBSP}? «{NNBSP}oui{NNBSP}» 5{NNBSP}%{NNBSP}!"
    assert typography("Spend: 5%?", "en") == "Spend: 5%?"
    assert typography("http://x", "fr") == "http://x"  # a colon inside a word is not punctuation


def test_unknown_language_and_message():
    with pytest.raises(InputError, match="language must be one of en, fr, got 'de'"):
        Words("de")
    with pytest.raises(KeyError, match="no message 'nope'"):
        Words("en")("nope")
