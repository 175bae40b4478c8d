"""Bar charts for the console's Overview (docs/api.md 15), drawn as inline SVG by the template
console/_chart.html from the geometry computed here.

Why this shape: the console's CSP allows no script and no style attribute, so a chart is plain SVG whose
colours come from classes in console/styles.css (and, for a hatched series, a <pattern> fill attribute);
it scales to any width through its viewBox. Each chart carries a title and a description (for the
``role="img"`` element's accessible name and description) and the very numbers it draws as a table, shown
beside it: a chart is never the only way to read a figure, and no series is told apart by colour alone
(the second series of a chart is hatched, and the legend is text). Markup stays in the template, where
Jinja escapes every label; this module is pure arithmetic and knows nothing of money or days.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

WIDTH = 480  # viewBox units: the chart is drawn at 480 wide and scaled to its box (width 100%)
HEIGHT = 250
TOP, RIGHT, BOTTOM = 14, 10, 46  # room above the plot, right of it and below it (day labels, axis title)
CHAR = 8.0  # about one character of the axis text (14 units, system font) in viewBox units
MAX_X_LABELS = 7  # day labels under the axis; more would overlap at a phone's width
ROW = 50  # a funnel stage: its label above a bar


@dataclass(frozen=True)
class Series:
    name: str
    kind: str  # the bar's class suffix in styles.css: ok | bad | money | refund | fail
    values: tuple[int, ...]
    hatched: bool = False


@dataclass(frozen=True)
class Table:
    """The chart's numbers: a caption, column headings (the first heads the row headings) and rows."""
    caption: str
    head: tuple[str, ...]
    rows: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    kind: str
    hatched: bool
    title: str  # "Dec 4: 3 succeeded", a pointer's tooltip


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class Chart:
    id: str  # unique on the page: the title, description and pattern ids derive from it
    title: str
    description: str
    table: Table
    height: int
    bars: tuple[Bar, ...]
    legend: tuple[Series, ...] = ()
    ticks: tuple[Text, ...] = ()  # y-axis values; their gridlines run across the plot at the same y
    x_labels: tuple[Text, ...] = ()
    labels: tuple[Text, ...] = ()  # a funnel's stage names (above each bar) and values (after it)
    plot: tuple[float, float, float, float] = (0, 0, 0, 0)  # left, top, right, bottom of the plot area
    x_title: Text | None = None
    y_title: Text | None = None
    width: int = WIDTH
    horizontal: bool = False

    @property
    def hatched_kinds(self) -> tuple[str, ...]:
        """The series kinds drawn hatched: one <pattern> each."""
        return tuple(dict.fromkeys(b.kind for b in self.bars if b.hatched))


def nice_scale(largest: int, steps: int = 4) -> tuple[int, int]:
    """(top, step) of a y axis for values up to ``largest`` (integers: counts or minor units): a step of
    1, 2 or 5 times a power of ten, so the axis reads 0, 2, 4, 6, 8 or 0, 1,000, 2,000, 3,000, and a top
    that is a whole number of steps at or above ``largest``, at most ``steps`` + 1 of them."""
    if largest <= 0:
        return 1, 1
    raw = largest / steps
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return step * math.ceil(largest / step), step


def _label_indices(count: int) -> list[int]:
    """Which categories get a label under the axis: all of a week, evenly spaced ones of a longer period,
    always the first, and the last when it does not crowd its neighbour."""
    if count <= MAX_X_LABELS:
        return list(range(count))
    every = math.ceil(count / (MAX_X_LABELS - 1))
    chosen = list(range(0, count, every))
    if count - 1 - chosen[-1] >= every * 0.6:
        chosen.append(count - 1)
    return chosen


def column_chart(chart_id: str, title: str, description: str, categories: list[str], series: list[Series], *,
                 table: Table, x_title: str, y_title: str, value_text: Callable[[int], str] = str,
                 category_titles: list[str] | None = None) -> Chart:
    """Grouped columns: one group per category (a day), one column per series, on a shared y axis from 0.
    ``value_text`` writes a value for the axis and the tooltips (money in its currency)."""
    top_value, step = nice_scale(max((v for s in series for v in s.values), default=0))
    tick_texts = [value_text(v) for v in range(0, top_value + 1, step)]
    left = 22 + CHAR * max(len(t) for t in tick_texts)  # the rotated y title, then the widest tick label
    right, plot_top, bottom = WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    scale = (bottom - plot_top) / top_value
    slot = (right - left) / max(len(categories), 1)
    group = slot * 0.78 if len(series) > 1 else slot * 0.64
    column = group / max(len(series), 1)
    names = category_titles or categories
    bars = []
    for i, _ in enumerate(categories):
        x0 = left + i * slot + (slot - group) / 2
        for j, s in enumerate(series):
            value = s.values[i]
            # A non-zero value is never drawn as nothing, however small beside the largest.
            height = max(value * scale, 1.5) if value else 0
            bars.append(Bar(round(x0 + j * column, 2), round(bottom - height, 2), round(column, 2), round(height, 2),
                            s.kind, s.hatched, f"{names[i]}: {value_text(value)} {s.name.lower()}"))
    ticks = tuple(Text(round(left - 6, 2), round(bottom - v * scale, 2), text)
                  for v, text in zip(range(0, top_value + 1, step), tick_texts))
    x_labels = tuple(Text(round(left + (i + 0.5) * slot, 2), bottom + 18, categories[i])
                     for i in _label_indices(len(categories)))
    return Chart(id=chart_id, title=title, description=description, table=table, height=HEIGHT, bars=tuple(bars),
                 legend=tuple(series), ticks=ticks, x_labels=x_labels, plot=(round(left, 2), plot_top, right, bottom),
                 x_title=Text(round((left + right) / 2, 2), HEIGHT - 6, x_title),
                 y_title=Text(14, round((plot_top + bottom) / 2, 2), y_title))


def funnel_chart(chart_id: str, title: str, description: str, stages: list[tuple[str, int]], *,
                 table: Table, kind: str = "money") -> Chart:
    """Horizontal bars, one stage under the other, each as long as its count beside the first stage's
    (the widest): its name above it and its count after it."""
    room = CHAR * max((len(str(v)) for _, v in stages), default=1) + 10  # the count after the longest bar
    largest = max((v for _, v in stages), default=0) or 1
    usable = WIDTH - RIGHT - room
    bars, labels = [], []
    for i, (name, value) in enumerate(stages):
        y = 8 + i * ROW
        length = max(value / largest * usable, 1.5) if value else 0
        bars.append(Bar(0, y + 20, round(length, 2), 20, kind, False, f"{name}: {value}"))
        labels.append(Text(0, y + 13, name))
        labels.append(Text(round(length + 6, 2), y + 35, str(value)))
    return Chart(id=chart_id, title=title, description=description, table=table, height=8 + ROW * len(stages),
                 bars=tuple(bars), labels=tuple(labels), horizontal=True)
