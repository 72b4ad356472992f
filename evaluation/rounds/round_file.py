"""Round files (SPEC §11): a whole round described in TOML, imported in one transaction.

Keys: ``title``, ``unit`` (created if missing; "上级/下级" paths), ``year``, ``mode``, ``kind``,
``min_turnout`` (optional: overrides the rule set's), ``rule_set`` (optional: the grading
rule set's id, default ``default``), ``opens_at``/``closes_at`` (optional), ``[[strata]]``
(``name``, ``codes``, ``weight``, ``subjects``: the names of the subjects it rates, default
all), ``[[subjects]]`` (``name``, ``form``, ``post``,
``staff_no``, ``unit``) and ``[forms.<id>] items = [...]`` for forms whose items are set per
round. Every problem is
collected and reported together; nothing is stored unless the whole file is valid.
"""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, NamedTuple

from evaluation import audit
from evaluation.accounts.units import ensure_unit
from evaluation.ballot_forms import BallotForm, in_form_order
from evaluation.errors import DomainError, InputError
from evaluation.models import Round, Unit
from evaluation.rounds import operations
from evaluation.rounds.operations import available_forms
from evaluation.rounds.state import round_rule_set

ROUND_KEYS = {
    "title",
    "unit",
    "year",
    "mode",
    "kind",
    "min_turnout",
    "rule_set",
    "opens_at",
    "closes_at",
    "strata",
    "subjects",
    "forms",
}
STRATUM_KEYS = {"name", "codes", "weight", "subjects"}
SUBJECT_KEYS = {"name", "form", "post", "staff_no", "unit"}
# Limits of an uploaded round file: its size, its nesting (a round file needs four levels:
# [forms.<id>] items = [...]) and its strata (subjects: ``operations.MAX_SUBJECTS``).
MAX_ROUND_FILE_CHARS = 1_000_000
MAX_DEPTH = 6
MAX_STRATA = 200


class _Checked(NamedTuple):
    """Round-file data that passed ``check_round_data``."""

    strata: list[Any]
    subjects: list[Any]
    form_items: dict[str, Any]
    forms: dict[str, BallotForm]
    opens_at: datetime | None
    closes_at: datetime | None


def _moment(value: Any, key: str, problems: list[str]) -> datetime | None:
    """A time from the file; without a zone it is Beijing time. Stored in UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return operations.as_utc(value)
    if isinstance(value, date):
        return operations.as_utc(datetime.combine(value, time()))
    if isinstance(value, str):
        try:
            return operations.as_utc(datetime.fromisoformat(value))
        except ValueError:
            pass
    problems.append(f"{key}：“{value}”不是有效的时间（例如 2026-12-01T09:00:00，北京时间）")
    return None


SAMPLE_ROUND_FILE = Path(__file__).with_name("sample-round.toml")


def sample_round_text() -> str:
    """The sample round file shipped with the product (demo, tests and benchmarks share it)."""
    return SAMPLE_ROUND_FILE.read_text(encoding="utf-8")


def parse_round_text(text: str, source: str = "测评文件") -> dict[str, Any]:
    """Parse TOML text; InputError with the line on malformed TOML or nesting too deep."""
    if len(text) > MAX_ROUND_FILE_CHARS:
        raise _too_large(source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source} 不是有效的 TOML：{exc}") from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively; a round file needs
        # three levels, and thousands would exhaust the stack.
        raise InputError(f"{source} 嵌套层数过多，不是有效的测评文件") from None
    if _depth(data) > MAX_DEPTH:
        raise InputError(
            f"{source} 嵌套层数超过 {MAX_DEPTH} 层，不是有效的测评文件，未导入任何内容。"
        )
    return data


def _too_large(source: str) -> InputError:
    return InputError(
        f"{source} 超过 {MAX_ROUND_FILE_CHARS // 10000} 万字，不像是测评文件"
        f"（每个测评活动最多 {operations.MAX_SUBJECTS} 个测评对象），未导入任何内容。"
    )


def _depth(value: Any) -> int:
    """How deeply tables and arrays nest (the top table is 1), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        deepest = max(deepest, level)
        stack.extend((c, level + 1) for c in children if isinstance(c, dict | list))
    return deepest


