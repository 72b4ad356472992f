"""A province's years (issue 18): every archive page against a long history, on both engines.

The history is built through the product's own operations — ``round_file.import_round``,
``codes.issue_batch``, ``lifecycle.open_round``, ballots cast one by one with
``voting.views.cast_ballot`` (sealed into the round's box, as a phone's POST does),
``lifecycle.close_round`` inside ``write_transaction`` and ``lifecycle.archive_round`` — as
``units`` county units under 甘肃省局 (and its cities), each with one round per year for
``years`` years. Each round rates six subjects: the unit's 领导班子, its 主要负责人, three 班子成员
and the principal's 廉洁自律, over cadres who stay in their unit from year to year (four per
unit: 800 cadres at 200 units). Few voters per round (``VOTERS``): the point is the length of
the history, not the size of a hall.

At each size (a ``Shape``, units × years, each one containing the last, so the same database
grows) the pages are measured twice:

* served by gunicorn with the production settings (``harness.Server``, two workers), logged in
  as an admin of the whole tree: the median time of several requests per page, the size of
  the answer, and ``flask archive export`` (time and peak RSS, started from a small process so
  that the RSS is the command's own) beside a baseline measured in the same run (starting the
  command plus XlsxWriter writing as many cells); after every page the workers' resident memory;
* in-process, with a Flask test client and an SQLAlchemy ``before_cursor_execute`` listener:
  how many SQL statements each page runs.

    python -m benchmarks.history [--sizes 10x2,10x4] [--engines sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from benchmarks import harness

ACTOR = "历史基准"
ROOT_UNIT = "甘肃省局"
CITIES = (
    "兰州市局",
    "天水市局",
    "白银市局",
    "武威市局",
    "张掖市局",
    "酒泉市局",
    "平凉市局",
    "庆阳市局",
    "定西市局",
    "陇南市局",
    "金昌市局",
    "嘉峪关市局",
    "临夏州局",
    "甘南州局",
)
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文斌辉鹏飞宇浩凯"
FIRST_YEAR = 2016
VOTERS = 6  # ballots per round
MEMBERS = 3  # 班子成员 per unit, beside the principal
SEARCH = "县局"  # matches every county unit and every cadre in one (units and people lists)
STAFF_SEARCH = "H"  # matches every cadre's 工号 and no unit: the people list alone
PASSWORD = "history-bench-password"
ADMIN = "history-admin"
INTEGRITY_ITEMS = ["严格执行中央八项规定精神", "管好配偶子女和身边工作人员"]


@dataclass(frozen=True)
class Shape:
    """``units`` county units × ``years`` years: one round each."""

    units: int
    years: int

    @property
    def rounds(self) -> int:
        """One round per unit and year."""
        return self.units * self.years

    @property
    def label(self) -> str:
        """e.g. "200×10 = 2,000 轮"."""
        return f"{self.units}×{self.years} = {self.rounds:,} 轮"

    @classmethod
    def parse(cls, text: str) -> Shape:
        """ "200x10" → Shape(200, 10)."""
        units, _, years = text.lower().replace("×", "x").partition("x")
        return cls(int(units), int(years))


def unit_path(index: int) -> str:
    """The county unit ``index`` (0-based): 甘肃省局/<city>/<city>第NNN县局."""
    city = CITIES[index % len(CITIES)]
    return f"{ROOT_UNIT}/{city}/{city[:-1]}第{index + 1:03d}县局"


def cadre(index: int, k: int) -> tuple[str, str]:
    """(name, staff number) of cadre ``k`` (0 = the principal) of unit ``index``."""
    n = index * (MEMBERS + 1) + k
    name = SURNAMES[n % len(SURNAMES)] + GIVEN[(n // len(SURNAMES)) % len(GIVEN)]
    if n >= len(SURNAMES) * len(GIVEN):
        name += GIVEN[(n // (len(SURNAMES) * len(GIVEN))) % len(GIVEN)]
    return name, f"H{index + 1:03d}{k}"


def round_data(index: int, year: int, voters: int = VOTERS) -> dict[str, Any]:
    """The round file of unit ``index`` for ``year``: six subjects, one stratum."""
    principal, principal_no = cadre(index, 0)
    subjects: list[dict[str, Any]] = [
        {"name": "领导班子", "form": "gansu-team"},
        {"name": principal, "form": "gansu-principal", "post": "局长", "staff_no": principal_no},
    ]
    for k in range(1, MEMBERS + 1):
        name, staff_no = cadre(index, k)
        subjects.append(
            {"name": name, "form": "gansu-member", "post": "副局长", "staff_no": staff_no}
        )
    subjects.append(
        {"name": f"{principal}（廉洁自律）", "form": "gansu-integrity", "staff_no": principal_no}
    )
    return {
        "title": f"{year}年度党风廉政建设责任制民主测评",
        "unit": unit_path(index),
        "year": year,
        "mode": "集中",
        "min_turnout": "2/3",
        "strata": [{"name": "全体干部", "codes": voters}],
        "subjects": subjects,
        "forms": {"gansu-integrity": {"items": INTEGRITY_ITEMS}},
    }


def _answers(layout: list[Any], rng: random.Random) -> list[tuple[int, str, str | None]]:
    """A ballot: mostly good grades, some poor ones and 弃权, so that some flags are raised."""
    out = []
    for s in layout:
        for q in s.questions:
            values = [c.value for c in q.choices]
            value = values[0] if rng.random() < 0.55 else rng.choice(values)
            out.append((s.subject_id, q.item, None if value == "abstain" else value))
    return out


def add_round(index: int, year: int, rng: random.Random, voters: int = VOTERS) -> float:
    """Import, issue codes, open, vote, close and archive one round; seconds the close took."""
    from types import SimpleNamespace

    from evaluation.codes import codes
    from evaluation.extensions import db
    from evaluation.models import Round
    from evaluation.rounds import lifecycle
    from evaluation.rounds.round_file import import_round
    from evaluation.transactions import write_transaction
    from evaluation.voting.ballot import ballot_layout
    from evaluation.voting.views import cast_ballot

    with write_transaction():
        rnd = import_round(round_data(index, year, voters), actor=ACTOR)
        stratum = rnd.strata[0]
        issued = codes.issue_batch(rnd, stratum, voters, actor=ACTOR)
        lifecycle.open_round(rnd, actor=ACTOR)
    round_id, stratum_id = rnd.id, stratum.id
    held = SimpleNamespace(id=rnd.id, created_at=rnd.created_at)
    layout = ballot_layout(rnd)
    for code in issued.codes:
        cast_ballot(codes.code_digest(code), held, stratum_id, layout, _answers(layout, rng))  # type: ignore[arg-type]
    started = time.perf_counter()
    with write_transaction():
        lifecycle.close_round(db.session.get_one(Round, round_id), actor=ACTOR)
    took = time.perf_counter() - started
    with write_transaction():
        lifecycle.archive_round(db.session.get_one(Round, round_id), actor=ACTOR)
    db.session.remove()
    return took


@dataclass
class Built:
    """What has been built so far in one database, and what the build cost."""

    done: set[tuple[int, int]] = field(default_factory=set)
    closes: list[float] = field(default_factory=list)
    seconds: float = 0.0


def grow(
    shape: Shape,
    built: Built,
    *,
    seed: int = 18,
    voters: int = VOTERS,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Add the rounds of ``shape`` not built yet (year by year, unit by unit)."""
    todo = [
        (u, y) for y in range(shape.years) for u in range(shape.units) if (u, y) not in built.done
    ]
    started = time.perf_counter()
    for number, (u, y) in enumerate(todo, 1):
        rng = random.Random(seed * 1_000_003 + u * 1009 + y)
        built.closes.append(add_round(u, FIRST_YEAR + y, rng, voters))
        built.done.add((u, y))
        if progress is not None and (number % 50 == 0 or number == len(todo)):
            progress(number, len(todo))
    built.seconds += time.perf_counter() - started


