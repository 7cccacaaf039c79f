"""Bad inputs through the facade: a typed error with a stable code, and nothing written.

Requirements are in /work/shared/reference/reliability.md: the "Bad inputs to try" list
(amounts and currencies, idempotency keys, card data), R-1.2, R-1.5, R-5.3, R-6.1, R-6.7; and
DESIGN.md, "The facade": every method raises a ``RefundkitError`` subclass with a stable ``code``
for anything a caller did wrong, and on such an error nothing is written.

Every refusal goes through ``Watch.refuses``, which checks the error (class, code, one-line
message) and that no table gained or lost a row and the gateway was not asked to refund.
Bugs these tests found in ``src/`` were fixed; each test now guards its fix.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

from refundkit import (
    AmountNotRepresentable,
    Capabilities,
    Card,
    CardDataRefused,
    CurrencyMismatch,
    Destination,
    Gateway,
    GatewayPayment,
    GatewayPaymentNotFound,
    GatewayRefundRequest,
    GatewayRefundResult,
    GatewayRegistry,
    IdempotencyConflict,
    InsufficientBalance,
    InsufficientRefundableBalance,
    InvalidIdempotencyKey,
    InvalidInput,
    InvalidMoney,
    Money,
    Payment,
    PaymentExists,
    PaymentNotFound,
    RefundKit,
    RefundkitError,
    RefundNotAllowed,
    RefundNotFound,
    RefundStatus,
    UnknownGateway,
    hookimpl,
)
from refundkit.gateways.sandbox import SandboxGateway

from .conftest import FakeClock, record, row_counts, usd

E = TypeVar("E", bound=RefundkitError)

SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*", re.ASCII)
REFUND_CALLS = ("refund", "lookup_refund")
REGISTER_CALLS = ("register_payment", "fetch_payment")
PAN = "4111111111111111"
# A generated gateway key: "refundkit-" + the refund id, 24 random hex digits.
GATEWAY_KEY = re.compile(r"refundkit-rf_([0-9a-f]{24})", re.ASCII)
FLOAT_FROM_JSON: float = json.loads("1e2")  # 100.0: JSON numbers with an exponent are floats


def assert_well_formed(exc: RefundkitError) -> None:
    """A stable snake_case code, a one-line message, and flagged as the caller's mistake."""
    assert SNAKE_CASE.fullmatch(exc.code), exc.code
    assert exc.to_dict()["code"] == exc.code
    text = str(exc)
    assert text
    assert text == text.strip()
    assert text.splitlines() == [text], f"not one line: {text!r}"
    assert repr(exc).splitlines() == [repr(exc)]
    assert exc.user_error  # the CLI exits 2: the caller can fix it


class Watch:
    """Snapshot of everything a refused call must leave alone: rows and gateway calls."""

    def __init__(self, kit: RefundKit, sandbox: SandboxGateway, calls: Counter[str]) -> None:
        self.kit = kit
        self.sandbox = sandbox
        self.calls = calls

    def _state(self, *, may_register: bool) -> tuple[object, ...]:
        # The sandbox's own registration reads the charge back (fetch_payment) itself.
        names = REFUND_CALLS if may_register else (*REFUND_CALLS, *REGISTER_CALLS)
        return (
            row_counts(self.kit),
            self.sandbox.refund_count(),
            len(self.sandbox.refunds()),  # also stored declines
            {name: self.calls[name] for name in names},
        )

    def refuses(
        self,
        error: type[E],
        code: str,
        call: Callable[[], object],
        *,
        may_register: bool = False,
    ) -> E:
        before = self._state(may_register=may_register)
        with pytest.raises(error) as info:
            call()
        assert info.value.code == code
        assert_well_formed(info.value)
        assert self._state(may_register=may_register) == before, "a refused call wrote something"
        return info.value


