"""The one thin workbook writer: write-only openpyxl sheets whose text never becomes a formula.

Every workbook of the product is written through ``Sheet``: user text that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return is stored as a string cell with Excel's
quote prefix, so neither Excel nor a later CSV export evaluates it (the pattern of Indico's
``indico/util/spreadsheets.py``). Numbers stay numbers; rates are written as numbers 0–1 in a
percent format. Sheets are write-only (flat memory for big sheets, SPEC §13) with frozen
headers, column widths and A4 print setup.

Nothing is cut or overprinted when a sheet is printed (SPEC §8): a text longer than its column
is wrapped, and every row holding wrapped text gets an explicit height for its number of lines
(write-only sheets are not re-measured by LibreOffice or Excel, so a wrapped cell without one
prints over the next rows). Notes under a table are merged across the table's width.
"""

from __future__ import annotations

import io
import math
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.drawing.image import Image
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.styles.cell_style import StyleArray
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.pagebreak import Break
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
THIN = Side(style="thin", color="000000")
GRID = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)

# Row heights (points) for wrapped text: one line of 11 pt text with a CJK font, and padding.
LINE_HEIGHT = 16.5
ROW_PADDING = 3.0
# Column width units (about one "0" of the default font) taken by one character when printed;
# wide (CJK) characters take two and a bit. Estimates err on the wide side so text never spills.
WIDE_CHAR = 2.2
NARROW_CHAR = 1.15


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
    border: Border | None = None
    alignment: Alignment | None = None
    fill: PatternFill | None = None


@lru_cache(maxsize=64)
def _aligned(horizontal: str | None, vertical: str | None, wrap: bool) -> Alignment:
    """One shared Alignment per combination (made once: openpyxl objects are slow to build)."""
    return Alignment(horizontal=horizontal, vertical=vertical, wrap_text=wrap)


def _alignment_key(alignment: Alignment) -> tuple[Any, ...]:
    """An alignment's settings, compared by value (hashing the object itself is slow)."""
    return (
        alignment.horizontal,
        alignment.vertical,
        alignment.wrap_text,
        alignment.shrink_to_fit,
        alignment.indent,
        alignment.text_rotation,
    )


@lru_cache(maxsize=4096)
def text_width(text: str) -> float:
    """Estimated printed width of ``text`` in column-width units (its longest line)."""
    return max(
        (
            sum(
                WIDE_CHAR if unicodedata.east_asian_width(ch) in "WF" else NARROW_CHAR
                for ch in line
            )
            for line in text.split("\n")
        ),
        default=0.0,
    )


def text_lines(text: str, width: float) -> int:
    """How many lines ``text`` takes when wrapped in a column ``width`` units wide."""
    usable = max(width - 1.0, 1.0)
    return sum(max(1, math.ceil(text_width(line) / usable)) for line in text.split("\n"))


def row_height(lines: int, font_size: float = 11) -> float:
    """The row height (points) for ``lines`` lines of text."""
    return lines * LINE_HEIGHT * font_size / 11 + ROW_PADDING


# The data sheets printed are fitted to as many pages across as keep their type this large
# (a 汇总 of twenty columns on one page prints at 5 pt).
DATA_PRINT_SCALE = 0.8
# A4 less the sheets' 0.5″ side margins, in pixels at 96 dpi, as Excel measures columns.
PRINT_WIDTH_PX = {True: (11.69 - 1.0) * 96, False: (8.27 - 1.0) * 96}


def column_px(width: float) -> int:
    """A column's width in pixels (Excel: seven per character of the default font, plus 5)."""
    return int(width * 7 + 5)


