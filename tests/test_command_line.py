"""SPEC §11: every ``flask`` command refuses bad input with one line of Chinese and a non-zero
exit — its own refusals and the command line's (a missing, unknown or malformed argument)
alike, never Click's English usage text."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["verify", "abc"],
            "错误：'ROUND_ID' 的值不对：“abc”不是整数（用法见 flask verify --help）",
        ),
        (["verify"], "错误：缺少参数 'ROUND_ID'（用法见 flask verify --help）"),
        (["verify", "1", "2"], "错误：多余的参数：2（用法见 flask verify --help）"),
        (["verify", "99"], "错误：测评活动 99 不存在"),
        (["round", "close"], "错误：缺少参数 'ROUND_ID'（用法见 flask round close --help）"),
        (
            ["round", "bogus"],
            "错误：没有命令 flask round bogus（可用：archive、close、import、open、tick、void）",
        ),
        (
            ["archive", "export", "--out", "x.xlsx", "--bogus"],
            "错误：没有选项 --bogus（用法见 flask archive export --help）",
        ),
        (
            ["codes", "issue", "1", "--stratum", "甲", "--count", "2", "--csv"],
            "错误：选项 --csv 后面要给一个值",
        ),
        (
            ["user", "create", "x", "--role", "king"],
            "错误：'--role' 的值不对：“king”不是可选的值（'admin', 'organiser', 'viewer', "
            "'counter'）（用法见 flask user create --help）",
        ),
        (
            ["report", "1.5"],
            "错误：'ROUND_ID' 的值不对：“1.5”不是整数（用法见 flask report --help）",
        ),
    ],
)
def test_a_mistaken_command_line_is_one_chinese_line(
    runner: Any, users: Any, args: list[str], line: str
) -> None:
    result = runner.invoke(args=args, prog_name="flask")
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [line]


def test_help_is_still_help(runner: Any) -> None:
    for args in (["round"], ["round", "--help"], ["verify", "--help"]):
        result = runner.invoke(args=args)
        assert "Usage:" in result.output and "错误" not in result.output, args


def test_every_command_and_option_of_ours_is_described_in_chinese(app: Any) -> None:
    """``flask --help`` and each command's ``--help`` speak the officials' language (Flask's
    own ``db``, ``run``, ``shell``, ``routes`` and the limiter's are theirs)."""
    import re

    import click

    from evaluation import app as factory

    cjk = re.compile(r"[\u4e00-\u9fff]")
    ours = factory.COMMANDS
    seen = []
    for command in ours:
        commands = (
            list(command.commands.values()) if isinstance(command, click.Group) else [command]
        )
        for each in [command, *commands]:
            seen.append(each.name)
            assert cjk.search(each.get_short_help_str(limit=200)), each.name
            for param in each.params:
                if isinstance(param, click.Option) and param.help is not None:
                    assert cjk.search(param.help), (each.name, param.name)
                if isinstance(param, click.Option) and not param.is_flag:
                    assert param.help, (each.name, param.name)
    assert {"verify", "issue", "export", "close", "create"} <= set(seen)
