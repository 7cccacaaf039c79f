"""Dashboard sessions end for real (issue 14): the cookie used to be self-contained (Starlette's
signed cookie), so a copy taken before sign-out still refunded after it, and ``refundkit
serve`` never marked it Secure.

Now the cookie holds only the token of a session the store keeps: signing out deletes it, a
changed password or a removed user ends it, and it expires ``session_lifetime`` (8 hours) after
sign-in, on every dashboard process sharing the store. The cookie is Secure on HTTPS requests,
behind a trusted proxy that says so, with ``[dashboard] https`` and with ``refundkit serve
--https`` or ``--ssl-certfile``.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from base64 import b64decode
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*install `httpx2`", category=UserWarning)
    from starlette.testclient import TestClient

from refundkit import RefundKit
from refundkit.dashboard import User, create_app, hash_password, settings_from_config

from ._dashboard import INVOICE_PAYMENT, USERS, csrf_of, seed, settings
from .conftest import FakeClock

COOKIE = "refundkit_session"
VIEWER = {"name": "a", "role": "viewer", "password_hash": "$argon2id$x"}


@pytest.fixture
def seeded(kit: RefundKit) -> RefundKit:
    seed(kit)
    return kit


def client_of(app: Any, **options: Any) -> TestClient:
    return TestClient(app, follow_redirects=False, **options)


@pytest.fixture
def client(seeded: RefundKit) -> Iterator[TestClient]:
    with client_of(create_app(seeded, settings())) as c:
        yield c


def sign_in(client: TestClient, name: str = "ann") -> str:
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"name": name, "password": USERS[name][1], "csrf": token})
    assert r.status_code == 303, r.text
    return str(r.headers["set-cookie"])


def signed_in(client: TestClient) -> bool:
    return bool(client.get("/payments").status_code == 200)


def copy_of(client: TestClient, app: Any) -> TestClient:
    """Another browser holding a copy of ``client``'s session cookie."""
    other = client_of(app)
    other.cookies.set(COOKIE, client.cookies[COOKIE])
    return other


def test_a_copied_cookie_neither_reads_nor_refunds_after_sign_out(
    client: TestClient, seeded: RefundKit
) -> None:
    sign_in(client)
    thief = copy_of(client, client.app)
    assert signed_in(thief)  # a copy works while the session lives
    page = thief.get(f"/payments/{INVOICE_PAYMENT}").text
    form = {"csrf": csrf_of(page), "amount": "5.00", "reason": "stolen", "key": "k-stolen"}

    assert (
        client.post("/logout", data={"csrf": csrf_of(client.get("/payments").text)}).status_code
        == 303
    )
    assert not signed_in(client)
    assert thief.get("/payments").status_code == 303  # to /login
    r = thief.post(f"/payments/{INVOICE_PAYMENT}/refund", data=form)
    assert r.status_code == 403
    assert seeded.refunds() == []


def test_sign_out_ends_the_session_for_every_process_sharing_the_store(
    seeded: RefundKit, db_url: str, sandbox_path: str, clock: FakeClock
) -> None:
    """Two dashboard processes over one store: signing out at one ends the session at both."""
    from .conftest import open_kit

    with open_kit(db_url, sandbox_path, clock=clock) as other_kit:
        first = client_of(create_app(seeded, settings()))
        second_app = create_app(other_kit, settings())
        sign_in(first)
        second = copy_of(first, second_app)
        assert signed_in(second)
        first.post("/logout", data={"csrf": csrf_of(first.get("/payments").text)})
        assert not signed_in(second)


def test_a_new_password_ends_the_users_sessions(seeded: RefundKit, client: TestClient) -> None:
    sign_in(client, "ann")
    sign_in(other := client_of(client.app), "sam")
    users = dict(settings().users)
    users["ann"] = User("ann", "billing_admin", hash_password("a-new-password"))
    changed = create_app(seeded, attrs.evolve(settings(), users=users))
    assert not signed_in(copy_of(client, changed))  # ann's password changed
    assert signed_in(copy_of(other, changed))  # sam's did not
    assert not signed_in(client)  # the session is gone from the store, for every process


def test_a_removed_user_loses_access(seeded: RefundKit, client: TestClient) -> None:
    sign_in(client, "sam")
    users = {n: u for n, u in settings().users.items() if n != "sam"}
    assert not signed_in(copy_of(client, create_app(seeded, attrs.evolve(settings(), users=users))))


def test_a_session_expires_eight_hours_after_sign_in(client: TestClient, clock: FakeClock) -> None:
    sign_in(client)
    clock.advance(hours=8, seconds=-1)
    assert signed_in(client)  # activity does not extend it
    clock.advance(seconds=1)
    assert not signed_in(client)


