"""Every cassette says where it comes from, and reads as a real answer (issue 15).

No machine that works on refundkit reaches a gateway, so cassettes are built from the recordings
and API specifications in ``../shared/fixtures/`` (cassettes/README.md). Each YAML cassette's
header (its leading comment) names its source: a fixture file, or an operation of a gateway's
OpenAPI specification, or the test platform it was recorded from. Where ``../shared/fixtures``
is present, each named fixture file and spec operation must exist there.

A body the plugins parse must not carry the placeholders of the gateways' example fixtures (a
Stripe ``next_action.type: "type"``, ``obj_123`` ids, the example timestamp ``1234567890``).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, Final

import pytest
import yaml  # type: ignore[import-untyped]

ROOT: Final = Path(__file__).resolve().parent.parent
CASSETTES: Final = ROOT / "cassettes"
SHARED: Final = ROOT.parent / "shared" / "fixtures"
YAML_FILES: Final = sorted(CASSETTES.rglob("*.yaml"))
GATEWAYS: Final = ("stripe", "braintree", "adyen", "paypal")

#: A fixture file, as PROVENANCE.md names them: ``<project>__<what>[__<format>].<ext>``.
FIXTURE: Final = re.compile(r"\b([a-z][a-z0-9]*__[\w.\-]+?\.(?:yaml|yml|json))\b")
#: A spec operation: ``openapi/<file>`` then ``METHOD /path``.
OPERATION: Final = re.compile(
    r"openapi/([\w.\-]+\.(?:json|yaml))\S*\s+(GET|POST|PUT|PATCH|DELETE) (/[\w{}/\-.]*)"
)
#: A cassette recorded from a gateway's test platform says so.
RECORDED: Final = re.compile(r"Source: .*(test mode|sandbox recording|test platform)")


def header(path: Path) -> str:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# "))
    return " ".join(lines)


def sources(text: str) -> tuple[list[str], list[tuple[str, str, str]]]:
    return FIXTURE.findall(text), OPERATION.findall(text)


def test_there_are_cassettes_of_every_gateway() -> None:
    for gateway in ("stripe", "braintree", "adyen"):
        assert any(p.is_relative_to(CASSETTES / gateway) for p in YAML_FILES), gateway


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(CASSETTES)))
def test_every_cassette_header_names_its_source(path: Path) -> None:
    text = header(path)
    assert text, f"{path.name} has no header comment"
    fixtures, operations = sources(text)
    assert fixtures or operations or RECORDED.search(text), (
        f"{path.relative_to(CASSETTES)}: its header names no fixture file, spec operation or "
        f"recording: {text[:200]!r}"
    )


def test_the_check_is_not_vacuous() -> None:
    assert sources("# Built by hand, trust me") == ([], [])
    fixtures, operations = sources(
        "Source: ../shared/fixtures/adyen/openapi/CheckoutService-v72.json: POST "
        "/payments/{paymentPspReference}/refunds, response 500; ../shared/fixtures/stripe/"
        "saleor__unknown_payment_intent_404_resource_missing__vcrpy.yaml"
    )
    assert fixtures == ["saleor__unknown_payment_intent_404_resource_missing__vcrpy.yaml"]
    route = "/payments/{paymentPspReference}/refunds"
    assert operations == [("CheckoutService-v72.json", "POST", route)]


@cache
def _shared_files() -> dict[str, Path]:
    return {p.name: p for p in SHARED.rglob("*") if p.is_file()}


@cache
def _spec(name: str) -> dict[str, Any]:
    path = _shared_files()[name]
    loaded: dict[str, Any] = (
        json.loads(path.read_text())
        if path.suffix == ".json"
        else yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    )
    return loaded


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/fixtures is not here")
@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(CASSETTES)))
def test_the_named_sources_exist(path: Path) -> None:
    fixtures, operations = sources(header(path))
    for name in fixtures:
        assert name in _shared_files(), f"{path.name} names {name}, not in ../shared/fixtures"
    for spec, method, route in operations:
        assert spec in _shared_files(), f"{path.name} names the spec {spec}"
        paths = _spec(spec).get("paths", {})
        assert method.lower() in paths.get(route, {}), f"{spec} has no {method} {route}"


# --- placeholders ---------------------------------------------------------------------------

#: An id made of a prefix and ``123`` (``obj_123``), and Stripe's example timestamp.
PLACEHOLDER_ID: Final = re.compile(r"^[a-z]+_123$")
PLACEHOLDER_NUMBERS: Final = frozenset({1234567890})


def placeholders(node: Any, key: str = "") -> Iterator[str]:
    """Where ``node`` (a parsed JSON body) carries an example fixture's placeholder."""
    if isinstance(node, dict):
        for name, value in node.items():
            yield from placeholders(value, f"{key}.{name}" if key else name)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from placeholders(value, f"{key}[{i}]")
    elif isinstance(node, str):
        own = key.rsplit(".", 1)[-1]
        if node == own or PLACEHOLDER_ID.match(node):
            yield f"{key}: {node!r}"
    elif isinstance(node, int) and not isinstance(node, bool) and node in PLACEHOLDER_NUMBERS:
        yield f"{key}: {node}"


def xml_placeholders(text: str) -> Iterator[str]:
    root = ET.fromstring(text)
    for element in root.iter():
        value = (element.text or "").strip()
        if value and (value == element.tag or PLACEHOLDER_ID.match(value)):
            yield f"<{element.tag}>{value}</{element.tag}>"


def bodies(path: Path) -> Iterator[str]:
    if path.suffix == ".json":
        yield path.read_text(encoding="utf-8")
        return
    for interaction in yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]:
        body = interaction["response"]["body"]
        text = body.get("string") if isinstance(body, dict) else body
        if isinstance(text, str) and text.strip():
            yield text


BODY_FILES: Final = [*YAML_FILES, *sorted(CASSETTES.glob("*/webhooks/*.json"))]


def test_the_placeholder_check_is_not_vacuous() -> None:
    example = {
        "next_action": {"type": "type"},
        "transfer_data": {"destination": {"id": "obj_123"}},
        "canceled_at": 1234567890,
        "status": "succeeded",
        "object": "payment_intent",
    }
    assert sorted(placeholders(example)) == [
        "canceled_at: 1234567890",
        "next_action.type: 'type'",
        "transfer_data.destination.id: 'obj_123'",
    ]
    assert list(xml_placeholders("<t><status>status</status><id>rkcr1</id></t>")) == [
        "<status>status</status>"
    ]


@pytest.mark.parametrize("path", BODY_FILES, ids=lambda p: str(p.relative_to(CASSETTES)))
def test_no_body_carries_an_example_placeholder(path: Path) -> None:
    found: list[str] = []
    for text in bodies(path):
        stripped = text.lstrip()
        if stripped.startswith(("{", "[")):
            found += placeholders(json.loads(text))
        elif stripped.startswith("<"):
            found += xml_placeholders(stripped)
    assert found == [], f"{path.relative_to(CASSETTES)} carries placeholders: {found}"
