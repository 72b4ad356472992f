"""The web layer every page shares: error pages, security headers, template helpers.

Domain errors (``evaluation.errors``) become Chinese pages with the right status here and only
here, and every error rolls back what the request had done (STYLE §9).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any

from flask import Flask, Response, flash, g, redirect, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from evaluation.errors import DomainError, InputError
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
        return {"url_map_endpoints": set(app.view_functions), "state_label": state_label}


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
        return (
            render_template(
                "errors/error.html",
                status=error.status,
                title=error.title,
                message=error.message,
                problems=getattr(error, "problems", []),
            ),
            error.status,
        )

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError):  # type: ignore[no-untyped-def]
        message = "页面已过期或来源不明（CSRF 校验失败），请刷新页面后重新提交。"
        return render_template(
            "errors/error.html", status=400, title="请求已过期", message=message
        ), 400

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):  # type: ignore[no-untyped-def]
        db.session.rollback()
        status = error.code or 500
        title, default = HTTP_MESSAGES.get(status, ("出错了", "请求无法完成。"))
        message = default
        # abort(404, "…") passes a Chinese description through; Werkzeug's English defaults don't.
        if error.description and error.description != type(error).description:
            message = error.description
        return (
            render_template("errors/error.html", status=status, title=title, message=message),
            status,
        )

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
            title, message = HTTP_MESSAGES[503]
            page = render_template("errors/error.html", status=503, title=title, message=message)
            return page, 503, {"Retry-After": "5"}
        log.error("未处理的错误 %s %s: %s", request.method, path, type(error).__name__)
        title, message = HTTP_MESSAGES[500]
        return render_template("errors/error.html", status=500, title=title, message=message), 500


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