def test_the_lifetime_is_a_setting(seeded: RefundKit, clock: FakeClock) -> None:
    app = create_app(seeded, attrs.evolve(settings(), session_lifetime=timedelta(minutes=30)))
    client = client_of(app)
    cookie = sign_in(client)
    assert "max-age=1800" in cookie.lower()
    clock.advance(minutes=30)
    assert not signed_in(client)
    section = {"secret_key": "k" * 40, "session_lifetime": "1h", "users": [VIEWER]}
    assert settings_from_config(section).session_lifetime == timedelta(hours=1)


def test_the_store_keeps_no_usable_token(seeded: RefundKit, client: TestClient) -> None:
    """The cookie's token is stored as its SHA-256: reading the table signs nobody in."""
    sign_in(client)
    payload = client.cookies[COOKIE].split(".")[0]
    token = json.loads(b64decode(payload + "=" * (-len(payload) % 4)))["sid"]
    with seeded.store.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM dashboard_sessions")).mappings().all()
    [row] = rows
    assert row["id"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in json.dumps([dict(r) for r in rows], default=str)
    assert row["user_name"] == "ann"


def test_signing_in_again_ends_the_browsers_previous_session(
    seeded: RefundKit, client: TestClient
) -> None:
    sign_in(client, "ann")
    before = copy_of(client, client.app)
    sign_in(client, "sam")
    assert not signed_in(before)
    assert signed_in(client)


# --- Secure --------------------------------------------------------------------------------------


def secure(cookie: str) -> bool:
    return "secure" in [part.strip().lower() for part in cookie.split(";")]


def test_over_http_the_cookie_is_not_secure(client: TestClient) -> None:
    assert not secure(sign_in(client))


def test_a_request_over_https_gets_a_secure_cookie(seeded: RefundKit) -> None:
    client = client_of(create_app(seeded, settings()), base_url="https://testserver")
    assert secure(sign_in(client))
    assert signed_in(client)


def test_https_setting_makes_the_cookie_secure_behind_a_tls_proxy(seeded: RefundKit) -> None:
    """The proxy speaks plain HTTP to the dashboard and sends no X-Forwarded-Proto."""
    app = create_app(seeded, attrs.evolve(settings(), https=True))
    assert secure(client_of(app).get("/login").headers["set-cookie"])
    section = {"secret_key": "k" * 40, "https": True, "users": [VIEWER]}
    assert settings_from_config(section).https is True


def test_a_trusted_proxys_forwarded_proto_makes_the_cookie_secure(seeded: RefundKit) -> None:
    from refundkit.dashboard._settings import parse_proxies

    proxied = attrs.evolve(settings(), trusted_proxies=parse_proxies(["10.0.0.0/8"]))
    https = {"X-Forwarded-Proto": "https"}
    # The proxy speaks plain HTTP to us; the browser reached it over HTTPS.
    trusted = client_of(create_app(seeded, proxied), client=("10.1.2.3", 1), headers=https)
    assert secure(trusted.get("/login").headers["set-cookie"])
    stranger = client_of(create_app(seeded, proxied), client=("192.0.2.7", 1), headers=https)
    assert not secure(stranger.get("/login").headers["set-cookie"])


def test_refundkit_serve_marks_the_cookie_secure(
    seeded: RefundKit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``refundkit serve --https`` (a TLS proxy in front) makes the cookie Secure; so does
    serving TLS itself (``--ssl-certfile``/``--ssl-keyfile``, tested in
    test_dashboard_throttle.py with uvicorn's own config); plain ``serve`` does not."""
    from click.testing import CliRunner

    from refundkit.cli import cli
    from refundkit.dashboard import _serve

    served: list[Any] = []
    monkeypatch.setattr(_serve, "run_server", lambda app, *a, **k: served.append(app))
    config = tmp_path / "refundkit.toml"
    users = "\n".join(
        f'[[dashboard.users]]\nname = "{n}"\nrole = "{u.role}"\npassword_hash = "{u.password_hash}"'
        for n, u in settings().users.items()
    )
    config.write_text(f'[dashboard]\nsecret_key = "{"k" * 48}"\n{users}\n')
    db = str(seeded.store.url.render_as_string(hide_password=False))
    for flags, wanted in (([], False), (["--https"], True)):
        result = CliRunner().invoke(cli, ["--config", str(config), "--db", db, "serve", *flags])
        assert result.exit_code == 0, result.output
        cookie = client_of(served.pop()).get("/login").headers["set-cookie"]
        assert secure(cookie) is wanted
