"""Organiser forms: a round's settings, a round file, strata, subjects, items, voiding."""

from __future__ import annotations

from fractions import Fraction

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    DateTimeLocalField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from evaluation.ballot_forms import parse_fraction
from evaluation.errors import FormError
from evaluation.formatting import as_typed
from evaluation.forms import ChineseForm
from evaluation.rounds.operations import KINDS


def _percent(value: object) -> object:
    """A share typed as a percent ("80%", "80 %", "80％") becomes "0.8"; anything else as is."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text.endswith(("%", "％")):
        return value
    try:
        share = Fraction(text[:-1].strip()) / 100
    except (ValueError, ZeroDivisionError):
        return value
    return as_typed(share)


def _fraction(form: FlaskForm, field: StringField) -> None:
    try:
        parse_fraction(field.data, field.label.text)
    except FormError as exc:
        raise ValidationError(exc.message) from None


class RoundSettingsForm(ChineseForm):
    """测评活动的设置 (everything but the unit, which is fixed once created)."""

    title = StringField(
        "测评活动名称",
        validators=[DataRequired("请填写测评活动名称"), Length(max=300, message="不能超过 300 字")],
    )
    year = IntegerField(
        "年度",
        validators=[
            InputRequired("请填写年度"),
            NumberRange(1990, 2100, "年度应为 1990 到 2100 之间的四位数字"),
        ],
    )
    mode = RadioField(
        "测评方式",
        choices=[
            SelectChoice("集中", "集中（在会场集中测评）"),
            SelectChoice("分散", "分散（各自用手机测评）"),
        ],
        default="集中",
        validators=[InputRequired("请选择测评方式")],
    )
    kind = RadioField(
        "测评类型",
        choices=[SelectChoice(k, k) for k in KINDS],
        default="本级自测",
        validators=[InputRequired("请选择测评类型")],
    )
    min_turnout = StringField(
        "最低参测率",
        default="2/3",
        validators=[DataRequired("请填写最低参测率，如 2/3"), _fraction],
        filters=[_percent],
    )
    opens_at = DateTimeLocalField(
        "计划开始时间（可选）", format="%Y-%m-%dT%H:%M", validators=[Optional()]
    )
    closes_at = DateTimeLocalField(
        "计划结束时间（可选）", format="%Y-%m-%dT%H:%M", validators=[Optional()]
    )


class NewRoundForm(RoundSettingsForm):
    """新建测评活动: the settings plus the unit, picked from the user's tree, and the rule set."""

    unit_id = SelectField("所属单位", coerce=int, validators=[DataRequired("请选择所属单位")])
    rule_set = SelectField(
        "等次规则集", default="default", validators=[DataRequired("请选择等次规则集")]
    )
    min_turnout = StringField(
        "最低参测率（留空则按所选规则集，默认规则为 2/3）",
        default="",
        validators=[Optional(), _fraction],
        filters=[_percent],
    )


class RuleSetForm(ChineseForm):
    """更换等次规则集 (draft only)."""

    rule_set = SelectField("等次规则集", validators=[DataRequired("请选择等次规则集")])


class RoundFileForm(ChineseForm):
    """从测评文件导入."""

    file = FileField("测评文件（.toml）", validators=[FileRequired("请选择测评文件")])


class StratumForm(ChineseForm):
    """添加测评人员类别."""

    name = StringField(
        "类别名称",
        id="stratum-name",
        validators=[DataRequired("请填写类别名称"), Length(max=100, message="不能超过 100 字")],
    )
    planned = IntegerField(
        "应参加人数",
        id="stratum-planned",
        validators=[InputRequired("请填写应参加人数"), NumberRange(0, 100000, "应为非负整数")],
    )
    weight = StringField(
        "权重（可选，如 0.3 或 1/3）",
        id="stratum-weight",
        validators=[Optional(), _fraction],
        filters=[_percent],
    )


class SubjectForm(ChineseForm):
    """添加测评对象."""

    name = StringField(
        "测评对象",
        id="subject-name",
        validators=[DataRequired("请填写测评对象"), Length(max=200, message="不能超过 200 字")],
    )
    form_id = SelectField("测评表", id="subject-form", validators=[DataRequired("请选择测评表")])
    post = StringField(
        "职务（干部填写）",
        id="subject-post",
        validators=[Length(max=200, message="不能超过 200 字")],
    )
    staff_no = StringField(
        "工号（可选）", id="subject-staff-no", validators=[Length(max=50, message="不能超过 50 字")]
    )


class ItemsForm(ChineseForm):
    """本次测评内容 (one item a line)."""

    items = TextAreaField(
        "测评内容（每行一项）", validators=[Length(max=20000, message="内容过长")]
    )


class SubjectFileForm(ChineseForm):
    """从 Excel 导入测评对象."""

    file = FileField("Excel 文件（.xlsx）", validators=[FileRequired("请选择 Excel 文件")])


class VoidForm(ChineseForm):
    """作废 (with a reason)."""

    reason = TextAreaField(
        "作废原因",
        id="void-reason",
        validators=[DataRequired("作废必须填写原因"), Length(max=2000, message="不能超过 2000 字")],
    )


class OpenForm(ChineseForm):
    """开始测评, with who keeps the sealed ballot box's private key."""

    custody = RadioField(
        "投票箱私钥保管",
        choices=[
            SelectChoice("server", "服务器保管（默认）：结束测评时自动开箱计票"),
            SelectChoice(
                "scrutineer",
                "监票人保管：先生成私钥交监票人，提交私钥后开始；结束测评时须再提交私钥才能开箱",
            ),
        ],
        default="server",
        validators=[DataRequired("请选择投票箱私钥的保管方式")],
    )
    key_file = FileField("密钥文件（刚才下载的 .txt 文件）")
    key_text = TextAreaField(
        "或粘贴私钥（44 个字符）", validators=[Length(max=4000, message="内容过长")]
    )


class CloseForm(ChineseForm):
    """结束测评; under 监票人保管 the box's private key is presented here."""

    key_file = FileField("密钥文件（开始测评时下载的 .txt 文件）")
    key_text = TextAreaField(
        "或粘贴密钥（44 个字符）", validators=[Length(max=4000, message="内容过长")]
    )


class SubjectEditForm(SubjectForm):
    """修改测评对象 (draft): the add form's fields, and the unit a cadre or team belongs to."""

    unit_id = SelectField(
        "所属单位（干部按此单位查找）",
        coerce=int,
        id="subject-unit",
        validators=[DataRequired("请选择所属单位")],
    )


class CopyRoundForm(ChineseForm):
    """复制为新活动: the copy's year and title (the people moved since are checkboxes)."""

    year = IntegerField(
        "新活动的年度",
        validators=[
            InputRequired("请填写年度"),
            NumberRange(1990, 2100, "年度应为 1990 到 2100 之间的四位数字"),
        ],
    )
    title = StringField(
        "新活动的名称",
        validators=[DataRequired("请填写测评活动名称"), Length(max=300, message="不能超过 300 字")],
    )
