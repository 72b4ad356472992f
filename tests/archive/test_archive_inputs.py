"""Odd input to the archive pages is a clear 4xx on every engine, never a 500.

Ids past the integer range are "not found"; a NUL character in a search is refused before it
reaches PostgreSQL, which rejects NUL in text.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.helpers.web import AuthActions

HUGE = "9223372036854775808"


@pytest.mark.parametrize(
    "url",
    [
        f"/archive/person/{HUGE}",
        "/archive/person/2147483648",
        f"/archive/person/{HUGE}/trend.png",
        f"/archive/unit/{HUGE}",
        f"/archive/unit/{HUGE}/trend.png",
        f"/archive/unit/1/feedback/{HUGE}",
        f"/archive/flags?unit={HUGE}",
        "/archive/flags?unit=" + "9" * 5000,
        "/archive/flags?unit=%C2%B2",  # "²" is a digit to str.isdigit, not to int()
        f"/archive/export.xlsx?person={HUGE}",
        f"/archive/export.xlsx?unit={HUGE}",
        "/archive/export.xlsx?unit=" + "9" * 5000,
    ],
)
def test_out_of_range_ids_are_not_found(
    client: FlaskClient, auth: AuthActions, users: Any, url: str
) -> None:
    auth.login("organiser")
    assert client.get(url).status_code == 404


@pytest.mark.parametrize("query", ["%00", "%E5%BC%A0%00", "a%00b"])
def test_nul_in_a_search_is_a_bad_request(
    client: FlaskClient, auth: AuthActions, users: Any, query: str
) -> None:
    auth.login("organiser")
    response = client.get(f"/archive?q={query}")
    assert response.status_code == 400
    assert "NUL" in response.get_data(as_text=True)
    # The next request on the same connection still works.
    assert client.get("/archive?q=%E5%BC%A0").status_code == 200


def test_nul_in_an_address_is_a_bad_request(
    client: FlaskClient, auth: AuthActions, users: Any
) -> None:
    auth.login("organiser")
    assert client.get("/archive%00").status_code in (400, 404)
    assert client.get("/archive?%00=1").status_code == 400
