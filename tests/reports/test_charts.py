"""Charts: real CJK font, no missing glyphs, the pool named and the 无效 mark drawn (SPEC §8)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from matplotlib import font_manager
from matplotlib.figure import Figure

from evaluation.fonts import cjk_font_path, matplotlib_font_family
from evaluation.reports import charts
from evaluation.rule_sets import load_rule_sets
from evaluation.tally.core import (
    CountRow,
    StratumInput,
    SubjectInput,
    TallyInput,
    TallyResult,
    tally,
)
from tests.helpers.charts import FORMS, chart_result


def _all_charts(result: TallyResult) -> list[bytes]:
    out = [draw(result, seal="ab" * 32) for _, draw in charts.ROUND_CHARTS.values()]
    for s in result.subjects:
        out.append(charts.subject_png(result, s, seal="ab" * 32))
        profile = charts.item_profile_png(result, s)
        if profile is not None:
            out.append(profile)
    return out


def test_no_missing_glyph_and_the_cjk_font_is_used() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pngs = _all_charts(chart_result()) + _all_charts(chart_result(weighted=True, used=10))
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "missing" in m.lower() or "glyph" in m.lower()], messages
    assert not messages, messages
    assert len(pngs) == 2 * (3 + 4 + 1)
    assert all(p.startswith(b"\x89PNG\r\n\x1a\n") for p in pngs)
    # the family the charts ask for resolves to the CJK font file, not a fallback
    family = matplotlib_font_family()
    found = font_manager.findfont(
        font_manager.FontProperties(family=family), fallback_to_default=False
    )
    assert Path(found).resolve() == cjk_font_path().resolve()


def test_text_drawn_with_the_cjk_font(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Every text element of a chart is set in the CJK family."""
    drawn: list[Figure] = []
    original = charts._png

    def keep(fig: Figure, seal: str | None = None) -> bytes:
        drawn.append(fig)
        return original(fig, seal)

    monkeypatch.setattr(charts, "_png", keep)
    result = chart_result(weighted=True, used=10)
    charts.turnout_png(result)
    charts.subject_png(result, result.subjects[0])
    family = matplotlib_font_family()
    texts = [t for fig in drawn for t in fig.findobj(lambda o: hasattr(o, "get_fontfamily"))]
    chinese = [t for t in texts if any("\u4e00" <= ch <= "\u9fff" for ch in t.get_text())]
    assert chinese
    assert all(t.get_fontfamily()[0] == family for t in chinese)
    shown = "\n".join(t.get_text() for t in texts)
    assert "无效" in shown and "加权" in shown  # 13/47 < 2/3, weights set
    # 班子成员 cast 3 ballots: pooled (with 一般干部, the only other stratum), named
    assert "其他类别：班子成员、一般干部" in shown and "不显示" not in shown


# --- charts for paper (issue 15) ----------------------------------------------------------------

RULE_SETS = load_rule_sets(Path(__file__).resolve().parents[2] / "ballots")


def _ranked(rule_set: str = "default") -> TallyResult:
    """Two subjects on every form (so ranks exist), graded by the named rule set."""
    rules = RULE_SETS[rule_set]
    forms = {fid: rules.apply(f) for fid, f in FORMS.items()}
    strata = (StratumInput(1, "一般干部", None, issued=40, used=30),)
    subjects = (
        SubjectInput(1, "市局领导班子", forms["gansu-team"]),
        SubjectInput(2, "县局领导班子", forms["gansu-team"]),
        SubjectInput(3, "张三", forms["gansu-principal"], "局长"),
        SubjectInput(4, "王五", forms["gansu-principal"], "局长"),
        SubjectInput(5, "李四", forms["gansu-member"], "副局长"),
        SubjectInput(6, "陈建国", forms["gansu-member"], "副局长"),
        SubjectInput(7, "张三（廉洁自律）", forms["gansu-integrity"]),
        SubjectInput(8, "陈建国（廉洁自律）", forms["gansu-integrity"]),
    )
    rows = [
        CountRow(1, "", 1, "excellent", 20),
        CountRow(1, "", 1, "unqualified", 10),
        CountRow(2, "", 1, "qualified", 30),
        CountRow(3, "", 1, "excellent", 25),
        CountRow(3, "", 1, "incompetent", 5),
        CountRow(4, "", 1, "basic", 15),
        CountRow(4, "", 1, "competent", 15),
        CountRow(5, "", 1, "competent", 30),
        CountRow(6, "", 1, "incompetent", 12),
        CountRow(6, "", 1, "excellent", 18),
        CountRow(7, "", 1, "good", 30),
        CountRow(8, "", 1, "poor", 10),
        CountRow(8, "", 1, "good", 20),
    ]
    return tally(TallyInput(strata, subjects, tuple(rows), ballots=30))


