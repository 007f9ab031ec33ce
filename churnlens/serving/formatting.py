"""Numbers, amounts, percentages, percentage points and dates as a reader of each language expects.

Built on Babel (CLDR data) rather than hand-written rules: French groups thousands with a
narrow no-break space (U+202F) and writes a decimal comma, ``38 %``, ``1 234,50 €`` and
``1 janv. 2025``; English ``38%``, ``€1,234.50`` and ``1 Jan 2025`` (day-month-year, the
British medium form, so both languages read dates the same way round). Nothing here wraps
inside a number: every space Babel or this module puts in one is a no-break space.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal

#: Babel locale of each language the app speaks.
LOCALES = {"en": "en_GB", "fr": "fr_FR"}
NNBSP = "\u202f"  # narrow no-break space: French thousands, and before % ; ? !
NBSP = "\u00a0"  # no-break space: between a number and its unit
MINUS = "\u2212"  # a real minus sign, as wide as the plus
MISSING = "—"


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def _exact(value: Any) -> decimal.Decimal:
    """The decimal a float prints as (2.675 is 2.675, not 2.67499...), so rounding is as written."""
    return decimal.Decimal(repr(float(value)))


def _half_up() -> Any:
    """Round halves up, as people do (Babel follows the decimal context, half-even by default)."""
    return decimal.localcontext(rounding=decimal.ROUND_HALF_UP)


def _minus(text: str) -> str:
    return MINUS + text[1:] if text.startswith("-") else text


@lru_cache(maxsize=4)
def babel_locale(lang: str) -> Locale:
    """The Babel locale of a language (cached)."""
    return Locale.parse(LOCALES[lang])


@dataclass(frozen=True)
class Formatter:
    """Formats values for one language and currency.

    Parameters
    ----------
    lang : {"en", "fr"}
    currency : str
        ISO 4217 code of amounts.
    """

    lang: str = "en"
    currency: str = "EUR"

    def __post_init__(self) -> None:
        if self.lang not in LOCALES:
            raise ValueError(f"language must be one of {sorted(LOCALES)}, got {self.lang!r}")

    @property
    def locale(self) -> str:
        """The Babel locale name (``fr_FR``)."""
        return LOCALES[self.lang]

    def number(self, value: Any, decimals: int = 0, *, fixed: bool = False) -> str:
        """A number with the language's separators and at most ``decimals`` places (exactly, if ``fixed``)."""
        if _missing(value):
            return MISSING
        pattern = "#,##0" + ("." + ("0" if fixed else "#") * decimals if decimals > 0 else "")
        with _half_up():
            return _minus(format_decimal(_exact(value), format=pattern, locale=self.locale))

    def integer(self, value: Any) -> str:
        """A whole number with thousands separators (``12 345``)."""
        return self.number(value, 0)

    def percent(self, probability: Any, decimals: int = 0, *, fixed: bool = False) -> str:
        """A probability as a percentage: ``38%`` / ``38 %`` (U+202F before the sign in French)."""
        if _missing(probability):
            return MISSING
        text = self.number(100.0 * float(probability), decimals, fixed=fixed)
        return f"{text}{NNBSP}%" if self.lang == "fr" else f"{text}%"

    def money(self, value: Any, decimals: int | None = None) -> str:
        """An amount in the configured currency; whole units from 100 up, else cents."""
        if _missing(value):
            return MISSING
        value = float(value)
        places = decimals if decimals is not None else (0 if abs(value) >= 100 else 2)
        pattern = "¤#,##0" + ("." + "0" * places if places else "")
        if self.lang == "fr":
            pattern = "#,##0" + ("." + "0" * places if places else "") + NBSP + "¤"
        with _half_up():
            return _minus(
                format_currency(_exact(value), self.currency, format=pattern, locale=self.locale, currency_digits=False)
            )

    def points(self, effect: Any) -> str:
        """A change of probability in signed percentage points: ``+6 pts``, ``−0.4 pts``, ``+1 pt``.

        Whole points from 1 up, one decimal below (a 0.3-point effect is not "0 pts").
        """
        if _missing(effect):
            return MISSING
        pp = 100.0 * float(effect)
        decimals = 0 if abs(pp) >= 0.95 else 1
        shown = float(_exact(abs(pp)).quantize(decimal.Decimal(1).scaleb(-decimals), rounding=decimal.ROUND_HALF_UP))
        if shown == 0:
            return f"0{NBSP}pt" if self.lang == "fr" else f"0{NBSP}pts"
        sign = "+" if pp > 0 else MINUS
        unit = "pt" if babel_locale(self.lang).plural_form(shown) == "one" else "pts"
        return f"{sign}{self.number(shown, decimals)}{NBSP}{unit}"

    def date(self, value: Any) -> str:
        """A date in the medium long form: ``1 Jan 2025`` / ``1 janv. 2025``."""
        if value is None or value == "":
            return MISSING
        day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
        return format_date(day, "medium", locale=self.locale).replace(" ", NBSP)  # a date never wraps

    def month(self, value: dt.date) -> str:
        """A month's abbreviation for chart axes (``Sep`` / ``sept.``)."""
        return format_date(value, "MMM", locale=self.locale)

    def days(self, value: Any) -> str:
        """A number of days with its unit (``90 days`` / ``90 jours``)."""
        if _missing(value):
            return MISSING
        n = int(value)
        one = babel_locale(self.lang).plural_form(n) == "one"
        word = ("jour" if one else "jours") if self.lang == "fr" else ("day" if one else "days")
        return f"{self.integer(n)}{NBSP}{word}"


__all__ = ["LOCALES", "babel_locale", "MINUS", "NBSP", "NNBSP", "Formatter"]
