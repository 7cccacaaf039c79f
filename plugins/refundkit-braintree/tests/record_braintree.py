"""Re-records the Braintree cassettes against a sandbox merchant, in one command::

    REFUNDKIT_BRAINTREE_MERCHANT_ID=... REFUNDKIT_BRAINTREE_PUBLIC_KEY=... \\
    REFUNDKIT_BRAINTREE_PRIVATE_KEY=... \\
        python3 -m uv run python plugins/refundkit-braintree/tests/record_braintree.py \\
        [--out DIR] [--recordings DIR]

The cassettes are built from five source recordings (``_braintree_build_cassettes.py``). This
command makes those five again in the sandbox, each with the SDK's own calls (not recorded:
nothing; every exchange is kept):

* a card sale of 40.00 (nonce ``fake-valid-visa-nonce``, submitted for settlement), settled
  with the sandbox testing call ``testing.settle_transaction``, then refunded 20.00;
* a PayPal sale of 12.73 (``fake-paypal-one-time-nonce``), then refunded 0.73;
* a sale of 12.73 not submitted for settlement, then refunded: 422 with 91506;
* a refund with a wrong private key: 401;
* a refund of a transaction that does not exist: 404;

then rebuilds every cassette from them into ``--out`` (default ``cassettes/braintree``). The
cassettes a sandbox cannot reproduce (a 429, a 5xx, a declined refund authorization, a reply
lost to a timeout, a credit in a status set by hand: ``NOT_REPRODUCIBLE``) are left alone and
the run lists them. Only the sandbox: ``REFUNDKIT_BRAINTREE_ENVIRONMENT`` other than
``sandbox`` is refused, and the keys are read from the environment only, never printed, and
never written (only each exchange's method, path, body, status and reply are kept; a reply or
cassette holding a key or a card number stops the run before anything is written).

**It has never been run against Braintree**: no machine that works on refundkit reaches it.
Its offline parts are tested (``test_braintree_recorder.py``), including a dry run whose
"sandbox" answers with the fixtures' own recorded replies.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import yaml  # type: ignore[import-untyped]

HERE: Final = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _braintree_build_cassettes import (  # noqa: E402
    AUTH_TEMPLATE,
    CASSETTES,
    ERROR_TEMPLATE,
    NOT_FOUND_TEMPLATE,
    NOT_REPRODUCIBLE,
    PAYPAL_TEMPLATE,
    SALE_TEMPLATE,
    build,
    write,
)
from _braintree_build_statuses import build_statuses  # noqa: E402
from refundkit_braintree._gateway import import_braintree  # noqa: E402

from refundkit import find_pans  # noqa: E402

PROG: Final = "record_braintree"
KEYS: Final = ("merchant_id", "public_key", "private_key")
ENV: Final = "REFUNDKIT_BRAINTREE_"
#: The private key the 401 recording sends (Braintree refuses it).
WRONG_KEY: Final = "rk_wrong_private_key_for_the_401"
UNKNOWN_TRANSACTION: Final = "rkNoSuchTxn0"

Exchange = tuple[str, str, str | None, int, str]
Recording = Callable[[Any, Any], None]


class UsageError(Exception):
    """A mistake of the person running the recorder: one line, exit 2."""


class RecordingError(Exception):
    """The sandbox answered something the cassettes do not expect: nothing is written."""


def credentials(environ: Mapping[str, str]) -> dict[str, str]:
    """The sandbox credentials from the environment, or UsageError (never echoing a key)."""
    environment = environ.get(ENV + "ENVIRONMENT", "sandbox")
    if environment != "sandbox":
        raise UsageError(f"only the sandbox is recorded, not {ENV}ENVIRONMENT={environment!r}")
    found = {key: environ.get(ENV + key.upper(), "") for key in KEYS}
    missing = [ENV + key.upper() for key, value in found.items() if not value]
    if missing:
        raise UsageError(f"set {', '.join(missing)} (a sandbox merchant's API keys)")
    return found


def recording_http(exchanges: list[Exchange]) -> type:
    """The SDK's own transport, keeping each exchange (not its headers: the key is there)."""
    base = import_braintree().util.http.Http

    class RecordingHttp(base):  # type: ignore[misc,valid-type]
        def http_do(self, verb: str, path: str, headers: Any, body: Any) -> list[Any]:
            status, text = super().http_do(verb, path, headers, body)
            sent = body.decode() if isinstance(body, bytes) else body
            exchanges.append((verb, path, sent, int(status), str(text)))
            return [status, text]

    return RecordingHttp


def _ok(result: Any, what: str) -> Any:
    if not getattr(result, "is_success", False):
        raise RecordingError(f"{what}: the sandbox said {getattr(result, 'message', result)!r}")
    return result.transaction


def _sale(gateway: Any, amount: str, nonce: str, *, submit: bool = True) -> Any:
    params: dict[str, Any] = {"amount": amount, "payment_method_nonce": nonce}
    if submit:
        params["options"] = {"submit_for_settlement": True}
    return _ok(gateway.transaction.sale(params), f"sale of {amount} ({nonce})")


def _card_sale_settled_then_refunded(gateway: Any, braintree: Any) -> None:
    sale = _sale(gateway, "40.00", "fake-valid-visa-nonce")
    gateway.testing.settle_transaction(sale.id)
    _ok(gateway.transaction.refund(sale.id, "20.00"), "refund of the settled sale")


def _paypal_sale_refunded(gateway: Any, braintree: Any) -> None:
    sale = _sale(gateway, "12.73", "fake-paypal-one-time-nonce")
    _ok(gateway.transaction.refund(sale.id, "0.73"), "refund of the PayPal sale")


