"""封存与核验: the seal over a round's ballots, stored at close, and ``flask verify`` (SPEC §10).

The canonical form of a round's ballots does not depend on how or in which order they are
stored: each ballot becomes one line of compact JSON,

    [stratum_id, [[subject_id, item, stratum_id, grade], …]]

with its answers sorted and 弃权 written as ``null``; the lines are sorted, and the digest is
SHA-256 over the header line ``民主测评封存 v1 round=<id> ballots=<n>`` followed by the sorted
lines, joined by newlines (UTF-8). Ballot keys are not part of it (they are random and are
replaced when the ballots are shuffled at close).

At close the digest is stored in ``Round.seal`` and the tally in ``Round.sealed_result`` (JSON,
fractions as "p/q"). ``verify_round`` recomputes both from the raw ballots and names every
difference: a changed, added or removed ballot or answer changes the digest; a changed stored
result differs from the recount.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, cast, select

from evaluation.errors import StateError
from evaluation.extensions import db
from evaluation.models import Answer, Ballot, Round
from evaluation.tally import TallyResult, to_json
from evaluation.tally_db import require_results, tally_round

ALGORITHM = "SHA-256"
SEAL_VERSION = "v1"
CANONICAL_DESCRIPTION = (
    "每张选票写成一行紧凑 JSON：[类别编号, [[测评对象编号, 测评内容, 类别编号, 等次], …]]，"
    "答案按此顺序排序，弃权写作 null；各行排序后，连同首行"
    "“民主测评封存 v1 round=<活动编号> ballots=<选票数>”以换行连接（UTF-8），计算 SHA-256。"
    "与选票的存储顺序、选票编号无关。"
)

Answers = Iterable[tuple[int, str, int, str | None]]


def ballot_line(stratum_id: int, answers: Answers) -> str:
    """The canonical line of one ballot (answers sorted, 弃权 as null)."""
    ordered = sorted(
        ([int(s), str(i), int(st), g] for s, i, st, g in answers),
        key=lambda a: (a[0], a[1], a[2], a[3] is not None, a[3] or ""),
    )
    return json.dumps([int(stratum_id), ordered], ensure_ascii=False, separators=(",", ":"))


def seal_digest(round_id: int, lines: Iterable[str]) -> str:
    """SHA-256 over the header and the sorted canonical ballot lines."""
    ordered = sorted(lines)
    digest = hashlib.sha256()
    digest.update(f"民主测评封存 {SEAL_VERSION} round={round_id} ballots={len(ordered)}".encode())
    for line in ordered:
        digest.update(b"\n")
        digest.update(line.encode("utf-8"))
    return digest.hexdigest()


StoredAnswer = tuple[int, str, int, str | None]  # subject, item, answer's stratum, grade


def stored_ballots(rnd: Round) -> Iterator[tuple[int, list[StoredAnswer]]]:
    """Stream the round's ballots as stored: (stratum, answers), in the order of their key.

    The seal and the workbook's 原始选票 sheet both read ballots this way, in one pass.
    """
    # Core, not the ORM, and the key as plain text: this pass touches every answer.
    stmt = (
        select(
            cast(Ballot.id, String),
            Ballot.stratum_id,
            Answer.subject_id,
            Answer.item,
            Answer.stratum_id,
            Answer.grade,
        )
        .outerjoin(Answer, Answer.ballot_id == Ballot.id)
        .where(Ballot.round_id == rnd.id)
        .order_by(Ballot.id)
    )
    rows = db.session.connection().execute(stmt.execution_options(yield_per=5000))
    current: Any = None
    stratum = 0
    answers: list[StoredAnswer] = []
    for ballot_id, ballot_stratum, subject_id, item, answer_stratum, grade in rows:
        if ballot_id != current:
            if current is not None:
                yield stratum, answers
            current, stratum, answers = ballot_id, ballot_stratum, []
        if subject_id is not None:
            answers.append((subject_id, item, answer_stratum, grade))
    if current is not None:
        yield stratum, answers


def canonical_lines(rnd: Round) -> Iterator[str]:
    """Stream the round's ballots from the database as canonical lines."""
    for stratum, answers in stored_ballots(rnd):
        yield ballot_line(stratum, answers)


def compute_seal(rnd: Round) -> str:
    """The digest of the round's ballots as they are stored now."""
    return seal_digest(rnd.id, canonical_lines(rnd))


def seal_round(rnd: Round) -> None:
    """At close: store the seal and the tally (called by ``rounds.close_round``)."""
    rnd.seal = compute_seal(rnd)
    rnd.sealed_result = to_json(tally_round(rnd))
    db.session.flush()


