"""The one thin workbook writer: write-only openpyxl sheets whose text never becomes a formula.

Every workbook of the product is written through ``Sheet``: user text that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return is stored as a string cell with Excel's
quote prefix, so neither Excel nor a later CSV export evaluates it (the pattern of Indico's
``indico/util/spreadsheets.py``). Numbers stay numbers; rates are written as numbers 0–1 in a
percent format. Sheets are write-only (flat memory for big sheets, SPEC §13) with frozen
headers, column widths and A4 print setup.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.drawing.image import Image
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PERCENT = "0.00%"
DECIMAL = "0.00"
INTEGER = "0"

HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="F0F2F5")
HEADER_BORDER = Border(bottom=Side(style="thin", color="8A939E"))
WRAP = Alignment(wrap_text=True, vertical="top")
NOTE_FONT = Font(color="5B6470")
WARN_FONT = Font(bold=True, color="B3261E")
TITLE_FONT = Font(bold=True, size=13)
BOLD_FONT = Font(bold=True)
BOLD_WARN_FONT = Font(bold=True, color="B3261E")


def is_formula_like(value: str) -> bool:
    """True when text would be taken as a formula (or a DDE payload) by a spreadsheet."""
    return value.startswith(FORMULA_START)


@dataclass(frozen=True)
class Styled:
    """A value with a number format and/or font for one cell."""

    value: Any
    number_format: str | None = None
    font: Font | None = None
    wrap: bool = False


def new_workbook() -> Workbook:
    """A write-only workbook (sheets are streamed in order)."""
    return Workbook(write_only=True)


class Sheet:
    """One write-only sheet: header, rows, widths, print setup; text is neutralised."""

    def __init__(
        self,
        workbook: Workbook,
        title: str,
        *,
        widths: Sequence[float] = (),
        landscape: bool = True,
        page_title: str = "",
        freeze: str | None = "A2",
    ) -> None:
        self.ws = workbook.create_sheet(title)
        for index, width in enumerate(widths, 1):
            self.ws.column_dimensions[get_column_letter(index)].width = width
        if freeze:
            self.ws.freeze_panes = freeze
        setup = self.ws.page_setup
        setup.paperSize = Worksheet.PAPERSIZE_A4
        setup.orientation = "landscape" if landscape else "portrait"
        setup.fitToWidth = 1
        setup.fitToHeight = 0
        self.ws.sheet_properties.pageSetUpPr.fitToPage = True
        self.ws.print_options.horizontalCentered = True
        margins = self.ws.page_margins
        margins.left = margins.right = 0.5
        margins.top = margins.bottom = 0.7
        if freeze == "A2":
            self.ws.print_title_rows = "1:1"
        if page_title:
            self.ws.oddHeader.center.text = _header_text(page_title)
            self.ws.oddHeader.center.size = 10
        self.ws.oddFooter.center.text = "第 &P 页，共 &N 页"
        self.ws.oddFooter.center.size = 9
        self.rows = 0

    def cell(self, value: Any) -> WriteOnlyCell:
        """A cell for ``value``: text neutralised, Fractions as numbers, styles applied."""
        styled = value if isinstance(value, Styled) else Styled(value)
        raw = styled.value
        if isinstance(raw, Fraction):
            raw = float(raw)
        cell = WriteOnlyCell(self.ws, value=raw)
        if isinstance(raw, str):
            # Set after the value: openpyxl would otherwise mark "=…" as a formula.
            cell.data_type = "s"
            if is_formula_like(raw):
                cell.quotePrefix = True
        if styled.number_format:
            cell.number_format = styled.number_format
        if styled.font is not None:
            cell.font = styled.font
        if styled.wrap:
            cell.alignment = WRAP
        return cell

    def header(self, names: Iterable[str]) -> None:
        """The header row: bold, shaded, wrapped."""
        cells = []
        for name in names:
            cell = self.cell(name)
            cell.font = HEADER_FONT
            cell.fill = HEADER_FILL
            cell.border = HEADER_BORDER
            cell.alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")
            cells.append(cell)
        self.ws.append(cells)
        self.rows += 1

    def row(self, values: Iterable[Any]) -> None:
        """One data row."""
        self.ws.append([self.cell(v) for v in values])
        self.rows += 1

    def blank(self) -> None:
        """An empty row."""
        self.ws.append([])
        self.rows += 1

    def note(self, text: str, *, warn: bool = False) -> None:
        """A one-cell note row (grey, or bold red for warnings such as 无效)."""
        self.row([Styled(text, font=WARN_FONT if warn else NOTE_FONT)])

    def image(self, png: bytes, anchor: str, *, width: float | None = None) -> None:
        """Embed a PNG at ``anchor`` (scaled to ``width`` pixels, keeping its proportions)."""
        picture = Image(io.BytesIO(png))
        if width is not None and picture.width:
            ratio = width / picture.width
            picture.width, picture.height = width, picture.height * ratio
        self.ws.add_image(picture, anchor)


def _header_text(text: str) -> str:
    # "&" starts a control code in Excel's header syntax.
    return text.replace("&", "&&")


def percent_cell(value: Fraction | None) -> Styled:
    """A rate as a number 0–1 in percent format (blank when there is none)."""
    return Styled(value, PERCENT)


def decimal_cell(value: Fraction | None) -> Styled:
    """A number such as 综合得分 with two decimals (blank when there is none)."""
    return Styled(value, DECIMAL)
