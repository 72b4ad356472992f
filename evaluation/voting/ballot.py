"""The web ballot, built at run time from the round's form snapshots (STYLE §7: forms are data).

``ballot_layout`` turns a round into plain data the template walks (subjects, their forms,
the fields to answer); ``make_ballot_form`` builds a Flask-WTF form class with one radio field
per subject (and per item where the form grades items), and ``collect_answers`` turns a
validated form into the rows a ballot stores. A grade that is not in the form and a missing
answer are both refused by the radio fields' validation before anything is stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import RadioField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired

from evaluation.ballot_forms import BallotForm, Item
from evaluation.extensions import db
from evaluation.models import OVERALL, Round, RoundState
from evaluation.rounds.state import subject_form

ABSTAIN = "abstain"
ABSTAIN_LABEL = "弃权"


def field_name(subject_id: int, item: str = OVERALL) -> str:
    """The form field of a subject's overall grade (item "") or of one item's grade."""
    return f"s{subject_id}" if item == OVERALL else f"s{subject_id}-i{item}"


@dataclass(frozen=True)
class Choice:
    """One radio button: the value sent and the label shown."""

    value: str
    label: str


@dataclass(frozen=True)
class Question:
    """One set of radios: a subject's overall grade or one item's grade."""

    name: str
    item: str
    legend: str
    choices: tuple[Choice, ...]


@dataclass(frozen=True)
class BallotSubject:
    """A subject as the ballot shows it."""

    subject_id: int
    name: str
    post: str
    form: BallotForm
    overall: Question
    item_questions: tuple[Question, ...]

    @property
    def items(self) -> tuple[Item, ...]:
        """The content the subject is judged on."""
        return self.form.items

    @property
    def questions(self) -> tuple[Question, ...]:
        """Every set of radios of this subject: items first, then the overall grade."""
        return (*self.item_questions, self.overall)


def _choices(form: BallotForm) -> tuple[Choice, ...]:
    grades = tuple(Choice(g.key, g.label) for g in form.grades)
    return (*grades, Choice(ABSTAIN, ABSTAIN_LABEL)) if form.abstain else grades


def ballot_layout(rnd: Round, stratum_id: int | None = None) -> list[BallotSubject]:
    """The subjects of a round with the questions each asks, in ballot order.

    ``stratum_id``: the ballot of that stratum (a stratum may rate only some subjects);
    None: every subject (the organiser's preview, and the round's padded ballot size).
    """
    stratum = next((s for s in rnd.strata if s.id == stratum_id), None)
    rated = None if stratum is None or stratum.rates_all else {s.id for s in stratum.rated}
    layout = []
    for subject in rnd.subjects:
        if rated is not None and subject.id not in rated:
            continue
        form = subject_form(rnd, subject)
        choices = _choices(form)
        items: tuple[Question, ...] = ()
        if form.per_item:
            items = tuple(
                Question(field_name(subject.id, it.code), it.code, it.text, choices)
                for it in form.items
            )
        overall_legend = "总体评价" if form.per_item else subject.name
        layout.append(
            BallotSubject(
                subject_id=subject.id,
                name=subject.name,
                post=subject.post,
                form=form,
                overall=Question(field_name(subject.id), OVERALL, overall_legend, choices),
                item_questions=items,
            )
        )
    return layout


def make_ballot_form(layout: list[BallotSubject]) -> type[FlaskForm]:
    """A Flask-WTF form class with one required radio field per question of the ballot."""

    class WebBallot(FlaskForm):
        """The ballot of one round (fields added below)."""

    for subject in layout:
        for question in subject.questions:
            message = (
                f"请为“{subject.name}”选择一个等次"
                if question.item == OVERALL
                else f"请为“{subject.name}”的第 {question.item} 项选择一个等次"
            )
            field = RadioField(
                question.legend,
                choices=[SelectChoice(c.value, c.label) for c in question.choices],
                validators=[InputRequired(message)],
                validate_choice=True,
            )
            setattr(WebBallot, question.name, field)
    return WebBallot


class RoundKey(Protocol):
    """What identifies a round's ballot: a ``Round``, or a voting request's snapshot of one."""

    @property
    def id(self) -> int: ...
    @property
    def state(self) -> RoundState: ...
    @property
    def created_at(self) -> datetime: ...


def cached_ballot(
    rnd: RoundKey, stratum_id: int | None = None
) -> tuple[list[BallotSubject], type[FlaskForm]]:
    """The layout and form class of a stratum's ballot (None: every subject) in a round whose
    structure is frozen (not a draft), per app.

    Once a round has opened its subjects and form snapshots never change, so every voter of
    a stratum in this process shares one layout instead of loading and validating the
    snapshots on each request; only a miss loads the round itself.
    """

    def load() -> Round:
        return rnd if isinstance(rnd, Round) else db.session.get_one(Round, rnd.id)

    if rnd.state == RoundState.DRAFT:
        layout = ballot_layout(load(), stratum_id)
        return layout, make_ballot_form(layout)
    cache: dict[tuple[int, object, int | None], tuple[list[BallotSubject], type[FlaskForm]]]
    cache = current_app.extensions.setdefault("ballot_layouts", {})
    key = (rnd.id, rnd.created_at, stratum_id)
    if key not in cache:
        if len(cache) > 256:
            cache.clear()
        layout = ballot_layout(load(), stratum_id)
        cache[key] = (layout, make_ballot_form(layout))
    return cache[key]


def collect_answers(
    layout: list[BallotSubject], data: dict[str, str | None]
) -> list[tuple[int, str, str | None]]:
    """(subject id, item, grade key or None for 弃权) for every question, from validated data."""
    rows = []
    for subject in layout:
        for question in subject.questions:
            value = data[question.name]
            if value is None or value not in {c.value for c in question.choices}:
                raise ValueError(f"unvalidated answer for {question.name}")
            rows.append((subject.subject_id, question.item, None if value == ABSTAIN else value))
    return rows


def grade_choices(layout: list[BallotSubject]) -> list[tuple[int, str, list[str]]]:
    """(subject id, item, grade keys) for every question of the ballot: what a sealed ballot
    can hold, from which ``voting.box.plaintext_size`` finds the round's one padded length.

    Give it the whole round's layout (``ballot_layout(rnd)``), never one stratum's: a stratum
    that rates fewer subjects pads to the same length as every other."""
    return [
        (
            subject.subject_id,
            question.item,
            [c.value for c in question.choices if c.value != ABSTAIN],
        )
        for subject in layout
        for question in subject.questions
    ]


def foreign_answers(
    everything: list[BallotSubject], layout: list[BallotSubject], sent: Iterable[str]
) -> list[str]:
    """Names of the round's subjects outside this ballot that ``sent`` (form keys) answers."""
    own = {q.name for s in layout for q in s.questions}
    keys = set(sent)
    return [
        s.name for s in everything if any(q.name in keys and q.name not in own for q in s.questions)
    ]


def missing_subjects(
    layout: list[BallotSubject], errors: dict[str, list[str]]
) -> list[BallotSubject]:
    """The subjects with at least one unanswered (or invalid) question, in ballot order (the
    ballot page links each to its fieldset, ``#subject-<id>``)."""
    return [s for s in layout if any(q.name in errors for q in s.questions)]


def question_count(layout: list[BallotSubject]) -> int:
    """How many sets of radios the ballot has: the N of the page's "已填 n/N"."""
    return sum(len(s.questions) for s in layout)
