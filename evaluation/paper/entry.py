"""纸质票录入: two 计票员 enter each stack of returned paper ballots; agreed ballots go in the box.

A stack (``PaperBatch``) is entered twice, independently, by two accounts with the 计票 role,
ballot by ballot in the order of the stack: for each question one keystroke (a digit for a
grade, 0 for 弃权, a rule's key for a 废票 case, see ``evaluation.paper.rules``). Once both
have entered the whole stack the two are compared: the ballots where they differ are shown
for resolution with the paper in hand, and only when every ballot agrees does the stack go in:
valid ballots sealed into the round's box exactly as a phone ballot is (same padding, same
random row, shuffled with the others at close), invalid ones counted per rule on the stratum,
and the stack with its entries deleted. Afterwards nothing tells a paper ballot from a phone
ballot: the stratum keeps only counts.

While a stack is being entered each clerk's entries are stored sealed (a secret box whose key
comes from the server's code-hash key and a salt of the stack), so the tables and the
write-ahead log hold no readable ballot; that protects as 服务器保管 protects the box (see
SPEC §5.9), and under 监票人保管 it is the server key, not the 监票人's, that guards entries.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from flask import current_app
from nacl.secret import SecretBox
from sqlalchemy import delete, func, select

from evaluation import audit
from evaluation.codes.codes import hash_key
from evaluation.codes.paper import paper_order
from evaluation.errors import Forbidden, InputError, NotFound
from evaluation.extensions import db
from evaluation.models import PaperBatch, PaperEntry, Round, RoundState, Stratum
from evaluation.paper.rules import (
    ABSTAIN_STROKE,
    InvalidRules,
    check_stroke,
    interpret,
    load_rules,
    normalise_stroke,
)
from evaluation.rounds.state import require_state
from evaluation.voting import box
from evaluation.voting.ballot import ABSTAIN, ballot_layout, grade_choices

MAX_STACK = 500
_PERSON = b"paper-entry-v1.."  # blake2b personalisation: 16 bytes


def invalid_rules() -> InvalidRules:
    """The 废票 rules of this installation."""
    return load_rules(current_app.config["BALLOTS_DIR"])


# --- what a clerk types ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryQuestion:
    """One line of the entry form, in the paper ballot's order."""

    index: int  # 0-based position in the entry
    subject_id: int
    item: str
    number: str  # 序号 printed on the paper ("3" for a subject, "3.2" for its 2nd item)
    subject_name: str
    legend: str  # the subject's name, or the item's text
    grade_keys: tuple[str, ...]
    grade_labels: tuple[str, ...]
    abstain: bool


def entry_questions(rnd: Round, stratum_id: int) -> list[EntryQuestion]:
    """The questions of a stratum's paper ballot, in the order they are printed."""
    questions: list[EntryQuestion] = []
    for number, subject in enumerate(paper_order(ballot_layout(rnd, stratum_id)), 1):
        for sub, question in enumerate(subject.questions, 1):
            keys = tuple(c.value for c in question.choices if c.value != ABSTAIN)
            labels = tuple(c.label for c in question.choices if c.value != ABSTAIN)
            per_item = bool(subject.item_questions)
            questions.append(
                EntryQuestion(
                    index=len(questions),
                    subject_id=subject.subject_id,
                    item=question.item,
                    number=(
                        f"{number}.{sub}"
                        if per_item and sub <= len(subject.item_questions)
                        else str(number)
                    ),
                    subject_name=subject.name,
                    legend=question.legend if question.item else "总体评价",
                    grade_keys=keys,
                    grade_labels=labels,
                    abstain=len(keys) < len(question.choices),
                )
            )
    return questions


