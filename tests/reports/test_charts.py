"""Charts: real CJK font, no missing glyphs, the pool named and the 无效 mark drawn (SPEC §8)."""

from __future__ import annotations

import warnings
from fractions import Fraction as F
from pathlib import Path

from matplotlib import font_manager
from matplotlib.figure import Figure

from evaluation.ballot_forms import BallotForm, load_forms
from evaluation.fonts import cjk_font_path, matplotlib_font_family
from evaluation.reports import charts
from evaluation.tally.core import (
    CountRow,
    StratumInput,
    SubjectInput,
    TallyInput,
    TallyResult,
    tally,
)

FORMS = load_forms(Path(__file__).resolve().parents[2] / "ballots")


def _result(weighted: bool = False, used: int = 30) -> TallyResult:
    per_item = BallotForm(**{**FORMS["gansu-member"].__dict__, "per_item": True})
    strata = (
        StratumInput(1, "班子成员", F(1, 3) if weighted else None, issued=7, used=3),
        StratumInput(2, "一般干部", F(2, 3) if weighted else None, issued=40, used=used),
    )
    subjects = (
        SubjectInput(1, "市局领导班子", FORMS["gansu-team"]),
        SubjectInput(2, "张三", FORMS["gansu-principal"], "局长"),
        SubjectInput(3, "李四", per_item, "副局长"),
        SubjectInput(4, "张三（廉洁自律）", FORMS["gansu-integrity"].with_items(["八项规定"])),
    )
    rows = [
        CountRow(1, "", 1, "excellent", 3),
        CountRow(1, "", 2, "qualified", 20),
        CountRow(1, "", 2, "unqualified", 10),
        CountRow(2, "", 2, "basic", 30),
        CountRow(2, "", 1, None, 3),
        CountRow(3, "", 2, "excellent", 30),
        CountRow(3, "1", 2, "competent", 30),
        CountRow(3, "2", 2, "incompetent", 30),
        CountRow(4, "", 2, "poor", 30),
    ]
    return tally(TallyInput(strata, subjects, tuple(rows), ballots=33))


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
        pngs = _all_charts(_result()) + _all_charts(_result(weighted=True, used=10))
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
    result = _result(weighted=True, used=10)
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