def check_round_data(data: dict[str, Any], source: str = "测评文件") -> _Checked:
    """Every problem of parsed round-file data, as one InputError; writes nothing.

    Runs before the write lock is taken (``import_round`` runs it again inside).
    """
    problems: list[str] = []
    unknown = sorted(set(data) - ROUND_KEYS)
    if unknown:
        problems.append(f"未知的键：{', '.join(unknown)}")
    for key in ("title", "unit", "year"):
        if key not in data:
            problems.append(f"缺少必填键 {key}")
    if "rule_set" in data:
        sets = operations.available_rule_sets()
        chosen = data["rule_set"]
        if not isinstance(chosen, str) or chosen not in sets:
            known = "、".join(f"{k}（{v.name}）" for k, v in sets.items())
            problems.append(f"rule_set：等次规则集“{chosen}”不存在（可用：{known}）")
    strata = data.get("strata", [])
    subjects = data.get("subjects", [])
    form_items = data.get("forms", {})
    if not isinstance(strata, list):
        problems.append("strata 应写作 [[strata]] 表数组")
        strata = []
    if not isinstance(subjects, list):
        problems.append("subjects 应写作 [[subjects]] 表数组")
        subjects = []
    if not isinstance(form_items, dict):
        problems.append("forms 应写作 [forms.表id] 表")
        form_items = {}
    if len(subjects) > operations.MAX_SUBJECTS:
        raise InputError(
            f"{source} 有 {len(subjects)} 个测评对象，每个测评活动最多 "
            f"{operations.MAX_SUBJECTS} 个，未导入任何内容。"
        )
    if len(strata) > MAX_STRATA:
        raise InputError(f"{source} 有 {len(strata)} 个测评人员类别，最多 {MAX_STRATA} 个。")
    forms = available_forms()

    for i, s in enumerate(strata, 1):
        where = f"第 {i} 个 [[strata]]"
        if not isinstance(s, dict):
            problems.append(f"{where}：应为表")
            continue
        extra = sorted(set(s) - STRATUM_KEYS)
        if extra:
            problems.append(f"{where}：未知的键 {', '.join(extra)}")
        if not str(s.get("name", "")).strip():
            problems.append(f"{where}：缺少 name")
        codes = s.get("codes", 0)
        if isinstance(codes, bool) or not isinstance(codes, int) or codes < 0:
            problems.append(f"{where}：codes 应为非负整数")
    subject_names = {str(s.get("name", "")).strip() for s in subjects if isinstance(s, dict)} - {""}
    for i, s in enumerate(strata, 1):
        if isinstance(s, dict) and "subjects" in s:
            problems += _rated_problems(i, s, subject_names)
    names = Counter(str(s.get("name", "")).strip() for s in strata if isinstance(s, dict))
    for dup in sorted(n for n, times in names.items() if n and times > 1):
        problems.append(f"[[strata]] 名称“{dup}”重复")

    for i, s in enumerate(subjects, 1):
        where = f"第 {i} 个 [[subjects]]"
        if not isinstance(s, dict):
            problems.append(f"{where}：应为表")
            continue
        extra = sorted(set(s) - SUBJECT_KEYS)
        if extra:
            problems.append(f"{where}：未知的键 {', '.join(extra)}")
        if not str(s.get("name", "")).strip():
            problems.append(f"{where}：缺少 name")
        form_id = s.get("form")
        if not form_id:
            problems.append(f"{where}：缺少 form")
        elif form_id not in forms:
            problems.append(f"{where}：测评表“{form_id}”不存在（可用：{'、'.join(sorted(forms))}）")
    snames = Counter(str(s.get("name", "")).strip() for s in subjects if isinstance(s, dict))
    for dup in sorted(n for n, times in snames.items() if n and times > 1):
        problems.append(f"[[subjects]] 名称“{dup}”重复（同一测评活动内名称必须唯一）")

    for form_id, spec in form_items.items():
        if form_id not in forms:
            problems.append(f"[forms.{form_id}]：测评表不存在")
        elif not isinstance(spec, dict) or set(spec) - {"items"}:
            problems.append(f"[forms.{form_id}]：只能包含 items")
        elif not isinstance(spec.get("items"), list) or not all(
            isinstance(t, str) and t.strip() for t in spec["items"]
        ):
            problems.append(f"[forms.{form_id}]：items 应为非空文本的列表")

    opens_at = _moment(data.get("opens_at"), "opens_at", problems)
    closes_at = _moment(data.get("closes_at"), "closes_at", problems)
    if problems:
        raise InputError(f"{source} 有 {len(problems)} 处错误，未导入任何内容。", problems)

    return _Checked(strata, subjects, form_items, forms, opens_at, closes_at)


def _rated_problems(number: int, stratum: dict[str, Any], subject_names: set[str]) -> list[str]:
    """What is wrong with a ``[[strata]]`` table's ``subjects`` (names of the file's subjects)."""
    name = str(stratum.get("name", "")).strip()
    where = f"第 {number} 个 [[strata]]" + (f"（{name}）" if name else "")
    rated = stratum["subjects"]
    if not isinstance(rated, list) or not all(isinstance(n, str) for n in rated):
        return [f'{where}：subjects 应为测评对象名称的列表，如 ["局领导班子"]']
    if not rated:
        return [f"{where}：subjects 不能为空（评价全部测评对象时不写 subjects）"]
    return [
        f"{where}：subjects 中的“{n}”不是本文件 [[subjects]] 中的测评对象"
        for n in dict.fromkeys(n.strip() for n in rated)
        if n not in subject_names
    ]


