"""The archive workbook's writer: XlsxWriter in constant-memory mode (issue 18).

A province's archive is 12,000 entries on two sheets of bordered, wrapped cells. openpyxl's
write-only sheets build, hash and look up a style object for every styled cell; XlsxWriter
makes each format once and writes every row to its sheet's temporary file as it comes, two to
three times faster, in memory that does not grow with the rows.

The cells are those of the shared writer (``evaluation.spreadsheets``): the same ``Styled``
values (number formats, fonts, borders, fills, alignment, given as openpyxl style objects and
translated once each), text always written as text — never a formula, and formula-like text
with a quote prefix —, Fractions as numbers, columns widths, A4 landscape fitted to the width,
page header and 第 &P 页，共 &N 页 footer.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import IO, Any

import xlsxwriter
from openpyxl.styles import Alignment, Border, Font, PatternFill
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from evaluation.spreadsheets import (
    HEADER_BORDER,
    HEADER_FILL,
    HEADER_FONT,
    Styled,
    column_breaks,
    is_formula_like,
    row_height,
    text_lines,
    text_width,
)

_VERTICAL = {"center": "vcenter", "top": "top", "bottom": "bottom"}
# openpyxl border style → XlsxWriter border index.
_BORDER_STYLES = {"thin": 1, "medium": 2, "dashed": 3, "dotted": 4, "thick": 5, "double": 6}


def _color(value: Any) -> str | None:
    """An openpyxl colour ("FF8A939E" or "8A939E") as "#8A939E"."""
    rgb = getattr(value, "rgb", None)
    if not isinstance(rgb, str):
        return None
    return "#" + rgb[-6:]


def font_properties(font: Font | None) -> dict[str, Any]:
    if font is None:
        return {}
    props: dict[str, Any] = {}
    if font.b:
        props["bold"] = True
    if font.sz:
        props["font_size"] = float(font.sz)
    if (color := _color(font.color)) is not None:
        props["font_color"] = color
    return props


def border_properties(border: Border | None) -> dict[str, Any]:
    if border is None:
        return {}
    props: dict[str, Any] = {}
    for side in ("left", "right", "top", "bottom"):
        edge = getattr(border, side)
        if edge is None or edge.style is None:
            continue
        props[side] = _BORDER_STYLES.get(edge.style, 1)
        if (color := _color(edge.color)) is not None:
            props[f"{side}_color"] = color
    return props


def fill_properties(fill: PatternFill | None) -> dict[str, Any]:
    if fill is None or fill.fill_type != "solid":
        return {}
    color = _color(fill.fgColor)
    return {"pattern": 1, "bg_color": color} if color else {}


def alignment_properties(alignment: Alignment | None) -> dict[str, Any]:
    if alignment is None:
        return {}
    props: dict[str, Any] = {}
    if alignment.wrap_text:
        props["text_wrap"] = True
    if alignment.horizontal:
        props["align"] = alignment.horizontal
    if alignment.vertical:
        props["valign"] = _VERTICAL.get(alignment.vertical, alignment.vertical)
    return props


class Book:
    """An .xlsx written to ``out`` row by row; formats made once per combination."""

    def __init__(self, out: IO[bytes]) -> None:
        self.workbook = xlsxwriter.Workbook(
            out,
            {
                "constant_memory": True,
                # Text is text: never turned into a formula, a link or a number.
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
            },
        )
        self._formats: dict[tuple[Any, ...], Format | None] = {}
        # openpyxl style object (by id, kept alive here) → its properties.
        self._props: dict[int, tuple[object, dict[str, Any]]] = {}

    def _properties(self, style: object, convert: Any) -> dict[str, Any]:
        if style is None:
            return {}
        known = self._props.get(id(style))
        if known is None:
            known = (style, convert(style))
            self._props[id(style)] = known
        return known[1]

    def format_of(
        self, styled: Styled, *, wrap: bool = False, top: bool = False, quote: bool = False
    ) -> Format | None:
        """The format of a styled value (None: the default format)."""
        alignment = styled.alignment
        key = (
            styled.number_format,
            id(styled.font),
            id(styled.border),
            id(styled.fill),
            id(alignment),
            wrap or styled.wrap,
            top,
            quote,
        )
        if key in self._formats:
            return self._formats[key]
        props: dict[str, Any] = {}
        if styled.number_format:
            props["num_format"] = styled.number_format
        props.update(self._properties(styled.font, font_properties))
        props.update(self._properties(styled.border, border_properties))
        props.update(self._properties(styled.fill, fill_properties))
        props.update(self._properties(alignment, alignment_properties))
        if wrap or styled.wrap:
            props["text_wrap"] = True
            if alignment is None:
                props["valign"] = "top"
        if top and not props.get("text_wrap") and "valign" not in props:
            props["valign"] = "top"
        if quote:
            props["quote_prefix"] = True
        # (The style objects named by id in the key are kept alive in ``_props``.)
        made = self.workbook.add_format(props) if props else None
        self._formats[key] = made
        return made

    def sheet(
        self,
        name: str,
        *,
        widths: Sequence[float],
        page_title: str,
        freeze_rows: int = 0,
        title_rows: tuple[int, int] | None = None,
        min_print_scale: float | None = None,
    ) -> BookSheet:
        """A sheet with its print setup, as ``spreadsheets.Sheet`` makes it."""
        return BookSheet(self, name, widths, page_title, freeze_rows, title_rows, min_print_scale)

    def close(self) -> None:
        self.workbook.close()


class BookSheet:
    """One sheet, written from the top down (a row once written is final)."""

    def __init__(
        self,
        book: Book,
        name: str,
        widths: Sequence[float],
        page_title: str,
        freeze_rows: int,
        title_rows: tuple[int, int] | None,
        min_print_scale: float | None = None,
    ) -> None:
        self.book = book
        self.widths = [float(w) for w in widths]
        ws: Worksheet = book.workbook.add_worksheet(name)
        self.ws = ws
        for index, width in enumerate(self.widths):
            ws.set_column(index, index, width)
        if freeze_rows:
            ws.freeze_panes(freeze_rows, 0)
        if title_rows is not None:
            ws.repeat_rows(*title_rows)
        ws.set_paper(9)  # A4
        ws.set_landscape()
        # One page wide, or (too wide to print readably so) at ``min_print_scale`` over pages
        # broken between columns, the first column on each: as ``spreadsheets.Sheet`` does.
        breaks = column_breaks(self.widths, True, min_print_scale)
        if breaks and min_print_scale is not None:
            ws.set_print_scale(round(min_print_scale * 100))
            ws.set_v_pagebreaks(breaks)
            ws.repeat_columns(0)
        else:
            ws.fit_to_pages(1, 0)
        ws.center_horizontally()
        ws.set_margins(left=0.5, right=0.5, top=0.7, bottom=0.7)
        ws.set_header("&C&10" + page_title.replace("&", "&&"))
        ws.set_footer("&C&9第 &P 页，共 &N 页")
        self.rows = 0  # rows written; the next row's index (0-based)

    def done(self) -> None:
        """Count the row just written as final. In constant-memory mode XlsxWriter flushes a
        row to its file once the next one starts, but keeps each row's height in two dicts;
        the row before this one is on disk, so its entries go (else they grow with the rows)."""
        self.rows += 1
        if self.rows >= 2:
            self.ws.row_info.pop(self.rows - 2, None)
            self.ws.row_sizes.pop(self.rows - 2, None)

    def width(self, column: int) -> float:
        return self.widths[column] if column < len(self.widths) else 8.43

    def write(self, row: int, column: int, value: Any, cell_format: Format | None) -> None:
        """One cell: text as text, Fractions and numbers as numbers, None as a blank.

        Dispatched on the exact type first (this runs for every cell of a province's archive:
        ``isinstance`` against ``Fraction`` goes through the ABC machinery)."""
        kind = type(value)
        if kind is str:
            if value:
                self.ws.write_string(row, column, value, cell_format)
            elif cell_format is not None:
                self.ws.write_blank(row, column, None, cell_format)
        elif kind is int or kind is float:
            self.ws.write_number(row, column, value, cell_format)
        elif value is None:
            if cell_format is not None:
                self.ws.write_blank(row, column, None, cell_format)
        elif kind is bool:
            self.ws.write_boolean(row, column, value, cell_format)
        elif isinstance(value, Fraction):
            self.ws.write_number(row, column, float(value), cell_format)
        elif isinstance(value, bool):
            self.ws.write_boolean(row, column, value, cell_format)
        elif isinstance(value, int | float):
            self.ws.write_number(row, column, value, cell_format)
        elif isinstance(value, str):
            self.write(row, column, str(value), cell_format)
        else:
            self.ws.write_string(row, column, str(value), cell_format)

    def merged(self, text: str, styled: Styled, height: float, columns: int) -> None:
        """A row of one text merged across ``columns`` columns."""
        cell_format = self.book.format_of(styled)
        self.ws.set_row(self.rows, height)
        self.ws.merge_range(self.rows, 0, self.rows, columns - 1, text, cell_format)
        self.done()

    def bordered(self, values: Sequence[Any], height: float | None) -> None:
        """A row of values as given (each a ``Styled`` or a plain value), at ``height``."""
        if height is not None:
            self.ws.set_row(self.rows, height)
        for column, value in enumerate(values):
            styled = value if isinstance(value, Styled) else Styled(value)
            raw = styled.value
            quote = isinstance(raw, str) and is_formula_like(raw)
            self.write(self.rows, column, raw, self.book.format_of(styled, quote=quote))
        self.done()

    def header(self, names: Sequence[str]) -> None:
        """The header row of a data sheet: bold, shaded, a line beneath, wrapped."""
        header = Styled(
            None,
            font=HEADER_FONT,
            fill=HEADER_FILL,
            border=HEADER_BORDER,
            alignment=_HEADER_ALIGN,
        )
        cell_format = self.book.format_of(header)
        most = max((self._lines(n, i) for i, n in enumerate(names)), default=1)
        if most > 1:
            self.ws.set_row(self.rows, row_height(most))
        for column, name in enumerate(names):
            self.write(self.rows, column, name, cell_format)
        self.done()

    def _lines(self, text: Any, column: int) -> int:
        if not isinstance(text, str) or not text:
            return 1
        return text_lines(text, self.width(column))

    def row(self, values: Sequence[Any]) -> None:
        """A data row as ``spreadsheets.Sheet.row`` writes it: text too long for its column
        wraps, the row is as tall as its text, and in a tall row the cells that do not wrap
        start at the top."""
        most = 1
        size = 11.0
        cells = []
        widths = self.widths
        for column, value in enumerate(values):
            if type(value) is Styled:
                styled: Styled | None = value
                raw = value.value
                if value.font is not None and value.font.sz:
                    size = max(size, float(value.font.sz))
            else:
                styled, raw = None, value
            long = quote = False
            if type(raw) is not str and isinstance(raw, str):
                raw = str(raw)
            if type(raw) is str and raw:
                width = widths[column] if column < len(widths) else 8.43
                long = text_width(raw) > width - 1.0
                if long or "\n" in raw:
                    most = max(most, text_lines(raw, width))
                quote = is_formula_like(raw)
            cells.append((raw, styled, long, quote))
        tall = most > 1 or size > 11
        index = self.rows
        if tall:
            self.ws.set_row(index, row_height(most, size))
        for column, (raw, styled, long, quote) in enumerate(cells):
            if styled is None and not (long or tall or quote):
                self.write(index, column, raw, None)
            else:
                cell_format = self.book.format_of(
                    styled or _PLAIN, wrap=long, top=tall, quote=quote
                )
                self.write(index, column, raw, cell_format)
        self.done()


_PLAIN = Styled(None)
_HEADER_ALIGN = Alignment(wrap_text=True, vertical="center", horizontal="center")
