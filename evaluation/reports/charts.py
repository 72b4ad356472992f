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
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Literal

from evaluation.ballot_forms import SHORT_FORM_NAMES, BallotForm
from evaluation.fonts import matplotlib_font_family
from evaluation.tally.core import POOL_NAME, SubjectResult, TallyResult, percent

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# matplotlib is imported where a chart is drawn, not with this module: a process that draws
# none (a CLI export, a worker serving votes) starts without it.

GREEN, BLUE, AMBER, RED, GREY = "#2e7d32", "#4f8fcf", "#e0a526", "#c62828", "#9aa3ad"
INK = "#1f2328"
DPI = 150

# Grade colours for paper: ordered in luminance (best light → worst dark), each at least 60
# levels (ITU-R BT.601, 0–255) from the next, so they stay apart when printed in greyscale;
# grades that are not 满意 also carry hatching, and every bar is labelled directly.
BEST = "#e0f5d9"  # light green, Y ≈ 236
SATISFIED = "#82b6e2"  # blue, Y ≈ 172
UNSATISFIED = "#9a5b13"  # brown-amber, Y ≈ 102
WORST = "#5c0a0a"  # dark red, Y ≈ 35
ABSTAIN = "#ffffff"  # white, dotted
MIN_LUMINANCE_GAP = 60
_EXTRA_HATCHES = ("\\\\", "--", "++", "oo")


@dataclass(frozen=True)
class GradeStyle:
    """How one grade is drawn: its fill colour and hatching ("" for none)."""

    label: str
    colour: str
    hatch: str = ""

    @property
    def ink(self) -> str:
        """Colour of text and hatching on this fill: white on dark fills, ink on light."""
        return "white" if luminance(self.colour) < 128 else INK


ABSTAIN_STYLE = GradeStyle("弃权", ABSTAIN, "..")
NO_VOTES_STYLE = GradeStyle("无有效票", "#eef0f3", "..")


def luminance(colour: str) -> float:
    """Grey level of a colour as printed in black and white (ITU-R BT.601, 0–255)."""
    from matplotlib.colors import to_rgb

    r, g, b = (round(c * 255) for c in to_rgb(colour))
    return 0.299 * r + 0.587 * g + 0.114 * b


def grade_styles(form: BallotForm) -> list[GradeStyle]:
    """One style per grade, best first: best light green, the (first) other 满意 grade blue,
    the (first) other not-满意 grade brown hatched "//", the worst dark red hatched "xx".
    A form with more grades repeats a colour with a distinct hatching, never a bare repeat."""
    styles: list[GradeStyle] = []
    extra = iter(_EXTRA_HATCHES * 4)
    seen_satisfied = seen_unsatisfied = False
    last = len(form.grades) - 1
    for index, grade in enumerate(form.grades):
        if index == 0:
            styles.append(GradeStyle(grade.label, BEST))
        elif index == last:
            styles.append(GradeStyle(grade.label, WORST, "xx"))
        elif grade.satisfied:
            styles.append(GradeStyle(grade.label, SATISFIED, next(extra) if seen_satisfied else ""))
            seen_satisfied = True
        else:
            hatch = next(extra) if seen_unsatisfied else "//"
            styles.append(GradeStyle(grade.label, UNSATISFIED, hatch))
            seen_unsatisfied = True
    return styles


def grade_colours(form: BallotForm) -> list[str]:
    """One fill colour per grade, best first (see ``grade_styles``)."""
    return [s.colour for s in grade_styles(form)]


def _grade_style(subject: SubjectResult) -> GradeStyle:
    if subject.grade is None:
        return NO_VOTES_STYLE
    return grade_styles(subject.form)[subject.form.grade_keys.index(subject.grade)]


def subject_label(subject: SubjectResult) -> str:
    """The subject's name with its form's short name, unless the name already carries it
    ("张三（廉洁自律）" stays as it is, never "张三（廉洁自律）（廉洁自律）")."""
    short = short_form_name(subject.form)
    return subject.name if short in subject.name else f"{subject.name}（{short}）"


def rank_text(subject: SubjectResult) -> str:
    """ "第2名（共5）", or "" where the form ranks nobody (one subject) or the subject has no
    valid votes: "第1名（共1）" is never printed."""
    if subject.rank is None or subject.ranked_in_form <= 1:
        return ""
    return f"第{subject.rank}名（共{subject.ranked_in_form}）"


@contextmanager
def _cjk() -> Iterator[None]:
    """Draw inside this context: the CJK font, and an ASCII minus the font certainly has."""
    import matplotlib

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
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()


