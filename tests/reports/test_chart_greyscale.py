"""Charts for paper printed in black and white (issue 15): every pair of grade colours in a
chart differs by at least 60 grey levels (ITU-R BT.601) or carries hatching, checked on the
palette AND on the bars matplotlib actually draws, for every chart function."""

from __future__ import annotations

import itertools
from fractions import Fraction as F
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from evaluation.archive import charts as archive_charts
from evaluation.archive.queries import Timeline
from evaluation.archive.rules import RuleConfig
from evaluation.reports import charts
from evaluation.reports.charts import MIN_LUMINANCE_GAP, grade_styles, luminance
from evaluation.rule_sets import load_graded_forms
from tests.helpers.charts import chart_result

FORMS = load_graded_forms(Path(__file__).resolve().parents[2] / "ballots")


def _drawn(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """Record every Figure the report charts turn into PNG."""
    drawn: list[Figure] = []
    original = charts._png

    def keep(fig: Figure, seal: str | None = None) -> bytes:
        drawn.append(fig)
        png = original(fig, seal)
        assert png.startswith(b"\x89PNG")
        return png

    monkeypatch.setattr(charts, "_png", keep)
    return drawn


def _bar_styles(ax: Axes) -> set[tuple[str, str]]:
    """(fill colour, hatch) of every bar drawn in the axes."""
    return {
        (to_hex(p.get_facecolor()), p.get_hatch() or "")
        for p in ax.patches
        if isinstance(p, Rectangle)
    }


def _assert_distinguishable(styles: set[tuple[str, str]], where: str) -> None:
    for (c1, h1), (c2, h2) in itertools.combinations(sorted(styles), 2):
        if h1 != h2 and (h1 or h2):
            continue  # told apart by hatching
        gap = abs(luminance(c1) - luminance(c2))
        assert gap >= MIN_LUMINANCE_GAP, f"{where}: {c1}{h1!r} / {c2}{h2!r} differ by {gap:.0f}"


@pytest.mark.parametrize("form_id", sorted(FORMS))
def test_grade_palette_reads_in_greyscale(form_id: str) -> None:
    form = FORMS[form_id]
    styles = grade_styles(form)
    assert [s.label for s in styles] == [g.label for g in form.grades]
    with_abstain = [*styles, charts.ABSTAIN_STYLE]
    _assert_distinguishable({(s.colour, s.hatch) for s in with_abstain}, form_id)
    # ordered in luminance, best light → worst dark, each 60 levels from the next
    levels = [luminance(s.colour) for s in styles]
    assert all(a - b >= MIN_LUMINANCE_GAP for a, b in itertools.pairwise(levels)), levels
    # the worst grade is hatched, and the best and worst are far apart (优秀 green / 差 red
    # used to print as the same grey)
    assert styles[-1].hatch
    assert levels[0] - levels[-1] >= 3 * MIN_LUMINANCE_GAP
    assert charts.grade_colours(form) == [s.colour for s in styles]


def test_luminance_is_bt601() -> None:
    assert luminance("#ffffff") == pytest.approx(255)
    assert luminance("#000000") == 0
    assert luminance("#ff0000") == pytest.approx(0.299 * 255)
    # the old 优秀 green and 差 red: 5 levels apart, the bug this guards against
    assert abs(luminance("#2e7d32") - luminance("#c62828")) < 10


@pytest.mark.parametrize("weighted", [False, True])
def test_every_report_chart_reads_in_greyscale(
    monkeypatch: pytest.MonkeyPatch, weighted: bool
) -> None:
    drawn = _drawn(monkeypatch)
    result = chart_result(weighted=weighted, used=10 if weighted else 30)
    names = []
    for name in charts.ROUND_CHARTS:
        charts.round_chart(result, name)
        names.append(name)
    for s in result.subjects:
        charts.subject_png(result, s)
        names.append(f"subject {s.name}")
        if charts.item_profile_png(result, s) is not None:
            names.append(f"items {s.name}")
    assert len(drawn) == len(names) == 3 + 4 + 1
    graded = 0
    for fig, name in zip(drawn, names, strict=True):
        for ax in fig.axes:
            styles = _bar_styles(ax)
            _assert_distinguishable(styles, f"{name} / {ax.get_title()}")
            grade_fills = {c for c, _ in styles} & {charts.BEST, charts.WORST}
            graded += bool(grade_fills)
    assert graded >= 5  # the grade charts really used the grade palette


def test_grade_distribution_hatches_the_worst_grade(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = _drawn(monkeypatch)
    result = chart_result()
    charts.grade_distribution_png(result)
    charts.subject_png(result, result.subjects[0])
    grades, subject = drawn
    integrity = next(ax for ax in grades.axes if ax.get_gid() == "gansu-integrity")
    # 张三（廉洁自律） has only 差: its bar is dark red and cross-hatched
    assert (charts.WORST, "xx") in _bar_styles(integrity)
    # the legend shows the same hatching, so the key reads on paper too
    legend = integrity.get_legend()
    assert legend is not None
    assert [h.get_hatch() for h in legend.legend_handles][-1] == "xx"
    bars = _bar_styles(subject.axes[0])
    assert (charts.WORST, "xx") in bars and (charts.ABSTAIN, "..") in bars


def _entry(form_id: str, year: int, satisfaction: str, trust: str) -> Any:
    return SimpleNamespace(
        form_id=form_id,
        year=year,
        valid_round=True,
        grade="合格",
        figures={"satisfaction_rate": satisfaction, "trust_rate": trust},
        unit=SimpleNamespace(name="兰州市局"),
    )


def test_archive_trend_chart_reads_in_greyscale() -> None:
    forms = ["gansu-team", "gansu-principal", "gansu-member", "gansu-discipline", "gansu-integrity"]
    entries = [
        _entry(form_id, year, str(F(60 + 5 * i, 100)), str(F(80 + 3 * i, 100)))
        for i, form_id in enumerate(forms)
        for year in (2025, 2026)
    ]
    timeline = Timeline(entries=entries, flags=[], current=[], counted=set())
    fig = archive_charts.trend_chart_figure(timeline, title="趋势", config=RuleConfig())
    ax = fig.axes[0]
    series = [line for line in ax.get_lines() if not str(line.get_label()).startswith("_")]
    series = [
        line
        for line in series
        if "率" in str(line.get_label()) and "线" not in str(line.get_label())
    ]
    assert len(series) == 2 * len(forms)
    by_form: dict[str, list[Any]] = {}
    for line in series:
        by_form.setdefault(str(line.get_label()).split(" ")[0], []).append(line)
    assert len(by_form) == len(forms)
    # forms: each pair differs in marker shape or by 60 grey levels
    firsts = [lines[0] for lines in by_form.values()]
    for a, b in itertools.combinations(firsts, 2):
        gap = abs(luminance(to_hex(a.get_color())) - luminance(to_hex(b.get_color())))
        assert a.get_marker() != b.get_marker() or gap >= MIN_LUMINANCE_GAP
    # the first three forms also differ in grey
    for a, b in itertools.combinations(firsts[:3], 2):
        gap = abs(luminance(to_hex(a.get_color())) - luminance(to_hex(b.get_color())))
        assert gap >= MIN_LUMINANCE_GAP
    # 满意率 and 信任率 of one form: solid vs dashed, filled vs hollow marker
    for satisfaction, trust in by_form.values():
        assert satisfaction.get_linestyle() != trust.get_linestyle()
        assert to_hex(trust.get_markerfacecolor()) == "#ffffff"
    assert archive_charts.trend_chart_png(timeline, title="趋势", config=RuleConfig()).startswith(
        b"\x89PNG"
    )
