"""The admin dashboard (``refundkit serve``): Starlette and Jinja2 over a ``RefundKit``.

Imported only when asked for: ``import refundkit`` never loads Starlette.
"""

from __future__ import annotations

from ._app import create_app
from ._settings import ROLES, DashboardSettings, User, hash_password, settings_from_config

__all__ = [
    "ROLES",
    "DashboardSettings",
    "User",
    "create_app",
    "hash_password",
    "settings_from_config",
]
