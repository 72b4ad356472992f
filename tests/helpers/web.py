"""Driving the pages as a person does: logging in, reading CSRF tokens, the sample round."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from evaluation.rounds.round_file import sample_round_text

PASSWORD = "correct-horse-battery"

# The sample round file shipped with the product: five subjects, three strata.
SAMPLE_ROUND = sample_round_text()


def csrf_token(client: FlaskClient, url: str) -> str:
    """GET ``url`` and return the CSRF token from its first form."""
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


class AuthActions:
    """Log in and out through the real pages."""

    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    def login(self, username: str = "organiser", password: str = PASSWORD):  # type: ignore[no-untyped-def]
        token = csrf_token(self._client, "/login")
        return self._client.post(
            "/login", data={"username": username, "password": password, "csrf_token": token}
        )

    def logout(self):  # type: ignore[no-untyped-def]
        token = csrf_token(self._client, "/")
        return self._client.post("/logout", data={"csrf_token": token})


def failed_logins(client: FlaskClient, attempts: int) -> list[int]:
    """Statuses of ``attempts`` logins with a wrong password (429 once the limit is reached)."""
    statuses = []
    for _ in range(attempts):
        token = csrf_token(client, "/login")
        data = {"username": "nobody", "password": "wrong-password", "csrf_token": token}
        statuses.append(client.post("/login", data=data).status_code)
    return statuses
