"""封存: the seal over a round's answers (SPEC §10) and the lines of the 原始选票 sheet.

The seal (version ``v2``) is a digest over exactly what the workbook's 原始选票 sheet lists,
so anyone holding the sheet can recompute it. That sheet never shows a whole ballot (SPEC
§5.5): it lists each answer as one line of four cells,

    测评对象 | 测评内容 | 测评人员类别 | 等次

(``测评内容`` is "总体" for the overall grade or "第n项" for an item; the stratum is the
pool's name "其他类别（含：A、B）" for strata pooled for that subject; 弃权 is "弃权"). Each line
is written as compact JSON ``["局领导班子","总体","一般干部","优秀"]``; the lines of all subjects
are sorted (as text, so each subject's lines form its sorted multiset) and the digest is
SHA-256 over the header line ``民主测评封存 v2 round=<id> lines=<n>`` followed by the sorted
lines, joined by newlines (UTF-8). The order in which the sheet lists the lines — drawn at
random, independently per subject and item — does not matter.

The lines are built from the tally's count rows (subject, item, stratum, grade, count) and the
tally result (which names each subject's pool), never from whole ballots.

Rounds sealed before (``v1``) digested whole canonical ballots; ``legacy_ballot_line`` and
``legacy_seal_digest`` keep recomputing those seals so ``flask verify`` still checks them.

This module is pure (no Flask, no SQLAlchemy).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from random import Random

from evaluation.tally.core import OVERALL, CountRow, SubjectResult, TallyResult

ALGORITHM = "SHA-256"
SEAL_VERSION = "v2"
LEGACY_SEAL_VERSION = "v1"
RAW_COLUMNS = ("测评对象", "测评内容", "测评人员类别", "等次")
OVERALL_LABEL = "总体"
ABSTAIN_LABEL = "弃权"
HIDDEN_LABEL = "—"
CANONICAL_DESCRIPTION = (
    "“原始选票”表的每一行（测评对象、测评内容、测评人员类别、等次四格，按表中文字）写成一行"
    '紧凑 JSON，如 ["局领导班子","总体","一般干部","优秀"]；全部行按文本排序后，连同首行'
    "“民主测评封存 v2 round=<活动编号> lines=<行数>”以换行连接（UTF-8），计算 SHA-256。"
    "与表中各行的排列顺序无关；不含任何整张选票。"
)
LEGACY_DESCRIPTION = (
    "旧格式（v1）：每张选票写成一行紧凑 JSON：[类别编号, [[测评对象编号, 测评内容, 类别编号, "
    "等次], …]]，各行排序后连同首行“民主测评封存 v1 round=<活动编号> ballots=<选票数>”计算 "
    "SHA-256。此格式只能在服务器上用 flask verify 核验。"
)


def seal_version_of(sealed_result: object) -> str:
    """The seal format a round was sealed with (``v1`` when the result does not say)."""
    if isinstance(sealed_result, Mapping):
        version = sealed_result.get("seal_version")
        if isinstance(version, str):
            return version
    return LEGACY_SEAL_VERSION


# --- the lines of 原始选票 ----------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class RawLine:
    """One answer as 原始选票 lists it: four texts, nothing that links it to its ballot."""

    subject: str
    item: str
    stratum: str
    grade: str

    def canonical(self) -> str:
        """The line as compact JSON, as the seal digests it."""
        return json.dumps(
            [self.subject, self.item, self.stratum, self.grade],
            ensure_ascii=False,
            separators=(",", ":"),
        )


def item_label(item: str) -> str:
    """测评内容 as 原始选票 and 分类别 write it: "总体" or "第n项"."""
    return OVERALL_LABEL if item == OVERALL else f"第{item}项"


def stratum_labels(subject: SubjectResult, min_group_size: int) -> dict[int, str]:
    """The label each stratum's answers to ``subject`` carry: its name, or its pool's name.

    For results sealed before pooling (version 2) the small strata are "—" — and every
    stratum is "—" when the hidden ones together still hold fewer than ``min_group_size``
    ballots, as 原始选票 showed them then.
    """
    labels: dict[int, str] = {}
    for cell in subject.strata:
        if cell.pooled:
            labels.update(dict.fromkeys(cell.member_ids, cell.name))
        else:
            labels[cell.stratum_id] = cell.name
    hidden = [c for c in subject.strata if c.suppressed]
    if hidden:
        if sum(c.ballots for c in hidden) < min_group_size:
            return dict.fromkeys(labels, HIDDEN_LABEL)
        labels.update({c.stratum_id: HIDDEN_LABEL for c in hidden})
    return labels


def raw_line_counts(
    result: TallyResult, rows: Iterable[CountRow]
) -> dict[int, dict[str, dict[RawLine, int]]]:
    """subject → item → line → how many answers: the whole of 原始选票, counted.

    Answers that the tally does not count (a stratum outside the round, a grade or item not
    in the form) are listed too, marked, so that the seal covers every stored answer.
    """
    subjects = {s.subject_id: s for s in result.subjects}
    labels = {s.subject_id: stratum_labels(s, result.min_group_size) for s in result.subjects}
    out: dict[int, dict[str, dict[RawLine, int]]] = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        subject = subjects.get(row.subject_id)
        if subject is None or row.count == 0:
            continue
        form = subject.form
        if row.grade is None:
            grade = ABSTAIN_LABEL
        elif row.grade in form.grade_keys:
            grade = form.label(row.grade)
        else:
            grade = f"（无效等次 {row.grade}）"
        outside = f"（本活动以外的类别 {row.stratum_id}）"
        stratum = labels[row.subject_id].get(row.stratum_id, outside)
        line = RawLine(subject.name, item_label(row.item), stratum, grade)
        block = out[row.subject_id][row.item]
        block[line] = block.get(line, 0) + row.count
    return out


def shuffled(counts: Mapping[RawLine, int], rng: Random | None = None) -> Iterator[RawLine]:
    """The lines of one block, each as often as counted, in a random order.

    Each step draws one of the remaining lines uniformly (``secrets.SystemRandom``): the same
    distribution as shuffling the expanded list, without holding it in memory.
    """
    rng = rng or secrets.SystemRandom()
    kinds = sorted(counts)
    remaining = [counts[k] for k in kinds]
    total = sum(remaining)
    while total:
        pick = rng.randrange(total)
        for index, left in enumerate(remaining):
            if pick < left:
                remaining[index] -= 1
                total -= 1
                yield kinds[index]
                break
            pick -= left


# --- the digest -------------------------------------------------------------------------------


def seal_digest(round_id: int, lines: Iterable[tuple[RawLine, int]] | Iterable[RawLine]) -> str:
    """SHA-256 over the header and the sorted lines (a multiset: order does not matter).

    ``lines``: RawLines, or (RawLine, count) pairs as ``raw_line_counts`` gives them.
    """
    counted: dict[str, int] = defaultdict(int)
    for entry in lines:
        if isinstance(entry, RawLine):
            counted[entry.canonical()] += 1
        else:
            line, count = entry
            counted[line.canonical()] += count
    digest = hashlib.sha256()
    total = sum(counted.values())
    digest.update(f"民主测评封存 {SEAL_VERSION} round={round_id} lines={total}".encode())
    for text in sorted(counted):
        encoded = b"\n" + text.encode("utf-8")
        for _ in range(counted[text]):
            digest.update(encoded)
    return digest.hexdigest()


def seal_of_counts(round_id: int, counts: Mapping[int, Mapping[str, Mapping[RawLine, int]]]) -> str:
    """The seal of a round from ``raw_line_counts``."""
    return seal_digest(
        round_id,
        (
            (line, n)
            for items in counts.values()
            for block in items.values()
            for line, n in block.items()
        ),
    )


# --- the old seal (v1), for rounds sealed before ----------------------------------------------

Answers = Iterable[tuple[int, str, int, str | None]]


def legacy_ballot_line(stratum_id: int, answers: Answers) -> str:
    """The v1 canonical line of one ballot (answers sorted, 弃权 as null)."""
    ordered = sorted(
        ([int(s), str(i), int(st), g] for s, i, st, g in answers),
        key=lambda a: (a[0], a[1], a[2], a[3] is not None, a[3] or ""),
    )
    return json.dumps([int(stratum_id), ordered], ensure_ascii=False, separators=(",", ":"))


def legacy_seal_digest(round_id: int, lines: Iterable[str]) -> str:
    """The v1 seal: SHA-256 over the header and the sorted canonical ballot lines."""
    ordered = sorted(lines)
    digest = hashlib.sha256()
    digest.update(
        f"民主测评封存 {LEGACY_SEAL_VERSION} round={round_id} ballots={len(ordered)}".encode()
    )
    for line in ordered:
        digest.update(b"\n")
        digest.update(line.encode("utf-8"))
    return digest.hexdigest()