def _unsettled_refund_refused(gateway: Any, braintree: Any) -> None:
    sale = _sale(gateway, "12.73", "fake-valid-visa-nonce", submit=False)
    result = gateway.transaction.refund(sale.id, "12.73")
    codes = [e.code for e in result.errors.deep_errors] if not result.is_success else []
    if "91506" not in codes:
        raise RecordingError(f"refund of an unsettled sale: expected 91506, got {codes}")


def _refused(call: Callable[[], object], exception: str) -> None:
    braintree = import_braintree()
    try:
        call()
    except getattr(braintree.exceptions, exception):
        return
    raise RecordingError(f"expected {exception}")


def _bad_credentials(gateway: Any, braintree: Any) -> None:
    config = gateway.config
    wrong = braintree.BraintreeGateway(braintree.Configuration(
        environment=config.environment, merchant_id=config.merchant_id,
        public_key=config.public_key, private_key=WRONG_KEY,
        http_strategy=type(config.http_strategy())))  # fmt: skip
    _refused(lambda: wrong.transaction.refund(UNKNOWN_TRANSACTION, "10.00"), "AuthenticationError")


def _unknown_transaction(gateway: Any, braintree: Any) -> None:
    _refused(lambda: gateway.transaction.refund(UNKNOWN_TRANSACTION, "10.00"), "NotFoundError")


#: The source recording each fixture name of the builder stands for, and how it is made.
RECORDINGS: Final[Mapping[str, Recording]] = {
    SALE_TEMPLATE: _card_sale_settled_then_refunded,
    PAYPAL_TEMPLATE: _paypal_sale_refunded,
    ERROR_TEMPLATE: _unsettled_refund_refused,
    AUTH_TEMPLATE: _bad_credentials,
    NOT_FOUND_TEMPLATE: _unknown_transaction,
}


def record_sources(
    keys: Mapping[str, str], out: Path, http: Callable[[list[Exchange]], type] = recording_http
) -> list[Path]:
    """Makes the five source recordings in the sandbox; writes each into ``out`` under the
    fixture name the builder reads (vcrpy's format, bodies as text, no headers)."""
    braintree = import_braintree()
    written: list[Path] = []
    for name, make in RECORDINGS.items():
        exchanges: list[Exchange] = []
        gateway = braintree.BraintreeGateway(
            braintree.Configuration(
                environment=braintree.Environment.Sandbox,
                http_strategy=http(exchanges),
                **keys,
            )
        )
        make(gateway, braintree)
        text = _recording_text(exchanges)
        _refuse_leaks(text, keys, name)
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _recording_text(exchanges: list[Exchange]) -> str:
    interactions = [
        {
            "request": {"method": verb, "uri": path, "body": body, "headers": {}},
            "response": {"status": {"code": status}, "headers": {}, "body": {"string": reply}},
        }
        for verb, path, body, status, reply in exchanges
    ]
    dumped: str = yaml.safe_dump({"interactions": interactions, "version": 1}, sort_keys=False)
    return dumped


def _refuse_leaks(text: str, keys: Mapping[str, str], what: str) -> None:
    secrets = [keys["public_key"], keys["private_key"], WRONG_KEY]
    if find_pans(text) or any(secret and secret in text for secret in secrets):
        raise RecordingError(f"{what} holds a key or a card number; nothing written")


def rebuild(sources: Path, out: Path, log: Callable[[str], None], date: str) -> list[Path]:
    """Every cassette rebuilt from ``sources`` into ``out``, but those a sandbox cannot
    reproduce, which are left alone (and listed)."""
    written: list[Path] = []
    built: Iterator[tuple[str, str, Any]] = iter((*build(sources), *build_statuses(sources)))
    for name, source, recorder in built:
        if name in NOT_REPRODUCIBLE:
            continue
        relabelled = source.replace(
            "../shared/fixtures/braintree/",
            f"a sandbox recording made {date} by record_braintree.py, in place of"
            " ../shared/fixtures/braintree/",
        )
        path = write(name, relabelled, recorder, out)
        _refuse_leaks(path.read_text(encoding="utf-8"), {"public_key": "", "private_key": ""},
                      name)  # fmt: skip
        written.append(path)
    log(f"left alone (a sandbox cannot reproduce them): {', '.join(sorted(NOT_REPRODUCIBLE))}")
    return written


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Re-record cassettes/braintree/ against a Braintree sandbox merchant (keys"
        f" in ${ENV}MERCHANT_ID, ${ENV}PUBLIC_KEY, ${ENV}PRIVATE_KEY). 429, 5xx, timeout and"
        " declined cases are left alone.",
    )
    parser.add_argument("--out", type=Path, default=CASSETTES, help="default: cassettes/braintree")
    parser.add_argument(
        "--recordings", type=Path, help="keep the five source recordings here (default: none)"
    )
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    args = _parser().parse_args(argv)
    keys: dict[str, str] = {}
    date = datetime.now(UTC).date().isoformat()
    try:
        keys = credentials(environ)
        with tempfile.TemporaryDirectory(prefix="record_braintree-") as scratch:
            sources = args.recordings or Path(scratch)
            sources.mkdir(parents=True, exist_ok=True)
            record_sources(keys, sources)
            written = rebuild(sources, args.out, lambda line: print(line, file=sys.stderr), date)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the SDK's, ours: one line, never a key
        message = str(exc)
        for secret in keys.values():
            message = message.replace(secret, "<key>") if secret else message
        print(f"{PROG}: {type(exc).__name__}: {message}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