def sealed_matches(rnd: Round, result: TallyResult) -> bool | None:
    """Whether a recount equals the tally sealed at close (None when nothing was sealed).

    The recount must use the sealed minimum group size for the comparison to be fair.
    """
    stored = rnd.sealed_result
    if not rnd.seal or not isinstance(stored, dict):
        return None
    if stored.get("min_group_size") != result.min_group_size:
        result = tally_round(rnd, min_group_size=stored.get("min_group_size"))
    return not diff(stored, to_json(result))


# --- verification ------------------------------------------------------------------------------


@dataclass
class Verification:
    """What ``flask verify`` found."""

    stored_seal: str | None
    computed_seal: str
    ballots: int
    used_codes: int
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing differs."""
        return not self.differences


LABELS = {
    "counts": "票数",
    "abstentions": "弃权票",
    "valid": "有效票",
    "shares": "各等次比例",
    "excellent_rate": "优秀率",
    "satisfaction_rate": "满意率",
    "trust_rate": "信任率",
    "score": "综合得分",
    "grade": "测评等次",
    "grade_label": "测评等次名称",
    "rank": "排名",
    "strata": "分类别",
    "items": "分项",
    "figures": "数字",
    "ballots": "选票数",
    "suppressed": "是否抑制",
    "weight": "权重",
    "turnout": "参测情况",
    "issued": "发放测评码",
    "used": "已使用测评码",
    "rate": "参测率",
    "weighted": "是否加权",
    "min_turnout": "最低参测率",
    "min_group_size": "最小分组",
    "anomalies": "异常数据",
    "name": "名称",
    "planned": "应参加人数",
    "subjects": "测评对象",
    "version": "格式版本",
}


def _name(element: Any, index: int) -> str:
    if isinstance(element, dict):
        for key in ("name", "code"):
            if key in element:
                return f"“{element[key]}”"
    return f"第{index + 1}项"


def diff(stored: Any, computed: Any, path: str = "") -> list[str]:
    """Every difference between the sealed result and the recount, named in Chinese."""
    where = path or "计票结果"
    if isinstance(stored, dict) and isinstance(computed, dict):
        out: list[str] = []
        for key in list(dict.fromkeys([*stored, *computed])):
            label = LABELS.get(key, key)
            sub = f"{path} {label}".strip()
            if key not in stored:
                out.append(f"{sub}：封存结果中缺少此项，重算为 {_show(computed[key])}")
            elif key not in computed:
                out.append(f"{sub}：封存结果中多出此项（{_show(stored[key])}）")
            else:
                out.extend(diff(stored[key], computed[key], sub))
        return out
    if isinstance(stored, list) and isinstance(computed, list):
        out = []
        if len(stored) != len(computed):
            out.append(f"{where}：封存 {len(stored)} 项，重算 {len(computed)} 项")
        for i, (a, b) in enumerate(zip(stored, computed, strict=False)):
            out.extend(diff(a, b, f"{path} {_name(b, i)}".strip()))
        return out
    if stored != computed:
        return [f"{where}：封存值 {_show(stored)}，重算值 {_show(computed)}"]
    return []


def _show(value: Any) -> str:
    if value is None:
        return "（无）"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.endswith("/1") and value[:-2].isdigit():
        return value[:-2]
    return str(value)


def verify_round(rnd: Round) -> Verification:
    """Recompute the seal and the tally from the raw ballots and list every difference."""
    require_results(rnd)
    if not rnd.seal or rnd.sealed_result is None:
        raise StateError(f"测评活动“{rnd.title}”没有封存记录，无法核验")
    computed_seal = compute_seal(rnd)
    stored = rnd.sealed_result
    group = stored.get("min_group_size") if isinstance(stored, dict) else None
    result = tally_round(rnd, min_group_size=group if isinstance(group, int) else None)
    report = Verification(
        stored_seal=rnd.seal,
        computed_seal=computed_seal,
        ballots=result.ballots,
        used_codes=result.used,
    )
    if computed_seal != rnd.seal:
        report.differences.append(
            f"封存码不一致：封存 {rnd.seal}，按现有选票重算 {computed_seal}"
            "（选票或答案在结束后被增加、删除或修改）"
        )
    report.differences.extend(diff(stored, to_json(result)))
    if result.ballots != result.used:
        report.differences.append(
            f"选票数 {result.ballots} 与已使用的测评码数 {result.used} 不一致"
        )
    for anomaly in result.anomalies:
        report.differences.append(f"异常数据：{anomaly}")
    return report