def ensure_admin() -> None:
    """An admin of the whole tree (no unit) who reads every page."""
    from evaluation.accounts.operations import create_user
    from evaluation.extensions import db
    from evaluation.models import User
    from evaluation.transactions import write_transaction

    if db.session.execute(db.select(User).where(User.username == ADMIN)).first() is None:
        with write_transaction():
            create_user(actor=ACTOR, username=ADMIN, password=PASSWORD, role="admin")


def analyze() -> None:
    """Fresh planner statistics after a bulk build (what a DBA would run after a load)."""
    from sqlalchemy import text

    from evaluation.extensions import db

    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
    else:
        db.session.execute(text("ANALYZE"))
        db.session.commit()


# --- the pages -----------------------------------------------------------------------------------


def pages() -> dict[str, str]:
    """Page label → path, for the history in the current app context."""
    from sqlalchemy import func

    from evaluation.extensions import db
    from evaluation.models import Person, Round, Unit

    def unit_id(path: str) -> int:
        return int(db.session.execute(db.select(Unit.id).where(Unit.path == path)).scalar_one())

    last_round = db.session.execute(db.select(func.max(Round.id))).scalar_one()
    person_id = db.session.execute(
        db.select(Person.id).where(Person.staff_no == cadre(0, 0)[1])
    ).scalar_one()
    return {
        "/ 首页（测评活动）": "/",
        "/archive/flags": "/archive/flags",
        f"/archive/unit/<根> {ROOT_UNIT}": f"/archive/unit/{unit_id(ROOT_UNIT)}",
        "/archive/unit/<县局>": f"/archive/unit/{unit_id(unit_path(0))}",
        "/archive/flags?unit=<县局>": f"/archive/flags?unit={unit_id(unit_path(0))}",
        "/archive/person/<id>": f"/archive/person/{person_id}",
        "/archive/export.xlsx": "/archive/export.xlsx",
        f"/archive?q={SEARCH}": "/archive?" + urllib.parse.urlencode({"q": SEARCH}),
        f"/archive?q={STAFF_SEARCH}（工号）": "/archive?"
        + urllib.parse.urlencode({"q": STAFF_SEARCH}),
        "/units 单位": "/units",
        "/rounds/<id> 最近的测评活动": f"/rounds/{last_round}",
    }