@dataclass(frozen=True)
class Entry:
    """One clerk's reading of one ballot: the 票面 mark and a keystroke per question."""

    mark: str
    strokes: tuple[str, ...]

    def to_bytes(self) -> bytes:
        return json.dumps({"m": self.mark, "s": list(self.strokes)}).encode("ascii")

    @classmethod
    def from_bytes(cls, data: bytes) -> Entry:
        value = json.loads(data)
        return cls(str(value["m"]), tuple(str(s) for s in value["s"]))


class EntryError(InputError):
    """A keystroke refused: ``field`` is the form field at fault ("mark", "q3"; "" = none)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def clean_entry(
    mark: str, strokes: Sequence[str], questions: Sequence[EntryQuestion], rules: InvalidRules
) -> Entry:
    """The entry typed, checked: EntryError naming the first bad field.

    When the 票面 voids the ballot the questions are not kept (they do not count, and two
    clerks who agree the ballot is void then agree whatever else they typed).
    """
    mark = normalise_stroke(mark)
    if mark and rules.ballot_rule(mark) is None:
        known = "、".join(f"{r.stroke}={r.label}" for r in rules.of_scope("ballot") if r.stroke)
        raise EntryError(f"票面一栏只能留空（正常）或输入：{known}", "mark")
    if len(strokes) != len(questions):
        raise EntryError("录入的栏数与本类别的选票不符，请刷新页面后重新录入这一张")
    if mark:
        return Entry(mark, tuple("" for _ in questions))
    cleaned: list[str] = []
    for question, stroke in zip(questions, strokes, strict=True):
        stroke = normalise_stroke(stroke)
        problem = check_stroke(stroke, len(question.grade_keys), rules)
        if stroke == ABSTAIN_STROKE and not question.abstain:
            problem = "此项没有弃权"
        if problem:
            where = f"{question.subject_name} · {question.legend}"
            raise EntryError(f"第 {question.number} 栏（{where}）：{problem}", f"q{question.index}")
        cleaned.append(stroke)
    return Entry(mark, tuple(cleaned))


# --- sealing entries --------------------------------------------------------------------------


def _secret_box(batch: PaperBatch) -> SecretBox:
    key = hashlib.blake2b(
        bytes(batch.salt),
        key=hashlib.sha256(hash_key()).digest(),
        person=_PERSON,
        digest_size=SecretBox.KEY_SIZE,
    ).digest()
    return SecretBox(key)


def _seal(batch: PaperBatch, entry: Entry) -> bytes:
    return bytes(_secret_box(batch).encrypt(entry.to_bytes()))


def _open(batch: PaperBatch, sealed: bytes) -> Entry:
    return Entry.from_bytes(_secret_box(batch).decrypt(bytes(sealed)))


# --- stacks -------------------------------------------------------------------------------------


def parse_stack_size(value: object) -> int:
    """How many ballots a stack holds: 1 … MAX_STACK."""
    text = str(value if value is not None else "").strip()
    if not text:
        raise InputError("请填写本批张数")
    try:
        count = int(text)
    except ValueError:
        raise InputError(f"张数“{text}”不是整数") from None
    if not 1 <= count <= MAX_STACK:
        raise InputError(f"每批纸质票应在 1 到 {MAX_STACK} 张之间（多的请分成几批）")
    return count


def create_batch(rnd: Round, stratum: Stratum, count: object, *, actor: str) -> PaperBatch:
    """A new stack of ``count`` returned ballots of ``stratum`` to enter (round open)."""
    require_state(rnd, RoundState.OPEN, action="录入纸质票")
    if stratum.round_id != rnd.id:
        raise InputError("该测评人员类别不属于此测评活动")
    count = parse_stack_size(count)
    db.session.execute(select(Round.id).where(Round.id == rnd.id).with_for_update())
    last = db.session.execute(
        select(func.max(PaperBatch.number)).where(PaperBatch.round_id == rnd.id)
    ).scalar()
    used = sum(b.count for b in open_batches(rnd) if b.stratum_id == stratum.id)
    paper = stratum.paper or {}
    returned = int(paper.get("valid", 0)) + sum(dict(paper.get("invalid", {})).values())
    printed = int(paper.get("printed", 0))
    if printed and returned + used + count > printed:
        raise InputError(
            f"“{stratum.name}”共印制纸质选票 {printed} 张，已录入 {returned} 张，"
            f"录入中 {used} 张；再录入 {count} 张就比印制的多。请清点后再录入"
        )
    # A stack's number is never used twice in a round: a stack goes when it is put in the box
    # or deleted, so the last number given is kept on its stratum (read across the round's).
    given = [int((s.paper or {}).get("last_batch", 0)) for s in rnd.strata]
    number = max([int(last or 0), *given]) + 1
    stratum.paper = {**paper, "last_batch": number}
    batch = PaperBatch(
        round_id=rnd.id,
        stratum_id=stratum.id,
        number=number,
        count=count,
        salt=secrets.token_bytes(16),
        created_by=actor,
    )
    db.session.add(batch)
    db.session.flush()
    audit.record(
        actor,
        "paper.batch",
        round_id=rnd.id,
        stratum=stratum.name,
        batch=batch.number,
        count=count,
    )
    return batch


def open_batches(rnd: Round) -> list[PaperBatch]:
    """The round's stacks still being entered, oldest first."""
    return list(
        db.session.execute(
            select(PaperBatch).where(PaperBatch.round_id == rnd.id).order_by(PaperBatch.number)
        ).scalars()
    )


