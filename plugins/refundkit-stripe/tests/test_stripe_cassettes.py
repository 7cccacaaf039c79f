"""The Stripe cassettes: built by ``_stripe_cassettes.py`` (never hand-edited), and every
response body valid under Stripe's OpenAPI schema for its endpoint and status."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml  # type: ignore[import-untyped]
from _stripe_cassettes import CASSETTES, FIXTURES, HEADER, build
from _stripe_clean import RECORDED_PREFIX
from openapi_schema_validator import OAS30Validator

SPEC = FIXTURES / "openapi" / "spec3.2023-09-12.subset.json"
CASSETTE_FILES = sorted(CASSETTES.rglob("*.yaml"))
EVENT_FILES = sorted((CASSETTES / "webhooks").glob("*.json"))


def test_the_cassettes_are_what_the_builder_builds() -> None:
    """Each file is exactly what the builder builds, unless record_stripe.py recorded it
    (its first line says so; the tests below and the replaying tests check it like any)."""
    built = build()
    on_disk = {
        str(p.relative_to(CASSETTES)): p.read_text()
        for p in CASSETTES.rglob("*")
        if p.suffix in (".yaml", ".json")
    }
    assert sorted(on_disk) == sorted(built), "run _stripe_cassettes.py to rebuild the cassettes"
    for name, text in built.items():
        if text.startswith(HEADER) and on_disk[name].startswith(RECORDED_PREFIX):
            continue
        assert on_disk[name] == text, f"{name} differs from what _stripe_cassettes.py builds"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    assert SPEC.is_file(), f"Stripe's OpenAPI spec is not at {SPEC}"
    with SPEC.open() as f:
        loaded: dict[str, Any] = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    _null_in_any_of(loaded)
    return loaded


def _null_in_any_of(node: Any) -> None:
    """Stripe writes ``nullable: true`` beside ``anyOf`` (an expandable id or object); the
    validator applies ``nullable`` only beside ``type``, so say it as an anyOf branch."""
    if isinstance(node, dict):
        if node.get("nullable") is True and "anyOf" in node:
            node["anyOf"] = [*node["anyOf"], {"enum": [None]}]
        if node.get("nullable") is True and "enum" in node and None not in node["enum"]:
            node["enum"] = [*node["enum"], None]
        for value in node.values():
            _null_in_any_of(value)
    elif isinstance(node, list):
        for value in node:
            _null_in_any_of(value)


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _validator(spec: dict[str, Any], *parts: str) -> OAS30Validator:
    # The whole spec is the root document, so every $ref in it resolves; the $ref at the top
    # selects the schema to check against (siblings of a $ref are ignored in OpenAPI 3.0).
    return OAS30Validator({**spec, "$ref": _pointer(*parts)})


def _path_template(spec: dict[str, Any], path: str) -> str:
    for template in spec["paths"]:
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", template)
        if re.fullmatch(pattern, path):
            return str(template)
    raise AssertionError(f"{path} is not a path of Stripe's API")


def _interactions() -> Iterator[Any]:
    for path in CASSETTE_FILES:
        data = yaml.safe_load(path.read_text())
        for i, interaction in enumerate(data["interactions"]):
            yield pytest.param(interaction, id=f"{path.relative_to(CASSETTES)}#{i}")


def test_there_are_cassettes() -> None:
    assert len(CASSETTE_FILES) >= 15
    assert len(EVENT_FILES) == 3


@pytest.mark.parametrize("interaction", list(_interactions()))
def test_every_response_body_matches_stripes_schema(
    spec: dict[str, Any], interaction: dict[str, Any]
) -> None:
    request, response = interaction["request"], interaction["response"]
    template = _path_template(spec, urlsplit(request["uri"]).path)
    method = request["method"].lower()
    responses = spec["paths"][template][method]["responses"]
    status = str(response["status"]["code"])
    which = status if status in responses else "default"
    schema = ("paths", template, method, "responses", which, "content", "application/json",
              "schema")  # fmt: skip
    body = json.loads(response["body"]["string"])
    _validator(spec, *schema).validate(body)
    if which == "default":
        assert "error" in body
        assert int(status) >= 400


@pytest.mark.parametrize("path", EVENT_FILES, ids=[p.name for p in EVENT_FILES])
def test_every_webhook_event_matches_stripes_schema(spec: dict[str, Any], path: Path) -> None:
    event = json.loads(path.read_text())
    _validator(spec, "components", "schemas", "event").validate(event)
    _validator(spec, "components", "schemas", "refund").validate(event["data"]["object"])


def test_the_validator_refuses_a_wrong_body(spec: dict[str, Any]) -> None:
    # Control: the check above can fail.
    refund = _validator(spec, "components", "schemas", "refund")
    assert not refund.is_valid({"id": "re_1", "object": "refund", "amount": "10"})
    assert not refund.is_valid({"object": "refund"})
