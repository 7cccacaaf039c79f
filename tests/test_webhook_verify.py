"""The consumer's verify helper: the Standard Webhooks test vector, rotation, tolerance
boundaries and every malformed header of reliability.md's webhooks bad-input list (R-4.1,
R-4.3, R-4.4, R-7.4)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from refundkit import ConfigurationError, WebhookVerificationError
from refundkit._errors import (
    InvalidWebhookSecret,
    WebhookHeaderMalformed,
    WebhookHeaderMissing,
    WebhookSignatureMismatch,
    WebhookTimestampOutOfTolerance,
)
from refundkit.webhooks import new_secret, sign, signed_headers, verify

# The spec's known answer.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TS = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
NOW = datetime.fromtimestamp(TS, UTC)


def headers(**over: str) -> dict[str, str]:
    h = {"webhook-id": MSG_ID, "webhook-timestamp": str(TS), "webhook-signature": EXPECTED}
    h.update({k.replace("_", "-"): v for k, v in over.items()})
    return h


def test_the_spec_test_vector_signs_and_verifies() -> None:
    """R-4.1: the published known answer, through sign() and verify()."""
    assert sign(SECRET, MSG_ID, TS, BODY) == EXPECTED
    assert verify(headers(), BODY, SECRET, now=NOW) == {"test": 2432232314}


def test_what_we_sign_verifies_with_the_standardwebhooks_package() -> None:
    """R-4.2: the package's own verifier accepts our headers (its clock is the real one)."""
    secret = new_secret()
    ts = int(datetime.now(UTC).timestamp())
    h = signed_headers(secret, "evt_1", ts, b'{"a":1}')
    assert Webhook(secret).verify(b'{"a":1}', h) == {"a": 1}


def test_secret_without_prefix_and_unpadded_base64_verify() -> None:
    bare = SECRET.removeprefix("whsec_")
    assert verify(headers(), BODY, bare, now=NOW)
    raw = base64.b64encode(b"k" * 32).decode().rstrip("=")
    assert verify(signed_headers(raw, "m1", TS, BODY), BODY, raw, now=NOW)


@pytest.mark.parametrize("bad", ["", "whsec_"])
def test_an_empty_secret_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(InvalidWebhookSecret) as err:
        verify(headers(), BODY, bad, now=NOW)
    assert isinstance(err.value, ConfigurationError)
    assert err.value.code == "invalid_webhook_secret"


def test_rotation_two_signatures_and_two_secrets() -> None:
    """R-4.3: during a rotation both signatures are sent; either secret verifies."""
    old, new = new_secret(), new_secret()
    h = signed_headers([old, new], MSG_ID, TS, BODY)
    assert len(h["webhook-signature"].split(" ")) == 2
    assert verify(h, BODY, old, now=NOW) == verify(h, BODY, new, now=NOW)
    # A consumer holding both secrets accepts a message signed with either one.
    assert verify(signed_headers(new, MSG_ID, TS, BODY), BODY, [old, new], now=NOW)
    with pytest.raises(WebhookSignatureMismatch):
        verify(signed_headers(new_secret(), MSG_ID, TS, BODY), BODY, [old, new], now=NOW)


def test_a_valid_signature_second_in_the_list_verifies() -> None:
    other = sign(new_secret(), MSG_ID, TS, BODY)
    assert verify(headers(webhook_signature=f"{other} {EXPECTED}"), BODY, SECRET, now=NOW)
    assert verify(headers(webhook_signature=f"v2,abc {EXPECTED}"), BODY, SECRET, now=NOW)


