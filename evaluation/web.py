"""The web layer every page shares: error pages, security headers, template helpers.

Domain errors (``evaluation.errors``) become Chinese pages with the right status here and only
here, and every error rolls back what the request had done (STYLE §9).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any

from flask import Flask, Response, flash, g, make_response, redirect, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from evaluation import formatting
from evaluation.errors import (
    CodeAlreadyUsed,
    CodeUnknown,
    DomainError,
    InputError,
    RoundClosed,
    RoundNotOpen,
)
from evaluation.extensions import db, login_manager
from evaluation.logfilter import RedactCodes, redact
from evaluation.rounds.state import state_label

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Error pages, headers and template helpers for every page."""
    register_error_pages(app)
    register_security_headers(app)
    register_template_helpers(app)


def done(message: str, target: str) -> Response:
    """Go back with a message (the commit point commits when the view returns)."""
    flash(message, "success")
    return redirect(target, 303)  # type: ignore[return-value]


def refused(error: InputError, target: str) -> Response:
    """Nothing is stored; show every problem above the page the user came from."""
    db.session.rollback()
    for text in [error.message, *error.problems]:
        flash(text, "error")
    return redirect(target, 303)  # type: ignore[return-value]


def register_template_helpers(app: Flask) -> None:
    """Values every template may use."""

    @app.context_processor
    def _helpers() -> dict[str, Any]:
        return {
            "url_map_endpoints": set(app.view_functions),
            "state_label": state_label,
            "on_voting_path": on_voting_path,
        }

    for name, function in formatting.FILTERS.items():
        app.add_template_filter(function, name)


# The voter's pages (SPEC §6): what a code, a QR code or a receipt opens. The organiser's
# ballot preview (``/rounds/<id>/preview``) is in the voting blueprint but is not one of them.
VOTING_PATHS = ("/v", "/ballot", "/thanks", "/receipt")

# Voting pages load nothing from anywhere but this server, run no script, and leak no referrer.
VOTING_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def on_voting_path() -> bool:
    """True when the request is for a voter's page (a refusal or an unknown address included)."""
    if request.blueprint == "voting":
        return request.endpoint != "voting.preview"
    path = request.path
    return any(path == p or path.startswith(p + "/") for p in VOTING_PATHS)


def voting_headers(response: Response) -> Response:
    """The strict headers of every voting page, refusals and unknown addresses included."""
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    response.headers["Content-Security-Policy"] = VOTING_CSP
    return response


def safe_filename(name: str, fallback: str = "download") -> str:
    """A file name safe for a download or a ZIP entry: no path, no ``..``, no control chars.

    Chinese stays as it is; path separators, ".." and characters Windows refuses become "_",
    so a stratum named "../../x" cannot take a ZIP entry or a saved file out of its folder.
    """
    text = unicodedata.normalize("NFC", name or "")
    text = "".join("_" if unicodedata.category(ch).startswith("C") else ch for ch in text)
    text = _UNSAFE_IN_NAME.sub("_", text)
    while ".." in text:
        text = text.replace("..", "_")
    text = text.strip(" ._")
    return text[:180] or fallback


_UNSAFE_IN_NAME = re.compile(r'[\\/:*?"<>|]+')


def register_security_headers(app: Flask) -> None:
    """Headers every page gets; voting pages add stricter ones in ``evaluation.voting.views``.

    Every page but static files is ``no-store``: organiser pages show results, codes, archives
    and accounts, and a shared computer's browser cache must not keep them. HSTS goes on
    HTTPS responses, and on every response in production (behind a TLS-terminating proxy).
    """

    @app.after_request
    def _headers(response):  # type: ignore[no-untyped-def]
        if request.endpoint != "static" and "no-store" not in (
            response.headers.get("Cache-Control") or ""
        ):
            response.headers["Cache-Control"] = "no-store"
        seconds = int(app.config.get("HSTS_SECONDS") or 0)
        if seconds and (request.is_secure or app.config.get("ENVIRONMENT") == "production"):
            response.headers.setdefault(
                "Strict-Transport-Security", f"max-age={seconds}; includeSubDomains"
            )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
        return response

    logging.getLogger("werkzeug").addFilter(RedactCodes())


def register_error_pages(app: Flask) -> None:
    """Map domain errors and HTTP errors to Chinese pages, rolling back what the request did."""

    @app.errorhandler(DomainError)
    def _domain(error: DomainError):  # type: ignore[no-untyped-def]
        db.session.rollback()
        advice = VOTING_ADVICE.get(type(error), "")
        return error_page(
            error.status,
            error.title,
            error.message,
            problems=getattr(error, "problems", []),
            advice=advice,
        )

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError):  # type: ignore[no-untyped-def]
        if on_voting_path():
            title, message, advice = VOTING_CSRF
            return error_page(400, title, message, advice=advice)
        message = "页面已过期或来源不明（CSRF 校验失败），请刷新页面后重新提交。"
        return error_page(400, "请求已过期", message)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):  # type: ignore[no-untyped-def]
        db.session.rollback()
        status = error.code or 500
        title, default = HTTP_MESSAGES.get(status, ("出错了", "请求无法完成。"))
        advice = ""
        if on_voting_path():
            title, default, advice = VOTING_HTTP_MESSAGES.get(status, (title, default, ""))
        message = default
        # abort(404, "…") passes a Chinese description through; Werkzeug's English defaults don't.
        if error.description and error.description != type(error).description:
            message = error.description
        return error_page(status, title, message, advice=advice)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):  # type: ignore[no-untyped-def]
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection may be gone; the page must still render
            db.session.remove()
        # The path alone: a form body could hold a code or a choice (SPEC §5.4).
        path = redact(request.path)
        if _is_database_down(error):
            log.warning("数据库暂时不可用 %s %s: %s", request.method, path, type(error).__name__)
            # The page must not reach for the database again (the header shows the user).
            g._login_user = login_manager.anonymous_user()
            response = _http_error_page(503)
            response.headers["Retry-After"] = "5"
            return response
        log.error("未处理的错误 %s %s: %s", request.method, path, type(error).__name__)
        return _http_error_page(500)


