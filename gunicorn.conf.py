"""gunicorn settings for `make run` and `make serve` (GUNICORN_CMD_ARGS overrides any)."""

import multiprocessing
import os

bind = os.environ.get("BIND", "127.0.0.1:5000")
# Sync workers: the vote route is CPU-bound Python (SPEC §13); 2 per core plus one.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
timeout = 30
graceful_timeout = 20
keepalive = 2
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
errorlog = "-"
# Voting codes never reach the access log or the error log (SPEC §5.4): this logger filters
# both, hiding every code-shaped token and every /v/ segment (evaluation/logfilter.py), in
# request lines, referrers and the malformed request lines of "Invalid request" errors.
logger_class = "evaluation.serving.RedactingLogger"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):  # type: ignore[no-untyped-def]
    """Before any worker starts: production needs shared rate-limit counters (README: 生产部署)."""
    from evaluation.serving import check_limit_storage

    check_limit_storage(server.cfg.workers, os.environ)


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Each worker runs the round scheduler from its start (one runner at a time through the
    database; evaluation/rounds/scheduler.py), not only after its first request.

    Then the application's own objects (modules, templates, forms: a few hundred thousand,
    alive for the worker's life) are moved out of the garbage collector's sight: a full
    collection in a request that builds many objects (a province's flags) no longer walks
    them all (gc.freeze; measured in docs/performance.md). The hash that a login with an
    unknown username is checked against is made here too, so that no login waits for it.
    """
    import gc

    from evaluation.accounts.operations import dummy_hash
    from evaluation.rounds import scheduler

    scheduler.start(worker.wsgi)
    dummy_hash()
    gc.collect()
    gc.freeze()
