"""Alembic migrations of refundkit's store. ``HEAD`` is the newest revision; a test checks it."""

HEAD = "0008"
