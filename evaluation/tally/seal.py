"""封存: the seal over a round's ballots (SPEC §10): their canonical form and its digest.

The canonical form of a round's ballots does not depend on how or in which order they are
stored: each ballot becomes one line of compact JSON,

    [stratum_id, [[subject_id, item, stratum_id, grade], …]]

with its answers sorted and 弃权 written as ``null``; the lines are sorted, and the digest is
SHA-256 over the header line ``民主测评封存 v1 round=<id> ballots=<n>`` followed by the sorted
lines, joined by newlines (UTF-8). Ballot keys are not part of it (they are random and are
replaced when the ballots are shuffled at close).

At close the digest is stored in ``Round.seal`` and the tally in ``Round.sealed_result`` (JSON,
fractions as "p/q"; ``evaluation.tally.aggregate.seal_round``). ``evaluation.tally.verify``
recomputes both from the raw ballots and names every difference: a changed, added or removed
ballot or answer changes the digest; a changed stored result differs from the recount.

This module is pure (no Flask, no SQLAlchemy): anyone can recompute a seal from the 原始选票 sheet.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

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
