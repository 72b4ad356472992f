"""核验 (``flask verify``): recount a closed round from its raw ballots and name every difference.

The one place that recounts a closed round: pages, reports and the archive read the result
sealed at close (``evaluation.tally.aggregate.sealed_result``). Here the seal is recomputed from
the stored answers and the tally too, and both are compared with what was sealed, difference by
difference, in Chinese.

Rounds sealed in an older format are checked by the rules they were sealed under: a result of
version 2 (small cells suppressed, no pools) is recounted with ``pooling=False``, and a seal of
format v1 (whole ballots) is recomputed as v1; the report says that the format is old.

The audit log's head kept with the seal (``audit_head``) is checked against the log as it is
now (``evaluation.audit.check_against``): a log cut or rebuilt since the close is a difference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from evaluation import audit
from evaluation.errors import StateError
from evaluation.models import Round
from evaluation.tally.aggregate import compute_seal_as, require_results, tally_round
from evaluation.tally.core import LEGACY_RESULT_VERSION, RESULT_VERSION, to_json
from evaluation.tally.seal import LEGACY_SEAL_VERSION, seal_version_of


@dataclass
class Verification:
    """What ``flask verify`` found."""

    stored_seal: str | None
    computed_seal: str
    ballots: int
    used_codes: int
    differences: list[str] = field(default_factory=list)
    # Remarks that are not differences (an old seal or result format).
    notes: list[str] = field(default_factory=list)
    seal_version: str = ""

    @property
    def ok(self) -> bool:
        """True when nothing differs."""
        return not self.differences


LABELS = {
    "counts": "票数",
    "abstentions": "弃权票",
    "valid": "有效票",
    "shares": "各等次比例",
    "excellent_rate": "优秀率",
    "satisfaction_rate": "满意率",
    "trust_rate": "信任率",
    "score": "综合得分",
    "grade": "测评等次",
    "grade_label": "测评等次名称",
    "rank": "排名",
    "strata": "分类别",
    "items": "分项",
    "figures": "数字",
    "ballots": "选票数",
    "suppressed": "是否抑制",
    "members": "合并的类别",
    "member_ids": "合并的类别编号",
    "base_weight": "设定权重",
    "weight": "权重",
    "turnout": "参测情况",
    "issued": "发放测评码",
    "used": "已使用测评码",
    "rate": "参测率",
    "weighted": "是否加权",
    "min_turnout": "最低参测率",
    "min_group_size": "最小分组",
    "anomalies": "异常数据",
    "name": "名称",
    "planned": "应参加人数",
    "subjects": "测评对象",
    "version": "格式版本",
}


def _name(element: Any, index: int) -> str:
    if isinstance(element, dict):
        for key in ("name", "code"):
            if key in element:
                return f"“{element[key]}”"
    return f"第{index + 1}项"


def diff(stored: Any, computed: Any, path: str = "") -> list[str]:
    """Every difference between the sealed result and the recount, named in Chinese."""
    where = path or "计票结果"
    if isinstance(stored, dict) and isinstance(computed, dict):
        out: list[str] = []
        for key in list(dict.fromkeys([*stored, *computed])):
            label = LABELS.get(key, key)
            sub = f"{path} {label}".strip()
            if key not in stored:
                out.append(f"{sub}：封存结果中缺少此项，重算为 {_show(computed[key])}")
            elif key not in computed:
                out.append(f"{sub}：封存结果中多出此项（{_show(stored[key])}）")
            else:
                out.extend(diff(stored[key], computed[key], sub))
        return out
    if isinstance(stored, list) and isinstance(computed, list):
        out = []
        if len(stored) != len(computed):
            out.append(f"{where}：封存 {len(stored)} 项，重算 {len(computed)} 项")
        for i, (a, b) in enumerate(zip(stored, computed, strict=False)):
            out.extend(diff(a, b, f"{path} {_name(b, i)}".strip()))
        return out
    if stored != computed:
        return [f"{where}：封存值 {_show(stored)}，重算值 {_show(computed)}"]
    return []


def _show(value: Any) -> str:
    if value is None:
        return "（无）"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.endswith("/1") and value[:-2].isdigit():
        return value[:-2]
    return str(value)


def verify_round(rnd: Round) -> Verification:
    """Recompute the seal and the tally from the raw ballots and list every difference."""
    require_results(rnd)
    if not rnd.seal or rnd.sealed_result is None:
        raise StateError(f"测评活动“{rnd.title}”没有封存记录，无法核验")
    stored = dict(rnd.sealed_result) if isinstance(rnd.sealed_result, dict) else {}
    seal_version = seal_version_of(stored)
    stored.pop("seal_version", None)
    head_json = stored.pop("audit_head", None)
    sealed_head = audit.head_from_json(head_json)
    group = stored.get("min_group_size")
    version = stored.get("version")
    legacy = version == LEGACY_RESULT_VERSION
    result = tally_round(
        rnd,
        min_group_size=group if isinstance(group, int) else None,
        pooling=not legacy,
        version=version if isinstance(version, int) else LEGACY_RESULT_VERSION,
    )
    computed_seal = compute_seal_as(rnd, seal_version, result)
    report = Verification(
        stored_seal=rnd.seal,
        computed_seal=computed_seal,
        ballots=result.ballots,
        used_codes=result.used,
        seal_version=seal_version,
    )
    if seal_version == LEGACY_SEAL_VERSION:
        report.notes.append(
            "封存码为旧格式 v1（按整张选票计算，无法用工作簿“原始选票”表复算），已按 v1 重算比对"
        )
    if isinstance(version, int) and not legacy and version < RESULT_VERSION:
        report.notes.append(
            f"计票结果为旧格式（版本 {version}：排名只按满意率，单个测评对象也排名），"
            f"已按当时的规则重算比对；新结束的活动为版本 {RESULT_VERSION}"
        )
    if legacy:
        report.notes.append(
            f"计票结果为旧格式（版本 {LEGACY_RESULT_VERSION}：小类别不显示，未合并为“其他类别”），"
            f"已按当时的规则重算比对；新结束的活动为版本 {RESULT_VERSION}"
        )
    if computed_seal != rnd.seal:
        report.differences.append(
            f"封存码不一致：封存 {rnd.seal}，按现有选票重算 {computed_seal}"
            "（选票或答案在结束后被增加、删除或修改）"
        )
    report.differences.extend(diff(stored, to_json(result)))
    if head_json is None:
        report.notes.append("封存记录中没有审计日志链头（此功能之前结束的活动），未核对审计日志")
    elif sealed_head is None:
        report.differences.append("封存记录中的审计日志链头无法读取（封存记录可能被改动）")
    else:
        _checked, problem = audit.check_against(sealed_head)
        if problem is not None:
            report.differences.append(f"审计日志与封存时记录的链头（{sealed_head}）不符：{problem}")
    # Every code used and every valid paper ballot is one ballot in the box; a 废票 is counted
    # as having taken part but is no ballot.
    spoiled = sum(t.paper.invalid for t in result.turnout)
    if result.ballots != result.used - spoiled:
        report.differences.append(
            f"选票数 {result.ballots} 与已使用的测评码数 {result.used - spoiled} 不一致"
            + (f"（含纸质有效票，不含废票 {spoiled} 张）" if spoiled else "")
        )
    for anomaly in result.anomalies:
        report.differences.append(f"异常数据：{anomaly}")
    return report
