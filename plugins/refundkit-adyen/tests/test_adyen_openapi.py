"""Every response body in the Adyen cassettes validates against Adyen's Checkout v72 OpenAPI
schema (PaymentRefundResponse for 201, ServiceError otherwise)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no stubs installed
from _adyen_cassettes import CASES, CASSETTES, CHECKOUT_SPEC, interactions, path
from jsonschema import ValidationError  # type: ignore[import-untyped]  # no stubs installed
from openapi_schema_validator import OAS30Validator

SPEC: dict[str, Any] = json.loads(CHECKOUT_SPEC.read_text())
CASSETTE_FILES = sorted(CASSETTES.rglob("*.yaml"))


def _validator(schema: str) -> OAS30Validator:
    # The spec's "#/components/schemas/..." references resolve against this root.
    root = {"$ref": f"#/components/schemas/{schema}", "components": SPEC["components"]}
    return OAS30Validator(root)


def test_there_are_cassettes() -> None:
    assert len(CASSETTE_FILES) >= 16


@pytest.mark.parametrize("path", CASSETTE_FILES, ids=lambda p: str(p.relative_to(CASSETTES)))
def test_response_bodies_follow_the_checkout_schema(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    for interaction in doc["interactions"]:
        status = interaction["response"]["status"]["code"]
        body = json.loads(interaction["response"]["body"]["string"])
        schema = "PaymentRefundResponse" if status == 201 else "ServiceError"
        _validator(schema).validate(body)
        assert "/v72/" in interaction["request"]["uri"]


def test_the_validator_refuses_a_wrong_body() -> None:
    with pytest.raises(ValidationError, match=r"Additional properties"):
        _validator("PaymentRefundResponse").validate({"status": "received", "bogus": 1})


def test_the_cassettes_are_what_the_builder_makes() -> None:
    """The committed cassettes never drift from their documented construction."""
    for case in CASES.values():
        committed = yaml.safe_load(path(case).read_text())
        assert committed == {"interactions": list(interactions(case)), "version": 1}, case.name
