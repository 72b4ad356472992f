"""Print-ready A4 slips of voting codes (ReportLab), ten to a page, with cut marks.

Each slip carries the QR code of the voting link, the typed code, the round's title, the
stratum and a one-line instruction. Speed matters (5,000 slips must take seconds, not
minutes), so:

* every QR code of a batch has the same version and a fixed mask pattern (any mask scans;
  ``qrcode`` would try all eight), so the codes are an affine function of the link's bits and
  ``BatchQR`` builds each one from a precomputed template with a few integer XORs;
* QR modules are drawn as PDF rectangles, one per horizontal run of dark modules — no image per
  code;
* the text and lines that are the same on every slip are drawn once into a form XObject and
  placed by reference.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence

import qrcode
from qrcode.constants import ERROR_CORRECT_M
from qrcode.util import MODE_8BIT_BYTE, QRData
from reportlab import rl_config
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from evaluation.codes.codes import IssuedBatch, entry_url
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


def _qr(data: bytes, version: int | None) -> qrcode.QRCode:  # type: ignore[type-arg]
    qr = qrcode.QRCode(
        version=version, error_correction=ERROR_CORRECT_M, border=0, mask_pattern=MASK_PATTERN
    )
    # Always byte mode: the encoding must not change with the text (see BatchQR).
    qr.add_data(QRData(data, mode=MODE_8BIT_BYTE))
    qr.make(fit=version is None)
    return qr


def qr_version(data: str) -> int:
    """The smallest QR version that holds ``data`` at level M."""
    return int(_qr(data.encode("utf-8"), None).version)


def qr_rows(data: str, version: int | None = None) -> list[str]:
    """The QR modules of ``data`` (no quiet zone), one string of "1" (dark) / "0" per row."""
    modules = _qr(data.encode("utf-8"), version).modules
    return ["".join("1" if m else "0" for m in row) for row in modules]


class BatchQR:
    """QR codes for many texts of one length, each in a few big-integer XORs.

    With a fixed version, level, mask and byte mode, the modules are an affine function over
    GF(2) of the input bits (Reed–Solomon is linear, masking is an XOR). So a batch computes
    the code of one template text, and the change each single input bit makes, once; the code
    of any text of the same length is the template's XOR the changes of the bits that differ.
    ``tests/test_codes.py`` checks the result against ``qrcode`` for many texts.
    """

    def __init__(self, template: str) -> None:
        self.template = template.encode("utf-8")
        self.version = qr_version(template)
        self.size = len(qr_rows(template, self.version))
        self.base = self._bits(self.template)
        # The change of one flipped input bit, computed when first needed (the links' common
        # prefix never is).
        self._delta: dict[tuple[int, int], int] = {}

    def _flip(self, index: int, bit: int) -> int:
        key = (index, bit)
        if key not in self._delta:
            flipped = bytearray(self.template)
            flipped[index] ^= 1 << bit
            self._delta[key] = self._bits(bytes(flipped)) ^ self.base
        return self._delta[key]

    def _bits(self, data: bytes) -> int:
        rows = ["".join("1" if m else "0" for m in row) for row in _qr(data, self.version).modules]
        return int("".join(rows), 2)

    def rows(self, text: str) -> list[str]:
        """The modules of ``text`` (same byte length as the template), as ``qr_rows`` gives."""
        data = text.encode("utf-8")
        if len(data) != len(self.template):
            return qr_rows(text, None)
        value = self.base
        for index, (byte, base_byte) in enumerate(zip(data, self.template, strict=True)):
            diff = byte ^ base_byte
            bit = 0
            while diff:
                if diff & 1:
                    value ^= self._flip(index, bit)
                diff >>= 1
                bit += 1
        n = self.size
        flat = format(value, f"0{n * n}b")
        return [flat[r * n : (r + 1) * n] for r in range(n)]


_DARK_RUN = re.compile("1+")


def qr_path_operators(rows: Sequence[str], x: float, y: float, size: float) -> str:
    """PDF operators filling the dark runs of ``rows`` in a square at (x, y).

    The square is scaled to one unit per module, so every rectangle has integer coordinates;
    rows are a hair taller than one unit so no viewer shows seams between them.
    """
    n = len(rows)
    cell = size / n
    parts = [f"q {cell:.4f} 0 0 {cell:.4f} {x:.2f} {y:.2f} cm"]
    for r, row in enumerate(rows):
        bottom = n - 1 - r
        for run in _DARK_RUN.finditer(row):
            start = run.start()
            parts.append(f"{start} {bottom} {run.end() - start} 1.03 re")
    parts.append("f Q")
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
    serials: Sequence[str] = (),
    progress: Callable[[int, int], None] | None = None,
) -> bytes:
    """The A4 PDF of cut-out slips for ``codes`` (ten per page); returns the bytes."""
    font = pdf_font_name()
    page_w, page_h = A4
    slip_w = (page_w - 2 * MARGIN_X) / COLUMNS
    slip_h = (page_h - 2 * MARGIN_Y) / ROWS
    pad = 5 * mm  # with the QR code's own margin: a quiet zone of four modules or more
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
    canvas.drawString(text_x, pad + 38, "测评码（每码限用一次，投票不记名）")
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

    batch_qr = BatchQR(urls[0]) if urls else None
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
        assert batch_qr is not None
        canvas._code.append(qr_path_operators(batch_qr.rows(url), pad, qr_y, QR_SIZE))
        canvas.setFont(CODE_FONT, code_size)
        canvas.drawString(text_x, pad + 23, code)
        if serials:
            # The slip's serial, for accounting (a lost slip is voided by it), never a person:
            # top right, a line above the slip's heading (beside it, a long serial touched it).
            canvas.setFont(font, 8)
            canvas.drawRightString(slip_w - pad, slip_h - pad + 1, f"编号 {serials[index]}")
        canvas.restoreState()
        if progress is not None and (index + 1) % 250 == 0:
            progress(index + 1, total)
    if not codes:
        canvas.setFont(font, 12)
        canvas.drawString(MARGIN_X, page_h / 2, "（没有测评码）")
    canvas.showPage()
    # Binary (zlib) streams: ReportLab's pure-Python ASCII85 step would double the time.
    previous = rl_config.useA85
    rl_config.useA85 = 0
    try:
        canvas.save()
    finally:
        rl_config.useA85 = previous
    return buf.getvalue()


def slips_pdf(issued: IssuedBatch) -> bytes:
    """The A4 slips of a batch just issued."""
    return render_slips(
        round_title=issued.round_title,
        stratum_name=issued.stratum_name,
        codes=issued.codes,
        urls=issued.urls(),
        entry_url=entry_url(),
        serials=issued.serials(),
    )
