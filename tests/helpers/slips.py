"""Reading 测评码条 back as a person does: cut the A4 page into its slips, read each with
``pdftotext``; and the 核对 table of the codes page read as figures."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lxml import html
from reportlab.lib.pagesizes import A4

from evaluation.codes import slips

SERIAL = re.compile(r"编号\s*([A-Z]+-\d{4})")
CODE = re.compile(r"\b[2-9A-HJKMNP-Z]{4}(?:-[2-9A-HJKMNP-Z]{4}){4}\b")


def pdf_text(path: Path, *crop: str) -> str:
    """``pdftotext`` of a PDF (``crop``: extra options such as ``-f 1 -x …``)."""
    return subprocess.run(
        ["pdftotext", *crop, str(path), "-"], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def read_slips(pdf: bytes, tmp_path: Path, name: str = "slips.pdf") -> list[tuple[str, str]]:
    """(serial, code) of every slip, in printed order: each slip is cut out of its page and
    read on its own, so a serial is paired with the code printed beside it."""
    assert pdf.startswith(b"%PDF"), pdf[:200]
    path = tmp_path / name
    path.write_bytes(pdf)
    pages = int(re.search(r"Pages:\s+(\d+)", pdf_info(path)).group(1))  # type: ignore[union-attr]
    width = (A4[0] - 2 * slips.MARGIN_X) / slips.COLUMNS
    height = (A4[1] - 2 * slips.MARGIN_Y) / slips.ROWS
    found: list[tuple[str, str]] = []
    for page in range(1, pages + 1):
        for slot in range(slips.PER_PAGE):
            left = slips.MARGIN_X + (slot % slips.COLUMNS) * width
            top = slips.MARGIN_Y + (slot // slips.COLUMNS) * height
            crop = ["-f", str(page), "-l", str(page), "-r", "72"]
            crop += ["-x", str(int(left) + 1), "-y", str(int(top) + 1)]
            crop += ["-W", str(int(width) - 2), "-H", str(int(height) - 2)]
            text = pdf_text(path, *crop)
            serials = SERIAL.findall(text)
            codes = CODE.findall(text)
            if not codes:
                assert not serials, text
                continue
            assert len(codes) == 1 and len(serials) == 1, text
            found.append((serials[0], codes[0]))
    return found


def pdf_info(path: Path) -> str:
    """``pdfinfo`` of a PDF."""
    return subprocess.run(
        ["pdfinfo", str(path)], capture_output=True, text=True, check=True, timeout=60
    ).stdout


COLUMNS = (
    "planned",
    "issued",
    "reissued",
    "voided",
    "phone",
    "paper_valid",
    "paper_invalid",
    "unreturned",
)


@dataclass(frozen=True)
class ReconcileRow:
    """One stratum's row of the codes page's 核对 table, as shown."""

    name: str
    figures: dict[str, int]
    status: str
    classes: tuple[str, ...]
    status_classes: tuple[str, ...]

    @property
    def balances(self) -> bool:
        """发出 = 手机投票 + 纸质有效 + 纸质废票 + 未交回 + 作废, by the figures shown."""
        f = self.figures
        parts = ("phone", "paper_valid", "paper_invalid", "unreturned", "voided")
        return f["issued"] == sum(f[k] for k in parts)


def reconcile_rows(page: str) -> dict[str, ReconcileRow]:
    """The 核对 table of a codes page, by stratum name."""
    tree = html.fromstring(page)
    (table,) = tree.xpath("//*[@id='reconcile']/following::table[contains(@class,'reconcile')][1]")
    rows: dict[str, ReconcileRow] = {}
    for tr in table.xpath(".//tbody/tr"):
        cells = tr.xpath("./td")
        name = cells[0].text_content().strip()
        figures = {}
        for key, cell in zip(COLUMNS, cells[1:9], strict=True):
            # The first number of the cell (发出 shows "测评码 + 纸质票" below it).
            figures[key] = int((cell.text or "").strip())
        status_cell = cells[9]
        marked = status_cell.xpath(".//*[@class]")
        rows[name] = ReconcileRow(
            name=name,
            figures=figures,
            status=" ".join(status_cell.text_content().split()),
            classes=tuple((tr.get("class") or "").split()),
            status_classes=tuple(c for e in marked for c in (e.get("class") or "").split()),
        )
    return rows
