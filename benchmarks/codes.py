"""Codes benchmark: issuing 5,000 codes with their printable PDF, against drawing bare QR codes.

The measured path is what an organiser waits for: ``evaluation.codes.codes.issue_batch`` (random
codes, keyed hashes, rows written, audit entry, commit) and ``evaluation.codes.slips.slips_pdf``
(the A4 PDF of cut-out slips, as the codes page makes it). The baseline, in the same run:
drawing the same 5,000 links as bare QR codes with the ``qrcode`` library's SVG path output
(SPEC §13: ~5 ms a code) — no database, no PDF, no text. Target: ≤ 1.5× the baseline.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import harness

COUNT = 5_000


def bare_qr_seconds(urls: list[str]) -> float:
    """Seconds to draw every link as a bare QR code (SVG path), the baseline."""
    import qrcode
    from qrcode.image.svg import SvgPathImage

    started = time.perf_counter()
    for url in urls:
        qrcode.make(url, image_factory=SvgPathImage).to_string()
    return time.perf_counter() - started


def run_engine(engine: str, count: int = COUNT, baseline_sample: int = 1_000) -> dict[str, Any]:
    """Issue ``count`` codes and render their slips on one engine; time both and the baseline.

    The baseline draws the first ``baseline_sample`` links and is scaled to ``count`` (each QR
    code costs the same; drawing all 5,000 would take minutes on a busy two-core machine).
    """
    from evaluation.codes import codes
    from evaluation.codes.slips import slips_pdf
    from evaluation.extensions import db
    from evaluation.models import Round
    from evaluation.rounds.round_file import import_round

    workdir = Path(tempfile.mkdtemp(prefix=f"bench-codes-{engine}-"))
    try:
        url = harness.fresh_database(engine, workdir)
        with harness.app_context(url, workdir):
            rnd = import_round(harness.hall_round(count), actor="bench")
            db.session.commit()
            round_id = rnd.id
            started = time.perf_counter()
            rnd = db.session.get_one(Round, round_id)
            issued = codes.issue_batch(rnd, rnd.strata[0], count, actor="bench")
            db.session.commit()
            issue_s = time.perf_counter() - started
            started = time.perf_counter()
            pdf = slips_pdf(issued)
            pdf_s = time.perf_counter() - started
            urls = issued.urls()
        sample = urls[: max(1, min(baseline_sample, count))]
        baseline_s = bare_qr_seconds(sample) * count / len(sample)
        total = issue_s + pdf_s
        return {
            "engine": engine,
            "count": count,
            "issue_s": issue_s,
            "pdf_s": pdf_s,
            "total_s": total,
            "pdf_kib": len(pdf) / 1024,
            "baseline_s": baseline_s,
            "baseline_sample": len(sample),
            "ratio": total / baseline_s if baseline_s else 0.0,
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    """Print the figures for SQLite, and PostgreSQL when BENCH_DATABASE_URL is set."""
    import logging

    logging.disable(logging.INFO)
    count = int(argv[0]) if argv else COUNT
    engines = ["sqlite"] + (["postgresql"] if harness.bench_postgres_url() else [])
    print(f"测评码基准：发放 {count:,} 个测评码并生成 PDF，对比只画同样多的二维码（SVG）")
    for engine in engines:
        r = run_engine(engine, count)
        print(
            f"{engine:<10} 发放 {r['issue_s']:.2f} s + PDF {r['pdf_s']:.2f} s "
            f"= {r['total_s']:.2f} s（{r['pdf_kib']:.0f} KiB）；"
            f"只画二维码 {r['baseline_s']:.2f} s；{r['ratio']:.2f}×",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