def _new(width: float, height: float, layout: Literal["constrained"] | None = None) -> Figure:
    """A white figure of ``width`` × ``height`` inches with its canvas (``layout``: Figure's)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, facecolor="white", layout=layout)
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


def _bar_style(style: GradeStyle) -> dict[str, object]:
    """Keyword arguments drawing a bar in a grade's style (thin ink edge, hatching in the
    colour readable on the fill)."""
    return {
        "color": style.colour,
        "hatch": style.hatch or None,
        "edgecolor": INK,
        "linewidth": 0.6,
        "hatchcolor": style.ink,
    }


def _grade_distribution_figure(result: TallyResult) -> Figure:
    groups = _by_form(result)
    rows = sum(len(g) for g in groups)
    fig = _new(9, 1.2 + 0.55 * rows + 0.9 * len(groups))
    heights = [len(g) + 1.2 for g in groups] or [1]
    axes = fig.subplots(max(len(groups), 1), 1, squeeze=False, height_ratios=heights)[:, 0]
    fig.suptitle(_title(result, "各测评对象等次分布（占有效票）"), fontsize=13)
    for ax, members in zip(axes, groups, strict=False):
        form = members[0].form
        styles = grade_styles(form)
        names = [_short(s.name) for s in members]
        y = list(range(len(members)))[::-1]
        left = [0.0] * len(members)
        for grade, style in zip(form.grades, styles, strict=True):
            widths = [
                _f(s.figures.shares[grade.key]) * 100 if s.figures.shares else 0.0 for s in members
            ]
            ax.barh(y, widths, left=left, height=0.6, label=grade.label, **_bar_style(style))
            for yi, x0, w in zip(y, left, widths, strict=True):
                if w >= 7:
                    ax.text(
                        x0 + w / 2,
                        yi,
                        f"{w:.1f}%",
                        ha="center",
                        va="center",
                        color=style.ink,
                        fontsize=8.5,
                        bbox={"boxstyle": "round,pad=0.1", "fc": style.colour, "ec": "none"},
                    )
            left = [a + b for a, b in zip(left, widths, strict=True)]
        for yi, s in zip(y, members, strict=True):
            note = f"{s.figures.valid} 票 · {s.grade_label}" if s.grade_label else "无有效票"
            ax.text(101.5, yi, note, va="center", fontsize=9, color=INK)
        ax.set_yticks(y, names)
        ax.set_xlim(0, 100)
        ax.set_xticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"])
        ax.set_title(short_form_name(form), fontsize=10.5, loc="left", color="#444c56")
        ax.set_gid(form.id)
        ax.legend(
            ncol=len(form.grades),
            loc="lower right",
            bbox_to_anchor=(1.0, 1.0),
            frameon=False,
            fontsize=8.5,
            borderaxespad=0.2,
            handlelength=1.6,
            handleheight=1.1,
        )
    fig.subplots_adjust(
        left=0.2,
        right=0.8,
        top=1 - 0.9 / fig.get_figheight(),
        bottom=0.45 / fig.get_figheight(),
        hspace=0.9,
    )
    return fig


def grade_distribution_png(result: TallyResult, *, seal: str | None = None) -> bytes:
    """Share of each grade for every subject, one panel per form (100 % stacked bars)."""
    with _cjk():
        return _png(_grade_distribution_figure(result), seal)


def _by_form(result: TallyResult) -> list[list[SubjectResult]]:
    """The subjects grouped by form, forms in the order they first appear."""
    groups: dict[str, list[SubjectResult]] = {}
    for s in result.subjects:
        groups.setdefault(s.form.id, []).append(s)
    return list(groups.values())


@dataclass(frozen=True)
class Threshold:
    """A threshold line a form's grading rule uses: "基本称职线 2/3" at 2/3."""

    value: Fraction
    label: str


@dataclass(frozen=True)
class Measure:
    """A share a form's ranking panel shows: 满意率 always, and every other share the form's
    rules test (e.g. 不称职票占比 ≥ 1/3, 优秀率 ≥ 1/2), with the thresholds the rules use."""

    key: str
    label: str
    share_of: tuple[str, ...]
    thresholds: tuple[Threshold, ...]

    def value(self, subject: SubjectResult) -> Fraction | None:
        """The subject's (weighted, where the round is) share, None without valid votes."""
        f = subject.figures
        if self.key == SATISFACTION:
            return f.satisfaction_rate
        if f.shares is None:
            return None
        return sum((f.shares[k] for k in self.share_of), Fraction(0))


SATISFACTION = "satisfaction"


def threshold_text(value: Fraction) -> str:
    """2/3 → "2/3"; 9/10 → "90%" (a threshold as the rule set states it)."""
    percent_value = value * 100
    if percent_value.denominator == 1:
        return f"{percent_value.numerator}%"
    return f"{value.numerator}/{value.denominator}"


