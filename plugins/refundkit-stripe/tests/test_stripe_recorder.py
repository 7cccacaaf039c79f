"""record_stripe.py, the one-command re-recorder of cassettes/stripe/, offline: its key
handling, the cleaning of a recorded cassette (headers, ids, card data, leaks), and a dry run
against a local fake of Stripe's test mode whose cassettes the replaying tests accept.

It has never been run against Stripe: no machine here reaches it.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from _stripe_cassettes import (
    API,
    CONFORMANCE,
    ROOT,
    build,
    charge_body,
    conformance_interactions,
    kit_interactions,
)
from _stripe_clean import RECORDED_PREFIX, LeakError, cassette_text, clean, rewrite, scrub
from _stripe_fake import KEY, fake_stripe
from _stripe_support import cassette, make_gateway
from record_stripe import BUILT_ONLY, Session, UsageError, checked_key, main, record, recordings

from refundkit import GatewayRefundRequest, Money

SCRIPT = Path(__file__).with_name("record_stripe.py")
FAKE_API = "http://127.0.0.1:8123"
#: Stripe's ids for the built ones, as a recording would hold them (letters only: no PAN).
REAL = {
    "ch_rkIdempotentRetry": "ch_3QpOhZeKYloCqWxAbCdEfGh",
    "re_rkIdempotentRetry": "re_3QpOhZeKYloCqWxAbCdEfGh",
    "pi_rkIdempotentRetry": "pi_3QpOhZeKYloCqWxAbCdEfGh",
    "refundkit-rf_idempotent_retry": "refundkit-rf_idempotent_retry-0a1b2c3d001",
    "ch_rkWebhookSucceeded": "ch_3QpOhZeKYloCqWxWebhookOk",
    "re_rkWebhookSucceeded": "re_3QpOhZeKYloCqWxWebhookOk",
}
IDS = {real: ours for ours, real in REAL.items()}


# --- the key --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["sk_" + "test_51AbCdEfGhIjKlMnOpQr", "rk_" + "test_51AbCdEfGhIjKlMnOpQr"]
)
def test_a_test_mode_key_is_taken(key: str) -> None:
    assert checked_key({"REFUNDKIT_STRIPE_API_KEY": f" {key}\n"}) == key


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({}, "set REFUNDKIT_STRIPE_API_KEY"),
        ({"REFUNDKIT_STRIPE_API_KEY": "  "}, "set REFUNDKIT_STRIPE_API_KEY"),
        ({"REFUNDKIT_STRIPE_API_KEY": "sk_" + "live_51SecretLiveKeyZZZZ"}, "live key"),
        ({"REFUNDKIT_STRIPE_API_KEY": "rk_" + "live_51SecretLiveKeyZZZZ"}, "live key"),
        ({"REFUNDKIT_STRIPE_API_KEY": "pk_test_51PublishableKeyZZ"}, "not a secret"),
        ({"REFUNDKIT_STRIPE_API_KEY": "whsec_51SigningSecretZZZZZ"}, "not a secret"),
    ],
)
def test_a_missing_live_or_other_key_is_refused_in_one_line_without_the_key(
    environ: dict[str, str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """R-5.4: the key is never printed, even when it is the wrong kind."""
    with pytest.raises(UsageError, match=says):
        checked_key(environ)
    assert main([], environ) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("record_stripe: ")
    for key in environ.values():
        if key.strip():
            assert key not in err
            assert key.strip()[8:] not in err


def test_an_unknown_case_is_a_usage_error_before_any_call(
    capsys: pytest.CaptureFixture[str],
) -> None:
    environ = {"REFUNDKIT_STRIPE_API_KEY": "sk_" + "test_51AbCdEfGhIjKlMnOpQr"}
    assert main(["--only", "no_such_case"], environ) == 2
    assert capsys.readouterr().err == "record_stripe: no such case: no_such_case\n"


def test_the_command_refuses_a_live_key_with_exit_2() -> None:
    """The README's command line, as a person runs it."""
    key = "sk_" + "live_51SecretLiveKeyZZZZZZZZ"
    env = {**os.environ, "REFUNDKIT_STRIPE_API_KEY": key}
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("record_stripe: ")
    assert done.stderr.count("\n") == 1
    assert key not in done.stderr


def test_every_cassette_is_recorded_or_left_to_the_builder() -> None:
    recorded = {r.path for r in recordings()}
    assert not recorded & set(BUILT_ONLY)
    assert recorded | set(BUILT_ONLY) == set(build())


# --- cleaning ---------------------------------------------------------------------------------


