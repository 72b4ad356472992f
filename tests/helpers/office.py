"""Print a workbook the way an official does: LibreOffice Calc (headless) to PDF, then read it.

``make test`` installs ``libreoffice-calc-nogui`` and poppler; the tests that use these are
skipped only if ``soffice`` is missing (and ``make test`` makes sure it is not).
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

# LibreOffice's first start on a loaded machine can take a while; this is a deadline, not a
# timing assertion.
RENDER_TIMEOUT = 240


def soffice() -> str:
    """The soffice binary, or skip (``make test`` installs it)."""
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        pytest.skip("未安装 LibreOffice（make test 会安装 libreoffice-calc-nogui）")
    return found


def render_pdf(workbook: Path, out_dir: Path) -> Path:
    """Convert ``workbook`` to PDF with LibreOffice Calc's print settings; return the PDF path.

    Each call uses its own LibreOffice profile, so parallel test workers never share one.
    """
    binary = soffice()
    out_dir.mkdir(parents=True, exist_ok=True)
    profile = out_dir / f"lo-profile-{uuid.uuid4().hex}"
    result = subprocess.run(
        [
            binary,
            f"-env:UserInstallation={profile.resolve().as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            "pdf",
            "--outdir",
            str(out_dir),
            str(workbook),
        ],
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT,
        check=False,
    )
    pdf = out_dir / (workbook.stem + ".pdf")
    assert result.returncode == 0 and pdf.exists(), result.stdout + result.stderr
    shutil.rmtree(profile, ignore_errors=True)
    return pdf


def pdf_pages(pdf: Path) -> int:
    """Number of pages (pdfinfo)."""
    info = subprocess.run(
        ["pdfinfo", str(pdf)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    for line in info.splitlines():
        if line.startswith("Pages:"):
            return int(line.split()[1])
    raise AssertionError(info)


def pdf_text(pdf: Path, *, first: int | None = None, last: int | None = None) -> str:
    """The text of the PDF (or of pages first..last), laid out as printed (pdftotext -layout)."""
    args = ["pdftotext", "-layout"]
    if first is not None:
        args += ["-f", str(first)]
    if last is not None:
        args += ["-l", str(last)]
    return subprocess.run(
        [*args, str(pdf), "-"], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def page_size_points(pdf: Path) -> tuple[float, float]:
    """Width and height of the first page in points (A4 landscape ≈ 842 × 595)."""
    info = subprocess.run(
        ["pdfinfo", str(pdf)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    for line in info.splitlines():
        if line.startswith("Page size:"):
            parts = line.split()
            return float(parts[2]), float(parts[4])
    raise AssertionError(info)