def find_batch(rnd: Round, batch_id: int, *, lock: bool = False) -> PaperBatch:
    """A stack of the round (locked for the transaction when ``lock``); NotFound once it is in
    the box or deleted."""
    query = select(PaperBatch).where(PaperBatch.id == batch_id, PaperBatch.round_id == rnd.id)
    if lock:
        query = query.with_for_update()
    batch = db.session.execute(query).scalar_one_or_none()
    if batch is None:
        raise NotFound("这一批纸质票已经核对入箱（或已删除），无需再录入")
    return batch


@dataclass(frozen=True)
class ClerkProgress:
    """How far one clerk has entered a stack."""

    clerk: str
    entered: int


def progress(batch: PaperBatch) -> list[ClerkProgress]:
    """Each clerk's count of entered ballots, first clerk first."""
    rows = db.session.execute(
        select(PaperEntry.clerk, func.count())
        .where(PaperEntry.batch_id == batch.id)
        .group_by(PaperEntry.clerk)
        .order_by(func.min(PaperEntry.position), PaperEntry.clerk)
    ).all()
    return [ClerkProgress(str(c), int(n)) for c, n in rows]


def check_clerk(batch: PaperBatch, clerk: str) -> None:
    """Forbidden for a third clerk: a stack is entered by exactly two accounts."""
    others = [p.clerk for p in progress(batch) if p.clerk != clerk]
    if len(others) >= 2:
        raise Forbidden(f"第 {batch.number} 批已由两位计票员（{'、'.join(others)}）录入，不能再录")


def next_position(batch: PaperBatch, clerk: str) -> int | None:
    """The first ballot of the stack ``clerk`` has not entered (1-based); None when done."""
    done = set(
        db.session.execute(
            select(PaperEntry.position).where(
                PaperEntry.batch_id == batch.id, PaperEntry.clerk == clerk
            )
        ).scalars()
    )
    return next((p for p in range(1, batch.count + 1) if p not in done), None)


def save_entry(
    rnd: Round, batch: PaperBatch, clerk: str, position: int, entry: Entry, *, actor: str
) -> CommitResult | None:
    """Store one clerk's reading of ballot ``position`` (replacing theirs, if any); once both
    clerks agree on the whole stack, put it in the box (the result of that, else None)."""
    require_state(rnd, RoundState.OPEN, action="录入纸质票")
    check_clerk(batch, clerk)
    if not 1 <= position <= batch.count:
        raise InputError(f"第 {batch.number} 批只有 {batch.count} 张")
    db.session.merge(
        PaperEntry(batch_id=batch.id, clerk=clerk, position=position, sealed=_seal(batch, entry))
    )
    db.session.flush()
    return try_commit(rnd, batch, actor=actor)