def _http_error_page(status: int) -> Response:
    title, message = HTTP_MESSAGES[status]
    advice = ""
    if on_voting_path():
        title, message, advice = VOTING_HTTP_MESSAGES[status]
    return error_page(status, title, message, advice=advice)


def error_page(
    status: int,
    title: str,
    message: str,
    *,
    problems: list[str] | tuple[str, ...] = (),
    advice: str = "",
) -> Response:
    """The error page: a title and what happened in words, what to do, and a way on.

    A voter's page keeps the voting header and the voting pages' strict headers, and shows
    no status number; an organiser's page names the status only in small print.
    """
    voting = on_voting_path()
    page = render_template(
        "errors/error.html",
        status=status,
        title=title,
        message=message,
        problems=list(problems),
        advice=advice if voting else "",
    )
    response = make_response(page, status)
    return voting_headers(response) if voting else response


# What a voter can do next, beside the refusal's own words (which say what happened).
VOTING_ADVICE: dict[type[DomainError], str] = {
    CodeUnknown: "测评码印在发给您的测评码条上；输错了可以重新输入。",
    CodeAlreadyUsed: (
        "如果是您本人投的票，无需再做什么，测评结束后可凭回执码查询选票是否已计入。"
        "如果您没有投过票，请告诉组织者，由组织者核实。"
    ),
    RoundNotOpen: "请保管好测评码条，测评开始后重新扫码或输入测评码即可投票。",
    RoundClosed: "这次测评的测评码都不能再使用。已经投过票的，可凭回执码查询选票是否已计入。",
}

VOTING_CSRF = (
    "页面已过期",
    "选票页面打开的时间太久，或已在别处提交过，这次提交没有被记录。",
    "请重新扫码或输入测评码，打开选票后重新填写提交。如果测评码已经用过，页面会告诉您。",
)

# On a voter's path: (title, what happened, what to do) — in words, never a bare status number.
VOTING_HTTP_MESSAGES: dict[int, tuple[str, str, str]] = {
    400: (
        "提交的内容有误",
        "页面收到的内容不完整或有误，选票没有被记录。",
        "请重新扫码或输入测评码，打开选票后再提交。",
    ),
    403: (
        "不能打开这个页面",
        "这个页面不对测评人开放。",
        "请扫描测评码条上的二维码，或输入测评码后投票。",
    ),
    404: (
        "没有这个页面",
        "这个地址不是投票页面，可能输错了或不完整。",
        "请重新扫描测评码条上的二维码，或点击下方“输入测评码”。",
    ),
    405: (
        "不能这样打开此页面",
        "这个页面只能从投票页面提交。",
        "请扫描测评码条上的二维码，或输入测评码后投票。",
    ),
    409: (
        "与当前状态冲突",
        "这次操作与测评码或测评活动当前的状态冲突，没有被记录。",
        "请重新输入测评码，页面会说明测评码现在的状态。",
    ),
    413: (
        "提交的内容过大",
        "这次提交的内容过大，没有被记录。",
        "请重新扫码或输入测评码，打开选票后再提交。",
    ),
    429: (
        "尝试次数过多",
        "短时间内的尝试次数过多，暂时不能继续。",
        "请稍等几分钟后再试，并核对测评码。",
    ),
    500: (
        "系统出错了",
        "系统出现了错误，这次操作可能没有完成。",
        "请稍后重新扫码或输入测评码：如果选票已经记录，页面会告诉您测评码已使用。",
    ),
    503: (
        "服务暂不可用",
        "数据库暂时无法连接，这次操作没有被保存。",
        "请稍等片刻后重新提交；如果选票已经记录，页面会告诉您测评码已使用。",
    ),
}


def _is_database_down(error: Exception) -> bool:
    """True for errors that mean "the database cannot serve now", not a bug.

    Connection refused or lost, the server shutting down, SQLite's lock wait running out: all
    are DBAPI ``OperationalError``/``InterfaceError`` (or a connection SQLAlchemy invalidated).
    """
    if isinstance(error, OperationalError | InterfaceError):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


HTTP_MESSAGES: dict[int, tuple[str, str]] = {
    400: ("请求有误", "提交的内容有误，请返回检查后重试。"),
    403: ("无权访问", "您没有权限访问此页面。"),
    404: ("页面不存在", "您访问的页面不存在，请检查地址。"),
    405: ("请求方式不正确", "此页面不支持该请求方式。"),
    409: ("操作冲突", "该操作与当前状态冲突。"),
    413: ("文件过大", "上传的文件过大。"),
    429: ("操作过于频繁", "操作过于频繁，请稍后再试。"),
    500: ("系统错误", "系统出现错误，请稍后重试。如问题持续，请联系管理员。"),
    503: ("服务暂不可用", "数据库暂时无法连接，请稍后重试。您的操作没有被保存。"),
}