def _as_recorded(interaction: dict[str, Any]) -> dict[str, Any]:
    """A built interaction as vcrpy records it from Stripe: Stripe's ids, the run's key, the
    SDK's and the server's other headers."""
    raw = json.loads(rewrite(json.dumps(interaction), REAL))
    raw["request"]["uri"] = raw["request"]["uri"].replace(API, FAKE_API)
    raw["request"]["headers"].update(
        {
            "User-Agent": ["Stripe/v1 PythonBindings/16.1.0"],
            "X-Stripe-Client-User-Agent": ['{"uname": "Linux builder 6.1.0"}'],
            "X-Stripe-Client-Telemetry": ['{"last_request_metrics": {}}'],
            "Stripe-Version": ["2026-10-28.endive"],
        }
    )
    raw["response"]["headers"].update(
        {
            "Server": ["nginx"],
            "Set-Cookie": ["__stripe_orig_props=abc; path=/"],
            "Content-Length": ["1234"],
            "Strict-Transport-Security": ["max-age=63072000"],
        }
    )
    raw["response"]["body"]["string"] = json.dumps(
        json.loads(raw["response"]["body"]["string"])
    ).encode()
    return dict(raw)


@pytest.mark.parametrize("index", [0, 1])
def test_cleaning_a_recording_gives_back_the_built_interaction(index: int) -> None:
    built = conformance_interactions()["idempotent_retry"][index]
    recorded = _as_recorded(copy.deepcopy(built))
    assert recorded != built  # control: there was something to clean
    assert clean(recorded, IDS, api=FAKE_API) == built


def test_cleaning_keeps_no_credential_or_client_telemetry_header() -> None:
    recorded = _as_recorded(conformance_interactions()["full_refund"][0])
    recorded["request"]["headers"]["Authorization"] = ["Bearer sk_" + "test_51AbCdEfGhIjKlMnOpQr"]
    cleaned = clean(recorded, IDS, api=FAKE_API)
    assert set(cleaned["request"]["headers"]) == {"Content-Type", "Idempotency-Key"}
    assert set(cleaned["response"]["headers"]) <= {
        "Content-Type", "Request-Id", "Stripe-Version", "Idempotency-Key", "Idempotent-Replayed",
    }  # fmt: skip
    text = json.dumps(cleaned)
    for gone in ("sk_test_", "uname", "last_request_metrics", "Set-Cookie", FAKE_API):
        assert gone not in text


def test_a_kit_recording_keeps_no_request_body_or_key() -> None:
    """As built: a kit makes up its refund ids, so its cassettes match on no body or key."""
    built = kit_interactions()["pending_then_webhook"][0]
    sent = conformance_interactions()["webhook_succeeded"][0]  # what the recorder sends
    recorded = _as_recorded({"request": sent["request"], "response": built["response"]})
    recorded["response"]["headers"]["Idempotency-Key"] = [REAL["refundkit-rf_idempotent_retry"]]
    assert clean(recorded, IDS, api=FAKE_API, kit=True) == built


def test_rewrite_replaces_the_longest_id_first() -> None:
    ids = {"ch_A": "ch_rkOne", "ch_AB": "ch_rkTwo", "key-001": "key", "key-0011": "other"}
    assert rewrite("ch_AB ch_A key-0011 key-001", ids) == "ch_rkTwo ch_rkOne other key"


def test_scrub_keeps_brand_last4_and_expiry_of_a_card_and_nulls_the_rest() -> None:
    """R-5.4: brand, last 4, expiry; no fingerprint, no BIN beyond what Stripe reports."""
    body = charge_body(CONFORMANCE["card_masking"])
    card = body["payment_method_details"]["card"]
    card.update(fingerprint="Xt5EWLLDS7FJjR1c", iin="424242", issuer="Stripe Test Bank",
                description="Visa Classic", network_transaction_id="MCC0AbCdE")  # fmt: skip
    body.update(receipt_url="https://pay.stripe.com/receipts/payment/CAcaFwoVYWNjdF8x")
    body["billing_details"].update(name="Jenny Rosen", email="jenny@example.com")
    intent = {"id": "pi_1", "client_secret": "pi_1_secret_abc", "latest_charge": body}
    scrubbed = scrub(intent)
    card = scrubbed["latest_charge"]["payment_method_details"]["card"]
    assert (card["brand"], card["last4"], card["exp_month"], card["exp_year"]) == (
        "visa", "4242", 8, 2030,
    )  # fmt: skip
    for field in ("fingerprint", "iin", "issuer", "description", "network_transaction_id"):
        assert card[field] is None, field
    assert scrubbed["client_secret"] is None
    assert scrubbed["latest_charge"]["receipt_url"] is None
    assert scrubbed["latest_charge"]["billing_details"]["name"] is None
    assert scrubbed["latest_charge"]["billing_details"]["email"] is None
    assert intent["client_secret"] == "pi_1_secret_abc"  # a copy: the input is untouched


