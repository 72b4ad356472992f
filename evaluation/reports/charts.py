"""图表: the tally's charts as PNG (matplotlib ``Figure`` + Agg canvas, never pyplot).

Charts are drawn for officials who print them: white background, large type, the CJK font
from ``evaluation.fonts`` (never boxes), every bar labelled with its exact percentage (2
decimals), and the same rules as every other output — weighted figures say so, strata below
the minimum group size are drawn only pooled into 其他类别 (its members named under the
chart), and a round below its minimum turnout is marked 无效 on every chart.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from evaluation.ballot_forms import SHORT_FORM_NAMES, BallotForm
from evaluation.fonts import matplotlib_font_family
from evaluation.tally.core import POOL_NAME, SubjectResult, TallyResult, percent

GREEN, BLUE, AMBER, RED, GREY = "#2e7d32", "#4f8fcf", "#e0a526", "#c62828", "#9aa3ad"
INK = "#1f2328"
DPI = 150


def grade_colours(form: BallotForm) -> list[str]:
    """One colour per grade: best green, other satisfied blue, worst red, the rest amber."""
    colours = []
    for index, grade in enumerate(form.grades):
        if index == 0:
            colours.append(GREEN)
        elif index == len(form.grades) - 1:
            colours.append(RED)
        else:
            colours.append(BLUE if grade.satisfied else AMBER)
    return colours


@contextmanager
def _cjk() -> Iterator[None]:
    """Draw inside this context: the CJK font, and an ASCII minus the font certainly has."""
    with matplotlib.rc_context(
        {
            "font.family": [matplotlib_font_family()],
            "axes.unicode_minus": False,
            "font.size": 10,
            "axes.titlesize": 12,
            "axes.edgecolor": "#8a939e",
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    ):
        yield


def _png(fig: Figure, seal: str | None = None) -> bytes:
    if seal:
        fig.text(
            0.995,
            0.004,
            f"封存码 {seal[:16]}…",
            ha="right",
            va="bottom",
            fontsize=6.5,
            color="#8a939e",
        )
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()


def _new(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    return fig


def _title(result: TallyResult, text: str) -> str:
    notes = []
    if result.weighted:
        notes.append("加权")
    if not result.valid:
        notes.append("无效：参测率低于最低要求")
    return text + (f"（{'；'.join(notes)}）" if notes else "")


def _f(value: Fraction | None) -> float:
    return float(value) if value is not None else 0.0


def short_form_name(form: BallotForm) -> str:
    """A short name of a form for chart labels."""
    return SHORT_FORM_NAMES.get(form.id) or _short(form.title, 8)


def _short(text: str, limit: int = 14) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def grade_distribution_png(result: TallyResult, *, seal: str | None = None) -> bytes:
    """Share of each grade for every subject, one panel per form (100 % stacked bars)."""
    with _cjk():
        groups: dict[str, list[SubjectResult]] = {}
        for s in result.subjects:
            groups.setdefault(s.form.id, []).append(s)
        rows = sum(len(g) for g in groups.values())
        fig = _new(9, 1.2 + 0.55 * rows + 0.9 * len(groups))
        heights = [len(g) + 1.2 for g in groups.values()] or [1]
        axes = fig.subplots(max(len(groups), 1), 1, squeeze=False, height_ratios=heights)[:, 0]
        fig.suptitle(_title(result, "各测评对象等次分布（占有效票）"), fontsize=13)
        for ax, members in zip(axes, groups.values(), strict=False):
            form = members[0].form
            colours = grade_colours(form)
            names = [_short(s.name) for s in members]
            y = list(range(len(members)))[::-1]
            left = [0.0] * len(members)
            for grade, colour in zip(form.grades, colours, strict=True):
                widths = [
                    _f(s.figures.shares[grade.key]) * 100 if s.figures.shares else 0.0
                    for s in members
                ]
                ax.barh(y, widths, left=left, color=colour, height=0.6, label=grade.label)
                for yi, x0, w in zip(y, left, widths, strict=True):
                    if w >= 7:
                        ax.text(
                            x0 + w / 2,
                            yi,
                            f"{w:.1f}%",
                            ha="center",
                            va="center",
                            color="white",
                            fontsize=8.5,
                        )
                left = [a + b for a, b in zip(left, widths, strict=True)]
            for yi, s in zip(y, members, strict=True):
                note = f"{s.figures.valid} 票 · {s.grade_label}" if s.grade_label else "无有效票"
                ax.text(101.5, yi, note, va="center", fontsize=9, color=INK)
            ax.set_yticks(y, names)
            ax.set_xlim(0, 100)
            ax.set_xticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"])
            ax.set_title(short_form_name(form), fontsize=10.5, loc="left", color="#444c56")
            ax.legend(
                ncol=len(form.grades),
                loc="lower right",
                bbox_to_anchor=(1.0, 1.0),
                frameon=False,
                fontsize=8.5,
                borderaxespad=0.2,
                handlelength=1.2,
            )
        fig.subplots_adjust(
            left=0.2,
            right=0.8,
            top=1 - 0.9 / fig.get_figheight(),
            bottom=0.45 / fig.get_figheight(),
            hspace=0.9,
        )
        return _png(fig, seal)


def satisfaction_ranking_png(result: TallyResult, *, seal: str | None = None) -> bytes:
    """满意率 of every subject, highest first, with its rank within its form."""
    with _cjk():
        ranked = sorted(
            result.subjects,
            key=lambda s: (s.figures.satisfaction_rate is None, -_f(s.figures.satisfaction_rate)),
        )
        fig = _new(9, 1.3 + 0.45 * max(len(ranked), 1))
        ax = fig.add_subplot(1, 1, 1)
        y = list(range(len(ranked)))[::-1]
        values = [_f(s.figures.satisfaction_rate) * 100 for s in ranked]
        colours = [
            GREY
            if s.figures.satisfaction_rate is None
            else (GREEN if s.figures.satisfaction_rate >= Fraction(2, 3) else AMBER)
            for s in ranked
        ]
        ax.barh(y, values, color=colours, height=0.6)
        for yi, s, v in zip(y, ranked, values, strict=True):
            text = (
                f"{percent(s.figures.satisfaction_rate)}  第{s.rank}名（共{s.ranked_in_form}）"
                if s.rank is not None
                else "无有效票"
            )
            ax.text(v + 1, yi, text, va="center", fontsize=9)
        ax.axvline(200 / 3, color=RED, lw=1, ls="--", label="满意率 2/3")
        ax.legend(loc="lower right", frameon=False, fontsize=8.5)
        ax.set_yticks(y, [f"{_short(s.name)}（{short_form_name(s.form)}）" for s in ranked])
        ax.set_xlim(0, 125)
        ax.set_xticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"])
        ax.set_title(_title(result, "满意率排名（排名在同一测评表内）"), fontsize=13)
        fig.subplots_adjust(
            left=0.28,
            right=0.97,
            top=1 - 0.7 / fig.get_figheight(),
            bottom=0.45 / fig.get_figheight(),
        )
        return _png(fig, seal)


def turnout_png(result: TallyResult, *, seal: str | None = None) -> bytes:
    """Codes issued and used per stratum, with the minimum turnout."""
    with _cjk():
        strata = list(result.turnout)
        fig = _new(9, 1.5 + 0.55 * max(len(strata), 1))
        ax = fig.add_subplot(1, 1, 1)
        y = list(range(len(strata)))[::-1]
        ax.barh(y, [100.0 if t.issued else 0.0 for t in strata], color="#e6e9ee", height=0.6)
        rates = [_f(t.rate) * 100 for t in strata]
        ax.barh(y, rates, color=BLUE, height=0.6)
        for yi, t in zip(y, strata, strict=True):
            ax.text(101.5, yi, f"{t.used}/{t.issued}  {percent(t.rate)}", va="center", fontsize=9)
        minimum = _f(result.min_turnout) * 100
        ax.axvline(
            minimum, color=RED, lw=1, ls="--", label=f"最低参测率 {percent(result.min_turnout)}"
        )
        ax.legend(loc="lower left", bbox_to_anchor=(1.0, -0.02), frameon=False, fontsize=8.5)
        ax.set_yticks(y, [_short(t.name) for t in strata])
        ax.set_xlim(0, 100)
        ax.set_xticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"])
        overall = f"总参测率 {percent(result.turnout_rate)}（{result.used}/{result.issued}）"
        status = "有效" if result.valid else "无效"
        ax.set_title(f"各类别参测情况 · {overall} · {status}", fontsize=12)
        fig.subplots_adjust(
            left=0.18,
            right=0.8,
            top=1 - 0.75 / fig.get_figheight(),
            bottom=0.45 / fig.get_figheight(),
        )
        return _png(fig, seal)


def strata_bars(subject: SubjectResult) -> list[tuple[str, float, str]]:
    """The subject's per-stratum bars: (label, 满意率 in %, text beside the bar).

    The pool is drawn as one bar, "其他类别"; ``pool_caption`` names its members. Cells of
    results sealed before pooling that were suppressed are drawn empty and marked "—".
    """
    bars = []
    for c in subject.strata:
        label = POOL_NAME if c.pooled else _short(c.name, 8)
        if c.figures is None:
            bars.append((label, 0.0, "—"))
        elif c.figures.valid:
            rate = c.figures.satisfaction_rate
            bars.append((label, _f(rate) * 100, f"{percent(rate)}（{c.figures.valid} 票）"))
        else:
            bars.append((label, 0.0, "无有效票"))
    return bars


def pool_caption(result: TallyResult, subject: SubjectResult) -> str | None:
    """The line under a subject's chart naming the pooled strata (None without a pool)."""
    pool = subject.pool
    if pool is None:
        return None
    return (
        f"{POOL_NAME}：{'、'.join(pool.members)}（各类别选票少于 {result.min_group_size} 张者"
        f"与票数次少的类别合并，共 {pool.ballots} 张）"
    )


