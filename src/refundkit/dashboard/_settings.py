"""The dashboard's ``[dashboard]`` configuration: session key, users and roles, refund limits.

::

    [dashboard]
    secret_key = "env:REFUNDKIT_DASHBOARD_SECRET"   # signs the session cookie
    support_refund_limit = { USD = "100.00", EUR = "90.00" }   # or "100.00 USD"
    support_daily_refund_limit = { USD = "250.00" }   # per customer, any 24 hours
    sign_in_attempts = 5                  # failures that block a name for sign_in_window
    sign_in_attempts_per_address = 20     # failures that block a client address
    sign_in_window = "15m"
    session_lifetime = "8h"               # a session ends this long after sign-in
    https = false                         # true behind an HTTPS proxy: the cookie is Secure
    trusted_proxies = []                  # addresses/networks whose X-Forwarded-For is believed
    max_body_bytes = 65536                # larger dashboard requests are refused (413)
    webhook_max_body_bytes = 1048576      # the same for POST /webhooks/{gateway}

    [[dashboard.users]]
    name = "alice"
    role = "support"              # viewer | support | billing_admin
    password_hash = "$argon2id$..."   # refundkit dashboard hash-password
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

import attrs

from .._errors import ConfigurationError, RefundkitError
from .._money import Money
from .._schedule import parse_schedule

ROLES: Final = ("viewer", "support", "billing_admin")
#: Who may refund at all; a billing admin has no limit of the dashboard's own.
REFUNDERS: Final = ("support", "billing_admin")
#: Who may approve or reject another person's refund.
APPROVERS: Final = ("billing_admin",)
_MIN_SECRET: Final = 32
#: A dashboard request body larger than this is refused (413): its forms are a few kilobytes.
MAX_BODY_BYTES: Final = 64 * 1024
#: The same for the gateways' webhooks it receives (``refundkit.asgi``).
WEBHOOK_MAX_BODY_BYTES: Final = 1 << 20

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@attrs.frozen
class User:
    name: str
    role: str
    password_hash: str = attrs.field(repr=False)


@attrs.frozen
class DashboardSettings:
    secret_key: str = attrs.field(repr=False)
    users: Mapping[str, User]
    #: The most a support user refunds without approval, per currency; a currency not listed
    #: always needs approval.
    support_limits: Mapping[str, Money] = attrs.field(factory=dict)
    #: The most a support user refunds of one customer's payments in any 24 hours without
    #: approval, per currency; None: the same as ``support_limits``.
    support_daily_limits: Mapping[str, Money] | None = None
    #: Failed sign-ins that block a name, or a client address, for ``sign_in_window``.
    sign_in_attempts: int = 5
    sign_in_attempts_per_address: int = 20
    sign_in_window: timedelta = timedelta(minutes=15)
    #: A session ends this long after sign-in (and at sign-out, or when the password changes).
    session_lifetime: timedelta = timedelta(hours=8)
    #: Served over HTTPS, or behind a proxy that is: the session cookie is always Secure.
    #: (A request that arrives over HTTPS gets a Secure cookie either way.)
    https: bool = False
    #: Proxies whose ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed; by default
    #: none, and the client address is the connection's peer.
    trusted_proxies: tuple[Network, ...] = ()
    max_body_bytes: int = MAX_BODY_BYTES
    webhook_max_body_bytes: int = WEBHOOK_MAX_BODY_BYTES

    def refund_limit(self, role: str, currency: str) -> Money | None:
        """The most ``role`` refunds without approval (None: no limit of the dashboard's)."""
        if role == "billing_admin":
            return None
        if role == "support":
            return self.support_limits.get(currency, Money.zero(currency))
        return Money.zero(currency)

    def daily_refund_limit(self, role: str, currency: str) -> Money | None:
        """The most ``role`` refunds of one customer in any 24 hours without approval."""
        if role == "support" and self.support_daily_limits is not None:
            return self.support_daily_limits.get(currency, Money.zero(currency))
        return self.refund_limit(role, currency)


def hash_password(password: str) -> str:
    """An argon2id hash for ``[[dashboard.users]] password_hash``."""
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


def settings_from_config(section: Mapping[str, Any]) -> DashboardSettings:
    """Read ``[dashboard]`` (``env:`` references already resolved); refuse what cannot work."""
    where = "[dashboard]"
    secret = section.get("secret_key")
    if not isinstance(secret, str) or len(secret) < _MIN_SECRET:
        raise ConfigurationError(
            f"{where} secret_key must be a string of at least {_MIN_SECRET} characters "
            '(e.g. "env:REFUNDKIT_DASHBOARD_SECRET")'
        )
    users: dict[str, User] = {}
    raw_users = section.get("users", [])
    if not isinstance(raw_users, list) or not raw_users:
        raise ConfigurationError(f"{where} needs at least one [[dashboard.users]] entry")
    for i, raw in enumerate(raw_users):
        user = _user(raw, f"dashboard.users[{i}]")
        if user.name in users:
            raise ConfigurationError(f"dashboard.users: {user.name!r} is listed twice")
        users[user.name] = user
    limits = _limits(section.get("support_refund_limit"))
    daily_key = "support_daily_refund_limit"
    daily = None if section.get(daily_key) is None else _limits(section[daily_key], daily_key)
    return DashboardSettings(
        secret_key=secret,
        users=users,
        support_limits=limits,
        support_daily_limits=daily,
        **_throttle(section),
        **_serving(section),
    )


def _throttle(section: Mapping[str, Any]) -> dict[str, Any]:
    """The sign-in throttle settings ``[dashboard]`` gives; the others keep their defaults."""
    given: dict[str, Any] = {
        key: _count(key, section[key], 1000)
        for key in ("sign_in_attempts", "sign_in_attempts_per_address")
        if key in section
    }
    for key in ("sign_in_window", "session_lifetime"):
        if key in section:
            given[key] = _duration(key, section[key])
    return given


def _serving(section: Mapping[str, Any]) -> dict[str, Any]:
    """HTTPS, trusted proxies and body limits, as ``[dashboard]`` gives them."""
    given: dict[str, Any] = {
        key: _count(key, section[key], 1 << 30)
        for key in ("max_body_bytes", "webhook_max_body_bytes")
        if key in section
    }
    if "https" in section:
        if not isinstance(section["https"], bool):
            raise ConfigurationError("[dashboard] https must be true or false")
        given["https"] = section["https"]
    if "trusted_proxies" in section:
        given["trusted_proxies"] = parse_proxies(section["trusted_proxies"])
    return given


def parse_proxies(raw: Any) -> tuple[Network, ...]:
    """``["10.0.0.5", "10.1.0.0/16", "::1"]`` → networks; refuses anything else."""
    where = "[dashboard] trusted_proxies"
    if not isinstance(raw, list | tuple) or not all(isinstance(p, str) for p in raw):
        raise ConfigurationError(f'{where} must be a list of addresses, e.g. ["10.0.0.5"]')
    try:
        return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in raw)
    except ValueError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None