def own_entry(batch: PaperBatch, clerk: str, position: int) -> Entry | None:
    """What ``clerk`` entered for ballot ``position`` (to correct it), if anything."""
    row = db.session.get(PaperEntry, (batch.id, clerk, position))
    return _open(batch, row.sealed) if row is not None else None


@dataclass(frozen=True)
class Difference:
    """A ballot the two clerks read differently: both readings."""

    position: int
    first: Entry
    second: Entry

    def differing(self) -> set[int]:
        """Indexes of the questions that differ (-1: the 票面 mark).

        When the two read the 票面 differently only the mark differs: a clerk who voided the
        ballot typed no question (``clean_entry``), so the other's lines are the only reading.
        """
        if self.first.mark != self.second.mark:
            return {-1}
        pairs = zip(self.first.strokes, self.second.strokes, strict=True)
        return {i for i, (a, b) in enumerate(pairs) if a != b}

    @property
    def basis(self) -> Entry:
        """The reading to start 核定 from: one that read the questions (票面 正常), if any."""
        return self.second if self.first.mark and not self.second.mark else self.first


def _entries(batch: PaperBatch) -> dict[str, dict[int, Entry]]:
    out: dict[str, dict[int, Entry]] = {}
    for row in db.session.execute(
        select(PaperEntry).where(PaperEntry.batch_id == batch.id)
    ).scalars():
        out.setdefault(row.clerk, {})[row.position] = _open(batch, row.sealed)
    return out


def complete(batch: PaperBatch) -> bool:
    """True when two clerks have each entered every ballot of the stack."""
    counts = progress(batch)
    return len(counts) == 2 and all(p.entered == batch.count for p in counts)


def differences(batch: PaperBatch) -> list[Difference]:
    """The ballots the two clerks read differently (only once both have entered all)."""
    if not complete(batch):
        return []
    first, second = (p.clerk for p in progress(batch))
    entries = _entries(batch)
    return [
        Difference(pos, entries[first][pos], entries[second][pos])
        for pos in range(1, batch.count + 1)
        if entries[first][pos] != entries[second][pos]
    ]


def resolve(
    rnd: Round, batch: PaperBatch, position: int, entry: Entry, *, actor: str
) -> CommitResult | None:
    """Settle a differing ballot with the paper in hand: both readings become ``entry``.

    Only one of the stack's two clerks may resolve (they have the paper).
    """
    require_state(rnd, RoundState.OPEN, action="核对纸质票")
    clerks = [p.clerk for p in progress(batch)]
    if actor not in clerks:
        raise Forbidden(f"只有录入第 {batch.number} 批的计票员（{'、'.join(clerks)}）可以核对")
    if not complete(batch):
        raise InputError("两位计票员都录完这一批后才能核对")
    if not 1 <= position <= batch.count:
        raise InputError(f"第 {batch.number} 批只有 {batch.count} 张")
    for clerk in clerks:
        db.session.merge(
            PaperEntry(
                batch_id=batch.id, clerk=clerk, position=position, sealed=_seal(batch, entry)
            )
        )
    db.session.flush()
    audit.record(actor, "paper.resolve", round_id=rnd.id, batch=batch.number, ballot=position)
    return try_commit(rnd, batch, actor=actor)


@dataclass(frozen=True)
class CommitResult:
    """A stack put in the box: how many valid and invalid ballots."""

    number: int
    stratum: str
    valid: int
    invalid: int