def subject_png(result: TallyResult, subject: SubjectResult, *, seal: str | None = None) -> bytes:
    """One subject: votes per grade, and 满意率 per stratum (small strata pooled, named)."""
    with _cjk():
        form = subject.form
        fig = _new(9, 3.6 + 0.2 * max(len(subject.strata) - 3, 0))
        left, right = fig.subplots(1, 2, width_ratios=[1, 1.2])
        labels = [g.label for g in form.grades] + (["弃权"] if form.abstain else [])
        counts = [subject.figures.counts[g.key] for g in form.grades]
        if form.abstain:
            counts.append(subject.figures.abstentions)
        colours = grade_colours(form) + ([GREY] if form.abstain else [])
        bars = left.bar(range(len(labels)), counts, color=colours, width=0.65)
        for bar, n in zip(bars, counts, strict=True):
            left.text(
                bar.get_x() + bar.get_width() / 2,
                bar.get_height(),
                str(n),
                ha="center",
                va="bottom",
                fontsize=9,
            )
        left.set_xticks(range(len(labels)), labels)
        left.set_ylim(0, max(counts + [1]) * 1.18)
        left.set_title("各等次票数", fontsize=11)
        strata = strata_bars(subject)
        y = list(range(len(strata)))[::-1]
        right.barh(y, [v for _, v, _ in strata], color=BLUE, height=0.55)
        for yi, (_, v, text) in zip(y, strata, strict=True):
            right.text(v + 1.5, yi, text, va="center", fontsize=8.5)
        right.set_yticks(y, [label for label, _, _ in strata])
        right.set_xlim(0, 150)
        right.set_xticks([0, 50, 100], ["0%", "50%", "100%"])
        right.set_title("各类别满意率（类别内实际比例）", fontsize=11)
        grade = subject.grade_label or "无"
        raw = (
            f"（未加权 {percent(subject.raw_figures.satisfaction_rate)}）"
            if result.weighted
            else ""
        )
        fig.suptitle(
            _title(
                result,
                f"{subject.name} · 满意率 {percent(subject.figures.satisfaction_rate)}{raw}"
                f" · 等次 {grade}",
            ),
            fontsize=12,
        )
        caption = pool_caption(result, subject)
        bottom = 0.12
        if caption is not None:
            fig.text(0.5, 0.03, caption, ha="center", va="bottom", fontsize=8, color=INK)
            bottom = 0.2
        fig.subplots_adjust(left=0.07, right=0.97, wspace=0.35, top=0.82, bottom=bottom)
        return _png(fig, seal)


