"""Every output of a closed round, written to its folder by ``flask report``.

The workbook, the charts as PNG files and the feedback sheets, all from the result sealed at
close.
"""

from __future__ import annotations

from pathlib import Path

from flask import current_app

from evaluation.audit import ChainHead
from evaluation.models import Round
from evaluation.reports.feedback import write_feedback
from evaluation.reports.workbook import WORKBOOK_NAME, chart_images, write_workbook
from evaluation.tally.aggregate import sealed_result


def report_folder(rnd: Round, out: Path | None = None) -> Path:
    """REPORTS_DIR/<round id>/ by default."""
    folder = out if out is not None else Path(current_app.config["REPORTS_DIR"]) / str(rnd.id)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_report(
    rnd: Round, out: Path | None = None, *, audit_head: ChainHead | None = None
) -> list[Path]:
    """Write the workbook, the charts and the feedback sheets; return every path written.

    ``audit_head``: the audit log's head the workbook and the feedback sheets record.
    """
    result = sealed_result(rnd)
    folder = report_folder(rnd, out)
    workbook = folder / WORKBOOK_NAME
    images = chart_images(result, rnd.seal)
    write_workbook(rnd, result, workbook, images=images, audit_head=audit_head)
    written = [workbook]
    for stem, png in images:
        path = folder / f"{stem}.png"
        path.write_bytes(png)
        written.append(path)
    written += write_feedback(rnd, result, folder, audit_head=audit_head)
    return written
