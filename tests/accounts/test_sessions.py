"""Sessions: logout and a password change end every older session; CSRF tokens rotate at login."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.helpers.web import PASSWORD, AuthActions, csrf_token


def _session_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None, "no session cookie"
    return cookie.value


def test_a_cookie_saved_before_logout_is_refused_after_it(
    client: FlaskClient, auth: AuthActions, users: Any
) -> None:
    auth.login("organiser")
    assert client.get("/").status_code == 200
    saved = _session_cookie(client)
    auth.logout()
    assert client.get("/").headers["Location"].startswith("/login")
    # Someone who copied the cookie before the logout replays it.
    client.set_cookie("session", saved)
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_logout_ends_the_accounts_other_sessions_too(app: Flask, users: Any) -> None:
    laptop, phone = app.test_client(), app.test_client()
    AuthActions(laptop).login("organiser")
    AuthActions(phone).login("organiser")
    assert phone.get("/").status_code == 200
    AuthActions(laptop).logout()
    assert phone.get("/").headers["Location"].startswith("/login")


def test_a_password_change_ends_older_sessions_but_not_this_one(app: Flask, users: Any) -> None:
    this, other = app.test_client(), app.test_client()
    AuthActions(this).login("organiser")
    AuthActions(other).login("organiser")
    saved = _session_cookie(this)
    token = csrf_token(this, "/account/password")
    new = {"current": PASSWORD, "password": "brand-new-pass", "password2": "brand-new-pass"}
    assert this.post("/account/password", data={**new, "csrf_token": token}).status_code == 303
    assert this.get("/").status_code == 200  # the session that changed it goes on
    assert other.get("/").headers["Location"].startswith("/login")
    replay = app.test_client()
    replay.set_cookie("session", saved)  # this browser's cookie from before the change
    assert replay.get("/").headers["Location"].startswith("/login")


def test_the_csrf_token_changes_at_login(client: FlaskClient, users: Any) -> None:
    before = csrf_token(client, "/login")
    with client.session_transaction() as sess:
        raw_before = sess["csrf_token"]
    response = client.post(
        "/login", data={"username": "organiser", "password": PASSWORD, "csrf_token": before}
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    with client.session_transaction() as sess:
        assert sess["csrf_token"] != raw_before
    # A token seen before the login no longer works after it …
    refused = client.post("/logout", data={"csrf_token": before})
    assert refused.status_code == 400
    assert client.get("/").status_code == 200  # still logged in
    # … a fresh one does.
    assert client.post("/logout", data={"csrf_token": csrf_token(client, "/")}).status_code == 302
