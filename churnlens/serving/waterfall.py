"""Geometry of the card's waterfall chart, in churn probability (drawn as inline SVG by a template).

The chart starts at the average customer's risk (the calibrated probability of the model's
base value), adds one bar per factor, largest first, and ends at this customer's
probability. Bar sizes are the factors' probability effects
(:func:`churnlens.serving.explain.probability_effects`), so they add up exactly from one end
to the other. Palette: Okabe–Ito vermillion for factors that raise the risk, blue with a
hatch pattern for those that lower it, and every bar carries its signed value ("+6 pts"),
so meaning never rests on colour alone.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

import numpy as np

from churnlens.i18n import NBSP, Words

#: Factors drawn one by one; the others are summed into one bar.
CHART_FEATURES = 8
UP_COLOUR = "#D55E00"  # Okabe–Ito vermillion
DOWN_COLOUR = "#0072B2"  # Okabe–Ito blue (hatched)
WIDTH = 760
LABEL_RIGHT = 320
PLOT_LEFT, PLOT_RIGHT = 334, 680
ROW = 38
TOP = 12
LABEL_WIDTH = 46


@dataclass(frozen=True)
class Bar:
    """One row of the chart.

    ``kind`` is ``start`` (average customer), ``up`` / ``down`` (a factor) or ``end`` (this
    customer). ``x0 <= x1`` are the bar's ends in pixels (equal for start and end markers).
    """

    kind: str
    lines: tuple[str, ...]
    y: float
    x0: float
    x1: float
    text: str
    text_x: float
    connector: float | None


@dataclass(frozen=True)
class Waterfall:
    """Everything the SVG template draws; all texts already in the reader's language."""

    width: int
    height: int
    bars: tuple[Bar, ...]
    ticks: tuple[tuple[float, str], ...]
    axis_y: float
    axis_label: str
    title: str
    desc: str
    legend_y: float
    raises: str
    lowers: str
    up_colour: str = UP_COLOUR
    down_colour: str = DOWN_COLOUR
    plot_left: int = PLOT_LEFT
    plot_right: int = PLOT_RIGHT
    label_right: int = LABEL_RIGHT
    row: int = ROW


def _label_lines(description: str, shown: str, lang: str) -> tuple[str, ...]:
    """The factor's description then the customer's value, on at most two lines of
    :data:`LABEL_WIDTH` characters; the description is shortened, never the value."""
    colon = f"{NBSP}:" if lang == "fr" else ":"
    tail = f"{colon} {shown}"
    if len(description) + len(tail) <= LABEL_WIDTH:
        return (description + tail,)
    lines = textwrap.wrap(description, LABEL_WIDTH) or [""]
    room = LABEL_WIDTH - len(tail)
    rest = " ".join(lines[1:])
    if not rest:
        return (lines[0], tail.removeprefix(colon).strip())
    if room < 12:
        return (textwrap.shorten(description, LABEL_WIDTH, placeholder="…"), tail.removeprefix(colon).strip())
    return (lines[0], textwrap.shorten(rest, room, placeholder="…") + tail)


def _ticks(lo: float, hi: float) -> tuple[float, float, float]:
    """A round tick step (in probability) and the axis ends on it, for at most ~6 ticks."""
    span = max(hi - lo, 1e-9)
    for step in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25):
        if span / step <= 6:
            break
    return step, max(0.0, math.floor(lo / step) * step), min(1.0, math.ceil(hi / step) * step)


def waterfall(
    *,
    average: float,
    probability: float,
    effects: dict[str, float],
    labels: dict[str, tuple[str, str]],
    order: list[str],
    fmt: Words,
    top: int = CHART_FEATURES,
) -> Waterfall:
    """Lay out the waterfall of one customer.

    Parameters
    ----------
    average : float
        The average customer's churn probability (where the chart starts).
    probability : float
        This customer's churn probability (where it ends).
    effects : dict
        Probability effect per feature (they add up to ``probability - average``).
    labels : dict
        Per feature, its description and the customer's value as shown.
    order : list of str
        Features in drawing order (largest absolute contribution first).
    fmt : Words
    top : int
        Features drawn one by one; the rest form one "other factors" bar.
    """
    t = Words(fmt.lang)
    steps: list[tuple[tuple[str, ...], float]] = []
    for name in order[:top]:
        description, shown = labels.get(name, (name, ""))
        steps.append((_label_lines(description, shown, fmt.lang), float(effects[name])))
    rest = order[top:]
    if rest:
        steps.append(((t("others", n=len(rest)),), float(sum(effects[n] for n in rest))))
    levels = np.concatenate([[average], average + np.cumsum([e for _, e in steps])]) if steps else np.array([average])
    lo = float(min(levels.min(), probability, average))
    hi = float(max(levels.max(), probability, average))
    pad = max(0.1 * (hi - lo), 0.01)
    step, axis_lo, axis_hi = _ticks(max(0.0, lo - pad), min(1.0, hi + pad))
    span = max(axis_hi - axis_lo, 1e-9)

    def x(p: float) -> float:
        return round(PLOT_LEFT + (PLOT_RIGHT - PLOT_LEFT) * (p - axis_lo) / span, 2)

    bars = []
    y = TOP + ROW / 2
    start_text = fmt.percent(average)
    bars.append(Bar("start", (t("average"),), y, x(average), x(average), start_text, x(average) + 8, None))
    level = average
    for lines, effect in steps:
        y += ROW
        a, b = x(level), x(level + effect)
        x0, x1 = min(a, b), max(a, b)
        if x1 - x0 < 1.5:  # a tiny effect still shows as a sliver
            x1 = x0 + 1.5
        kind = "up" if effect > 0 else "down"
        bars.append(Bar(kind, lines, y, x0, x1, fmt.points(effect), x1 + 6, a))
        level += effect
    y += ROW
    end_text = fmt.percent(probability)
    bars.append(Bar("end", (t("this"),), y, x(probability), x(probability), end_text, x(probability) + 8, x(level)))
    axis_y = y + ROW / 2 + 4
    n_ticks = int(round((axis_hi - axis_lo) / step))
    ticks = tuple((x(axis_lo + i * step), fmt.percent(axis_lo + i * step)) for i in range(n_ticks + 1))
    described = "; ".join(f"{' '.join(b.lines)} {b.text}" for b in bars[1:-1])
    return Waterfall(
        width=WIDTH,
        height=int(axis_y + 74),
        bars=tuple(bars),
        ticks=ticks,
        axis_y=axis_y,
        axis_label=t("axis"),
        title=t("chart"),
        desc=t("chart_desc", average=t("average"), this=t("this"), start=start_text, end=end_text, steps=described),
        legend_y=axis_y + 52,
        raises=t("raises"),
        lowers=t("lowers"),
    )


__all__ = ["CHART_FEATURES", "DOWN_COLOUR", "UP_COLOUR", "Bar", "Waterfall", "waterfall"]