def _origin() -> str:
    """Where in the project a statement comes from: the innermost frames of the app's code."""
    mine = [
        f"{Path(f.filename).parent.name}/{Path(f.filename).name}:{f.lineno} {f.name}"
        for f in traceback.extract_stack()
        if ("/evaluation/" in f.filename or "/templates/" in f.filename)
        and not f.filename.endswith("transactions.py")
    ]
    return " ← ".join(reversed(mine[-2:]))


class Statement(NamedTuple):
    """One SQL statement run: its text, where in the app it came from, its parameters."""

    sql: str
    origin: str
    params: Any


@contextmanager
def counting(engine: Any) -> Iterator[list[Statement]]:
    """Every SQL statement ``engine`` runs inside the block, in order."""
    from sqlalchemy import event

    seen: list[Statement] = []

    def listener(_conn: Any, _cursor: Any, sql: str, params: Any, *_rest: Any) -> None:
        seen.append(Statement(sql, _origin(), params))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listener)


_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def login_client(client: Any, username: str = ADMIN, password: str = PASSWORD) -> None:
    """Log a Flask test client in through the login page."""
    page = client.get("/login").get_data(as_text=True)
    token = _TOKEN.search(page)
    assert token, "no CSRF token on /login"
    reply = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token.group(1)}
    )
    assert reply.status_code == 302, f"login failed: HTTP {reply.status_code}"


def statement_counts(app: Any, paths: dict[str, str]) -> dict[str, tuple[int, list[Statement]]]:
    """Label → (statements the page ran, the statements), for the admin with a test client.

    Call it with no application context active: each request then has its own, as under a
    server (nothing cached in ``g`` from one request to the next). Each page is requested once
    before it is counted: per-process caches (forms, rule sets) are not what is counted.
    """
    from evaluation.extensions import db

    with app.app_context():
        engine = db.engine
    client = app.test_client()
    login_client(client)
    out = {}
    for label, path in paths.items():
        client.get(path)
        with counting(engine) as seen:
            reply = client.get(path)
        assert reply.status_code == 200, f"{path}: HTTP {reply.status_code}"
        out[label] = (len(seen), list(seen))
    return out


_PARAMETER = r"(?:\?|%\(\w+\)s(?:::\w+)?|\$\d+)"
_PARAMETERS = re.compile(rf"\({_PARAMETER}(?:, {_PARAMETER})*\)")


def repeated(statements: list[Statement], at_least: int = 3) -> list[tuple[int, str]]:
    """Statements (numbers and parameter lists ignored) run ``at_least`` times from one place
    in the code, most repeated first, as "origin: statement"."""
    shapes: dict[str, int] = {}
    for sql, origin, _params in statements:
        flat = _PARAMETERS.sub("(…)", sql)
        flat = re.sub(r"^SELECT .*? FROM ", "SELECT … FROM ", " ".join(flat.split()))
        key = origin + ": " + re.sub(r"\b\d+\b", "N", flat)
        shapes[key] = shapes.get(key, 0) + 1
    return sorted(((n, s) for s, n in shapes.items() if n >= at_least), reverse=True)


# --- over HTTP -----------------------------------------------------------------------------------


