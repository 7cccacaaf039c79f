"""A releasable package (issue 22): every distribution carries its licence and README, states
its classifiers and URLs, and takes its version from one place; every public name has a
docstring for the generated API reference."""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
import subprocess
import tarfile
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = {
    "refundkit": ROOT,
    **{p.name: p for p in sorted((ROOT / "plugins").iterdir()) if (p / "pyproject.toml").exists()},
}
#: The public modules whose ``__all__`` the API reference renders.
PUBLIC_MODULES = ("refundkit", "refundkit.webhooks", "refundkit.testing", "refundkit.asgi")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Every distribution built as a wheel and an sdist, once for this module."""
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv builds the distributions (the README runs the tests with uv)"
    out = tmp_path_factory.mktemp("dist")
    archives: dict[str, list[Path]] = {}
    for name, path in DISTRIBUTIONS.items():
        target = out / name
        done = subprocess.run(
            [uv, "build", "--offline", "--quiet", "-o", str(target), str(path)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        archives[name] = sorted(p for p in target.iterdir() if p.name.endswith((".whl", ".tar.gz")))
    return archives


def _members(archive: Path) -> dict[str, bytes]:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            return {n: z.read(n) for n in z.namelist()}
    with tarfile.open(archive) as t:
        return {
            m.name: t.extractfile(m).read()  # type: ignore[union-attr]
            for m in t.getmembers()
            if m.isfile()
        }


def _metadata(members: dict[str, bytes]) -> str:
    [meta] = [v for n, v in members.items() if n.endswith(("METADATA", "/PKG-INFO")) and
              n.count("/") <= 1]  # fmt: skip
    return meta.decode("utf-8")


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_every_archive_carries_the_licence_readme_classifiers_and_urls(
    built: dict[str, list[Path]], name: str
) -> None:
    archives = built[name]
    assert {a.suffix for a in archives} == {".whl", ".gz"}
    for archive in archives:
        members = _members(archive)
        licences = [n for n in members if n.rsplit("/", 1)[-1] == "LICENSE"]
        assert licences, f"{archive.name} has no LICENSE"
        assert b"Permission is hereby granted" in members[licences[0]]
        meta = Parser().parsestr(_metadata(members))
        assert meta["License-Expression"] == "MIT"
        assert meta.get_all("Classifier"), f"{archive.name} has no classifiers"
        assert any(u.startswith("Changelog") for u in meta.get_all("Project-URL") or [])
        assert meta["Description-Content-Type"] == "text/markdown"
        readme = str(meta.get_payload())
        assert f"# {name}" in readme, f"{archive.name} does not carry its README"


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_each_distribution_has_one_version_source(name: str) -> None:
    """The version is written once, in the package's ``__init__``; pyproject reads it."""
    project = tomllib.loads((DISTRIBUTIONS[name] / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    module = importlib.import_module(name.replace("-", "_"))
    from importlib.metadata import version

    assert module.__version__ == version(name)


def test_the_changelog_has_this_milestones_section() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in text
    assert "Keep a Changelog" in text


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_has_a_docstring(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [
        name
        for name in module.__all__
        if (inspect.isclass(obj := getattr(module, name)) or inspect.isfunction(obj))
        and not (obj.__doc__ or "").strip()  # its own, not one inherited
    ]
    assert missing == []
