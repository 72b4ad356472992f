"""Shared machinery for the load test, the fault test and the submission benchmark.

A fresh database (SQLite file or a dedicated PostgreSQL database), a round with codes issued
by ``evaluation.codes.codes``, gunicorn started with the project's ``gunicorn.conf.py`` on a
loopback port in its own process group (always killed in ``finally``), and simulated phones that go
through the real pages: ``GET /v/<code>`` → ``GET /ballot`` → ``POST /ballot``, which answers
with the thanks page.
"""

from __future__ import annotations

import http.client
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECRET = "benchmark-secret-not-for-production"
LOOPBACK = "127.0.0.1"


def hall_round(voters: int) -> dict[str, Any]:
    """The shipped sample round file as a hall of ``voters``: one stratum, its own unit."""
    from evaluation.rounds.round_file import parse_round_text, sample_round_text

    data = parse_round_text(sample_round_text())
    data["title"] = "压力测试：全体大会民主测评"
    data["unit"] = "甘肃省局/压测市局"
    data["strata"] = [{"name": "全体参会人员", "codes": voters}]
    for subject in data["subjects"]:
        if "staff_no" in subject:
            subject["staff_no"] = f"LOAD-{subject['staff_no']}"
    return data


# --- databases --------------------------------------------------------------------------------


def compile_sources() -> None:
    """Byte-compile the project, as an installed copy is: a server or command started by a
    benchmark then loads bytecode instead of compiling 90 modules from source (0.15–0.3 s per
    process where PYTHONDONTWRITEBYTECODE is set, as on some build machines)."""
    import compileall

    compileall.compile_dir(ROOT / "evaluation", quiet=1)
    for name in ("wsgi.py", "config.py"):
        compileall.compile_file(ROOT / name, quiet=1)


def bench_postgres_url() -> str | None:
    """BENCH_DATABASE_URL: a PostgreSQL database used only for benchmarks (it is wiped)."""
    url = os.environ.get("BENCH_DATABASE_URL", "").strip()
    if not url:
        return None
    from sqlalchemy.engine import make_url

    name = make_url(url).database or ""
    if "bench" not in name:
        raise SystemExit(
            f"BENCH_DATABASE_URL 的库名“{name}”不含 bench：基准测试会清空该库，"
            "为防误删，请使用专用的库（如 createdb bench）"
        )
    return url


def app_config(url: str, workdir: Path) -> dict[str, Any]:
    """The settings the benchmark's own process and its servers share."""
    return {
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": SECRET,
        "CODE_HASH_KEY": None,
        "ENVIRONMENT": "production",
        "REPORTS_DIR": str(workdir / "reports"),
        "PUBLIC_BASE_URL": f"http://{LOOPBACK}",
        "RATELIMIT_STORAGE_URI": "memory://",
    }


def server_env(url: str, workdir: Path) -> dict[str, str]:
    """Environment for a gunicorn started on ``url`` (same keys as ``app_config``)."""
    env = dict(os.environ)
    for key in ("CODE_HASH_KEY", "GUNICORN_CMD_ARGS", "WEB_CONCURRENCY", "BIND"):
        env.pop(key, None)
    env.update(
        DATABASE_URL=url,
        SECRET_KEY=SECRET,
        EVALUATION_ENV="production",
        REPORTS_DIR=str(workdir / "reports"),
        PUBLIC_BASE_URL=f"http://{LOOPBACK}",
        RATELIMIT_STORAGE_URI="memory://",
        # Loopback only, limits are not what is measured: per-process counters are fine here.
        RATELIMIT_MEMORY_ACCEPTED="1",
        # Nothing is scheduled in a benchmark: no scheduler turns in the measurements.
        SCHEDULE_INTERVAL="0",
        INSTANCE_DIR=str(workdir / "instance"),
        FLASK_APP="wsgi",
        PYTHONPATH=str(ROOT),
    )
    return env