def import_round(
    data: dict[str, Any], *, actor: str, source: str = "测评文件", scope: Unit | None = None
) -> Round:
    """Create a draft round with its strata and subjects from parsed round-file data.

    ``scope``: the importing account's tree, within which cadres are matched by 工号 (None:
    everywhere, as for the command line). The caller checks the file's units against it first.

    Raises InputError listing every problem (with its ``[[strata]]``/``[[subjects]]`` number);
    the caller's transaction is rolled back then, so nothing is half-imported.
    """
    strata, subjects, form_items, forms, opens_at, closes_at = check_round_data(data, source)
    try:
        unit = ensure_unit(str(data["unit"]))
        rnd = operations.create_round(
            actor=actor,
            title=str(data["title"]),
            unit=unit,
            year=data["year"],
            mode=str(data.get("mode", "集中")),
            kind=str(data.get("kind", "本级自测")),
            min_turnout=str(data["min_turnout"]) if "min_turnout" in data else None,
            opens_at=opens_at,
            closes_at=closes_at,
            rule_set=str(data.get("rule_set", "")) or None,
        )
        for form_id, spec in form_items.items():
            operations.snapshot_form(rnd, forms[form_id].with_items(spec["items"]))
        for s in strata:
            operations.add_stratum(
                rnd,
                actor=actor,
                name=str(s["name"]),
                planned=s.get("codes", 0),
                weight=s.get("weight"),
            )
        new = [
            operations.NewSubject(
                name=str(s["name"]),
                form_id=str(s["form"]),
                post=str(s.get("post", "")),
                staff_no=str(s["staff_no"]) if s.get("staff_no") is not None else None,
                unit_path=str(s["unit"]) if s.get("unit") else None,
            )
            for s in subjects
        ]
        added = operations.add_subjects(rnd, new, forms=forms, scope=scope)
        if added.problems:
            index, exc = added.problems[0]
            raise InputError(f"第 {index + 1} 个 [[subjects]]：{exc.message}")
        by_name = {sub.name: sub.id for sub in rnd.subjects}
        for stratum, spec in zip(rnd.strata, strata, strict=True):
            if "subjects" in spec:
                operations.set_stratum_subjects(
                    rnd, stratum, [by_name[n.strip()] for n in spec["subjects"]], actor=actor
                )
    except InputError:
        raise
    except DomainError as exc:
        raise InputError(exc.message) from None
    audit.record(
        actor,
        "round.import",
        round_id=rnd.id,
        source=source,
        strata=len(rnd.strata),
        subjects=len(rnd.subjects),
    )
    return rnd


def read_round_file(path: Path) -> dict[str, Any]:
    """Read and parse a round file from disk (InputError if missing, not UTF-8 or not TOML)."""
    try:
        if path.stat().st_size > 4 * MAX_ROUND_FILE_CHARS:  # UTF-8: at most 4 bytes a char
            raise _too_large(path.name)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"找不到文件 {path}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path.name} 不是 UTF-8 编码的文本文件") from None
    return parse_round_text(text, path.name)


def import_round_file(path: Path, *, actor: str) -> Round:
    """Read a round file from disk and import it."""
    return import_round(read_round_file(path), actor=actor, source=path.name)


def export_round(rnd: Round) -> str:
    """The round's structure as round-file TOML (to copy a round to next year)."""
    lines = [
        f"title = {_q(rnd.title)}",
        f"unit = {_q(rnd.unit.path)}",
        f"year = {rnd.year}",
        f"mode = {_q(rnd.mode)}",
        f"kind = {_q(rnd.kind)}",
        f"min_turnout = {_q(rnd.min_turnout)}",
        f"rule_set = {_q(round_rule_set(rnd).id)}",
    ]
    for s in rnd.strata:
        lines += ["", "[[strata]]", f"name = {_q(s.name)}", f"codes = {s.planned}"]
        if s.weight is not None:
            lines.append(f"weight = {_q(s.weight)}")
        if not s.rates_all:
            rated = ", ".join(_q(sub.name) for sub in operations.rated_subjects(rnd, s))
            lines.append(f"subjects = [{rated}]")
    for sub in rnd.subjects:
        lines += ["", "[[subjects]]", f"name = {_q(sub.name)}", f"form = {_q(sub.form_id)}"]
        if sub.post:
            lines.append(f"post = {_q(sub.post)}")
        if sub.person and sub.person.staff_no:
            lines.append(f"staff_no = {_q(sub.person.staff_no)}")
    for form_id, form in in_form_order(rnd.forms):
        if form.get("items_per_round"):
            items = ", ".join(_q(i["text"]) for i in form["items"])
            lines += ["", f"[forms.{form_id}]", f"items = [{items}]"]
    return "\n".join(lines) + "\n"


def _q(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)
