"""The archive's trend chart: 满意率 and 信任率 by year, one colour and marker per form
(matplotlib, Agg).

Each year is plotted by the entry that counts for it (the latest valid round of the year), so
the chart shows what the accountability rules judge. A year without a counting result leaves
a gap in the line rather than joining its neighbours.

For paper in black and white: the first three forms' colours lie at least 60 grey levels apart
(ITU-R BT.601), every form has its own marker shape, and 满意率 (solid, filled marker) and
信任率 (dashed, hollow marker) differ in line style.
"""

from __future__ import annotations

import io
import math
from fractions import Fraction
from typing import TYPE_CHECKING

from evaluation.archive.queries import Timeline, share
from evaluation.archive.rules import RuleConfig
from evaluation.ballot_forms import SHORT_FORM_NAMES
from evaluation.fonts import matplotlib_font_family
from evaluation.models import ArchiveEntry

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

# matplotlib is imported where the chart is drawn (a process that draws none starts without it).

# Navy (Y≈40), orange (Y≈172), brown (Y≈106), then colours told apart by marker shape.
COLOURS = ("#0b2e59", "#e8a33d", "#9a6700", "#6f42c1", "#1a7f37")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def _series(timeline: Timeline) -> dict[str, dict[int, ArchiveEntry]]:
    """Form id → year → the entry that counts for that year."""
    series: dict[str, dict[int, ArchiveEntry]] = {}
    for entry in timeline.entries:
        if not entry.valid_round:
            continue
        by_year = series.setdefault(entry.form_id, {})
        # Entries come in time order: a later valid round of the year replaces an earlier one.
        by_year[entry.year] = entry
    return series


def _value(entry: ArchiveEntry | None, key: str) -> float:
    rate = share(entry, key) if entry is not None else None
    return math.nan if rate is None else float(rate * 100)


def trend_chart_png(timeline: Timeline, *, title: str, config: RuleConfig) -> bytes:
    """The PNG bytes of the trend chart (an empty chart says so when there is nothing yet)."""
    return _png(trend_chart_figure(timeline, title=title, config=config))


