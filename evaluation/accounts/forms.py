"""Account forms: creating an account and changing a password."""

from __future__ import annotations

from wtforms import PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from evaluation.accounts.operations import MIN_PASSWORD_LENGTH, ROLE_LABELS
from evaluation.forms import ChineseForm
from evaluation.models import Role


class UserForm(ChineseForm):
    """新建账号."""

    username = StringField(
        "用户名",
        validators=[DataRequired("请填写用户名"), Length(max=80, message="不能超过 80 字")],
    )
    role = SelectField(
        "角色",
        choices=[SelectChoice(r.value, label) for r, label in ROLE_LABELS.items()],
        default=Role.ORGANISER.value,
    )
    unit = StringField(
        "所属单位（完整路径，如 甘肃省局/兰州市局；管理员可不填）",
        validators=[Optional(), Length(max=1000, message="不能超过 1000 字")],
    )
    password = PasswordField(
        "密码",
        validators=[
            DataRequired("请填写密码"),
            Length(min=MIN_PASSWORD_LENGTH, message="密码至少 8 位"),
        ],
    )
    password2 = PasswordField(
        "再次输入密码",
        validators=[DataRequired("请再次输入密码"), EqualTo("password", "两次输入的密码不一致")],
    )


class PasswordChangeForm(ChineseForm):
    """修改密码: the current password, and the new one twice."""

    current = PasswordField("当前密码", validators=[DataRequired("请填写当前密码")])
    password = PasswordField(
        "新密码",
        validators=[
            DataRequired("请填写新密码"),
            Length(min=MIN_PASSWORD_LENGTH, message=f"密码至少 {MIN_PASSWORD_LENGTH} 位"),
        ],
    )
    password2 = PasswordField(
        "再次输入新密码",
        validators=[DataRequired("请再次输入新密码"), EqualTo("password", "两次输入的密码不一致")],
    )
