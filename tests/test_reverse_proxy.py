"""README's nginx example in front of two gunicorn app servers that share one database.

The nginx configuration is read from README.md itself; only its ports, certificate and log
paths are changed (each change is asserted, so a README edit that breaks them fails here).
Through it: HTTP is redirected to HTTPS; voters vote over HTTPS and their requests reach both
app servers; failed code entries are counted per real client address (``TRUSTED_PROXIES=1``),
a forged ``X-Forwarded-For`` changes nothing, and valid codes are never throttled; the
session cookie is Secure; no voting code reaches nginx's logs or gunicorn's, whatever shape
the request gives it (percent-encoded, upper case, in a query, in a malformed request line).

Needs nginx and openssl (``.ci/run`` installs nginx) and Redis (``TEST_REDIS_URL``), which the
two app servers share for their rate-limit counters as README says they must.
"""

from __future__ import annotations

import http.client
import os
import random
import re
import shutil
import socket
import ssl
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks import harness
from tests.helpers.databases import BACKENDS, fresh_side_database
from tests.helpers.leaks import ORDINARY_TARGETS, holds_code, raw_requests, send_raw
from tests.helpers.voters import token_of

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
PASSWORD = "proxy-test-password-1"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(NGINX is None, reason="未安装 nginx（make nginx）：跳过反向代理测试"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="未安装 openssl：跳过反向代理测试"),
    pytest.mark.skipif(not REDIS_URL, reason="TEST_REDIS_URL 未设置：跳过反向代理测试"),
]


