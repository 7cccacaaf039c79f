"""MkDocs hook: a page's links to files outside ``docs/`` (the README, cassettes, plugins)
point into the repository, which the site does not carry. On the site they become the path in
the repository, as code; the repository's own link check (tests/test_docs.py) still checks
that each of those files exists."""

from __future__ import annotations

import posixpath
import re
from typing import Any

_LINK = re.compile(r"\[(?P<text>[^\]]+)\]\((?P<target>\.\./[^)#\s]+)(?:#[^)\s]*)?\)")


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    base = posixpath.dirname(page.file.src_uri)

    def outside(match: re.Match[str]) -> str:
        path = posixpath.normpath(posixpath.join("docs", base, match["target"]))
        text = match["text"].strip("`")
        return f"{text} (`{path}` in the repository)" if text != path else f"`{path}`"

    return _LINK.sub(outside, markdown)
