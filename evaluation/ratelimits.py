"""Rate-limit counting that keeps working when the shared counter store (Redis) is down.

Flask-Limiter falls back to memory for the limits it checks itself (``@limiter.limit``);
counters hit by hand (failed code entries) go through ``hit`` here, which does the same: if
the configured storage raises, this process counts on its own until the store is back.
"""

from __future__ import annotations

import logging

from limits import RateLimitItem
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from evaluation.extensions import limiter

log = logging.getLogger(__name__)

_fallback = FixedWindowRateLimiter(MemoryStorage())


def hit(limit: RateLimitItem, *identifiers: str) -> bool:
    """Count one event against ``limit``; False once the limit is exceeded."""
    try:
        return bool(limiter.limiter.hit(limit, *identifiers))
    except Exception as exc:  # noqa: BLE001 - redis/limits errors vary by driver and version
        log.warning("限流计数存储不可用（%s），暂用本进程内的计数", type(exc).__name__)
        return bool(_fallback.hit(limit, *identifiers))