def readme_nginx_config() -> str:
    """The nginx example of README.md, as a reader would copy it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.findall(r"```nginx\n(.*?)```", readme, re.S)
    assert len(found) == 1, "README.md should hold exactly one nginx example"
    return found[0]


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"README 的 nginx 示例里找不到 {old!r}"
    return text.replace(old, new)


def local_config(tmp: Path, http_port: int, https_port: int, upstreams: list[int]) -> str:
    """README's example on loopback ports, with a throwaway certificate and logs in ``tmp``."""
    site = readme_nginx_config()
    site = _replace(site, "listen 80;", f"listen 127.0.0.1:{http_port};")
    site = _replace(site, "listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
    site = _replace(site, "/etc/nginx/tls/ceping.crt", str(tmp / "tls.crt"))
    site = _replace(site, "/etc/nginx/tls/ceping.key", str(tmp / "tls.key"))
    site = _replace(site, "/var/log/nginx/evaluation.log", str(tmp / "access.log"))
    site = _replace(site, "/var/log/nginx/error.log", str(tmp / "error.log"))
    servers = "\n    ".join(f"server 127.0.0.1:{port};" for port in upstreams)
    site = _replace(site, "server 127.0.0.1:8000;", servers)
    temp = tmp / "temp"
    temp.mkdir()
    # The workers run as root only here, so they can use the temporary directories below.
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""
{user}
daemon off;
worker_processes 1;
pid {tmp / "nginx.pid"};
error_log {tmp / "error.log"};
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {temp / "body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};
    access_log {tmp / "other-access.log"};
{site}
}}
"""


def self_signed_certificate(tmp: Path) -> None:
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1",
            "-keyout", str(tmp / "tls.key"), "-out", str(tmp / "tls.crt"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex((harness.LOOPBACK, port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port}")


_RADIO = re.compile(r'<input type="radio"[^>]*name="([^"]+)" value="([^"]+)"')


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    set_cookies: list[str]
    body: str


class Client:
    """A phone at its own address (127.x.y.z), talking HTTPS to nginx; keeps its cookie."""

    def __init__(self, https_port: int, address: str) -> None:
        self.port = https_port
        self.address = address
        self.cookie: str | None = None

    def fetch(
        self,
        method: str,
        path: str,
        body: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the throwaway certificate of this test
        conn = http.client.HTTPSConnection(
            harness.LOOPBACK, self.port, context=context, timeout=30,
            source_address=(self.address, 0),
        )  # fmt: skip
        sent = dict(headers or {})
        if self.cookie:
            sent["Cookie"] = self.cookie
        data = None
        if body is not None:
            data = urllib.parse.urlencode(body)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            text = response.read().decode("utf-8", errors="replace")
            cookies = response.headers.get_all("Set-Cookie") or []
            found = {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()
        for cookie in cookies:
            self.cookie = cookie.split(";", 1)[0]
        return Reply(response.status, found, cookies, text)

    def vote(self, code: str) -> Reply:
        scan = self.fetch("GET", f"/v/{code}")
        assert scan.status == 302 and scan.headers["location"].endswith("/ballot"), scan.status
        assert code not in scan.headers["location"]
        assert scan.set_cookies and all("Secure" in c for c in scan.set_cookies)
        page = self.fetch("GET", "/ballot")
        assert page.status == 200, page.status
        answers: dict[str, str] = {}
        for name, value in _RADIO.findall(page.body):
            answers.setdefault(name, value)
        return self.fetch("POST", "/ballot", {**answers, "csrf_token": token_of(page.body)})


def client_address() -> str:
    """A loopback address no earlier run used (Redis keeps counters for the limit's window)."""
    return "127.{}.{}.{}".format(*(random.randint(1, 254) for _ in range(3)))


@pytest.fixture
def proxied(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, object]]:
    engine = request.param
    pg_url = fresh_side_database("proxy") if engine == "postgresql" else None
    url = harness.fresh_database(engine, tmp_path, pg_url)
    _round_id, codes = harness.open_hall_round(url, tmp_path, 4)
    with harness.app_context(url, tmp_path):
        from evaluation.accounts.operations import create_user
        from evaluation.extensions import db

        create_user(actor="test", username="admin", password=PASSWORD, role="admin")
        db.session.commit()
    http_port, https_port = harness.free_port(), harness.free_port()
    env = {
        "TRUSTED_PROXIES": "1",
        "SESSION_COOKIE_SECURE": "1",
        "PUBLIC_BASE_URL": f"https://127.0.0.1:{https_port}",
        "RATELIMIT_STORAGE_URI": REDIS_URL,
        "CODE_ENTRY_RATE_LIMIT": "3 per 10 minutes",
    }
    servers = [harness.Server(url, tmp_path, workers=2, env=env) for _ in range(2)]
    self_signed_certificate(tmp_path)
    conf = tmp_path / "nginx.conf"
    conf.write_text(local_config(tmp_path, http_port, https_port, [s.port for s in servers]))
    checked = subprocess.run(
        [str(NGINX), "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    nginx: subprocess.Popen[bytes] | None = None
    try:
        for server in servers:
            server.start()
        nginx = subprocess.Popen(
            [str(NGINX), "-p", str(tmp_path), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(https_port)
        yield {
            "http_port": http_port,
            "https_port": https_port,
            "codes": codes,
            "servers": servers,
            "tmp": tmp_path,
        }
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(timeout=15)
        for server in servers:
            server.stop()


@pytest.mark.parametrize("proxied", BACKENDS, indirect=True)
def test_readme_nginx_in_front_of_two_app_servers(proxied: dict[str, object]) -> None:
    https_port = int(str(proxied["https_port"]))
    http_port = int(str(proxied["http_port"]))
    codes = list(proxied["codes"])  # type: ignore[call-overload]
    servers: list[harness.Server] = proxied["servers"]  # type: ignore[assignment]
    tmp = Path(str(proxied["tmp"]))

    # Plain HTTP only redirects to HTTPS.
    conn = http.client.HTTPConnection(harness.LOOPBACK, http_port, timeout=10)
    conn.request("GET", f"/v/{codes[0]}")
    redirect = conn.getresponse()
    assert redirect.status == 301 and redirect.getheader("Location", "").startswith("https://")
    conn.close()

    # Votes over HTTPS, the app servers taking turns behind nginx.
    voters = [Client(https_port, client_address()) for _ in range(3)]
    for voter, code in zip(voters, codes, strict=False):
        thanks = voter.vote(code)
        assert thanks.status == 200 and 'id="receipt"' in thanks.body
        assert thanks.headers.get("strict-transport-security")
    served = [s.log_text().count('"POST /ballot') for s in servers]
    assert all(n >= 1 for n in served), f"both app servers should have taken votes: {served}"

    # An official logs in over HTTPS. Their browser sends a same-origin Referer (the pages'
    # policy), which Flask-WTF compares with the Host nginx passes on: it must keep the port.
    official = Client(https_port, client_address())
    form = official.fetch("GET", "/login")
    assert form.status == 200
    referer = {"Referer": f"https://127.0.0.1:{https_port}/login"}
    login = {"username": "admin", "password": PASSWORD, "csrf_token": token_of(form.body)}
    logged_in = official.fetch("POST", "/login", login, headers=referer)
    assert logged_in.status == 302, logged_in.body[-600:]
    assert official.fetch("GET", logged_in.headers["location"]).status == 200

    # Failed entries count per real client address, shared by both app servers through Redis.
    guesser, neighbour = Client(https_port, client_address()), Client(https_port, client_address())
    wrong = "/v/AAAA-BBBB-CCCC-DDDD-EEEE"
    assert [guesser.fetch("GET", wrong).status for _ in range(3)] == [404, 404, 404]
    assert guesser.fetch("GET", wrong).status == 429
    # Another phone behind the same nginx is not punished for it …
    assert neighbour.fetch("GET", wrong).status == 404
    # … a forged X-Forwarded-For does not make the guesser someone else …
    forged = {"X-Forwarded-For": neighbour.address}
    assert guesser.fetch("GET", wrong, headers=forged).status == 429
    # … and a valid code is never throttled, not even for the guesser.
    assert guesser.fetch("GET", f"/v/{codes[3]}").status == 302

    # No code in any log: nginx's access and error logs, and both app servers' output.
    names = ("access.log", "error.log", "other-access.log")  # the last: nginx's default log
    logs = {name: (tmp / name).read_text(errors="replace") for name in names}
    logs |= {f"gunicorn {s.port}": s.log_text() for s in servers}
    assert "/v/[redacted]" in logs["access.log"]
    leaked = {name for name, text in logs.items() for code in codes if code in text}
    assert not leaked, f"a voting code reached these logs: {sorted(leaked)}"


@pytest.mark.parametrize("proxied", ["sqlite"], indirect=True)
def test_readme_nginx_logs_no_code_in_any_shape(proxied: dict[str, object]) -> None:
    """The requests gunicorn's test sends (tests/test_serving.py), to nginx over HTTP and
    HTTPS: README's ``map`` hides the same set in nginx's access log, its error log stays
    quiet, and gunicorn behind it hides them too."""
    https_port = int(str(proxied["https_port"]))
    http_port = int(str(proxied["http_port"]))
    codes = list(proxied["codes"])  # type: ignore[call-overload]
    servers: list[harness.Server] = proxied["servers"]  # type: ignore[assignment]
    tmp = Path(str(proxied["tmp"]))

    requests = raw_requests(codes[0], codes[1], f"127.0.0.1:{https_port}")
    for request in requests:
        assert send_raw(https_port, request, tls=True).startswith(b"HTTP/1.1 ")
        assert send_raw(http_port, request).startswith(b"HTTP/1.1 ")
    for target in ORDINARY_TARGETS:
        ordinary = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        send_raw(https_port, ordinary.encode(), tls=True)

    names = ("access.log", "error.log", "other-access.log")
    logs = {name: (tmp / name).read_text(errors="replace") for name in names}
    logs |= {f"gunicorn {s.port}": s.log_text() for s in servers}
    access = logs["access.log"]
    # Every request was logged, each with its code hidden (nginx does not log the headers) …
    assert access.count("[redacted]") >= 2 * (len(requests) - 2), access
    leaked = {name for name, text in logs.items() for code in codes if holds_code(text, code)}
    assert not leaked, f"a voting code reached these logs: {sorted(leaked)}\n{access}"
    # … and ordinary requests are logged as they came.
    for target in ORDINARY_TARGETS:
        assert f'"GET {target} HTTP/1.1"' in access