def fresh_database(engine: str, workdir: Path, pg_url: str | None = None) -> str:
    """An empty database with the project's migrations applied; returns its URL.

    PostgreSQL: ``pg_url`` or BENCH_DATABASE_URL, whose public schema is dropped first.
    """
    from sqlalchemy import create_engine, text

    if engine == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
    else:
        pg = pg_url or bench_postgres_url()
        if pg is None:
            raise SystemExit("PostgreSQL 需要 BENCH_DATABASE_URL（专用于基准测试的库）")
        url = pg
        wipe = create_engine(url)
        with wipe.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        wipe.dispose()
    from flask_migrate import upgrade

    from evaluation import create_app
    from evaluation.extensions import db

    app = create_app(app_config(url, workdir))
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()
    return url


@contextmanager
def app_context(url: str, workdir: Path) -> Iterator[Any]:
    """An app context on ``url`` with the servers' keys (for setup and checks)."""
    import logging

    from evaluation import create_app
    from evaluation.extensions import db

    logging.getLogger("alembic").setLevel(logging.WARNING)
    app = create_app(app_config(url, workdir))
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


def open_hall_round(url: str, workdir: Path, voters: int) -> tuple[int, list[str]]:
    """Import the hall round, issue ``voters`` codes with ``evaluation.codes.codes``, open it."""
    from evaluation.codes import codes
    from evaluation.extensions import db
    from evaluation.rounds import lifecycle
    from evaluation.rounds.round_file import import_round

    with app_context(url, workdir):
        rnd = import_round(hall_round(voters), actor="压力测试")
        stratum = rnd.strata[0]
        issued = codes.issue_batch(rnd, stratum, voters, actor="压力测试")
        lifecycle.open_round(rnd, actor="压力测试")
        db.session.commit()
        return rnd.id, list(issued.codes)


# --- gunicorn ---------------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