def _share_label(form: BallotForm, keys: tuple[str, ...]) -> str:
    if keys == (form.grades[0].key,) and form.grades[0].label == "优秀":
        return "优秀率"
    return "+".join(form.label(k) for k in keys) + "票占比"


def form_measures(form: BallotForm) -> list[Measure]:
    """The shares a form's ranking panel shows, with the threshold lines its rules use.

    Lines come only from the form's own rules (the round's rule set, copied into its form
    snapshot): under 本系统默认规则 正职/成员 get "基本称职线 2/3" on 满意率 and "不称职线 1/3"
    on 不称职票占比, while 班子 and 廉洁自律 get no 满意率 line at all.
    """
    satisfied = tuple(g.key for g in form.grades if g.satisfied)
    groups: dict[tuple[str, ...], list[Threshold]] = {satisfied: []}
    for rule in form.rules:
        if rule.unconditional:
            continue
        value = rule.at_least if rule.at_least is not None else rule.below
        assert value is not None
        key = satisfied if set(rule.share_of) == set(satisfied) else tuple(rule.share_of)
        line = Threshold(value, f"{form.label(rule.grade)}线 {threshold_text(value)}")
        groups.setdefault(key, []).append(line)
    label = "满意率"
    if len(satisfied) == 1:  # 廉洁自律: 满意率 is the 好 share, and its rules say so
        label = f"满意率（{form.label(satisfied[0])}票占比）"
    measures = [Measure(SATISFACTION, label, satisfied, tuple(groups.pop(satisfied)))]
    for keys, lines in groups.items():
        measures.append(Measure("+".join(keys), _share_label(form, keys), keys, tuple(lines)))
    return measures


_LINE_STYLES = ("--", ":", "-.")


def _rank_order(members: list[SubjectResult]) -> list[SubjectResult]:
    order = {id(s): i for i, s in enumerate(members)}
    return sorted(members, key=lambda s: (s.rank is None, s.rank or 0, order[id(s)]))


def _ranking_figure(result: TallyResult) -> Figure:
    """One row of panels per form, never mixed: 满意率 and each share the form's rules test,
    subjects in rank order, each bar in the colour (and hatching) of the subject's grade, with
    a line at every threshold those rules use and none where they use none."""
    plans = [
        (members[0].form, _rank_order(members), form_measures(members[0].form))
        for members in _by_form(result)
    ]
    columns = max((len(m) for _, _, m in plans), default=1)
    rows = max(len(plans), 1)
    heights = [len(members) + 2.2 for _, members, _ in plans] or [1]
    fig = _new(2.6 + 2.9 * columns, 1.0 + sum(0.48 * h for h in heights), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False, height_ratios=heights)
    weighted = "加权" if result.weighted else ""
    fig.suptitle(
        _title(result, "满意率排名与等次线（按测评表分开，排名在同一测评表内）"), fontsize=13
    )
    for row, (form, members, measures) in enumerate(plans):
        y = list(range(len(members)))[::-1]
        for col in range(columns):
            ax = axes[row][col]
            if col >= len(measures):
                ax.remove()
                continue
            measure = measures[col]
            ax.set_gid(f"{form.id}:{measure.key}")
            for yi, s in zip(y, members, strict=True):
                value = measure.value(s)
                ax.barh(yi, _f(value) * 100, height=0.6, **_bar_style(_grade_style(s)))
                ax.text(
                    _f(value) * 100 + 1.5,
                    yi,
                    percent(value) if value is not None else "无有效票",
                    va="center",
                    fontsize=8.5,
                    color=INK,
                )
            for i, line in enumerate(measure.thresholds):
                ax.axvline(
                    float(line.value * 100),
                    color=INK,
                    lw=1.1,
                    ls=_LINE_STYLES[i % len(_LINE_STYLES)],
                    label=line.label,
                    gid="threshold",
                )
            if measure.thresholds:
                ax.legend(
                    loc="upper center",
                    bbox_to_anchor=(0.5, -0.14 - 0.5 / max(len(members) + 2.2, 1)),
                    ncol=min(len(measure.thresholds), 2),
                    frameon=False,
                    fontsize=7.5,
                    handlelength=2.2,
                )
            if col == 0:
                ax.set_yticks(y, [_rank_label(s) for s in members], fontsize=8.5)
            else:
                ax.set_yticks(y, [""] * len(members))
            ax.set_ylim(-0.7, len(members) - 0.3)
            ax.set_xlim(0, 128)
            ax.set_xticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"], fontsize=8)
            ax.set_title(
                f"{short_form_name(form)} · {weighted}{measure.label}",
                fontsize=10,
                loc="left",
                color="#444c56",
            )
    return fig