def column_breaks(widths: Sequence[float], landscape: bool, scale: float | None) -> list[int]:
    """Where a sheet too wide to print on one page at ``scale`` starts each new page across:
    the 1-based columns after which a page ends (none when it fits, or without a ``scale``).
    Each page after the first repeats the first column. A quarter of the width is kept spare:
    LibreOffice prints a column about a fifth wider than Excel's seven pixels a character (its
    default font is wider), and a column that does not fit makes it break the page on its
    own, before ours."""
    if scale is None or sum(column_px(w) for w in widths) * scale <= PRINT_WIDTH_PX[landscape]:
        return []
    room = PRINT_WIDTH_PX[landscape] * 0.75 / scale
    first = column_px(widths[0]) if widths else 0
    breaks: list[int] = []
    used = 0
    for index, width in enumerate(widths):
        px = column_px(width)
        if used + px > room and used > (first if breaks else 0):
            breaks.append(index)  # the page ends after column ``index`` (1-based)
            used = first
        used += px
    return breaks


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
        title_rows: str | None = None,
        footer: str = "",
        min_print_scale: float | None = None,
    ) -> None:
        self.ws = workbook.create_sheet(title)
        self.widths = [float(w) for w in widths]
        for index, width in enumerate(widths, 1):
            self.ws.column_dimensions[get_column_letter(index)].width = width
        if freeze:
            self.ws.freeze_panes = freeze
        setup = self.ws.page_setup
        setup.paperSize = Worksheet.PAPERSIZE_A4
        setup.orientation = "landscape" if landscape else "portrait"
        # Fitted to one page's width; but a data sheet too wide to print readably so (at
        # ``min_print_scale`` or more) prints at that scale over as many pages across as it
        # takes, broken between columns here, its first column on every page.
        self.breaks = column_breaks(self.widths, landscape, min_print_scale)
        if self.breaks and min_print_scale is not None:
            setup.scale = round(min_print_scale * 100)
            for column in self.breaks:
                self.ws.col_breaks.append(Break(id=column))
            self.ws.print_title_cols = "A:A"
        else:
            setup.fitToWidth = 1
            setup.fitToHeight = 0
            self.ws.sheet_properties.pageSetUpPr.fitToPage = True
        self.ws.print_options.horizontalCentered = True
        margins = self.ws.page_margins
        margins.left = margins.right = 0.5
        margins.top = margins.bottom = 0.7
        if title_rows is not None:
            self.ws.print_title_rows = title_rows
        elif freeze == "A2":
            self.ws.print_title_rows = "1:1"
        if page_title:
            self.ws.oddHeader.center.text = _header_text(page_title)
            self.ws.oddHeader.center.size = 10
        self.ws.oddFooter.center.text = "第 &P 页，共 &N 页"
        self.ws.oddFooter.center.size = 9
        if footer:
            self.ws.oddFooter.left.text = _header_text(footer)
            self.ws.oddFooter.left.size = 8
        self.rows = 0
        # (text, column, span, font) → (too long for one line, lines when wrapped): data
        # sheets repeat the same names on thousands of rows, so each is measured once.
        self._fits: dict[tuple[str, int, int, Font | None], tuple[bool, int]] = {}
        # A style combination → its index array (see ``_styled_cell``).
        self._styles: dict[tuple[Any, ...], tuple[StyleArray | None, tuple[Any, ...]]] = {}

    def width(self, column: int, span: int = 1) -> float:
        """The width of ``span`` columns from ``column`` (0-based); unknown columns count 8.43."""
        return sum(
            self.widths[i] if i < len(self.widths) else 8.43 for i in range(column, column + span)
        )

    def merge(self, first_row: int, first_col: int, last_row: int, last_col: int) -> None:
        """Merge a range (1-based rows and columns); the caller writes its cells."""
        if (first_row, first_col) != (last_row, last_col):
            self.ws.merged_cells.add(
                f"{get_column_letter(first_col)}{first_row}:{get_column_letter(last_col)}{last_row}"
            )

    def cell(
        self, value: Any, column: int | None = None, span: int = 1, *, top: bool = False
    ) -> WriteOnlyCell:
        """A cell for ``value``: text neutralised, Fractions as numbers, styles applied.

        ``column`` (0-based) and ``span`` (merged width): text too long for the width wraps.
        ``top``: in a tall row, a cell that does not wrap starts at the top, beside the first
        line of the wrapped text.
        """
        styled = value if isinstance(value, Styled) else Styled(value)
        raw = styled.value
        if isinstance(raw, Fraction):
            raw = float(raw)
        return self._styled_cell(styled, raw, column, span, top)

    def _plain(self, value: Any, column: int, span: int) -> Any:
        """``value`` itself when it needs no cell object (no style, no wrap, not formula-like
        text): openpyxl writes plain values several times faster than cells, which matters
        for the 原始选票 sheet's hundreds of thousands of rows."""
        if isinstance(value, Styled) or isinstance(value, Fraction):
            return self.cell(value, column, span)
        if isinstance(value, str):
            if is_formula_like(value) or self._fit(value, column, span, None)[0]:
                return self.cell(value, column, span)
        return value

    def _styled_cell(
        self, styled: Styled, raw: Any, column: int | None, span: int, top: bool = False
    ) -> WriteOnlyCell:
        cell = WriteOnlyCell(self.ws, value=raw)
        quote = False
        if isinstance(raw, str):
            # Set after the value: openpyxl would otherwise mark "=…" as a formula.
            cell.data_type = "s"
            quote = is_formula_like(raw)
        alignment = self._alignment(styled, raw, column, span, top)
        # Setting a style on a cell makes openpyxl hash the style object against the
        # workbook's tables, which costs more than writing the cell; each combination is set
        # once per sheet and copied (as its index array) after that.
        key = (
            styled.number_format,
            id(styled.font),
            id(styled.border),
            id(styled.fill),
            None if alignment is None else _alignment_key(alignment),
            quote,
        )
        known = self._styles.get(key)
        if known is not None:
            if known[0] is not None:
                cell._style = StyleArray(known[0])
            return cell
        if quote:
            cell.quotePrefix = True
        if styled.number_format:
            cell.number_format = styled.number_format
        if styled.font is not None:
            cell.font = styled.font
        if styled.border is not None:
            cell.border = styled.border
        if styled.fill is not None:
            cell.fill = styled.fill
        if alignment is not None:
            cell.alignment = alignment
        if len(self._styles) > 1000:
            self._styles.clear()
        # The style objects are kept with the copy: their ids in the key stay theirs.
        array = StyleArray(cell._style) if cell._style else None  # None: no style at all
        self._styles[key] = (array, (styled.font, styled.border, styled.fill))
        return cell

    def _alignment(
        self, styled: Styled, raw: Any, column: int | None, span: int, top: bool
    ) -> Alignment | None:
        """The cell's alignment: the styled one, wrapped when asked or when text is too long,
        at the top of a tall row (``top``) when it does not wrap and says nothing else."""
        alignment = styled.alignment
        too_long = (
            column is not None
            and isinstance(raw, str)
            and self._fit(raw, column, span, styled.font)[0]
        )
        if styled.wrap or too_long:
            alignment = (
                _aligned(alignment.horizontal, alignment.vertical, True)
                if alignment is not None
                else WRAP
            )
        if top and (alignment is None or not (alignment.wrap_text or alignment.vertical)):
            alignment = _aligned(alignment.horizontal if alignment else None, "top", False)
        return alignment

    def lines(self, value: Any, column: int, span: int = 1) -> int:
        """Lines a value takes when printed in ``span`` columns from ``column`` (0-based)."""
        raw = value.value if isinstance(value, Styled) else value
        if not isinstance(raw, str) or not raw:
            return 1
        font = value.font if isinstance(value, Styled) else None
        return self._fit(raw, column, span, font)[1]

    def _fit(self, raw: str, column: int, span: int, font: Font | None) -> tuple[bool, int]:
        key = (raw, column, span, font)
        fit = self._fits.get(key)
        if fit is None:
            if len(self._fits) > 50_000:
                self._fits.clear()
            width = self.width(column, span)
            scale = _scale(font)
            fit = (text_width(raw) * scale > width - 1.0, text_lines(raw, width / scale))
            self._fits[key] = fit
        return fit

    def _height(self, values: Sequence[Any], spans: dict[int, int] | None = None) -> float | None:
        """The height for a row whose text wraps (None: the default height fits)."""
        spans = spans or {}
        most = 1
        size = 11.0
        for column, value in enumerate(values):
            n = self.lines(value, column, spans.get(column, 1))
            if n > most:
                most = n
            font = value.font if isinstance(value, Styled) else None
            if font is not None and font.sz:
                size = max(size, float(font.sz))
        if most == 1 and size <= 11:
            return None
        return row_height(most, size)

    def append(
        self,
        values: Sequence[Any],
        *,
        height: float | None = None,
        spans: dict[int, int] | None = None,
    ) -> int:
        """Write one row (cells wrapped and the row's height set for its text); its number.

        ``spans``: column (0-based) → number of columns its cell is merged across on this row.
        """
        spans = spans or {}
        self.rows += 1
        if height is None:
            height = self._height(values, spans)
        if height is None:
            self.ws.append([self._plain(v, i, spans.get(i, 1)) for i, v in enumerate(values)])
        else:
            # A tall row: its cells start at the top, beside the wrapped text's first line.
            cells = [self.cell(v, i, spans.get(i, 1), top=True) for i, v in enumerate(values)]
            self.ws.row_dimensions[self.rows].height = height
            self.ws.append(cells)
            # Written already (write-only): keeping it would grow with the rows.
            del self.ws.row_dimensions[self.rows]
        for column, span in spans.items():
            if span > 1:
                self.merge(self.rows, column + 1, self.rows, column + span)
        return self.rows

    def header(self, names: Iterable[str]) -> None:
        """The header row: bold, shaded, wrapped."""
        names = list(names)
        self.rows += 1
        height = self._height(names)
        if height is not None:
            self.ws.row_dimensions[self.rows].height = height
        cells = []
        for index, name in enumerate(names):
            cell = self.cell(name, index)
            cell.font = HEADER_FONT
            cell.fill = HEADER_FILL
            cell.border = HEADER_BORDER
            cell.alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")
            cells.append(cell)
        self.ws.append(cells)

    def row(self, values: Iterable[Any]) -> None:
        """One data row (text longer than its column wraps; the row is as high as it needs)."""
        self.append(list(values))

    def blank(self) -> None:
        """An empty row."""
        self.ws.append([])
        self.rows += 1

    def note(self, text: str, *, warn: bool = False, font: Font | None = None) -> None:
        """A note row (grey, or bold red for warnings such as 无效), merged across the sheet's
        columns and wrapped, as high as its text needs."""
        # across the first printed page's columns (a note over a page break is cut in two)
        span = max(self.breaks[0] if self.breaks else len(self.widths), 1)
        styled = Styled(
            text,
            font=font or (WARN_FONT if warn else NOTE_FONT),
            alignment=Alignment(wrap_text=True, vertical="top"),
        )
        self.append([styled], spans={0: span})

    def image(self, png: bytes, anchor: str, *, width: float | None = None) -> None:
        """Embed a PNG at ``anchor`` (scaled to ``width`` pixels, keeping its proportions)."""
        picture = Image(io.BytesIO(png))
        if width is not None and picture.width:
            ratio = width / picture.width
            picture.width, picture.height = width, picture.height * ratio
        self.ws.add_image(picture, anchor)


def _scale(font: Font | None) -> float:
    """How much wider than 11 pt text the font prints."""
    return float(font.sz) / 11 if font is not None and font.sz else 1.0


def _header_text(text: str) -> str:
    # "&" starts a control code in Excel's header syntax.
    return text.replace("&", "&&")


def percent_cell(value: Fraction | None) -> Styled:
    """A rate as a number 0–1 in percent format (blank when there is none)."""
    return Styled(value, PERCENT)


def decimal_cell(value: Fraction | None) -> Styled:
    """A number such as 综合得分 with two decimals (blank when there is none)."""
    return Styled(value, DECIMAL)
