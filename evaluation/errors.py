"""Domain errors and the one place that turns errors into Chinese pages (STYLE §9)."""

from __future__ import annotations

import logging

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A refusal the user can understand; ``message`` is shown as is, in Chinese."""

    status = 400
    title = "无法完成操作"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FormError(DomainError):
    """A ballot form file or snapshot is invalid."""

    title = "测评表有误"


class InputError(DomainError):
    """Bad input from a user (round file, Excel sheet, web form); nothing was stored."""

    title = "输入有误"

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class NotFound(DomainError):
    """The thing asked for does not exist (or is outside the user's units)."""

    status = 404
    title = "未找到"


class Forbidden(DomainError):
    """The user may not do this."""

    status = 403
    title = "无权操作"


class StateError(DomainError):
    """The round is not in a state that allows this action."""

    status = 409
    title = "测评活动状态不允许此操作"


# --- voting (SPEC §6): statuses are part of the HTTP contract ---------------------------------


class CodeUnknown(DomainError):
    """No such code (or a void one)."""

    status = 404
    title = "测评码无效"


class CodeAlreadyUsed(DomainError):
    """The code has been used to vote already."""

    status = 409
    title = "测评码已使用"


class RoundNotOpen(DomainError):
    """The round has not opened yet."""

    status = 403
    title = "测评尚未开始"


class RoundClosed(DomainError):
    """The round is closed (or archived, or void)."""

    status = 403
    title = "测评已结束"


class BallotIncomplete(DomainError):
    """A ballot misses answers or carries a grade the form does not have."""

    status = 400
    title = "选票填写不完整"


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(DomainError)
    def _domain(error: DomainError):  # type: ignore[no-untyped-def]
        from evaluation.extensions import db

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

    from flask_wtf.csrf import CSRFError

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError):  # type: ignore[no-untyped-def]
        message = "页面已过期或来源不明（CSRF 校验失败），请刷新页面后重新提交。"
        return render_template(
            "errors/error.html", status=400, title="请求已过期", message=message
        ), 400

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):  # type: ignore[no-untyped-def]
        from evaluation.extensions import db

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
        from evaluation.extensions import db
        from evaluation.logfilter import redact

        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection may be gone; the page must still render
            db.session.remove()
        # The path alone: a form body could hold a code or a choice (SPEC §5.4).
        path = redact(request.path)
        if _is_database_down(error):
            log.warning("数据库暂时不可用 %s %s: %s", request.method, path, type(error).__name__)
            # The page must not reach for the database again (the header shows the user).
            from flask import g

            from evaluation.extensions import login_manager

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
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

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