def _rank_label(subject: SubjectResult) -> str:
    """Tick label: the name, then the grade and (where the form ranks) the rank."""
    parts = [subject.grade_label or "无有效票"]
    rank = rank_text(subject)
    if rank:
        parts.append(rank)
    return f"{_short(subject.name)}\n{' · '.join(parts)}"


def satisfaction_ranking_png(result: TallyResult, *, seal: str | None = None) -> bytes:
    """满意率 (and the shares the rules test) per form, subjects in rank order, with the
    threshold lines of the round's rule set (see ``_ranking_figure``)."""
    with _cjk():
        return _png(_ranking_figure(result), seal)


def _turnout_figure(result: TallyResult) -> Figure:
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
    ax.axvline(minimum, color=INK, lw=1, ls="--", label=f"最低参测率 {percent(result.min_turnout)}")
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
    return fig


def turnout_png(result: TallyResult, *, seal: str | None = None) -> bytes:
    """Codes issued and used per stratum, with the minimum turnout."""
    with _cjk():
        return _png(_turnout_figure(result), seal)


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


def subject_rates_text(result: TallyResult, subject: SubjectResult) -> str:
    """优秀率 and 满意率 — the figures that decide the grade — as the subject's chart states
    them: "加权优秀率 35.95%（未加权 51.79%） · 加权满意率 …" in a weighted round."""
    f, raw = subject.figures, subject.raw_figures
    if result.weighted:
        return (
            f"加权优秀率 {percent(f.excellent_rate)}（未加权 {percent(raw.excellent_rate)}）"
            f" · 加权满意率 {percent(f.satisfaction_rate)}"
            f"（未加权 {percent(raw.satisfaction_rate)}）"
        )
    return f"优秀率 {percent(f.excellent_rate)} · 满意率 {percent(f.satisfaction_rate)}"


def _subject_figure(result: TallyResult, subject: SubjectResult) -> Figure:
    form = subject.form
    fig = _new(9, 3.9 + 0.2 * max(len(subject.strata) - 3, 0))
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.2])
    labels = [g.label for g in form.grades] + (["弃权"] if form.abstain else [])
    counts = [subject.figures.counts[g.key] for g in form.grades]
    raw = subject.raw_figures
    shares = [raw.shares[g.key] if raw.shares else None for g in form.grades]
    styles = grade_styles(form)
    if form.abstain:
        counts.append(subject.figures.abstentions)
        shares.append(None)
        styles.append(ABSTAIN_STYLE)
    for x, (n, style) in enumerate(zip(counts, styles, strict=True)):
        left.bar(x, n, width=0.65, **_bar_style(style))
    for x, (n, share) in enumerate(zip(counts, shares, strict=True)):
        text = f"{n}（{percent(share)}）" if share is not None else str(n)
        left.text(x, n, text, ha="center", va="bottom", fontsize=8)
    left.set_xticks(range(len(labels)), labels)
    left.set_ylim(0, max(counts + [1]) * 1.2)
    left.set_title("各等次票数（占有效票，未加权）", fontsize=10)
    strata = strata_bars(subject)
    y = list(range(len(strata)))[::-1]
    right.barh(y, [v for _, v, _ in strata], color=BLUE, height=0.55)
    for yi, (_, v, text) in zip(y, strata, strict=True):
        right.text(v + 1.5, yi, text, va="center", fontsize=8.5)
    right.set_yticks(y, [label for label, _, _ in strata])
    right.set_xlim(0, 150)
    right.set_xticks([0, 50, 100], ["0%", "50%", "100%"])
    right.set_title("各类别满意率（类别内实际比例）", fontsize=10)
    grade = subject.grade_label or "无"
    rank = rank_text(subject)
    heading = f"{subject.name} · 测评等次 {grade}" + (f" · {rank}" if rank else "")
    fig.suptitle(
        _title(result, heading) + "\n" + subject_rates_text(result, subject),
        fontsize=11.5,
    )
    caption = pool_caption(result, subject)
    bottom = 0.12
    if caption is not None:
        fig.text(0.5, 0.03, caption, ha="center", va="bottom", fontsize=8, color=INK)
        bottom = 0.2
    fig.subplots_adjust(left=0.07, right=0.97, wspace=0.35, top=0.76, bottom=bottom)
    return fig


def subject_png(result: TallyResult, subject: SubjectResult, *, seal: str | None = None) -> bytes:
    """One subject: votes per grade, and 满意率 per stratum (small strata pooled, named);
    the title gives the grade, 优秀率 and 满意率 (labelled 加权 where weighted)."""
    with _cjk():
        return _png(_subject_figure(result, subject), seal)


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