class Server:
    """gunicorn on a loopback port, in its own process group; ``stop``/``kill`` end it all.

    ``env`` adds to (or overrides) the environment of ``server_env``.
    """

    def __init__(
        self,
        url: str,
        workdir: Path,
        *,
        app: str = "wsgi:app",
        workers: int | None = None,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.workdir = workdir
        self.app = app
        self.workers = workers
        self.port = port or free_port()
        self.extra_env = env or {}
        self.log_path = workdir / f"gunicorn-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Server:
        """Start gunicorn and wait until it answers."""
        (self.workdir / "instance").mkdir(exist_ok=True)
        command = [
            str(BIN / "gunicorn"),
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            "--bind",
            f"{LOOPBACK}:{self.port}",
            # No recycling mid-measurement.
            "--max-requests",
            "0",
        ]
        if self.workers:
            command += ["--workers", str(self.workers)]
        command.append(self.app)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        try:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**server_env(self.url, self.workdir), **self.extra_env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn 启动失败，见 {self.log_path}")
            try:
                status = request("GET", LOOPBACK, self.port, "/login", timeout=5).status
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn 在 {timeout:.0f} 秒内没有就绪，见 {self.log_path}")

    def _signal_group(self, sig: int) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL the master and every worker at once (a crash, not a shutdown)."""
        self._signal_group(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """Graceful stop, then SIGKILL whatever is left of the process group."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        self._signal_group(signal.SIGKILL)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass

    def log_text(self) -> str:
        """Everything gunicorn and the app wrote (access log included)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


# --- where the CPU goes -----------------------------------------------------------------------


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: str) -> tuple[str, int, float] | None:
    """(command name, parent pid, CPU seconds used) of a process, from /proc (Linux)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    # Fields after the name: state ppid … utime (12th) stime (13th).
    return name, int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds used so far by the app server's workers, the database server and us."""

    server: float
    database: float
    client: float

    def __sub__(self, other: CpuUse) -> CpuUse:
        return CpuUse(
            self.server - other.server, self.database - other.database, self.client - other.client
        )

    def __add__(self, other: CpuUse) -> CpuUse:
        return CpuUse(
            self.server + other.server, self.database + other.database, self.client + other.client
        )

    def per(self, units: int) -> dict[str, float]:
        """Milliseconds per unit (request or ballot) of each part."""
        if units <= 0:
            return {"server": 0.0, "database": 0.0, "client": 0.0}
        return {
            "server": self.server / units * 1000,
            "database": self.database / units * 1000,
            "client": self.client / units * 1000,
        }


def cpu_use(server: Server) -> CpuUse | None:
    """CPU used by ``server``'s gunicorn workers, local PostgreSQL processes and this process.

    None where /proc is missing (not Linux). The database figure counts every process named
    ``postgres`` on this machine (0 for SQLite, which runs inside the workers).
    """
    if server.process is None or not Path("/proc/self/stat").exists():
        return None
    import resource

    master = server.process.pid
    workers = database = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _proc_stat(entry)
        if stat is None:
            continue
        name, parent, seconds = stat
        if parent == master:
            workers += seconds
        elif name == "postgres":
            database += seconds
    own = resource.getrusage(resource.RUSAGE_SELF)
    return CpuUse(workers, database, own.ru_utime + own.ru_stime)


# --- HTTP, like a phone -----------------------------------------------------------------------


@dataclass
class Reply:
    """One HTTP response."""

    status: int
    headers: dict[str, str]
    body: str
    seconds: float


def request(
    method: str,
    host: str,
    port: int,
    path: str,
    *,
    body: str | None = None,
    cookie: str | None = None,
    timeout: float = 30.0,
) -> Reply:
    """One request on a fresh connection (sync workers close each connection anyway)."""
    if host not in (LOOPBACK, "localhost", "::1"):
        raise ValueError("benchmarks talk to loopback addresses only")
    headers = {"Connection": "close", "User-Agent": "evaluation-loadtest"}
    if cookie:
        headers["Cookie"] = cookie
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    started = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", errors="replace")
        found = {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()
    return Reply(response.status, found, text, time.perf_counter() - started)


_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
_RADIO = re.compile(r'<input type="radio"[^>]*name="([^"]+)" value="([^"]+)"')
_RECEIPT = re.compile(r'id="receipt">\s*([^<\s]+)')


class Refused(Exception):
    """The server answered something a voter should not see (or did not answer)."""

    def __init__(self, step: str, detail: str, *, maybe_counted: bool = False) -> None:
        super().__init__(f"{step}: {detail}")
        self.step = step
        self.maybe_counted = maybe_counted


@dataclass
class VoterOutcome:
    """What one simulated voter saw."""

    code: str
    receipt: str | None = None
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    attempts: int = 0
    already_used: bool = False


class Phone:
    """One voter's phone: a cookie jar and the three requests of voting."""

    def __init__(self, port: int, timeout: float = 30.0, rng: random.Random | None = None) -> None:
        self.port = port
        self.timeout = timeout
        self.cookie: str | None = None
        self.rng = rng or random.Random()

    def _call(self, step: str, method: str, path: str, body: str | None = None) -> Reply:
        try:
            reply = request(
                method,
                LOOPBACK,
                self.port,
                path,
                body=body,
                cookie=self.cookie,
                timeout=self.timeout,
            )
        except (OSError, http.client.HTTPException) as exc:
            raise Refused(step, type(exc).__name__, maybe_counted=(step == "submit")) from None
        set_cookie = reply.headers.get("set-cookie")
        if set_cookie:
            self.cookie = set_cookie.split(";", 1)[0]
        return reply

    def vote(self, code: str, outcome: VoterOutcome, *, think: float = 0.0) -> None:
        """Scan, read the ballot, submit a full ballot, read the receipt on the thanks page.

        ``think`` seconds pass between the ballot page and the submit (a person filling it in).
        """
        scan = self._call("scan", "GET", f"/v/{code}")
        if scan.status == 409:
            outcome.already_used = True
            raise Refused("scan", "409 测评码已使用")
        if scan.status != 302 or not scan.headers.get("location", "").endswith("/ballot"):
            raise Refused("scan", f"HTTP {scan.status}")
        page = self._call("ballot", "GET", "/ballot")
        if page.status != 200:
            raise Refused("ballot", f"HTTP {page.status}")
        token = _TOKEN.search(page.body)
        choices: dict[str, list[str]] = {}
        for name, value in _RADIO.findall(page.body):
            choices.setdefault(name, []).append(value)
        if token is None or not choices:
            raise Refused("ballot", "选票页缺少表单")
        answers = {name: self.rng.choice(values) for name, values in choices.items()}
        body = urllib.parse.urlencode({**answers, "csrf_token": token.group(1)})
        if think > 0:
            time.sleep(think)
        submit = self._call("submit", "POST", "/ballot", body)
        receipt = _RECEIPT.search(submit.body)
        if submit.status != 200 or receipt is None:
            raise Refused("submit", f"HTTP {submit.status}", maybe_counted=submit.status >= 500)
        outcome.timings = {
            "scan": scan.seconds,
            "ballot": page.seconds,
            "submit": submit.seconds,
        }
        outcome.receipt = receipt.group(1)


@dataclass
class LoadResult:
    """Everything a run of simulated voters saw."""

    outcomes: list[VoterOutcome]
    seconds: float

    @property
    def thanked(self) -> list[VoterOutcome]:
        """Voters who saw the thanks page with a receipt."""
        return [o for o in self.outcomes if o.receipt]

    @property
    def errors(self) -> list[VoterOutcome]:
        """Voters who did not get to the thanks page."""
        return [o for o in self.outcomes if not o.receipt]

    def step_latencies(self, step: str) -> list[float]:
        """Seconds per request of one step, over every voter that finished."""
        return [o.timings[step] for o in self.thanked if step in o.timings]

    def flow_latencies(self) -> list[float]:
        """Seconds from scan to thanks (sum of the three requests) per voter."""
        return [sum(o.timings.values()) for o in self.thanked]


def drive_voters(
    port: int,
    codes: list[str],
    *,
    concurrency: int,
    deadline_seconds: float,
    retry_until: float | None = None,
    seed: int = 7,
    on_progress: Any = None,
) -> LoadResult:
    """Every code votes once, ``concurrency`` at a time, within ``deadline_seconds``.

    With ``retry_until`` set (the fault test), a voter whose request failed — the server was
    killed — tries again like a person would: scan the code again until the deadline; a code
    that answers 409 was counted before the crash, without its voter seeing the thanks page.
    """
    started = time.perf_counter()
    hard_stop = time.monotonic() + deadline_seconds
    done = 0
    lock = threading.Lock()

    def one(index: int) -> VoterOutcome:
        nonlocal done
        code = codes[index]
        outcome = VoterOutcome(code)
        rng = random.Random(seed * 100003 + index)
        while True:
            outcome.attempts += 1
            if time.monotonic() > hard_stop:
                outcome.error = outcome.error or "deadline: 未在时限内完成"
                break
            try:
                Phone(
                    port, timeout=min(30.0, max(1.0, hard_stop - time.monotonic())), rng=rng
                ).vote(code, outcome)
                outcome.error = None
                break
            except Refused as exc:
                outcome.error = str(exc)
                if outcome.already_used or retry_until is None or time.monotonic() > retry_until:
                    break
                time.sleep(0.2)
        with lock:
            done += 1
            if on_progress is not None:
                on_progress(done)
        return outcome

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        outcomes = list(pool.map(one, range(len(codes))))
    return LoadResult(outcomes, time.perf_counter() - started)


# Seconds a voter of ``drive_hall`` takes to fill in the ballot (uniform between the two).
HALL_THINK_SECONDS = (1.0, 4.0)


def drive_hall(
    port: int,
    codes: list[str],
    *,
    spread_seconds: float,
    think_seconds: tuple[float, float] = HALL_THINK_SECONDS,
    deadline_seconds: float,
    seed: int = 11,
) -> LoadResult:
    """A hall at its own pace: voters arrive at random within ``spread_seconds``.

    Each scans, reads the ballot, takes ``think_seconds`` (uniform) to fill it in and submits;
    an open loop, unlike ``drive_voters``, where each voter starts the moment another ends.
    """
    rng = random.Random(seed)
    arrivals = [rng.uniform(0.0, spread_seconds) for _ in codes]
    started = time.perf_counter()
    start = time.monotonic()
    hard_stop = start + deadline_seconds

    def one(index: int) -> VoterOutcome:
        outcome = VoterOutcome(codes[index])
        own = random.Random(seed * 100003 + index)
        time.sleep(max(0.0, start + arrivals[index] - time.monotonic()))
        outcome.attempts = 1
        try:
            Phone(port, timeout=max(1.0, hard_stop - time.monotonic()), rng=own).vote(
                codes[index], outcome, think=own.uniform(*think_seconds)
            )
        except Refused as exc:
            outcome.error = str(exc)
        return outcome

    with ThreadPoolExecutor(max_workers=max(1, len(codes))) as pool:
        outcomes = list(pool.map(one, range(len(codes))))
    return LoadResult(outcomes, time.perf_counter() - started)


# --- figures and invariants -----------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(round(share * len(ordered) + 0.5))))
    return ordered[rank - 1]


def latency_summary(values: list[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds."""
    return {
        "p50": percentile(values, 0.50) * 1000,
        "p95": percentile(values, 0.95) * 1000,
        "p99": percentile(values, 0.99) * 1000,
        "max": (max(values) if values else 0.0) * 1000,
    }


@dataclass
class Ledger:
    """What the database holds for a round after the load."""

    ballots: int
    used_codes: int
    unused_codes: int
    receipts: int
    answers: int
    questions_per_ballot: int
    receipts_missing: int


def ledger(url: str, workdir: Path, round_id: int, receipts_seen: list[str]) -> Ledger:
    """Count ballots, codes, receipts; check that every receipt a voter saw is stored.

    While the round is open its ballots are sealed in its box: they are opened here with the
    server's key to be counted, in a transaction that is rolled back (nothing changes).
    """
    from sqlalchemy import func, select

    from evaluation.codes import codes
    from evaluation.extensions import db
    from evaluation.models import Answer, Ballot, Code, CodeState, Receipt, Round, RoundState
    from evaluation.voting import box
    from evaluation.voting.ballot import ballot_layout

    def count(query: Any) -> int:
        return int(db.session.execute(query).scalar_one())

    with app_context(url, workdir):
        rnd = db.session.get_one(Round, round_id)
        questions = sum(len(s.questions) for s in ballot_layout(rnd))
        per_state = dict(
            db.session.execute(
                select(Code.state, func.count())
                .where(Code.round_id == round_id)
                .group_by(Code.state)
            ).all()
        )
        used = int(per_state.get(CodeState.USED, 0))
        unused = int(per_state.get(CodeState.UNUSED, 0))
        stored = set(
            db.session.execute(select(Receipt.digest).where(Receipt.round_id == round_id)).scalars()
        )
        # Rows written in clear (after close, or by the benchmark's minimal-route baseline).
        ballots = count(select(func.count()).select_from(Ballot).where(Ballot.round_id == round_id))
        answers = count(
            select(func.count())
            .select_from(Answer)
            .join(Ballot, Ballot.id == Answer.ballot_id)
            .where(Ballot.round_id == round_id)
        )
        if rnd.state == RoundState.OPEN:
            opened = box.open_box(rnd, None, codes.hash_key())
            db.session.rollback()
            stored |= set(opened.receipts)
            ballots += len(opened.ballots)
            answers += sum(len(b.answers) for b in opened.ballots)
            used, unused = used + len(opened.digests), unused - len(opened.digests)
        missing = sum(1 for r in receipts_seen if codes.receipt_digest(r) not in stored)
        return Ledger(
            ballots=ballots,
            used_codes=used,
            unused_codes=unused,
            receipts=len(stored),
            answers=answers,
            questions_per_ballot=questions,
            receipts_missing=missing,
        )


def close_and_verify(url: str, workdir: Path, round_id: int) -> tuple[bool, str]:
    """Close the round (shuffle + seal) in-process, then run ``flask verify ID`` as a user would."""
    from evaluation.extensions import db
    from evaluation.models import Round
    from evaluation.rounds import lifecycle
    from evaluation.transactions import write_transaction

    with app_context(url, workdir):
        rnd = db.session.get_one(Round, round_id)
        with write_transaction():  # the close scrubs the old rows once it has committed
            lifecycle.close_round(rnd, actor="压力测试")
        sealed = bool(rnd.seal)
    done = subprocess.run(
        [str(BIN / "flask"), "verify", str(round_id)],
        cwd=ROOT,
        env=server_env(url, workdir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = (done.stdout + done.stderr).strip().splitlines()
    last = output[-1] if output else ""
    return (
        sealed and done.returncode == 0,
        f"flask verify {round_id} → 退出码 {done.returncode}：{last}",
    )


def codes_in_log(log: str, plaintexts: list[str]) -> int:
    """How many codes appear in a log, in any spelling (grouped or not)."""
    from evaluation.codes.codes import normalise

    flat = log.upper()
    return sum(1 for c in plaintexts if c.upper() in flat or normalise(c) in flat)