@pytest.fixture
def calls(sandbox: SandboxGateway, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts every call the kit makes on its (cached) sandbox gateway instance."""
    counts: Counter[str] = Counter()
    for name in (*REFUND_CALLS, *REGISTER_CALLS):
        original: Callable[..., Any] = getattr(sandbox, name)

        def spy(
            *args: Any, _name: str = name, _fn: Callable[..., Any] = original, **kw: Any
        ) -> Any:
            counts[_name] += 1
            return _fn(*args, **kw)

        monkeypatch.setattr(sandbox, name, spy)
    return counts


@pytest.fixture
def watch(kit: RefundKit, sandbox: SandboxGateway, calls: Counter[str]) -> Watch:
    return Watch(kit, sandbox, calls)


def pay(kit: RefundKit, id: str, amount: Money, **kw: Any) -> Payment:
    """Record a sandbox payment of an exact ``Money`` (``record()`` parses decimal strings)."""
    return kit.record_payment(
        id=id,
        customer_id="cus_1",
        amount=amount,
        gateway="sandbox",
        gateway_payment_id=f"sbx_ch_{id}",
        **kw,
    )


# --- refund amounts against the payment --------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [Money(0, "USD"), Money(-1, "USD"), Money.parse("-0.00", "USD"), Money(-5000, "USD")],
    ids=["zero", "minus-one", "minus-zero", "minus-payment"],
)
def test_r6_7_refund_amount_must_be_positive(watch: Watch, kit: RefundKit, amount: Money) -> None:
    """R-6.7: the amount is > 0."""
    record(kit)
    exc = watch.refuses(RefundNotAllowed, "refund_not_allowed", lambda: kit.refund("pay_1", amount))
    assert [lim.code for lim in exc.limits] == ["amount_positive"]


def test_r6_7_payment_plus_one_minor_unit_is_refused(watch: Watch, kit: RefundKit) -> None:
    """R-6.7: the amount is <= the remaining refundable amount (captured + 1 is not)."""
    record(kit)
    exc = watch.refuses(
        InsufficientRefundableBalance,
        "insufficient_refundable_balance",
        lambda: kit.refund("pay_1", usd("50.01")),
    )
    assert "50.01 USD is more than the 50.00 USD" in str(exc)
    assert kit.quote("pay_1").max_amount == usd("50.00")


def test_r6_7_exact_remaining_after_a_partial_is_accepted_and_one_more_is_not(
    watch: Watch, kit: RefundKit, sandbox: SandboxGateway
) -> None:
    """R-6.7 / bad inputs: "an exact remaining balance, and remaining + 1 after a partial"."""
    record(kit)
    assert kit.refund("pay_1", usd("12.34")).status is RefundStatus.SUCCEEDED
    watch.refuses(
        InsufficientRefundableBalance,
        "insufficient_refundable_balance",
        lambda: kit.refund("pay_1", usd("37.67")),
    )
    rest = kit.refund("pay_1", usd("37.66"))  # exactly what remains: accepted
    assert rest.status is RefundStatus.SUCCEEDED
    assert kit.payment("pay_1").refunded == usd("50.00")
    assert sandbox.refund_count() == 2
    exc = watch.refuses(
        RefundNotAllowed, "refund_not_allowed", lambda: kit.refund("pay_1", Money(1, "USD"))
    )
    assert [lim.code for lim in exc.limits] == ["payment_cap"]


# --- an amount is refundkit.Money, never a float, bool, str, Decimal or bare int -------


NOT_MONEY: list[Any] = [
    19.99,
    0.1 + 0.2,
    FLOAT_FROM_JSON,
    float("nan"),
    float("inf"),
    True,
    False,
    "100",
    "19.99",
    Decimal("1E+2"),
    Decimal("19.99"),
    Decimal("-0"),
    Decimal(0.1),  # noqa: RUF032 - built from a float on purpose
    1999,
    2**63,
    {"amount": 1999, "currency": "USD"},
    (1999, "USD"),
]


@pytest.mark.parametrize("amount", NOT_MONEY, ids=repr)
def test_r6_1_refund_amount_that_is_not_money_is_refused(
    watch: Watch, kit: RefundKit, amount: Any
) -> None:
    """R-6.1: floats, bools, str, Decimal and plain ints do not cross the facade as amounts."""
    record(kit)
    exc = watch.refuses(InvalidMoney, "invalid_money", lambda: kit.refund("pay_1", amount))
    assert "refundkit.Money" in str(exc)


@pytest.mark.parametrize(
    "value",
    [19.99, 0.1 + 0.2, FLOAT_FROM_JSON, True, False, None, "100", Decimal("1E+2"), Decimal("1")],
    ids=repr,
)
def test_r6_1_money_refuses_non_int_minor_units_before_the_facade(
    watch: Watch, kit: RefundKit, value: Any
) -> None:
    """R-6.1: ``Money(<float|bool|None|str|Decimal>, "USD")`` raises a typed TypeError."""
    record(kit)
    exc = watch.refuses(
        InvalidMoney, "invalid_money", lambda: kit.refund("pay_1", Money(value, "USD"))
    )
    assert isinstance(exc, TypeError)


@pytest.mark.parametrize(
    "text",
    [
        "10.005",
        "1e3",
        "1_000",
        "\u0661\u0662\u0663",  # Arabic-Indic 123
        "\uff11\uff10\uff10",  # fullwidth 100
        " 10.00 ",
        "10,00",
        "1,000.00",
        "+10",
        "NaN",
        "sNaN",
        "Infinity",
        "-Infinity",
        "",
        "12345678901234567890.12",
    ],
)
def test_r6_2_decimal_strings_that_are_not_plain_amounts_never_reach_a_refund(
    watch: Watch, kit: RefundKit, text: str
) -> None:
    """R-6.2 via the facade: a refund built from a bad decimal string is refused, unwritten."""
    record(kit)
    watch.refuses(
        InvalidMoney, "invalid_money", lambda: kit.refund("pay_1", Money.parse(text, "USD"))
    )


@pytest.mark.parametrize(
    ("payment_currency", "amount"),
    [
        ("USD", Money(1000, "EUR")),
        ("USD", Money(10, "JPY")),
        ("USD", Money(1000, "USN")),
        ("EUR", Money(1000, "USD")),
        ("JPY", Money(100, "USD")),
    ],
    ids=str,
)
def test_r6_7_refund_currency_must_equal_the_payment_currency(
    watch: Watch, kit: RefundKit, payment_currency: str, amount: Money
) -> None:
    """R-6.7: "The refund currency must equal the payment currency (mismatch rejected)"."""
    pay(kit, "pay_1", Money(5000, payment_currency))
    exc = watch.refuses(CurrencyMismatch, "currency_mismatch", lambda: kit.refund("pay_1", amount))
    assert isinstance(exc, InvalidMoney)
    assert amount.currency in str(exc)
    assert payment_currency in str(exc)


@pytest.mark.parametrize("minor", [2**31, 2**53 + 1, 10**12, 2**63 - 1], ids=str)
def test_r6_7_huge_amounts_over_the_payment_are_refused_as_over_the_cap(
    watch: Watch, kit: RefundKit, minor: int
) -> None:
    """Bad inputs: 2**31, 2**53 + 1, 10**12 (Stripe's card limit), int64 max, on 50.00 USD."""
    record(kit)
    watch.refuses(
        InsufficientRefundableBalance,
        "insufficient_refundable_balance",
        lambda: kit.refund("pay_1", Money(minor, "USD")),
    )


@pytest.mark.parametrize("minor", [2**63, -(2**63), 2**64, 10**100], ids=str)
def test_r6_8_amounts_beyond_int64_are_invalid_money(
    watch: Watch, kit: RefundKit, minor: int
) -> None:
    """R-6.8: amounts are signed 64-bit minor units; 2**63 is refused, never wrapped."""
    record(kit)
    watch.refuses(InvalidMoney, "invalid_money", lambda: kit.refund("pay_1", Money(minor, "USD")))


def test_r6_1_integer_arithmetic_is_exact_above_2_to_the_53(
    watch: Watch, kit: RefundKit, sandbox: SandboxGateway
) -> None:
    """Bad inputs: ``float(2**53 + 1) == 2**53``; the cap must still see the last minor unit."""
    pay(kit, "pay_big", Money(2**53 + 1, "USD"))
    sandbox.script("succeed")  # 2**53 ends in 92, the sandbox's "pending" cents
    assert kit.refund("pay_big", Money(2**53, "USD")).status is RefundStatus.SUCCEEDED
    assert kit.quote("pay_big").max_amount == Money(1, "USD")
    watch.refuses(
        InsufficientRefundableBalance,
        "insufficient_refundable_balance",
        lambda: kit.refund("pay_big", Money(2, "USD")),
    )
    assert kit.refund("pay_big", Money(1, "USD")).status is RefundStatus.SUCCEEDED
    assert kit.payment("pay_big").refunded == Money(2**53 + 1, "USD")


def test_r6_8_a_payment_of_int64_max_refunds_in_full(kit: RefundKit) -> None:
    """R-6.8: the largest storable amount goes through reserve, gateway and confirm exactly."""
    pay(kit, "pay_max", Money(2**63 - 1, "USD"))  # ends in 07: the sandbox succeeds
    refund = kit.refund("pay_max")
    assert refund.status is RefundStatus.SUCCEEDED
    assert refund.amount == Money(2**63 - 1, "USD")
    assert kit.payment("pay_max").refunded == Money(2**63 - 1, "USD")


def test_r6_4_jpy_payment_refunded_with_a_fine_amount(
    watch: Watch, kit: RefundKit, sandbox: SandboxGateway
) -> None:
    """R-6.4: a zero-decimal currency (JPY 5000) refunds in whole yen, nothing scaled."""
    pay(kit, "pay_jpy", Money.parse("5000", "JPY"))
    refund = kit.refund("pay_jpy", Money(1000, "JPY"))
    assert refund.status is RefundStatus.SUCCEEDED
    [sent] = sandbox.refunds("sbx_ch_pay_jpy")
    assert (sent["amount"], sent["currency"]) == (1000, "JPY")
    watch.refuses(
        InsufficientRefundableBalance,
        "insufficient_refundable_balance",
        lambda: kit.refund("pay_jpy", Money(4001, "JPY")),
    )
    watch.refuses(
        InvalidMoney, "invalid_money", lambda: kit.refund("pay_jpy", Money.parse("100.5", "JPY"))
    )
    assert kit.refund("pay_jpy", Money(4000, "JPY")).status is RefundStatus.SUCCEEDED


# --- an amount the gateway cannot represent is refused before anything is written --


class MgaWholeUnitsGateway(Gateway):
    """A gateway that takes MGA without decimals (as Stripe does; ISO 4217 says 2)."""

    name = "mga-whole"
    capabilities = Capabilities(currency_exponents={"MGA": 0})

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.calls: Counter[str] = Counter()
        self.sent: list[int] = []

    def register_payment(self, payment: Any) -> GatewayPayment | None:
        self.calls["register_payment"] += 1
        return None

    def refund(self, request: GatewayRefundRequest) -> GatewayRefundResult:
        self.calls["refund"] += 1
        self.sent.append(self.to_gateway_amount(request.amount))
        return GatewayRefundResult("succeeded", f"mga_re_{request.refund_id}", request.amount)

    def lookup_refund(self, request: GatewayRefundRequest) -> GatewayRefundResult | None:
        self.calls["lookup_refund"] += 1
        return None

    def fetch_payment(self, gateway_payment_id: str) -> GatewayPayment:
        self.calls["fetch_payment"] += 1
        raise GatewayPaymentNotFound(f"no payment {gateway_payment_id}")


class MgaPlugin:
    @hookimpl
    def refundkit_register_gateways(self, register: GatewayRegistry) -> None:
        register(MgaWholeUnitsGateway)


@pytest.fixture
def mga_kit(tmp_path: Path, clock: FakeClock) -> Iterator[RefundKit]:
    k = RefundKit.open(
        f"sqlite:///{tmp_path / 'mga.db'}",
        autoload=False,
        plugins=[MgaPlugin()],
        clock=clock,
        retry_backoff=0,
    )
    yield k
    k.close()


def record_mga(kit: RefundKit, amount: Money) -> MgaWholeUnitsGateway:
    kit.record_payment(
        id="pay_mga",
        customer_id="cus_1",
        amount=amount,
        gateway="mga-whole",
        gateway_payment_id="mga_ch_1",
    )
    gw = kit.gateway("mga-whole")
    assert isinstance(gw, MgaWholeUnitsGateway)
    assert gw.calls == Counter({"register_payment": 1})
    return gw


@pytest.mark.parametrize("amount", [None, Money(1050, "MGA")], ids=["default", "explicit"])
def test_r6_4_amount_the_gateway_cannot_represent_is_refused_before_writing(
    mga_kit: RefundKit, amount: Money | None
) -> None:
    """R-6.4/R-6.7: MGA 10.50 on a whole-MGA gateway is refused, not rounded, before any call."""
    gw = record_mga(mga_kit, Money(1050, "MGA") if amount is None else Money(100000, "MGA"))
    before = row_counts(mga_kit)
    with pytest.raises(AmountNotRepresentable) as info:
        mga_kit.refund("pay_mga", amount, idempotency_key="mga-1")
    assert info.value.code == "amount_not_representable"
    assert isinstance(info.value, InvalidMoney)
    assert_well_formed(info.value)
    assert "10.50 MGA" in str(info.value)
    assert row_counts(mga_kit) == before
    assert gw.calls == Counter({"register_payment": 1})  # no refund, lookup or fetch
    assert gw.sent == []


def test_r6_4_representable_amount_on_the_same_gateway_goes_through(mga_kit: RefundKit) -> None:
    """R-6.4: MGA 10.00 (ISO minor 1000) is sent as 10 whole MGA."""
    gw = record_mga(mga_kit, Money(100000, "MGA"))
    refund = mga_kit.refund("pay_mga", Money(1000, "MGA"))
    assert refund.status is RefundStatus.SUCCEEDED
    assert gw.sent == [10]
    assert gw.calls["refund"] == 1


# --- currencies (through Money construction) -------------------------------------------------

BAD_CURRENCIES = [
    "usd",
    "Usd",
    "US",
    "USDX",
    "",
    " USD",
    "USD\n",
    "ÜSD",
    "XXX",
    "XAU",
    "XTS",
    "XDR",
    "MRO",
    "VEF",
]


@pytest.mark.parametrize("currency", BAD_CURRENCIES, ids=repr)
@pytest.mark.parametrize("build", ["Money", "Money.parse"])
def test_r6_3_record_payment_with_a_bad_currency_is_refused(
    watch: Watch, kit: RefundKit, currency: str, build: str
) -> None:
    """R-6.3 / bad inputs: lowercase, wrong length, funds/metals/test codes, historic codes."""

    def call() -> Payment:
        amount = Money(5000, currency) if build == "Money" else Money.parse("50.00", currency)
        return pay(kit, "pay_1", amount)

    exc = watch.refuses(InvalidMoney, "invalid_money", call)
    if currency == "usd":
        assert "'USD'" in str(exc)  # says how to fix it


@pytest.mark.parametrize("currency", [None, 840, b"USD"], ids=repr)
def test_r6_1_currency_that_is_not_a_str_is_a_type_error(
    watch: Watch, kit: RefundKit, currency: Any
) -> None:
    """R-6.1: a currency is a str ISO code; anything else is a typed TypeError."""
    exc = watch.refuses(
        InvalidMoney, "invalid_money", lambda: pay(kit, "pay_1", Money(5000, currency))
    )
    assert isinstance(exc, TypeError)


# --- idempotency keys ------------------------------------------------------------------------

BAD_KEYS: list[Any] = [
    "",
    "k" * 256,
    "ключ",
    "key-ключ",
    "a\nb",
    "key\n",
    "a\rb",
    "a\x00b",
    "a b",
    " key",
    "key\t",
    "a\x7fb",
    "ticket\u00a0981",
    123,
    b"ticket-981",
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=lambda k: repr(k)[:20])
def test_bad_idempotency_key_is_refused(watch: Watch, kit: RefundKit, key: Any) -> None:
    """Bad inputs (keys): empty, 256 chars, non-ASCII, newline, NUL, space are refused."""
    record(kit)
    watch.refuses(
        InvalidIdempotencyKey,
        "invalid_idempotency_key",
        lambda: kit.refund("pay_1", usd("10.00"), idempotency_key=key),
    )
    assert kit.refunds("pay_1") == []


@pytest.mark.parametrize(
    "key",
    [
        "k",
        "k" * 19,
        "k" * 20,
        "k" * 64,
        "k" * 65,
        "k" * 255,
        "ticket.981",
        "a.b.c",
        "~!#$%&*+/=?^_`{|}",
    ],
    ids=lambda k: f"{k[:12]}({len(k)})",
)
def test_good_idempotency_key_is_accepted_and_replayed(
    kit: RefundKit, sandbox: SandboxGateway, key: str
) -> None:
    """Bad inputs (keys): 19, 64, 65, 255 chars and keys with '.' are fine (R-1.3 replay)."""
    record(kit)
    first = kit.refund("pay_1", usd("10.00"), idempotency_key=key)
    assert first.status is RefundStatus.SUCCEEDED
    assert first.idempotency_key == key
    again = kit.refund("pay_1", usd("10.00"), idempotency_key=key)
    assert again == first
    assert sandbox.refund_count() == 1
    assert len(kit.refunds("pay_1")) == 1


def test_r1_5_gateway_key_is_generated_not_the_callers(
    kit: RefundKit, sandbox: SandboxGateway
) -> None:
    """R-1.5: the key sent to the gateway is at most 64 characters with >= 20 random ones,
    whatever the caller's key looks like (a 255-character one would break Adyen's limit)."""
    record(kit)
    refunds = [
        kit.refund("pay_1", usd("10.00"), idempotency_key="k" * 255),
        kit.refund("pay_1", usd("10.00"), idempotency_key="ticket.981"),
        kit.refund("pay_1", usd("10.00")),
    ]
    sent = [row["idempotency_key"] for row in sandbox.refunds()]
    assert sent == [r.gateway_idempotency_key for r in refunds]
    for refund in refunds:
        key = refund.gateway_idempotency_key
        match = GATEWAY_KEY.fullmatch(key)
        assert match is not None, key
        assert len(key) <= 64
        assert len(match.group(1)) >= 20  # random material
        assert match.group(1) in refund.id  # derived from the persisted refund id
    assert len(set(sent)) == len(sent)


CONFLICTS: dict[str, dict[str, Any]] = {
    "amount+1": {"amount": usd("10.01")},
    "amount-1": {"amount": usd("9.99")},
    "default-amount": {"amount": None},
    "other-currency": {"amount": Money(1000, "EUR")},
    "other-payment": {"payment_id": "pay_2"},
    "unknown-payment": {"payment_id": "pay_404"},
    "other-reason": {"reason": "duplicate"},
    "no-reason": {"reason": None},
}


@pytest.mark.parametrize("change", CONFLICTS.values(), ids=CONFLICTS.keys())
def test_r1_2_same_key_with_other_parameters_is_a_conflict(
    watch: Watch, kit: RefundKit, change: dict[str, Any]
) -> None:
    """R-1.2: reusing a key with another amount, currency, payment or reason is rejected, and
    the gateway is not called."""
    record(kit)
    record(kit, "pay_2")
    first = kit.refund("pay_1", usd("10.00"), idempotency_key="k-1", reason="requested")
    args: dict[str, Any] = {"payment_id": "pay_1", "amount": usd("10.00"), "reason": "requested"}
    args |= change
    exc = watch.refuses(
        IdempotencyConflict,
        "idempotency_conflict",
        lambda: kit.refund(
            args["payment_id"], args["amount"], reason=args["reason"], idempotency_key="k-1"
        ),
    )
    assert "k-1" in str(exc)
    assert kit.refunds() == [first]


def test_key_of_a_refused_request_stays_free(watch: Watch, kit: RefundKit) -> None:
    """Nothing is written on a refusal, so the key is not burnt by a bad first attempt."""
    record(kit)
    watch.refuses(
        InsufficientRefundableBalance,
        "insufficient_refundable_balance",
        lambda: kit.refund("pay_1", usd("50.01"), idempotency_key="k-1"),
    )
    watch.refuses(
        PaymentNotFound,
        "payment_not_found",
        lambda: kit.refund("pay_404", usd("10.00"), idempotency_key="k-1"),
    )
    refund = kit.refund("pay_1", usd("50.00"), idempotency_key="k-1")
    assert refund.status is RefundStatus.SUCCEEDED


# --- ids ---------------------------------------------------------------------------------------

BAD_IDS: list[Any] = [
    "",
    "p" * 129,
    "pay 1",
    " pay_1",
    "pay_1 ",
    "pay\n1",
    "pay_1\n",
    "pay_1\x00",
    "päy_1",
    "ключ",
    "pay/1",
    "_pay_1",
    1,
    None,
    b"pay_1",
]


@pytest.mark.parametrize("payment_id", BAD_IDS, ids=lambda v: repr(v)[:20])
@pytest.mark.parametrize("method", ["refund", "quote", "payment"])
def test_malformed_payment_id_is_invalid_input(
    watch: Watch, kit: RefundKit, payment_id: Any, method: str
) -> None:
    """Bad inputs (ids) / DESIGN facade contract: refused by shape, before any lookup."""
    record(kit)
    watch.refuses(InvalidInput, "invalid_input", lambda: getattr(kit, method)(payment_id))


@pytest.mark.parametrize("method", ["refund", "quote", "payment"])
def test_unknown_payment_is_payment_not_found(watch: Watch, kit: RefundKit, method: str) -> None:
    """DESIGN facade contract: an unknown payment is ``PaymentNotFound``, nothing written."""
    record(kit)
    exc = watch.refuses(
        PaymentNotFound, "payment_not_found", lambda: getattr(kit, method)("pay_404")
    )
    assert "pay_404" in str(exc)


def test_unknown_or_malformed_refund_id(watch: Watch, kit: RefundKit) -> None:
    """DESIGN facade contract: ``get_refund`` refuses bad and unknown ids with typed errors."""
    record(kit)
    watch.refuses(RefundNotFound, "refund_not_found", lambda: kit.get_refund("rf_404"))
    watch.refuses(InvalidInput, "invalid_input", lambda: kit.get_refund("rf 404"))


def test_longest_valid_id_is_accepted(kit: RefundKit) -> None:
    """The boundary of the 129-character case above: 128 characters are an id."""
    long_id = "p" * 128
    kit.record_payment(
        id=long_id,
        customer_id="c" * 128,
        amount=usd("50.00"),
        gateway="sandbox",
        gateway_payment_id="g" * 128,
        invoice_id="i" * 128,
    )
    assert kit.quote(long_id).max_amount == usd("50.00")
    assert kit.refund(long_id, usd("1.00")).status is RefundStatus.SUCCEEDED


@pytest.mark.parametrize(
    "field", ["id", "customer_id", "gateway_payment_id", "invoice_id", "gateway"]
)
@pytest.mark.parametrize("value", ["", "p" * 129, "a b", "a\nb", "ключ"], ids=repr)
def test_record_payment_with_a_malformed_id_is_invalid_input(
    watch: Watch, kit: RefundKit, field: str, value: str
) -> None:
    """Bad inputs (ids): every id ``record_payment`` stores is checked before anything is."""
    args: dict[str, Any] = {
        "id": "pay_1",
        "customer_id": "cus_1",
        "amount": usd("50.00"),
        "gateway": "sandbox",
        "gateway_payment_id": "sbx_ch_1",
        field: value,
    }
    watch.refuses(InvalidInput, "invalid_input", lambda: kit.record_payment(**args))


# --- card data --------------------------------------------------------------------------

SECRET_CARD_FIELDS: dict[str, dict[str, Any]] = {
    "number": {"number": PAN},
    "pan": {"pan": PAN},
    "cvc": {"cvc": "737"},
    "CVC": {"CVC": "737"},
    "cvv": {"cvv": "737"},
    "cvv2": {"cvv2": "1234"},
    "verification_value": {"verification_value": "737"},
    "security_code": {"security_code": "737"},
    "track": {"track": "%B4111111111111111^DOE/JOHN^30121010000000000000?"},
    "pin": {"pin": "1234"},
}


@pytest.mark.parametrize("secret", SECRET_CARD_FIELDS.values(), ids=SECRET_CARD_FIELDS.keys())
def test_r5_3_card_with_pan_or_cvv_is_refused_and_nothing_stored(
    watch: Watch, kit: RefundKit, secret: dict[str, Any]
) -> None:
    """R-5.3: inputs carrying a PAN, CVV, track data or PIN are rejected before persistence."""
    card = {"brand": "visa", "last4": "1111", "exp_month": 12, "exp_year": 2030} | secret
    exc = watch.refuses(CardDataRefused, "card_data_refused", lambda: record(kit, card=card))
    for value in secret.values():
        assert value not in str(exc)
        assert value not in repr(exc)
    assert kit.payments() == []


@pytest.mark.parametrize("key", ["card[cvc]", "card[number]", "cardNumber"])
def test_r5_3_form_style_card_keys_are_refused_too(watch: Watch, kit: RefundKit, key: str) -> None:
    """R-5.3 lists ``card[cvc]``: unknown card fields are refused (as invalid input)."""
    card = {"brand": "visa", "last4": "1111", key: "4111111111111111737"}
    exc = watch.refuses(InvalidInput, "invalid_input", lambda: record(kit, card=card))
    assert "4111111111111111737" not in str(exc)


BAD_CARDS: dict[str, dict[str, Any]] = {
    "last4-5-digits": {"last4": "42424"},
    "last4-3-digits": {"last4": "424"},
    "last4-full-pan": {"last4": PAN},
    "last4-fullwidth": {"last4": "\uff14\uff12\uff14\uff12"},
    "first6-7-digits": {"first6": "4111111"},
    "first6-5-digits": {"first6": "41111"},
    "first6-full-pan": {"first6": PAN},
}


@pytest.mark.parametrize("fields", BAD_CARDS.values(), ids=BAD_CARDS.keys())
@pytest.mark.parametrize("form", ["Card", "mapping"])
def test_r5_1_card_holds_at_most_first6_and_last4(
    watch: Watch, kit: RefundKit, fields: dict[str, Any], form: str
) -> None:
    """R-5.1/R-5.3: more digits than BIN + last 4 are never accepted."""
    values: dict[str, Any] = {"brand": "visa", "last4": "4242"} | fields

    def call() -> Payment:
        return record(kit, card=Card(**values) if form == "Card" else values)

    watch.refuses(CardDataRefused, "card_data_refused", call)


@pytest.mark.parametrize(
    "text",
    [
        f"customer card {PAN}",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "card 378282246310005 (amex)",
        "6011111111111117",
    ],
)
@pytest.mark.parametrize("field", ["reason", "actor"])
def test_r5_3_free_text_holding_a_card_number_is_refused(
    watch: Watch, kit: RefundKit, text: str, field: str
) -> None:
    """R-5.3/R-5.4: a reason or actor containing a PAN is refused, not stored or echoed."""
    record(kit)
    exc = watch.refuses(
        CardDataRefused,
        "card_data_refused",
        lambda: kit.refund("pay_1", usd("10.00"), **{field: text}),
    )
    assert text not in str(exc)


@pytest.mark.parametrize("text", ["", "x" * 201, "line\nbreak", "nul\x00", "tab\there"], ids=repr)
def test_reason_with_control_characters_or_out_of_range_is_invalid_input(
    watch: Watch, kit: RefundKit, text: str
) -> None:
    """R-5.4 (log sinks): free text is one line of at most 200 characters."""
    record(kit)
    watch.refuses(
        InvalidInput, "invalid_input", lambda: kit.refund("pay_1", usd("1.00"), reason=text)
    )


@pytest.mark.parametrize("form", ["Card", "mapping"])
def test_r5_3_card_brand_holding_a_pan_is_refused(watch: Watch, kit: RefundKit, form: str) -> None:
    """R-5.3/R-5.4: no field may carry a full PAN, the free-text ``brand`` included."""
    values: dict[str, Any] = {"brand": PAN, "last4": "1111"}

    def call() -> Payment:
        return record(kit, card=Card(**values) if form == "Card" else values)

    watch.refuses(CardDataRefused, "card_data_refused", call)


@pytest.mark.parametrize(
    "call",
    [
        lambda kit: kit.quote("4111 1111 1111 1111"),
        lambda kit: kit.refund("4111 1111 1111 1111"),
        lambda kit: record(kit, customer_id="4111 1111 1111 1111"),
        lambda kit: record(kit, destination=cast(Any, PAN)),
    ],
    ids=["quote", "refund", "customer_id", "destination"],
)
def test_r5_4_error_messages_never_echo_a_pan(
    kit: RefundKit, call: Callable[[RefundKit], object]
) -> None:
    """R-5.4: exception messages are a sink the canary scan covers."""
    with pytest.raises(InvalidInput) as info:
        call(kit)
    assert_well_formed(info.value)
    joined = re.sub(r"(?<=[0-9])[ .-](?=[0-9])", "", str(info.value))  # 4111 1111 ... too
    assert PAN not in joined


# --- record_payment --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [Money(0, "USD"), Money(-1, "USD"), Money(-5000, "USD")],
    ids=["zero", "minus-one", "negative"],
)
def test_record_payment_amount_must_be_positive(
    watch: Watch, kit: RefundKit, amount: Money
) -> None:
    """R-6.7 / DESIGN: a payment amount is > 0; refused before the gateway or store."""
    watch.refuses(InvalidMoney, "invalid_money", lambda: pay(kit, "pay_1", amount))


@pytest.mark.parametrize("amount", [50.0, 19.99, True, 5000, "50.00", Decimal("50.00")], ids=repr)
def test_r6_1_record_payment_amount_must_be_money(
    watch: Watch, kit: RefundKit, amount: Any
) -> None:
    """R-6.1: ``record_payment`` takes ``Money`` only."""
    watch.refuses(InvalidMoney, "invalid_money", lambda: pay(kit, "pay_1", amount))


@pytest.mark.parametrize(
    "captured_at",
    [datetime(2026, 11, 22, 10, 0), "2026-11-22T10:00:00Z", 1795341600],
    ids=["naive", "str", "epoch"],
)
def test_record_payment_captured_at_must_be_an_aware_datetime(
    watch: Watch, kit: RefundKit, captured_at: Any
) -> None:
    """DESIGN: timestamps are aware UTC datetimes; a naive one is refused, not guessed."""
    watch.refuses(InvalidInput, "invalid_input", lambda: record(kit, captured_at=captured_at))


def test_record_payment_on_an_unknown_gateway(watch: Watch, kit: RefundKit) -> None:
    """DESIGN (plugins): an uninstalled gateway is ``UnknownGateway``, nothing written."""
    exc = watch.refuses(
        UnknownGateway,
        "unknown_gateway",
        lambda: kit.record_payment(
            id="pay_1",
            customer_id="cus_1",
            amount=usd("50.00"),
            gateway="stripe",
            gateway_payment_id="ch_1",
        ),
    )
    assert "sandbox" in str(exc)  # names what is installed


@pytest.mark.parametrize(
    "destination", ["wallet", "INVOICE", "Customer_Balance", "", "invoice ", 1, None], ids=repr
)
def test_record_payment_with_an_unknown_destination(
    watch: Watch, kit: RefundKit, destination: Any
) -> None:
    """DESIGN (vocabulary): destination is ``invoice`` or ``customer_balance``, exactly."""
    watch.refuses(InvalidInput, "invalid_input", lambda: record(kit, destination=destination))


def test_recording_the_same_payment_twice_returns_it_without_new_rows(
    kit: RefundKit, calls: Counter[str]
) -> None:
    """DESIGN facade: recording the same payment again returns it (idempotent)."""
    first = record(kit, destination=Destination.CUSTOMER_BALANCE)
    before = row_counts(kit)
    again = record(kit, destination=Destination.CUSTOMER_BALANCE)
    assert again == first
    assert row_counts(kit) == before
    assert calls["register_payment"] == 1  # the gateway was not asked again


CHANGED_PAYMENTS: dict[str, dict[str, Any]] = {
    "amount": {"amount": "50.01"},
    "currency": {"currency": "EUR"},
    "customer": {"customer_id": "cus_2"},
    "destination": {"destination": Destination.CUSTOMER_BALANCE},
}


@pytest.mark.parametrize("change", CHANGED_PAYMENTS.values(), ids=CHANGED_PAYMENTS.keys())
def test_recording_a_payment_id_again_with_other_details_is_payment_exists(
    watch: Watch, kit: RefundKit, change: dict[str, Any]
) -> None:
    """DESIGN facade / R-1.2 spirit: same id, other details is a conflict, not an update."""
    record(kit)
    watch.refuses(PaymentExists, "payment_exists", lambda: record(kit, **change))
    assert kit.payment("pay_1").amount == usd("50.00")


def test_recording_the_gateway_payment_under_a_second_id_is_payment_exists(
    watch: Watch, kit: RefundKit
) -> None:
    """R-1.10 spirit: one gateway payment is one local payment (UNIQUE gateway id)."""
    record(kit)

    def second() -> Payment:
        return kit.record_payment(
            id="pay_2",
            customer_id="cus_1",
            amount=usd("50.00"),
            gateway="sandbox",
            gateway_payment_id="sbx_ch_pay_1",
        )

    # The gateway may be asked (the sandbox's registration is idempotent); the store is not.
    watch.refuses(PaymentExists, "payment_exists", second, may_register=True)
    assert [p.id for p in kit.payments()] == ["pay_1"]


# --- redeem_balance ---------------------------------------------------------------------------


def test_redeeming_more_than_the_balance_is_refused(watch: Watch, kit: RefundKit) -> None:
    """DESIGN (balance lots): a redemption never takes more than the balance holds."""
    record(kit, destination=Destination.CUSTOMER_BALANCE)
    record(kit, "pay_2", "10.00", destination=Destination.CUSTOMER_BALANCE)
    exc = watch.refuses(
        InsufficientBalance,
        "insufficient_balance",
        lambda: kit.redeem_balance("cus_1", usd("60.01"), reference="inv_9"),
    )
    assert "60.00 USD" in str(exc)
    assert kit.balance("cus_1").totals == {"USD": usd("60.00")}
    assert kit.redeem_balance("cus_1", usd("60.00"), reference="inv_9") == usd("0.00")
    watch.refuses(
        InsufficientBalance,
        "insufficient_balance",
        lambda: kit.redeem_balance("cus_1", Money(1, "USD"), reference="inv_10"),
    )


@pytest.mark.parametrize(
    ("customer_id", "amount"),
    [("cus_1", Money(1, "EUR")), ("cus_404", Money(1, "USD"))],
    ids=["other-currency", "unknown-customer"],
)
def test_redeeming_a_balance_that_does_not_exist(
    watch: Watch, kit: RefundKit, customer_id: str, amount: Money
) -> None:
    """DESIGN (balance lots): balances are per currency; none is none."""
    record(kit, destination=Destination.CUSTOMER_BALANCE)
    watch.refuses(
        InsufficientBalance,
        "insufficient_balance",
        lambda: kit.redeem_balance(customer_id, amount, reference="inv_9"),
    )


@pytest.mark.parametrize(
    "amount", [Money(0, "USD"), Money(-1, "USD"), 10.0, 1000, "10.00", True], ids=repr
)
def test_redeem_amount_must_be_positive_money(watch: Watch, kit: RefundKit, amount: Any) -> None:
    """R-6.1/R-6.7: a redemption is positive ``Money``."""
    record(kit, destination=Destination.CUSTOMER_BALANCE)
    watch.refuses(
        InvalidMoney, "invalid_money", lambda: kit.redeem_balance("cus_1", amount, reference="x")
    )


@pytest.mark.parametrize(("customer_id", "reference"), [("cus 1", "inv_9"), ("cus_1", "inv 9")])
def test_redeem_with_malformed_ids(
    watch: Watch, kit: RefundKit, customer_id: str, reference: str
) -> None:
    """Bad inputs (ids) on ``redeem_balance``."""
    record(kit, destination=Destination.CUSTOMER_BALANCE)
    watch.refuses(
        InvalidInput,
        "invalid_input",
        lambda: kit.redeem_balance(customer_id, usd("1.00"), reference=reference),
    )


def test_r6_8_customer_balance_total_above_int64_is_refused_or_handled(kit: RefundKit) -> None:
    """R-6.8 (2**63 is refused, never wrapped) and DESIGN (on an error nothing is written)."""
    pay(kit, "pay_1", Money(2**63 - 1, "USD"), destination=Destination.CUSTOMER_BALANCE)
    try:
        pay(kit, "pay_2", Money(2**63 - 1, "USD"), destination=Destination.CUSTOMER_BALANCE)
    except InvalidMoney:
        return  # refusing the top-up that would overflow the customer's total is a fix
    before = row_counts(kit)
    try:
        kit.redeem_balance("cus_1", Money(1, "USD"), reference="inv_9")
    except RefundkitError:
        assert row_counts(kit) == before, "redeem_balance raised after writing"
    try:
        kit.balance("cus_1")
    except RefundkitError as exc:
        raise AssertionError(f"balance() of a stored customer failed: {exc!r}") from exc


# --- other facade reads ----------------------------------------------------------------------


@pytest.mark.parametrize("after", [True, 1.5], ids=repr)
def test_events_after_must_be_an_event_id_or_int(kit: RefundKit, after: Any) -> None:
    """R-6.1 spirit (bool is int) / DESIGN facade contract: typed errors only."""
    record(kit)
    kit.refund("pay_1", usd("1.00"))
    with pytest.raises(InvalidInput):
        kit.events(after=after)


def test_events_after_an_unknown_event_id(watch: Watch, kit: RefundKit) -> None:
    """DESIGN facade contract: an unknown event id is a typed error."""
    watch.refuses(InvalidInput, "invalid_input", lambda: kit.events(after="evt_404"))


# --- ordering: refusals that need no state must not run recovery first ---------------------


@pytest.mark.parametrize(
    ("amount", "error", "code"),
    [
        (Money(0, "USD"), RefundNotAllowed, "refund_not_allowed"),
        (Money(1000, "EUR"), CurrencyMismatch, "currency_mismatch"),
    ],
    ids=["zero", "other-currency"],
)
def test_refusal_on_a_payment_with_an_unknown_refund_writes_nothing(
    watch: Watch,
    kit: RefundKit,
    sandbox: SandboxGateway,
    clock: FakeClock,
    amount: Money,
    error: type[RefundkitError],
    code: str,
) -> None:
    """DESIGN (on an error nothing is written) vs R-2.9 (recover before a new refund):
    a request refused on its own terms must be refused before recovery calls the gateway."""
    record(kit)
    sandbox.script("timeout_before")
    assert kit.refund("pay_1", usd("10.00")).status is RefundStatus.UNKNOWN
    clock.advance(minutes=5)  # past the in-flight timeout: recovery would resend it now
    watch.refuses(error, code, lambda: kit.refund("pay_1", amount))


# --- strict types on card fields and flags ---------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"first6": 411111},
        {"exp_month": "12"},
        {"exp_month": True},
        {"exp_year": 2030.0},
        {"last4": 4242},
        {"exp_month": 13},
    ],
    ids=repr,
)
def test_r5_3_card_fields_have_exact_types(fields: dict[str, Any]) -> None:
    """A card summary takes str digits and int months/years, never a look-alike."""
    with pytest.raises(RefundkitError) as info:
        Card(**({"brand": "visa", "last4": "4242"} | fields))
    assert info.value.code in ("card_data_refused", "invalid_input")


@pytest.mark.parametrize("flag", ["disputed", "settled"])
@pytest.mark.parametrize("value", ["no", 0, 1, None])
def test_payment_flags_are_real_booleans(kit: RefundKit, flag: str, value: Any) -> None:
    """bool("no") is True: a flag that is not a bool is refused, nothing written."""
    before = row_counts(kit)
    with pytest.raises(InvalidInput):
        record(kit, **{flag: value})
    assert row_counts(kit) == before


def test_r5_3_reason_with_a_timestamp_is_not_mistaken_for_a_card(kit: RefundKit) -> None:
    """Free text is checked for Luhn-valid card numbers only, so ids and timestamps pass."""
    record(kit)
    refund = kit.refund("pay_1", usd("1.00"), reason="order 1732271234567")
    assert refund.reason == "order 1732271234567"
    with pytest.raises(CardDataRefused):
        kit.refund("pay_1", usd("1.00"), reason="card 4242-4242-4242-4242")