def trend_chart_figure(timeline: Timeline, *, title: str, config: RuleConfig) -> Figure:
    """The trend chart as a matplotlib Figure (drawn by ``trend_chart_png``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.ticker import FixedLocator, PercentFormatter

    font = FontProperties(family=matplotlib_font_family())
    small = FontProperties(family=matplotlib_font_family(), size=8.5)
    fig = Figure(figsize=(8.4, 4.2), dpi=110, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    fig.subplots_adjust(left=0.08, right=0.97, top=0.9, bottom=0.26)
    ax.set_title(title, fontproperties=FontProperties(family=font.get_family(), size=13))
    series = _series(timeline)
    years = sorted({y for by_year in series.values() for y in by_year})
    if not years:
        ax.text(0.5, 0.5, "暂无有效测评记录", ha="center", va="center", fontproperties=font)
        ax.set_axis_off()
        return fig

    span = list(range(years[0], years[-1] + 1))
    # year → (satisfaction, grade, colour) of each form: labelled once all are drawn
    grades: dict[int, list[tuple[float, str, str]]] = {}
    for index, (form_id, by_year) in enumerate(sorted(series.items())):
        colour = COLOURS[index % len(COLOURS)]
        marker = MARKERS[index % len(MARKERS)]
        name = SHORT_FORM_NAMES.get(form_id, form_id)
        satisfaction = [_value(by_year.get(y), "satisfaction_rate") for y in span]
        trust = [_value(by_year.get(y), "trust_rate") for y in span]
        ax.plot(
            span,
            satisfaction,
            ls="-",
            marker=marker,
            color=colour,
            lw=2,
            ms=6,
            label=f"{name} 满意率",
        )
        ax.plot(
            span,
            trust,
            ls="--",
            marker=marker,
            color=colour,
            lw=1.4,
            ms=5,
            markerfacecolor="white",
            label=f"{name} 信任率",
        )
        for year, value in zip(span, satisfaction, strict=True):
            entry = by_year.get(year)
            if entry is None or math.isnan(value) or not entry.grade:
                continue
            grades.setdefault(year, []).append((value, entry.grade, colour))

    forms = set(series)
    if forms & set(config.integrity_forms):
        _threshold(
            ax, config.integrity_below, f"廉洁自律满意率警戒线 {config.integrity_below}", small
        )
    if forms & set(config.trust_forms):
        _threshold(ax, config.trust_below, f"信任率警戒线 {config.trust_below}", small)

    ax.set_ylim(0, 108)
    _grade_labels(ax, grades, small, fig.get_figheight())
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    ax.set_xlim(span[0] - 0.5, span[-1] + 0.5)
    ax.xaxis.set_major_locator(FixedLocator(span))
    ax.set_xticklabels(_year_labels(timeline, span), fontproperties=font)
    ax.grid(axis="y", color="#d8dde3", lw=0.8)
    ax.spines[["top", "right"]].set_visible(False)
    columns = min(4, 2 * len(series))
    ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=columns, prop=small, frameon=False
    )
    fig.text(
        0.01,
        0.01,
        "每年取当年最后一次有效测评；空缺表示当年没有有效测评。点旁文字为测评等次。",
        fontproperties=small,
        color="#5b6470",
    )
    return fig


def _year_labels(timeline: Timeline, span: list[int]) -> list[str]:
    """ "2024年", with the unit under it when the subject served in more than one (跟踪追究)."""
    units: dict[int, list[str]] = {}
    for entry in timeline.entries:
        if entry.valid_round and entry.unit.name not in units.setdefault(entry.year, []):
            units[entry.year].append(entry.unit.name)
    if len({name for names in units.values() for name in names}) <= 1:
        return [f"{y}年" for y in span]
    return [f"{y}年\n" + "、".join(units.get(y, [])) for y in span]


def _grade_labels(
    ax: Axes,
    grades: dict[int, list[tuple[float, str, str]]],
    font: FontProperties,
    fig_height: float,
) -> None:
    """Each year's grades beside their points, on a white ground so that no line runs through
    the words: above a point, else below it, else further down or up — the first place where
    the label overlaps no other label of that year (a point at the top is labelled below)."""
    low, high = ax.get_ylim()
    axis_points = ax.get_position().height * fig_height * 72  # fig_height in inches
    per_point = (high - low) / axis_points  # y units per typographic point
    tall = (font.get_size_in_points() + 1) * per_point
    for year, marks in grades.items():
        taken: list[tuple[float, float]] = []  # (bottom, top) of this year's labels
        for value, text, colour in sorted(marks, reverse=True):
            offsets = (8, -15, -27, 20) if value < 92 else (-15, -27, 8, 20)
            for offset in offsets:
                bottom = value + offset * per_point
                if not any(bottom < top and other < bottom + tall for other, top in taken):
                    break
            taken.append((bottom, bottom + tall))
            ax.annotate(
                text,
                (year, value),
                textcoords="offset points",
                xytext=(0, offset),
                ha="center",
                color=colour,
                fontproperties=font,
                bbox={"boxstyle": "round,pad=0.12", "fc": "white", "ec": "none", "alpha": 0.85},
            )


def _threshold(ax: object, value: Fraction, label: str, font: FontProperties) -> None:
    y = float(value * 100)
    ax.axhline(y, color="#8c1d17", lw=0.9, ls=":")  # type: ignore[attr-defined]
    ax.annotate(  # type: ignore[attr-defined]
        label,
        (1.0, y),
        xycoords=("axes fraction", "data"),
        xytext=(-2, 3),
        textcoords="offset points",
        ha="right",
        color="#8c1d17",
        fontproperties=font,
    )


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
