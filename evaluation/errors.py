"""Domain errors: refusals a user can understand, each with its Chinese title and status.

Pure (no Flask): ``evaluation.web`` turns them into pages, ``evaluation.cli`` into one-line exits.
"""

from __future__ import annotations


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
