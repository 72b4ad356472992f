"""The CJK font for charts (matplotlib) and PDFs (ReportLab).

Chinese drawn with matplotlib's default fonts comes out as boxes with "Glyph … missing"
warnings (SPEC §13). We look for a real CJK TrueType font on the machine (Debian's
fonts-wqy-microhei, which `make run`/`make test` install), register it with matplotlib
directly (its font cache does not see fonts installed after it was built) and with ReportLab,
and fail loudly, with the fix, when there is none.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

# TrueType outlines only: ReportLab cannot embed CFF-based OpenType (Noto CJK .otf/.ttc).
CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
)

FIX = (
    "未找到中文字体，图表和 PDF 中的中文将无法显示。"
    "请安装文泉驿微米黑：sudo apt-get install fonts-wqy-microhei（或设置 CJK_FONT=字体文件路径）"
)

PDF_FONT_NAME = "CJK"


class FontMissing(RuntimeError):
    """No usable CJK font on this machine."""


@functools.cache
def cjk_font_path() -> Path:
    """Path of a CJK TrueType font; FontMissing with the fix if there is none."""
    configured = os.environ.get("CJK_FONT")
    for candidate in ((configured,) if configured else ()) + CANDIDATES:
        path = Path(candidate)
        if path.is_file():
            return path
    raise FontMissing(FIX)


@functools.cache
def matplotlib_font_family() -> str:
    """Register the font with matplotlib and return its family name for ``rcParams``."""
    from matplotlib import font_manager

    path = cjk_font_path()
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()


@functools.cache
def pdf_font_name() -> str:
    """Register the font with ReportLab (once per process) and return its name."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    path = cjk_font_path()
    kwargs = {"subfontIndex": 0} if path.suffix.lower() == ".ttc" else {}
    pdfmetrics.registerFont(TTFont(PDF_FONT_NAME, str(path), **kwargs))
    return PDF_FONT_NAME