def test_header_names_are_case_insensitive() -> None:
    upper = {k.upper(): v for k, v in headers().items()}
    assert verify(upper, BODY, SECRET, now=NOW)
    assert verify(list(upper.items()), BODY, SECRET, now=NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_or_empty_headers(missing: str) -> None:
    h = headers()
    del h[missing]
    with pytest.raises(WebhookHeaderMissing) as err:
        verify(h, BODY, SECRET, now=NOW)
    assert err.value.code == "webhook_header_missing"
    with pytest.raises(WebhookHeaderMissing):
        verify(headers(**{missing.replace("-", "_"): ""}), BODY, SECRET, now=NOW)


def test_a_duplicated_header_is_malformed() -> None:
    pairs = [*headers().items(), ("Webhook-Id", "msg_other")]
    with pytest.raises(WebhookHeaderMalformed):
        verify(pairs, BODY, SECRET, now=NOW)


@pytest.mark.parametrize(
    "signature",
    [
        "garbage",  # no comma: the package raises a bare ValueError here
        "v1,@@@",  # bad base64
        f"{EXPECTED}  {EXPECTED}",  # double space: ValueError in the package too
        f"{EXPECTED} ",  # trailing space
        f" {EXPECTED}",
        "v1,",  # empty signature
        ",abc",
        "v1,YWJj",  # valid base64, but not 32 bytes
        EXPECTED.replace("v1", "V1"),
        EXPECTED[:-1],  # unpadded: not canonical base64 of 32 bytes
    ],
)
def test_malformed_signature_headers_raise_the_typed_error(signature: str) -> None:
    """R-4.4: never a bare ValueError; always a WebhookVerificationError with a code."""
    with pytest.raises(WebhookHeaderMalformed) as err:
        verify(headers(webhook_signature=signature), BODY, SECRET, now=NOW)
    assert err.value.code == "webhook_header_malformed"


@pytest.mark.parametrize("signature", ["v1a,abc", "v2," + EXPECTED[3:]])
def test_only_unknown_versions_is_a_mismatch(signature: str) -> None:
    with pytest.raises(WebhookSignatureMismatch) as err:
        verify(headers(webhook_signature=signature), BODY, SECRET, now=NOW)
    assert err.value.code == "webhook_signature_mismatch"


@pytest.mark.parametrize(
    "timestamp",
    [f"{TS}.0", "nan", "-5", f"-{TS}", "1e9", " " + str(TS), "\uff11\uff12\uff13", "0x10", ""],
)
def test_malformed_timestamps_raise_the_typed_error(timestamp: str) -> None:
    with pytest.raises(WebhookVerificationError) as err:
        verify(headers(webhook_timestamp=timestamp), BODY, SECRET, now=NOW)
    assert type(err.value) in (WebhookHeaderMalformed, WebhookHeaderMissing)


def test_a_millisecond_timestamp_is_malformed() -> None:
    with pytest.raises(WebhookHeaderMalformed, match="seconds"):
        verify(headers(webhook_timestamp=str(TS * 1000)), BODY, SECRET, now=NOW)


@pytest.mark.parametrize("offset", [-300, 300])
def test_tolerance_boundary_300_seconds_passes(offset: int) -> None:
    """R-7.4: now ± 300 s passes."""
    assert verify(headers(), BODY, SECRET, now=NOW + timedelta(seconds=offset))


@pytest.mark.parametrize("offset", [-301, 301])
def test_tolerance_boundary_301_seconds_fails(offset: int) -> None:
    """R-7.4: now ± 301 s fails, too old or too new."""
    with pytest.raises(WebhookTimestampOutOfTolerance) as err:
        verify(headers(), BODY, SECRET, now=NOW + timedelta(seconds=offset))
    assert err.value.code == "webhook_timestamp_out_of_tolerance"


@pytest.mark.parametrize("msg_id", ["msg.1", "msg 1", "é"])
def test_webhook_id_with_a_dot_or_space_is_malformed(msg_id: str) -> None:
    with pytest.raises(WebhookHeaderMalformed):
        verify(headers(webhook_id=msg_id), BODY, SECRET, now=NOW)
    with pytest.raises(WebhookHeaderMalformed):
        sign(SECRET, msg_id, TS, BODY)


@pytest.mark.parametrize(
    "body",
    [
        b'{"test":2432232314}',  # re-serialised without the space
        b'{"test": 2432232314}\n',
        b'\xef\xbb\xbf{"test": 2432232314}',  # a BOM
        b'{"test": 2432232314}'.replace(b" ", b"\r\n"),
        b"",
    ],
)
def test_any_change_to_the_body_fails(body: bytes) -> None:
    """R-4.2: the signature covers the exact bytes."""
    with pytest.raises(WebhookSignatureMismatch):
        verify(headers(), body, SECRET, now=NOW)


def test_a_body_that_is_not_utf8_is_malformed() -> None:
    with pytest.raises(WebhookHeaderMalformed):
        verify(headers(), b"\xff\xfe", SECRET, now=NOW)


def test_the_wrong_secret_is_a_mismatch() -> None:
    with pytest.raises(WebhookSignatureMismatch):
        verify(headers(), BODY, new_secret(), now=NOW)


def test_every_verification_error_has_a_distinct_stable_code() -> None:
    kinds = [
        WebhookHeaderMissing,
        WebhookHeaderMalformed,
        WebhookTimestampOutOfTolerance,
        WebhookSignatureMismatch,
    ]
    assert all(issubclass(k, WebhookVerificationError) for k in kinds)
    assert len({k.code for k in kinds} | {WebhookVerificationError.code}) == 5


def test_new_secrets_are_32_random_bytes() -> None:
    """R-4.3: secrets are 24-64 random bytes."""
    a, b = new_secret(), new_secret()
    assert a != b
    assert a.startswith("whsec_")
    assert len(base64.b64decode(a.removeprefix("whsec_"))) == 32


def test_importing_the_helper_imports_no_http_library() -> None:
    """A consumer's import stays light: no httpx, starlette or SQLAlchemy."""
    import subprocess
    import sys

    code = (
        "import sys, refundkit, refundkit.webhooks; "
        "heavy = {'httpx', 'starlette', 'sqlalchemy', 'standardwebhooks'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