def item_profile_png(
    result: TallyResult, subject: SubjectResult, *, seal: str | None = None
) -> bytes | None:
    """满意率 per item for forms graded item by item (None when the form has no item grades)."""
    if not subject.items:
        return None
    with _cjk():
        items = list(subject.items)
        fig = _new(9, 1.4 + 0.5 * len(items))
        ax = fig.add_subplot(1, 1, 1)
        y = list(range(len(items)))[::-1]
        values = [_f(i.figures.satisfaction_rate) * 100 for i in items]
        ax.barh(y, values, color=BLUE, height=0.6)
        for yi, item, v in zip(y, items, values, strict=True):
            ax.text(v + 1, yi, percent(item.figures.satisfaction_rate), va="center", fontsize=9)
        ax.set_yticks(y, [f"{i.code}. {_short(i.text, 16)}" for i in items])
        ax.set_xlim(0, 115)
        ax.set_xticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"])
        ax.set_title(_title(result, f"{subject.name} · 分项满意率"), fontsize=12)
        fig.subplots_adjust(
            left=0.33,
            right=0.97,
            top=1 - 0.7 / fig.get_figheight(),
            bottom=0.45 / fig.get_figheight(),
        )
        return _png(fig, seal)


ROUND_CHARTS = {
    "grades": ("等次分布", grade_distribution_png),
    "satisfaction": ("满意率排名", satisfaction_ranking_png),
    "turnout": ("参测情况", turnout_png),
}


def round_chart(result: TallyResult, name: str, *, seal: str | None = None) -> bytes:
    """One of the round's charts by name (KeyError for an unknown name)."""
    return ROUND_CHARTS[name][1](result, seal=seal)


def safe_filename(name: str) -> str:
    """A file-name-safe version of a subject's name."""
    return "".join("_" if c in '/\\:*?"<>|\0' or ord(c) < 32 else c for c in name).strip() or "_"
