"""Account forms: creating an account, changing a password, and the unit tree."""

from __future__ import annotations

from wtforms import PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from evaluation.accounts.operations import MIN_PASSWORD_LENGTH, ROLE_LABELS
from evaluation.forms import ChineseForm
from evaluation.models import Role

NO_UNIT = 0


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
    # Choices are the units of the admin's tree, set by the view (``NO_UNIT`` for an admin of
    # the whole tree only); a unit is never created here, only on the 单位 page.
    unit_id = SelectField("所属单位", coerce=int, default=NO_UNIT)
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


class NewUnitForm(ChineseForm):
    """新建下级单位: the parent picked from the admin's tree, the name typed."""

    parent_id = SelectField("上级单位", coerce=int)
    name = StringField(
        "单位名称（本级名称，如 榆中县局）",
        validators=[DataRequired("请填写单位名称"), Length(max=200, message="不能超过 200 字")],
    )


class RenameUnitForm(ChineseForm):
    """改名: the unit's new name (its place in the tree stays)."""

    name = StringField(
        "新名称",
        validators=[DataRequired("请填写新名称"), Length(max=200, message="不能超过 200 字")],
    )


class MergeUnitForm(ChineseForm):
    """合并: the unit everything moves to."""

    target_id = SelectField("合并到", coerce=int)