def _panels(fig: Figure) -> dict[str, list[str]]:
    """Ranking panels by gid "form:measure" → the labels of the threshold lines drawn."""
    return {
        str(ax.get_gid()): [
            str(line.get_label()) for line in ax.lines if line.get_gid() == "threshold"
        ]
        for ax in fig.axes
        if ax.get_gid()
    }


def _texts(fig: Figure) -> str:
    return "\n".join(
        t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text")) if t.get_text()
    )


def test_ranking_is_per_form_with_the_lines_the_default_rules_use() -> None:
    result = _ranked()
    with charts._cjk():
        fig = charts._ranking_figure(result)
    panels = _panels(fig)
    # one row per form: every panel holds the subjects of one form only
    forms = {gid.split(":")[0] for gid in panels}
    assert forms == {"gansu-team", "gansu-principal", "gansu-member", "gansu-integrity"}
    for ax in fig.axes:
        form_id = str(ax.get_gid()).split(":")[0]
        names = {s.name for s in result.subjects if s.form.id == form_id}
        assert len(ax.patches) == len(names) == 2
    # 正职/成员: the 2/3 满意率 line (基本称职) and the 1/3 line on 不称职票占比
    for form_id in ("gansu-principal", "gansu-member"):
        assert panels[f"{form_id}:satisfaction"] == ["基本称职线 2/3"]
        assert panels[f"{form_id}:incompetent"] == ["不称职线 1/3"]
        assert panels[f"{form_id}:excellent"] == ["优秀线 50%"]
    # 班子 and 廉洁自律: no 满意率 threshold under the default set → no 2/3 line over them
    assert panels["gansu-team:satisfaction"] == []
    assert panels["gansu-team:unqualified"] == ["不合格线 1/3"]
    assert panels["gansu-integrity:poor"] == ["差线 1/3"]
    assert not any("2/3" in label for label in panels["gansu-integrity:satisfaction"])
    two_thirds = [gid for gid, labels in panels.items() if any("2/3" in x for x in labels)]
    assert sorted(two_thirds) == ["gansu-member:satisfaction", "gansu-principal:satisfaction"]
    for ax in fig.axes:
        for line in ax.lines:
            if line.get_gid() == "threshold" and str(line.get_label()).endswith("2/3"):
                assert line.get_xdata()[0] == pytest.approx(200 / 3)
    shown = _texts(fig)
    # labels never doubled; ranks printed within the form
    assert "（廉洁自律）（廉洁自律）" not in shown and "陈建国（廉洁自律）" in shown
    assert "第1名（共2）" in shown and "（共1）" not in shown
    assert charts.satisfaction_ranking_png(result).startswith(b"\x89PNG")


def test_ranking_lines_follow_the_satisfaction_rule_set() -> None:
    with charts._cjk():
        panels = _panels(charts._ranking_figure(_ranked("satisfaction")))
    assert panels["gansu-principal:satisfaction"] == ["优秀线 90%", "称职线 70%", "基本称职线 60%"]
    assert panels["gansu-team:satisfaction"] == ["优秀线 90%", "合格线 60%"]
    # 满意率 is the only share these rules test: no other panel, no 1/3 or 2/3 line
    assert set(panels) == {
        f"{f}:satisfaction"
        for f in ("gansu-team", "gansu-principal", "gansu-member", "gansu-integrity")
    }
    assert not any("1/3" in x or "2/3" in x for labels in panels.values() for x in labels)


def test_single_subject_forms_print_no_rank_and_labels_are_not_doubled(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    drawn: list[Figure] = []
    original = charts._png
    monkeypatch.setattr(
        charts, "_png", lambda fig, seal=None: drawn.append(fig) or original(fig, seal)
    )
    result = chart_result()
    _all_charts(result)
    shown = "\n".join(_texts(fig) for fig in drawn)
    assert "张三（廉洁自律）" in shown
    assert "（廉洁自律）（廉洁自律）" not in shown
    assert "（共1）" not in shown and "第1名" not in shown
    assert charts.subject_label(result.subjects[3]) == "张三（廉洁自律）"
    assert charts.subject_label(result.subjects[1]) == "张三（班子正职）"


def test_subject_chart_states_excellent_and_satisfaction_rates(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    drawn: list[Figure] = []
    original = charts._png
    monkeypatch.setattr(
        charts, "_png", lambda fig, seal=None: drawn.append(fig) or original(fig, seal)
    )
    plain = _ranked()
    charts.subject_png(plain, plain.subjects[2])  # 张三: 25 优秀, 5 不称职 of 30
    title = drawn[-1].get_suptitle()
    assert "优秀率 83.33%" in title and "满意率 83.33%" in title and "测评等次 优秀" in title
    assert "第1名（共2）" in title and "加权" not in title
    weighted = chart_result(weighted=True)
    charts.subject_png(weighted, weighted.subjects[0])
    title = drawn[-1].get_suptitle()
    assert "加权优秀率" in title and "加权满意率" in title and "未加权" in title
    # counts carry their raw share of the valid votes
    assert "20（60.61%）" in _texts(drawn[-1])