def _count(key: str, value: Any, most: int) -> int:
    if type(value) is not int or not 1 <= value <= most:
        raise ConfigurationError(f"[dashboard] {key} must be a whole number from 1 to {most}")
    return value


def _duration(key: str, raw: Any) -> timedelta:
    where = f"[dashboard] {key}"
    try:
        steps = parse_schedule(raw) if isinstance(raw, str) else ()
    except RefundkitError:
        steps = ()
    if len(steps) != 1:
        raise ConfigurationError(f'{where} must be one wait like "15m", "1h" or "900s"')
    return steps[0]


def _user(raw: Any, where: str) -> User:
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{where} must be a table with name, role and password_hash")
    name, role, pw_hash = raw.get("name"), raw.get("role"), raw.get("password_hash")
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise ConfigurationError(f"{where}.name must be a non-empty string of at most 64")
    if role not in ROLES:
        raise ConfigurationError(f"{where}.role must be one of {', '.join(ROLES)}")
    if not isinstance(pw_hash, str) or not pw_hash.startswith("$argon2"):
        raise ConfigurationError(
            f"{where}.password_hash must be an argon2 hash (refundkit dashboard hash-password)"
        )
    return User(name, role, pw_hash)


def _limits(raw: Any, key: str = "support_refund_limit") -> dict[str, Money]:
    """``"100.00 USD"`` or ``{USD = "100.00"}``: amounts as decimal strings, never floats."""
    where = f"[dashboard] {key}"
    if raw is None:
        return {}
    if isinstance(raw, str):
        amount, _, currency = raw.strip().partition(" ")
        pairs = [(currency.strip(), amount)]
    elif isinstance(raw, Mapping):
        pairs = list(raw.items())
    else:
        raise ConfigurationError(f'{where} must be "100.00 USD" or a table {{USD = "100.00"}}')
    out: dict[str, Money] = {}
    for currency, amount in pairs:
        if not isinstance(amount, str):
            raise ConfigurationError(f'{where}: write amounts as strings, e.g. "100.00"')
        try:
            money = Money.parse(amount, str(currency).upper())
        except RefundkitError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None
        if money.amount < 0:
            raise ConfigurationError(f"{where}: a limit cannot be negative")
        out[money.currency] = money
    return out
