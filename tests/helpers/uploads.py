"""Hostile uploads shared by the upload-limit and the voting tests."""

from __future__ import annotations

import io
import zipfile

from openpyxl import Workbook

from evaluation.rounds.subject_import import HEADERS

SHEET_PATH = "xl/worksheets/sheet1.xml"
NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def header_only_xlsx() -> bytes:
    """A real workbook whose sheet has just the template's header."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "测评对象"
    ws.append(list(HEADERS))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def xlsx_with_sheet(rows_xml: str) -> bytes:
    """A workbook whose first sheet is the header row followed by ``rows_xml`` (raw XML)."""
    header = "".join(
        f'<c r="{chr(65 + i)}1" t="inlineStr"><is><t>{h}</t></is></c>'
        for i, h in enumerate(HEADERS)
    )
    sheet = (
        f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{NS}"><sheetData>'
        f'<row r="1">{header}</row>{rows_xml}</sheetData></worksheet>'
    )
    source = zipfile.ZipFile(io.BytesIO(header_only_xlsx()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = sheet.encode() if info.filename == SHEET_PATH else source.read(info)
            target.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def zip_bomb_xlsx(megabytes: int = 40) -> bytes:
    """A small .xlsx whose sheet unpacks to ``megabytes`` MB of empty ``<row/>`` elements."""
    return xlsx_with_sheet("<row/>" * (megabytes * 1024 * 1024 // 6))
