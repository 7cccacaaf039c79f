"""Rows into values: what every concept module of the store does with what it reads."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from .._schema import to_db_time

if TYPE_CHECKING:
    from attrs import AttrsInstance
    from sqlalchemy.engine import Row

V = TypeVar("V", bound="AttrsInstance")


def dicts(cur: Any) -> list[dict[str, Any]]:
    """Every row of a DBAPI cursor as a dict by column name."""
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def raw_mapping(row: Row[Any]) -> dict[str, Any]:
    """A Core row as the plain dict the raw path reads (timestamps back to text), so one
    ``*_from_row`` serves both paths."""
    m = dict(row._mapping)
    for key, value in m.items():
        if isinstance(value, datetime):
            m[key] = to_db_time(value)
    return m


def value_from_row(cls: type[V], row: Row[Any], **computed: Any) -> V:
    """An attrs value whose fields are the row's columns of the same names, but for the
    ``computed`` ones (those stored in another shape: an amount and its currency, JSON)."""
    names = [f.name for f in attrs.fields(cls) if f.name not in computed]
    return cls(**{name: row._mapping[name] for name in names}, **computed)
