"""Words, numbers, money, dates and durations as an English or a French reader writes them.

- **Messages** are Project Fluent resources (``churnlens/locales/<lang>/*.ftl``): a message
  selects its form by the value (CLDR plural categories, exact values such as 0 or 1), so
  "1 day", "2 days", « aujourd'hui », « hier » come from the message, not from branches in code.
- **Numbers, money, percentages and dates** are formatted by Babel from CLDR data (French:
  decimal comma, narrow no-break space for thousands).
- **French typography** is applied once, by :func:`typography`: a no-break space (U+00A0)
  before ``:``, a narrow no-break space (U+202F) before ``; ? ! %`` and inside « ».

Everything the user reads goes through a :class:`Words` object for one language.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_scientific, get_currency_precision
from fluent.runtime import FluentBundle, FluentResource

from churnlens.errors import InputError

LANGS: tuple[str, ...] = ("en", "fr")
NBSP = "\u00a0"
NNBSP = "\u202f"
#: Days from which a duration is said in months, then in years.
MONTHS_FROM_DAYS = 60
YEARS_FROM_DAYS = 730
_DAYS_PER_MONTH = 365.25 / 12
#: From this magnitude numbers are written in scientific notation.
HUGE = 1e15


MINUS = "\u2212"  # a real minus sign, as wide as the plus
MISSING = "—"


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def _exact(value: float) -> decimal.Decimal:
    """The decimal a float prints as (2.675 is 2.675, not 2.67499...), so rounding is as written."""
    return decimal.Decimal(repr(float(value)))


def _minus(text: str) -> str:
    return MINUS + text[1:] if text.startswith("-") else text


def check_lang(lang: str) -> str:
    """``lang`` if it is a supported language, else an InputError."""
    if lang not in LANGS:
        raise InputError(f"language must be one of {', '.join(LANGS)}, got {lang!r}")
    return lang


# --------------------------------------------------------------------------- typography

_BEFORE_COLON = re.compile(r"[ \u00a0\u202f]*:(?=\s|$)")
_BEFORE_TIGHT = re.compile(r"(?<=\S)[ \u00a0\u202f]*([;?!%])")
_OPEN_QUOTE = re.compile(r"«[ \u00a0\u202f]*")
_CLOSE_QUOTE = re.compile(r"[ \u00a0\u202f]*»")


def typography(text: str, lang: str) -> str:
    """French spacing rules applied to ``text`` (English text is returned as is).

    A no-break space before a colon; a narrow no-break space before ``; ? ! %`` and inside
    « »; numbers' thousands separators are Babel's (already narrow no-break spaces).
    """
    if lang != "fr":
        return text
    text = _BEFORE_COLON.sub(NBSP + ":", text)
    text = _BEFORE_TIGHT.sub(lambda m: NNBSP + m.group(1), text)
    text = _OPEN_QUOTE.sub("«" + NNBSP, text)
    return _CLOSE_QUOTE.sub(NNBSP + "»", text)


# --------------------------------------------------------------------------- messages


@cache
def _bundle(lang: str) -> FluentBundle:
    bundle = FluentBundle([lang], use_isolating=False)
    folder = resources.files("churnlens") / "locales" / lang
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".ftl"):
            bundle.add_resource(FluentResource(item.read_text(encoding="utf-8")))
    return bundle


def has_message(lang: str, message_id: str) -> bool:
    """Whether the ``lang`` resources define ``message_id``."""
    return _bundle(check_lang(lang)).has_message(message_id)


#: Formatted messages and numbers kept (least recently used first out). Formatting is a pure
#: function of its arguments, and a reason sentence takes several Fluent and Babel calls: a
#: served model words the same durations, counts and medians again and again.
MEMO_SIZE = 16_384


@lru_cache(maxsize=MEMO_SIZE)
def _message(lang: str, message_id: str, attribute: str | None, args: tuple[tuple[str, type, Any], ...]) -> str:
    bundle = _bundle(lang)
    if not bundle.has_message(message_id):
        raise KeyError(f"no message {message_id!r} in the {lang} resources")
    message = bundle.get_message(message_id)
    pattern = message.attributes[attribute] if attribute else message.value
    text, errors = bundle.format_pattern(pattern, {k: v for k, _, v in args})
    if errors:
        raise ValueError(f"message {message_id!r} ({lang}): {errors[0]}")
    return typography(text, lang)


@lru_cache(maxsize=MEMO_SIZE)
def _number(lang: str, value: str, decimals: int, fixed: bool) -> str:
    """:meth:`Words.number` of the float written ``value`` (its repr: -0.0 and 0.0 stay apart)."""
    number = float(value)
    if abs(number) >= HUGE:  # beyond what decimal grouping can show (and Babel can quantize)
        return _minus(format_scientific(number, format="0.##E0", locale=lang))
    pattern = "#,##0" + ("." + ("0" if fixed else "#") * decimals if decimals > 0 else "")
    with decimal.localcontext(rounding=decimal.ROUND_HALF_UP):
        text = format_decimal(_exact(number), format=pattern, locale=lang)
    return _minus(text) if text.strip("-0.,") else text.lstrip("-")


@lru_cache(maxsize=MEMO_SIZE)
def _money(lang: str, currency: str, value: str, places: int) -> str:
    """:meth:`Words.money` of the float written ``value`` with ``places`` decimals."""
    digits = "#,##0" + ("." + "0" * places if places else "")
    pattern = digits + "\u00a0¤" if lang == "fr" else "¤" + digits
    with decimal.localcontext(rounding=decimal.ROUND_HALF_UP):
        text = format_currency(_exact(float(value)), currency, format=pattern, locale=lang, currency_digits=False)
    return _minus(text)


def _plain(value: Any) -> Any:
    """Fluent takes str, int, float and dates; numpy scalars become Python numbers."""
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


@dataclass(frozen=True)
class Words:
    """Messages and formats of one language.

    Parameters
    ----------
    lang : {"en", "fr"}
    currency : str
        ISO 4217 code of amounts (``[serving] currency``).
    money_decimals : int, optional
        Decimals of amounts; default the currency's own (2 for EUR).
    """

    lang: str = "en"
    currency: str = "EUR"
    money_decimals: int | None = None

    def __post_init__(self) -> None:
        check_lang(self.lang)

    # ---------------------------------------------------------------- messages

    def __call__(self, message_id: str, attribute: str | None = None, /, **args: Any) -> str:
        """The message ``message_id`` (or one of its attributes) with ``args``, French typography applied."""
        plain = tuple((k, type(v), v) for k, v in ((k, _plain(v)) for k, v in args.items()))
        try:
            return _message(self.lang, message_id, attribute, plain)
        except TypeError:  # an argument that cannot be a cache key: format it uncached
            return _message.__wrapped__(self.lang, message_id, attribute, plain)

    # ---------------------------------------------------------------- numbers

    def number(self, value: Any, decimals: int = 0, *, fixed: bool = False) -> str:
        """A number with at most ``decimals`` places (exactly ``decimals`` when ``fixed``), CLDR
        separators, halves rounded up as people do, and a real minus sign."""
        if _missing(value):
            return MISSING
        return _number(self.lang, repr(float(value)), int(decimals), bool(fixed))

    def integer(self, value: Any) -> str:
        """A whole number with thousands separators (« 12 345 »)."""
        return self.number(value, 0)

    def money(self, value: Any, decimals: int | None = None) -> str:
        """An amount in the configured currency, always with the same decimals (the currency's,
        ``money_decimals`` or ``decimals``): « 34,30 € », "€34.30"."""
        if _missing(value):
            return MISSING
        value = float(value)
        if abs(value) >= HUGE:
            return f"{self.number(value)}{NBSP}{self.currency}"
        places = decimals if decimals is not None else self.money_decimals
        if places is None:
            places = get_currency_precision(self.currency)
        return _money(self.lang, self.currency, repr(value), int(places))

    def percent(self, share: Any, decimals: int = 0, *, fixed: bool = False) -> str:
        """A share as a percentage: "38%" / « 38 % » (narrow no-break space)."""
        if _missing(share):
            return MISSING
        text = self.number(100.0 * float(share), decimals, fixed=fixed)
        return f"{text}{NNBSP}%" if self.lang == "fr" else f"{text}%"

    def points(self, delta: Any, decimals: int | None = None) -> str:
        """A change of probability in signed percentage points: "+6 pts", "−0.4 pts", « +1 pt ».

        By default whole points from 1 up, one decimal below (a 0.3-point effect is not "0 pts").
        """
        if _missing(delta):
            return MISSING
        pts = 100.0 * float(delta)
        if decimals is None:
            decimals = 0 if abs(pts) >= 0.95 else 1
        with decimal.localcontext(rounding=decimal.ROUND_HALF_UP):
            shown = float(_exact(abs(pts)).quantize(decimal.Decimal(1).scaleb(-decimals)))
        sign = "" if shown == 0 else ("+" if pts > 0 else MINUS)
        return self("points", count=shown, value=f"{sign}{self.number(shown, decimals)}")

    def times(self, ratio: float) -> str:
        """A ratio: "5.1×" / « 5,1 fois »."""
        return self("times", value=self.number(ratio, 1))

    def has(self, message_id: str) -> bool:
        """Whether this language defines ``message_id``."""
        return _bundle(self.lang).has_message(message_id)

    # ---------------------------------------------------------------- time

    def window(self, days: int) -> str:
        """A trailing window: "30 days", "3 months", "12 months" / « 30 jours », « 3 mois »."""
        days = int(days)
        if days % 365 == 0:
            return self("window", unit="months", count=12 * days // 365)
        if days >= 60 and days % 30 == 0:
            return self("window", unit="months", count=days // 30)
        return self("window", unit="days", count=days)

    def duration(self, days: float) -> str:
        """A duration: days below 60 days, then months, then years (« 3 jours », "4 months", « 2 ans »)."""
        days = float(days)
        if not math.isfinite(days):
            return "—"
        if abs(days) < MONTHS_FROM_DAYS:
            return self("duration-days", count=int(round(days)))
        if abs(days) < YEARS_FROM_DAYS:
            return self("duration-months", count=int(round(days / _DAYS_PER_MONTH)))
        years = round(days / 365.25 * 2) / 2  # half years
        return self("duration-years", count=years, shown=self.number(years, 1))

    def ago(self, days: float) -> str:
        """How long ago: « aujourd'hui », « hier », « il y a 3 jours », "4 months ago"."""
        days = float(days)
        if not math.isfinite(days):
            return "—"
        whole = int(round(days))
        if whole <= 1:
            return self("ago", days=max(whole, 0), duration="")
        return self("ago", days=whole, duration=self.duration(days))

    def date(self, value: Any, style: str = "long") -> str:
        """A date that never wraps: long « 31 août 2024 » / "31 Aug 2024" (sentences, cards), short
        « 1 janv. 2025 » / "1 Jan 2025" (tables)."""
        if value is None or value == "" or (isinstance(value, float) and _missing(value)):
            return MISSING
        day = value.date() if isinstance(value, dt.datetime) else value
        if not isinstance(day, dt.date):
            import pandas as pd

            stamp = pd.Timestamp(value)
            if stamp is pd.NaT:
                return MISSING
            day = stamp.date()
        pattern = "d MMMM y" if style == "long" and self.lang == "fr" else "d MMM y"
        return format_date(day, format=pattern, locale=self.lang).replace(" ", NBSP)

    def month(self, value: dt.date) -> str:
        """A month's abbreviation for chart axes ("Sep" / « sept. »)."""
        return format_date(value, "MMM", locale=self.lang)

    def days(self, value: Any) -> str:
        """A number of days with its unit (« 90 jours »), as said of horizons and windows."""
        if _missing(value):
            return MISSING
        return self("duration-days", count=int(value))
