"""gunicorn entry point of the benchmark app: the real application plus the baseline route.

Only the benchmarks start it (``benchmarks.bench_wsgi:app``); production serves ``wsgi:app``.
"""

from benchmarks.minimal import create_bench_app

app = create_bench_app()
