"""Each gateway plugin, built as a wheel and installed as a real distribution, is found through
its ``refundkit`` entry point and listed by ``refundkit gateways`` (issues 4, 5 and 6, "Done
means": discovery), without its SDK being imported."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: (distribution, module, gateway name, the SDK's top-level module)
PLUGINS = [
    ("refundkit-stripe", "refundkit_stripe", "stripe", "stripe"),
    ("refundkit-braintree", "refundkit_braintree", "braintree", "braintree"),
    ("refundkit-adyen", "refundkit_adyen", "adyen", "Adyen"),
]


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed to build the plugins' wheels (the README runs the tests with uv)"
    return uv


def _run(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def probe_env(site: Path) -> dict[str, str]:
    """The probe's environment: the installed wheel first on the path, and nothing of the
    caller's refundkit settings. A developer's shell may block a plugin the way docs/plugins.md
    shows (``REFUNDKIT_DISABLED_PLUGINS=stripe``), turn autoloading off or name a config file;
    inherited, any of these made this test fail outside CI (for Stripe, the first case)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFUNDKIT_")}
    return {**env, "PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1", "COLUMNS": "200"}


def test_the_probe_does_not_inherit_the_callers_refundkit_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in [("REFUNDKIT_DISABLED_PLUGINS", "stripe"), ("COLUMNS", "40"),
                        ("REFUNDKIT_DISABLE_PLUGIN_AUTOLOAD", "1"), ("PYTHONPATH", "/elsewhere"),
                        ("REFUNDKIT_CONFIG", str(tmp_path / "refundkit.toml"))]:  # fmt: skip
        monkeypatch.setenv(name, value)
    env = probe_env(tmp_path / "site")
    assert not [k for k in env if k.startswith("REFUNDKIT_")]
    assert (env["PYTHONPATH"], env["COLUMNS"]) == (str(tmp_path / "site"), "200")
    assert env["PATH"] == os.environ["PATH"]  # the rest is the caller's


def test_every_plugin_directory_is_covered() -> None:
    found = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file())
    assert found == sorted(dist for dist, *_ in PLUGINS)


@pytest.mark.parametrize(("dist", "module", "gateway", "sdk"), PLUGINS, ids=[p[2] for p in PLUGINS])
def test_the_built_wheel_is_discovered_through_its_entry_point(
    tmp_path: Path, dist: str, module: str, gateway: str, sdk: str
) -> None:
    uv = _uv()
    _run(uv, "build", "--wheel", "--offline", "--quiet", "-o", tmp_path / "dist",
         ROOT / "plugins" / dist)  # fmt: skip
    [wheel] = (tmp_path / "dist").glob(f"{module}-*.whl")
    site = tmp_path / "site"
    _run(uv, "pip", "install", "--offline", "--quiet", "--no-deps", "--target", site, wheel)
    probe = textwrap.dedent(
        f"""
        import sys
        from importlib.metadata import distribution, entry_points
        dist = distribution({dist!r})
        assert str(dist.locate_file("")).startswith({str(site)!r}), dist.locate_file("")
        [ep] = [e for e in dist.entry_points if e.group == "refundkit"]
        assert (ep.name, ep.value) == ({gateway!r}, {module!r}), ep
        assert ep in entry_points(group="refundkit"), "not among the refundkit entry points"
        import {module}
        assert {module}.__file__.startswith({str(site)!r}), {module}.__file__
        from refundkit import PluginManager
        pm = PluginManager()  # autoload: the entry points
        assert {gateway!r} in list(pm.gateways), list(pm.gateways)
        assert ({gateway!r}, {dist!r}) in [(n, d) for n, d, _ in pm.distinfo()], pm.distinfo()
        assert {sdk!r} not in sys.modules, "discovery imported the SDK"
        from refundkit.cli import main
        main()
        """
    )
    # The installed wheel comes first on the path, ahead of the workspace's editable copy; the
    # probe runs where there is no refundkit.toml, and reads the listing as JSON, not a table
    # whose width is the terminal's.
    out = _run(sys.executable, "-c", probe, "gateways", "--json", env=probe_env(site), cwd=tmp_path)
    listed = {g["name"]: g["distribution"] for g in json.loads(out)["gateways"]}
    assert listed[gateway] == {"name": dist, "version": _version(module, site)}


def _version(module: str, site: Path) -> str:
    [info] = site.glob(f"{module}-*.dist-info")
    return info.name.removeprefix(f"{module}-").removesuffix(".dist-info")
