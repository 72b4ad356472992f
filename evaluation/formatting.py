"""How pages show numbers and times: as the organiser typed them, and in Beijing time.

Plain functions (no Flask), registered as template filters by ``evaluation.web``:

* ``as_typed``: a weight or a minimum turnout stored as exact text ("3/10", "1/3", "0.3") as
  one types it: a decimal when it has a short one ("0.3", "0.25"), else the fraction ("1/3").
* ``percent``: a share (a Fraction, "p/q" text or a float) as "80 %" or "66.7 %".
* ``beijing_time`` / ``beijing_date``: a stored time (naive means UTC, as SQLite gives it back)
  as "2026年11月30日 10:05" / "2026年11月30日" in Beijing time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

BEIJING = timezone(timedelta(hours=8), "北京时间")

# A decimal longer than this many places is shown as the fraction instead (1/3, not 0.333…).
MAX_PLACES = 6


def _fraction(value: Any) -> Fraction | None:
    """An exact Fraction of a Fraction, an int, "p/q" or decimal text, or a float; else None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Fraction | int):
        return Fraction(value)
    try:
        return Fraction(repr(value) if isinstance(value, float) else str(value).strip())
    except (ValueError, ZeroDivisionError):
        return None


def _decimal(value: Fraction) -> str | None:
    """The exact decimal of ``value`` ("0.3", "1", "0.125"), or None when it has none short."""
    rest, places = value.denominator, 0
    for prime in (2, 5):
        count = 0
        while rest % prime == 0:
            rest //= prime
            count += 1
        places = max(places, count)
    if rest != 1 or places > MAX_PLACES:
        return None
    digits = str(abs(value.numerator * 10**places // value.denominator)).rjust(places + 1, "0")
    sign = "-" if value < 0 else ""
    return sign + (f"{digits[:-places]}.{digits[-places:]}" if places else digits)


def as_typed(value: Any) -> str:
    """A stored exact number as one types it: "3/10" → "0.3", "1/3" stays, "" for none.

    Text that is not a number is returned as it is (it was typed so).
    """
    if value is None or value == "":
        return ""
    number = _fraction(value)
    if number is None:
        return str(value)
    decimal = _decimal(number)
    return decimal if decimal is not None else f"{number.numerator}/{number.denominator}"


def percent(value: Any, places: int = 1) -> str:
    """A share as a percentage, rounded half up to at most ``places`` decimals: "80 %",
    "66.7 %"; "—" when there is none."""
    share = _fraction(value)
    if share is None:
        return "—"
    scaled = share * 100 * 10**places
    rounded = int(abs(scaled) + Fraction(1, 2))
    sign = "-" if scaled < 0 and rounded else ""
    whole, part = divmod(rounded, 10**places)
    text = f"{whole}.{part:0{places}d}".rstrip("0").rstrip(".") if places else str(whole)
    return f"{sign}{text} %"


def _beijing(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BEIJING)


def beijing_time(moment: datetime | None) -> str:
    """A stored time as Beijing time, "2026年11月30日 10:05"; "" for none."""
    local = _beijing(moment)
    if local is None:
        return ""
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def beijing_date(moment: datetime | None) -> str:
    """A stored time's Beijing date, "2026年11月30日"; "" for none."""
    local = _beijing(moment)
    return f"{local.year}年{local.month}月{local.day}日" if local is not None else ""


FILTERS = {
    "as_typed": as_typed,
    "percent": percent,
    "beijing_time": beijing_time,
    "beijing_date": beijing_date,
}