@pytest.mark.parametrize(
    "planted",
    [
        "4242424242424242",
        "4000 0000 0000 0259",
        "sk_" + "test_51AbCdEfGhIjKlMnOpQrStUv",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "sk_test_short",  # the run's own key, whatever its shape
    ],
)
def test_a_cassette_that_would_leak_is_not_written(planted: str) -> None:
    interaction = conformance_interactions()["full_refund"][0]
    assert cassette_text([interaction], "sk_test_short", "2026-11-22")  # control: clean passes
    leaky = copy.deepcopy(interaction)
    leaky["response"]["body"]["string"] += planted
    with pytest.raises(LeakError, match="not written"):
        cassette_text([leaky], "sk_test_short", "2026-11-22")


# --- a dry run against a fake Stripe ----------------------------------------------------------


def _root_scan() -> Callable[[str], list[str]]:
    """tests/test_cassettes.py's scan, the one every cassette in the repository passes."""
    spec = importlib.util.spec_from_file_location(
        "_root_cassette_scan", ROOT / "tests" / "test_cassettes.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    scan: Callable[[str], list[str]] = module.leaks
    return scan


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("recorded") / "stripe"
    with fake_stripe() as (url, _):
        session = Session(KEY, base=url, sleep=lambda _: None)
        try:
            written = record(session, out, log=lambda _: None, date="2026-11-22")
        finally:
            session.close()
    assert written == sorted(build())
    return out


def test_the_dry_run_records_what_can_be_recorded_and_builds_the_rest(dry_run: Path) -> None:
    built = build()
    for name, text in built.items():
        on_disk = (dry_run / name).read_text()
        if name in BUILT_ONLY:
            assert on_disk == text, name
        else:
            assert on_disk.startswith(RECORDED_PREFIX), name


def test_the_dry_runs_cassettes_hold_nothing_of_the_fake_stripe(dry_run: Path) -> None:
    scan = _root_scan()
    for path in sorted(dry_run.rglob("*.yaml")):
        text = path.read_text()
        assert scan(text) == [], path.name
        for gone in ("3Fake", "127.0.0.1", "_secret_", "Jenny Rosen", "FakeFingerprint",
                     "receipts/", "Set-Cookie", "nginx", KEY, "Content-Encoding"):  # fmt: skip
            assert gone not in text, f"{path.name} holds {gone!r}"


def test_the_replaying_tests_pass_on_the_dry_runs_cassettes(dry_run: Path) -> None:
    """The plugin's replaying tests (conformance suite, errors, webhooks through a kit, the
    schema of every body) run on the recorded set instead of the built one."""
    files = ["test_stripe_conformance.py", "test_stripe_errors.py",
             "test_stripe_webhooks.py", "test_stripe_cassettes.py"]  # fmt: skip
    env = {**os.environ, "REFUNDKIT_STRIPE_CASSETTES": str(dry_run)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"--basetemp={dry_run.parent / 'replay'}",
         *(str(Path(__file__).with_name(f)) for f in files)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
    assert " failed" not in done.stdout


def test_a_recorded_cassette_with_stripes_ids_left_in_does_not_replay(dry_run: Path) -> None:
    """Control: the replay depends on the rewritten ids (a miss, not a pass)."""
    case = CONFORMANCE["full_refund"]
    path = dry_run / "conformance" / "full_refund.yaml"
    request = GatewayRefundRequest(
        refund_id=case.refund_id,
        payment_id="pay_full_refund",
        gateway_payment_id=case.charge,
        amount=Money(case.amount, case.currency),
        idempotency_key=case.key,
        reason="requested_by_customer",
    )
    with cassette(path):
        assert make_gateway().refund(request).gateway_refund_id == case.gateway_refund_id
    unrewritten = path.with_name("unrewritten.yaml")
    unrewritten.write_text(path.read_text().replace(case.charge, "ch_3QpOhZeKYloCqWxAbCdEfGh"))
    with pytest.raises(AssertionError, match="no matching interaction"), cassette(unrewritten):
        make_gateway().refund(request)


def test_the_dry_run_cassettes_are_valid_yaml_with_interactions(dry_run: Path) -> None:
    for recording in recordings():
        data = yaml.safe_load((dry_run / recording.path).read_text())
        assert data["version"] == 1
        assert data["interactions"], recording.path


def test_the_readme_and_the_docs_give_the_command_and_say_it_never_ran() -> None:
    command = "python3 -m uv run python plugins/refundkit-stripe/tests/record_stripe.py"
    readme = (ROOT / "cassettes" / "stripe" / "README.md").read_text()
    docs = (ROOT / "docs" / "stripe.md").read_text()
    for page in (readme, docs):
        assert "REFUNDKIT_STRIPE_API_KEY=sk_test_..." in page
        assert command in page
        assert "never been run against Stripe" in page
    for name in BUILT_ONLY:
        if name.endswith(".yaml"):
            assert f"`{name}`" in readme, name