def _cookie(reply: harness.Reply, cookie: str | None) -> str | None:
    found = reply.headers.get("set-cookie")
    return found.split(";", 1)[0] if found else cookie


def http_login(port: int) -> str:
    """A session cookie of the admin, through the real login page."""
    page = harness.request("GET", harness.LOOPBACK, port, "/login")
    cookie = _cookie(page, None)
    token = _TOKEN.search(page.body)
    assert token, "no CSRF token on /login"
    body = urllib.parse.urlencode(
        {"username": ADMIN, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    reply = harness.request("POST", harness.LOOPBACK, port, "/login", body=body, cookie=cookie)
    if reply.status != 302:
        raise RuntimeError(f"登录失败：HTTP {reply.status}")
    cookie = _cookie(reply, cookie)
    assert cookie
    return cookie


@dataclass
class PageTime:
    """One page served by gunicorn: median seconds, bytes, status, requests made."""

    median: float
    size: int
    status: int
    requests: int


def _get(port: int, cookie: str, path: str) -> harness.Reply:
    """One GET; a dropped connection (a worker killed at gunicorn's timeout) is status 0."""
    started = time.perf_counter()
    try:
        return harness.request("GET", harness.LOOPBACK, port, path, cookie=cookie, timeout=120)
    except (OSError, http.client.HTTPException):
        return harness.Reply(0, {}, "", time.perf_counter() - started)


def time_page(port: int, cookie: str, path: str, *, repeat: int, budget: float) -> PageTime:
    """Median of ``repeat`` requests after one warm-up (fewer when a page takes long: at least
    three, then only while ``budget`` seconds last); a page that fails is timed once."""
    first = _get(port, cookie, path)
    if first.status != 200:
        return PageTime(first.seconds, len(first.body.encode()), first.status, 1)
    times: list[float] = []
    spent = first.seconds
    while len(times) < repeat and (len(times) < 3 or spent < budget):
        reply = _get(port, cookie, path)
        times.append(reply.seconds)
        spent += reply.seconds
    return PageTime(statistics.median(times), len(first.body.encode()), first.status, len(times))


def worker_rss_mib(server: harness.Server) -> list[float]:
    """Resident memory of each gunicorn worker (MiB), from /proc."""
    if server.process is None or not Path("/proc").exists():
        return []
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = harness._proc_stat(entry)
        if stat is None or stat[1] != server.process.pid:
            continue
        try:
            for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out.append(int(line.split()[1]) / 1024)
        except OSError:
            continue
    return sorted(out)


# Runs a command and reports its peak memory. The command is started from this small process,
# not from the benchmark's own (which holds the built history): on Linux a process's peak RSS
# starts from that of the process it was forked from, so a command started directly from here
# would report the benchmark's size, not its own.
_PEAK = (
    "import resource, subprocess, sys\n"
    "status = subprocess.call(sys.argv[1:])\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(f'peak-kib {peak}', file=sys.stderr)\n"
    "sys.exit(status)\n"
)


def _run_flask(args: list[str], url: str, workdir: Path) -> tuple[float, float, list[str]]:
    """``flask ARGS`` as an official runs it: (seconds, peak RSS MiB, lines printed)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as log, tempfile.TemporaryFile() as peak:
        status = subprocess.call(
            [sys.executable, "-c", _PEAK, str(harness.BIN / "flask"), *args],
            cwd=harness.ROOT,
            env=harness.server_env(url, workdir),
            stdout=log,
            stderr=peak,
        )
        seconds = time.perf_counter() - started
        log.seek(0)
        lines = log.read().decode("utf-8", "replace").strip().splitlines()
        peak.seek(0)
        errors = peak.read().decode("utf-8", "replace").strip().splitlines()
    if status != 0:
        said = [line for line in errors + lines if not line.startswith("peak-kib ")]
        raise RuntimeError(f"flask {args[0]} 失败：{said[-1] if said else status}")
    kib = next((int(line.split()[1]) for line in errors if line.startswith("peak-kib ")), 0)
    return seconds, kib / 1024, lines


def cli_export(url: str, workdir: Path) -> tuple[float, float, str]:
    """``flask archive export --out FILE``: (seconds, peak RSS MiB, first line printed)."""
    out = workdir / "archive-export.xlsx"
    seconds, rss, lines = _run_flask(["archive", "export", "--out", str(out)], url, workdir)
    return seconds, rss, lines[0] if lines else ""


def export_baseline(url: str, workdir: Path, entries: int) -> float:
    """What any export of ``entries`` entries costs at least on this machine, now: starting the
    command (``flask archive export --help``) plus XlsxWriter itself writing as many rows of
    as many bordered cells (text and numbers) as sheets 档案记录 and 核验 hold, in constant
    memory. Measured beside the export, so that a noisy machine's speed cancels out."""
    import xlsxwriter

    from evaluation.archive.export import CHECK_COLUMNS, ENTRY_COLUMNS

    startup, _, _ = _run_flask(["archive", "export", "--help"], url, workdir)
    started = time.perf_counter()
    book = xlsxwriter.Workbook(str(workdir / "baseline.xlsx"), {"constant_memory": True})
    cell_format = book.add_format({"border": 1, "text_wrap": True, "valign": "vcenter"})
    for name, columns in (("档案记录", len(ENTRY_COLUMNS)), ("核验", len(CHECK_COLUMNS))):
        sheet = book.add_worksheet(name)
        for row in range(entries):
            for column in range(columns):
                if column % 3:
                    sheet.write_string(row, column, f"甘肃省局/某某县局 {row}", cell_format)
                else:
                    sheet.write_number(row, column, row / 7, cell_format)
    book.close()
    return startup + time.perf_counter() - started


# --- one engine, every size ---------------------------------------------------------------------


@dataclass
class Measured:
    """Everything measured at one size on one engine."""

    shape: Shape
    entries: int
    persons: int
    answers: int
    build_s: float
    times: dict[str, PageTime]
    statements: dict[str, int]
    repeats: dict[str, list[tuple[int, str]]]
    export_s: float
    export_baseline_s: float  # starting a command + XlsxWriter writing as many cells
    export_rss_mib: float
    export_line: str
    worker_rss_mib: list[float]
    closes_ms: tuple[float, float]  # median close of the first and of the last rounds built


def _counts() -> tuple[int, int, int]:
    from sqlalchemy import func

    from evaluation.extensions import db
    from evaluation.models import Answer, ArchiveEntry, Person

    def n(model: Any) -> int:
        return int(db.session.execute(db.select(func.count()).select_from(model)).scalar_one())

    return n(ArchiveEntry), n(Person), n(Answer)


def _close_medians(closes: list[float]) -> tuple[float, float]:
    tenth = max(1, len(closes) // 10)
    return (
        statistics.median(closes[:tenth]) * 1000,
        statistics.median(closes[-tenth:]) * 1000,
    )


def run_engine(
    engine: str,
    shapes: list[Shape],
    *,
    repeat: int = 5,
    budget: float = 20.0,
    say: Callable[[str], None] = print,
) -> list[Measured]:
    """Build each shape in turn in one database, measure its pages; one ``Measured`` each."""
    results = []
    with tempfile.TemporaryDirectory(prefix=f"bench-history-{engine}-") as tmp:
        workdir = Path(tmp)
        url = harness.fresh_database(engine, workdir)
        built = Built()
        for shape in shapes:
            with harness.app_context(url, workdir) as app:
                before = built.seconds
                grow(
                    shape,
                    built,
                    progress=lambda done, total: say(f"      已建 {done}/{total} 轮"),
                )
                ensure_admin()
                analyze()
                entries, persons, answers = _counts()
                paths = pages()
            counted = statement_counts(app, paths)
            build_s = built.seconds - before
            say(
                f"    {shape.label}：{entries:,} 条档案，{persons:,} 名干部，{answers:,} 条答案；"
                f"建 {build_s:.0f} s"
            )
            times: dict[str, PageTime] = {}
            with harness.Server(url, workdir, workers=2) as server:
                cookie = http_login(server.port)
                for label, path in paths.items():
                    times[label] = time_page(
                        server.port, cookie, path, repeat=repeat, budget=budget
                    )
                    t = times[label]
                    say(
                        f"      {label}: {t.median * 1000:.0f} ms（HTTP {t.status}，"
                        f"{t.size / 1024:.0f} KiB，{counted[label][0]} 条语句）"
                    )
                rss = worker_rss_mib(server)
            export_s, export_rss, export_line = cli_export(url, workdir)
            baseline = export_baseline(url, workdir, entries)
            say(
                f"      flask archive export: {export_s:.1f} s，峰值 {export_rss:.0f} MiB；"
                f"基线（启动 + XlsxWriter 写同样多单元格）{baseline:.1f} s，"
                f"比值 {export_s / baseline:.2f}×"
            )
            results.append(
                Measured(
                    shape=shape,
                    entries=entries,
                    persons=persons,
                    answers=answers,
                    build_s=build_s,
                    times=times,
                    statements={k: v[0] for k, v in counted.items()},
                    repeats={k: repeated(v[1]) for k, v in counted.items()},
                    export_s=export_s,
                    export_baseline_s=baseline,
                    export_rss_mib=export_rss,
                    export_line=export_line,
                    worker_rss_mib=rss,
                    closes_ms=_close_medians(built.closes),
                )
            )
    return results


# --- the table ----------------------------------------------------------------------------------


def _cell(t: PageTime) -> str:
    text = f"{t.median * 1000:.0f} ms（{t.size / 1024:.0f} KiB）"
    return text if t.status == 200 else f"{text} **HTTP {t.status or '连接断开'}**"


def table(engine: str, measured: list[Measured]) -> str:
    """Per page: time at each size, growth factor beside the data's, statements at each size."""
    first, last = measured[0], measured[-1]
    data = last.entries / max(1, first.entries)
    sizes = " | ".join(m.shape.label for m in measured)
    lines = [
        f"**{engine}**：档案记录 {' → '.join(f'{m.entries:,}' for m in measured)}"
        f"（数据增长 {data:.1f}×）",
        "",
        f"| 页面 | {sizes} | 时间增长 | 数据增长 | SQL 语句数 |",
        "| --- | " + " | ".join("---" for _ in measured) + " | --- | --- | --- |",
    ]
    for label in first.times:
        cells = [_cell(m.times[label]) for m in measured]
        growth = last.times[label].median / max(first.times[label].median, 1e-6)
        counts = " → ".join(str(m.statements[label]) for m in measured)
        lines.append(
            f"| `{label}` | " + " | ".join(cells) + f" | {growth:.1f}× | {data:.1f}× | {counts} |"
        )
    export = [f"{m.export_s:.1f} s，峰值 {m.export_rss_mib:.0f} MiB" for m in measured]
    growth = last.export_s / max(first.export_s, 1e-6)
    lines.append(
        "| `flask archive export` | " + " | ".join(export) + f" | {growth:.1f}× | {data:.1f}× | — |"
    )
    floor = [
        f"{m.export_baseline_s:.1f} s，比值 {m.export_s / max(m.export_baseline_s, 1e-6):.2f}×"
        for m in measured
    ]
    lines.append(
        "| 导出基线（启动命令 + XlsxWriter 写同样多单元格，同次测得） | "
        + " | ".join(floor)
        + " | — | — | — |"
    )
    rss = [
        " / ".join(f"{r:.0f}" for r in m.worker_rss_mib) + " MiB" if m.worker_rss_mib else "—"
        for m in measured
    ]
    lines.append("| gunicorn 每个工作进程内存（各页之后） | " + " | ".join(rss) + " | — | — | — |")
    closes = [f"{m.closes_ms[0]:.0f} → {m.closes_ms[1]:.0f} ms" for m in measured]
    lines.append(
        "| 结束测评一轮（最早 10 % → 最近 10 % 的中位数） | "
        + " | ".join(closes)
        + " | — | — | — |"
    )
    return "\n".join(lines)


def repeats_text(measured: list[Measured]) -> str:
    """For each page whose statement count grows: the statements that repeat most."""
    first, last = measured[0], measured[-1]
    lines = []
    for label in first.statements:
        if last.statements[label] > first.statements[label]:
            lines.append(
                f"- `{label}`：{first.statements[label]} → {last.statements[label]} 条语句"
            )
            for n, statement in last.repeats[label][:3]:
                lines.append(f"    - ×{n}：`{statement[:300]}`")
    return "\n".join(lines) or "- 各页语句数不随数据增长"


def main(argv: list[str] | None = None) -> int:
    """Print the table per engine."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.history")
    parser.add_argument("--sizes", default="10x2,10x4", help="单位数x年数，逗号分隔，逐个增长")
    parser.add_argument("--engines", default=None, help="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=5, help="每页请求次数（取中位数）")
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)
    shapes = [Shape.parse(s) for s in args.sizes.split(",") if s.strip()]
    harness.compile_sources()
    if args.engines:
        engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    else:
        engines = ["sqlite"] + (["postgresql"] if harness.bench_postgres_url() else [])
    for engine in engines:
        print(f"[历史] {engine}：{', '.join(s.label for s in shapes)} …", flush=True)
        measured = run_engine(engine, shapes, repeat=args.repeat)
        print("\n" + table(engine, measured) + "\n\n" + repeats_text(measured) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