def try_commit(rnd: Round, batch: PaperBatch, *, actor: str) -> CommitResult | None:
    """Put the stack in the box if both clerks entered all of it and agree; else None."""
    if not complete(batch) or differences(batch):
        return None
    rules = invalid_rules()
    questions = entry_questions(rnd, batch.stratum_id)
    grade_keys = [q.grade_keys for q in questions]
    abstain = [q.abstain for q in questions]
    entries = _entries(batch)
    agreed = next(iter(entries.values()))
    # The answers in the phone ballot's order, so a paper ballot seals to the same bytes.
    order = [
        (s.subject_id, q.item) for s in ballot_layout(rnd, batch.stratum_id) for q in s.questions
    ]
    everything = ballot_layout(rnd)
    size = box.plaintext_size(grade_choices(everything))
    public = bytes(rnd.box_public_key or b"")
    table = box.lock_box(rnd)
    sealed_rows = []
    invalid: dict[str, int] = {}
    abstained: dict[str, int] = {}
    for position in range(1, batch.count + 1):
        entry = agreed[position]
        reading = interpret(entry.mark, entry.strokes, grade_keys, rules, abstain)
        if reading.invalid is not None:
            invalid[reading.invalid.key] = invalid.get(reading.invalid.key, 0) + 1
            continue
        for key, n in reading.abstained.items():
            abstained[key] = abstained.get(key, 0) + n
        by_question = {
            (q.subject_id, q.item): grade
            for q, grade in zip(questions, reading.grades, strict=True)
        }
        answers = [(sid, item, by_question[(sid, item)]) for sid, item in order]
        sealed_rows.append(
            {
                # Random, like a code's keyed hash: the row does not say it came on paper.
                "digest": secrets.token_hex(32),
                "stratum_id": batch.stratum_id,
                "sealed": box.seal_ballot(public, rnd.id, batch.stratum_id, answers, size),
                "receipt": secrets.token_hex(32),
            }
        )
    if sealed_rows:
        db.session.connection().execute(table.insert(), sealed_rows)
    stratum = db.session.execute(
        select(Stratum).where(Stratum.id == batch.stratum_id).with_for_update()
    ).scalar_one()
    add_counts(stratum, rules, valid=len(sealed_rows), invalid=invalid, abstained=abstained)
    result = CommitResult(batch.number, stratum.name, len(sealed_rows), sum(invalid.values()))
    db.session.execute(delete(PaperEntry).where(PaperEntry.batch_id == batch.id))
    db.session.delete(batch)
    db.session.flush()
    audit.record(
        actor,
        "paper.commit",
        round_id=rnd.id,
        stratum=stratum.name,
        batch=result.number,
        valid=result.valid,
        invalid=result.invalid,
    )
    return result


def add_counts(
    stratum: Stratum,
    rules: InvalidRules,
    *,
    valid: int = 0,
    invalid: dict[str, int] | None = None,
    abstained: dict[str, int] | None = None,
    printed: int = 0,
) -> None:
    """Add to the stratum's paper counts (a new dict, so the JSON column is written)."""
    paper = dict(stratum.paper or {})
    paper["printed"] = int(paper.get("printed", 0)) + printed
    paper["valid"] = int(paper.get("valid", 0)) + valid
    for name, extra in (("invalid", invalid or {}), ("abstained", abstained or {})):
        counts = dict(paper.get(name, {}))
        for key, n in extra.items():
            counts[key] = int(counts.get(key, 0)) + n
        paper[name] = counts
    labels = dict(paper.get("labels", {}))
    labels.update(rules.labels())
    paper["labels"] = labels
    stratum.paper = paper


def delete_batch(rnd: Round, batch: PaperBatch, *, actor: str, reason: str) -> None:
    """Drop a stack not yet in the box (entered wrongly, wrong stratum), with a reason."""
    require_state(rnd, RoundState.OPEN, action="删除纸质票批次")
    reason = (reason or "").strip()
    if not reason:
        raise InputError("删除一批纸质票录入必须填写原因")
    number = batch.number
    db.session.delete(batch)
    db.session.flush()
    audit.record(actor, "paper.delete", round_id=rnd.id, batch=number, reason=reason)
