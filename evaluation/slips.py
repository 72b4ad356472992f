"""Print-ready A4 slips of voting codes (ReportLab), ten to a page, with cut marks.

Each slip carries the QR code of the voting link, the typed code, the round's title, the
stratum and a one-line instruction. Speed matters (5,000 slips must take seconds, not
minutes), so:

* every QR code of a batch has the same version and a fixed mask pattern, which skips
  ``qrcode``'s trial of all eight masks (the links all have the same length);
* QR modules are drawn as PDF rectangles, one per horizontal run of dark modules — no image per
  code;
* the text and lines that are the same on every slip are drawn once into a form XObject and
  placed by reference.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import qrcode
from qrcode.constants import ERROR_CORRECT_M
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from evaluation.fonts import pdf_font_name

COLUMNS = 2
ROWS = 5
PER_PAGE = COLUMNS * ROWS
MARGIN_X = 10 * mm
MARGIN_Y = 10 * mm
QR_SIZE = 36 * mm
# A fixed, valid mask: the eight-mask search is most of qrcode's time and any mask scans.
MASK_PATTERN = 2
CODE_FONT = "Courier-Bold"


def qr_matrix(data: str, version: int | None = None) -> list[list[bool | None]]:
    """The QR modules of ``data`` (no quiet zone): True = dark."""
    qr = qrcode.QRCode(
        version=version,
        error_correction=ERROR_CORRECT_M,
        border=0,
        mask_pattern=MASK_PATTERN,
    )
    qr.add_data(data, optimize=0)
    qr.make(fit=version is None)
    return qr.modules  # type: ignore[no-any-return]


def qr_version(data: str) -> int:
    """The smallest QR version that holds ``data`` at level M."""
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=0, mask_pattern=MASK_PATTERN)
    qr.add_data(data, optimize=0)
    qr.make(fit=True)
    return int(qr.version)


def qr_path_operators(
    matrix: Sequence[Sequence[bool | None]], x: float, y: float, size: float
) -> str:
    """PDF path operators filling the dark runs of ``matrix`` in a square at (x, y)."""
    n = len(matrix)
    cell = size / n
    # Coordinates are formatted once per call, not once per module.
    xs = [f"{x + c * cell:.2f}" for c in range(n)]
    widths = [f"{k * cell:.2f}" for k in range(n + 1)]
    height = f"{cell + 0.1:.2f}"  # a hair of overlap: no white seams between rows
    parts: list[str] = []
    for r, row in enumerate(matrix):
        top = f"{y + size - (r + 1) * cell - 0.05:.2f}"
        c = 0
        while c < n:
            if row[c]:
                start = c
                while c < n and row[c]:
                    c += 1
                parts.append(f"{xs[start]} {top} {widths[c - start]} {height} re")
            else:
                c += 1
    parts.append("f")
    return "\n".join(parts)


def _fit_lines(text: str, font: str, size: float, width: float, max_lines: int) -> list[str]:
    """Break CJK text into at most ``max_lines`` lines that fit ``width`` (ellipsis if cut)."""
    lines: list[str] = []
    current = ""
    for ch in text:
        if stringWidth(current + ch, font, size) > width:
            lines.append(current)
            current = ch
            if len(lines) == max_lines:
                break
        else:
            current += ch
    else:
        lines.append(current)
        return lines[:max_lines]
    last = lines[max_lines - 1]
    while last and stringWidth(last + "…", font, size) > width:
        last = last[:-1]
    lines[max_lines - 1] = last + "…"
    return lines[:max_lines]


def render_slips(
    *,
    round_title: str,
    stratum_name: str,
    codes: Sequence[str],
    urls: Sequence[str],
    entry_url: str,
    progress: Callable[[int, int], None] | None = None,
) -> bytes:
    """The A4 PDF of cut-out slips for ``codes`` (ten per page); returns the bytes."""
    font = pdf_font_name()
    page_w, page_h = A4
    slip_w = (page_w - 2 * MARGIN_X) / COLUMNS
    slip_h = (page_h - 2 * MARGIN_Y) / ROWS
    pad = 4 * mm
    text_x = pad + QR_SIZE + 4 * mm
    text_w = slip_w - text_x - pad
    qr_y = (slip_h - QR_SIZE) / 2

    buf = io.BytesIO()
    canvas = Canvas(buf, pagesize=A4, pageCompression=1)
    canvas.setTitle(f"{round_title} · {stratum_name} · 测评码")
    canvas.setAuthor("民主测评系统")

    # What every slip shares, drawn once: title, stratum, instruction and labels.
    canvas.beginForm("slip")
    y = slip_h - pad - 9
    canvas.setFillColorRGB(0.45, 0.1, 0.08)
    canvas.setFont(font, 8)
    canvas.drawString(text_x, y, "民主测评 · 一次性测评码")
    canvas.setFillColorRGB(0, 0, 0)
    y -= 13
    canvas.setFont(font, 9.5)
    for line in _fit_lines(round_title, font, 9.5, text_w, 2):
        canvas.drawString(text_x, y, line)
        y -= 12
    canvas.setFont(font, 9)
    canvas.drawString(text_x, y - 1, _fit_lines(f"类别：{stratum_name}", font, 9, text_w, 1)[0])
    canvas.setFont(font, 7)
    canvas.setFillColorRGB(0.3, 0.3, 0.3)
    canvas.drawString(text_x, pad + 10, "手机扫码投票；或打开下方网址输入测评码。")
    entry = _fit_lines(entry_url, "Helvetica", 7, text_w, 1)[0]
    canvas.setFont("Helvetica", 7)
    canvas.drawString(text_x, pad + 1, entry)
    canvas.setFont(font, 7)
    canvas.drawString(text_x, pad + 30, "测评码（每码限用一次，投票不记名）")
    canvas.endForm()

    # Cut lines and crop marks, drawn once per page.
    canvas.beginForm("cutmarks")
    canvas.setStrokeColorRGB(0.6, 0.6, 0.6)
    canvas.setLineWidth(0.4)
    canvas.setDash(2, 3)
    for col in range(COLUMNS + 1):
        x = MARGIN_X + col * slip_w
        canvas.line(x, MARGIN_Y, x, page_h - MARGIN_Y)
    for row in range(ROWS + 1):
        y = MARGIN_Y + row * slip_h
        canvas.line(MARGIN_X, y, page_w - MARGIN_X, y)
    canvas.setDash()
    canvas.setStrokeColorRGB(0, 0, 0)
    canvas.setLineWidth(0.6)
    mark = 6 * mm
    for col in range(COLUMNS + 1):
        x = MARGIN_X + col * slip_w
        canvas.line(x, 2 * mm, x, 2 * mm + mark)
        canvas.line(x, page_h - 2 * mm - mark, x, page_h - 2 * mm)
    for row in range(ROWS + 1):
        y = MARGIN_Y + row * slip_h
        canvas.line(1 * mm, y, 1 * mm + mark, y)
        canvas.line(page_w - 1 * mm - mark, y, page_w - 1 * mm, y)
    canvas.endForm()

    version = qr_version(urls[0]) if urls else 1
    total = len(codes)
    code_size = 12.5
    while code_size > 8 and stringWidth(codes[0] if codes else "", CODE_FONT, code_size) > text_w:
        code_size -= 0.5
    for index, (code, url) in enumerate(zip(codes, urls, strict=True)):
        slot = index % PER_PAGE
        if slot == 0:
            if index:
                canvas.showPage()
            canvas.doForm("cutmarks")
            canvas.setFont(font, 7)
            canvas.setFillColorRGB(0.4, 0.4, 0.4)
            page_no = index // PER_PAGE + 1
            pages = (total + PER_PAGE - 1) // PER_PAGE
            canvas.drawCentredString(
                page_w / 2, 3 * mm, f"{stratum_name} · 第 {page_no}/{pages} 页 · 沿虚线剪开"
            )
            canvas.setFillColorRGB(0, 0, 0)
        col = slot % COLUMNS
        row = slot // COLUMNS
        ox = MARGIN_X + col * slip_w
        oy = page_h - MARGIN_Y - (row + 1) * slip_h
        canvas.saveState()
        canvas.translate(ox, oy)
        canvas.doForm("slip")
        canvas._code.append(qr_path_operators(qr_matrix(url, version), pad, qr_y, QR_SIZE))
        canvas.setFont(CODE_FONT, code_size)
        canvas.drawString(text_x, pad + 17, code)
        canvas.restoreState()
        if progress is not None and (index + 1) % 250 == 0:
            progress(index + 1, total)
    if not codes:
        canvas.setFont(font, 12)
        canvas.drawString(MARGIN_X, page_h / 2, "（没有测评码）")
    canvas.showPage()
    canvas.save()
    return buf.getvalue()
