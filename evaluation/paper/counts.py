"""A stratum's paper counts (``Stratum.paper``) read as numbers, the same way everywhere."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PaperCounts:
    """Printed, valid and invalid paper ballots of a stratum; marks counted 弃权 by rule."""

    printed: int = 0
    valid: int = 0
    # rule label → ballots (invalid) or questions (abstained)
    invalid_by_rule: dict[str, int] = field(default_factory=dict)
    abstained_by_rule: dict[str, int] = field(default_factory=dict)

    @property
    def invalid(self) -> int:
        """废票: whole ballots invalid."""
        return sum(self.invalid_by_rule.values())

    @property
    def returned(self) -> int:
        """Paper ballots entered (valid and invalid)."""
        return self.valid + self.invalid

    def invalid_text(self) -> str:
        """ "空白票 1、方框外有标记 1" (empty without 废票)."""
        return "、".join(f"{k} {n}" for k, n in self.invalid_by_rule.items() if n)

    def abstained_text(self) -> str:
        """ "多选 2" — questions counted 弃权 by a rule (empty without)."""
        return "、".join(f"{k} {n}" for k, n in self.abstained_by_rule.items() if n)


def paper_counts(paper: Mapping[str, Any] | None) -> PaperCounts:
    """The counts of a ``Stratum.paper`` dict (empty or None: no paper)."""
    paper = paper or {}
    labels = dict(paper.get("labels", {}))

    def named(counts: Mapping[str, Any]) -> dict[str, int]:
        return {str(labels.get(k, k)): int(n) for k, n in dict(counts).items()}

    return PaperCounts(
        printed=int(paper.get("printed", 0)),
        valid=int(paper.get("valid", 0)),
        invalid_by_rule=named(paper.get("invalid", {})),
        abstained_by_rule=named(paper.get("abstained", {})),
    )
