"""Bounds on input values: beyond them a value is a typo or a unit error, and validation refuses it.

Timestamps must lie between :attr:`InputBounds.earliest` (default 1900-01-01) and the load time
plus :attr:`InputBounds.future_days` (default one day); amounts (purchase amounts and quantities,
program points) must not exceed :attr:`InputBounds.max_abs_amount` in absolute value (default
1e12). Past these, features and cutoffs would overflow (pandas timestamps end in 2262) or mean
nothing (an amount of 1e30).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from churnlens.errors import InputError

#: Number columns held to :attr:`InputBounds.max_abs_amount`, by table.
AMOUNT_COLUMNS: dict[str, tuple[str, ...]] = {
    "purchases": ("amount", "quantity"),
    "program_events": ("points",),
}


@dataclass(frozen=True)
class InputBounds:
    """Limits on input values (a TOML section can set them; the defaults suit any real program).

    Parameters
    ----------
    earliest : str or Timestamp
        No timestamp before it (naive = UTC). Default 1900-01-01.
    future_days : float
        No timestamp later than the load time plus this many days (clocks and time zones of the
        systems that wrote the data differ a little). Default 1.
    max_abs_amount : float
        No amount, quantity or points value larger in absolute value. Default 1e12.
    """

    earliest: str | pd.Timestamp = "1900-01-01"
    future_days: float = 1.0
    max_abs_amount: float = 1e12

    def __post_init__(self) -> None:
        earliest = _timestamp(self.earliest, "earliest")
        if not pd.Timestamp("1678-01-01") <= earliest <= pd.Timestamp("2261-01-01"):
            raise InputError(f"bounds: earliest must lie between 1678 and 2261, got {earliest}")
        if not 0 <= float(self.future_days) <= 36_500:
            raise InputError(f"bounds: future_days must lie in [0, 36500], got {self.future_days}")
        if not 0 < float(self.max_abs_amount) < float("inf"):
            raise InputError(f"bounds: max_abs_amount must be a positive finite number, got {self.max_abs_amount}")

    def time_range(self, now: pd.Timestamp | str | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
        """``(earliest, latest)`` allowed for a timestamp loaded at ``now`` (default: the clock), naive UTC."""
        load = pd.Timestamp.now(tz="UTC") if now is None else _timestamp(now, "now")
        if load.tzinfo is not None:
            load = load.tz_convert("UTC").tz_localize(None)
        latest = load + pd.Timedelta(days=float(self.future_days))
        return _timestamp(self.earliest, "earliest").as_unit("us"), latest.as_unit("us")

    def check_cutoff(
        self, cutoff: pd.Timestamp | str, *, what: str = "cutoff", now: pd.Timestamp | None = None
    ) -> None:
        """Raise an InputError naming ``what`` when a cutoff lies outside :meth:`time_range`.

        For the CLI's ``--cutoff`` and the API's ``cutoff`` (the same bounds as the data).
        """
        earliest, latest = self.time_range(now)
        value = _timestamp(cutoff, what)
        if value.tzinfo is not None:
            value = value.tz_convert("UTC").tz_localize(None)
        if not earliest <= value <= latest + pd.Timedelta(days=1):
            raise InputError(
                f"{what} {value.date()} is outside the allowed range {earliest.date()} to {latest.date()} "
                f"(load time + {float(self.future_days):g} day(s)); the bounds are configurable"
            )


def _timestamp(value: pd.Timestamp | str, what: str) -> pd.Timestamp:
    try:
        out = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        out = None
    if out is None or pd.isna(out):
        raise InputError(f"{what} {value!r} is not a date (expected e.g. 2024-06-01)")
    return out


DEFAULT_BOUNDS = InputBounds()
