"""Wire amounts per (currency, gateway): R-6.4 table tests and R-6.5 round-trip properties.

Requirements are in /work/shared/reference/reliability.md, section "6. Money correctness".
The gateways here are tiny stand-ins that only declare ``Capabilities.currency_exponents``;
the conversion under test is ``Gateway.to_gateway_amount`` / ``from_gateway_amount``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

import iso4217
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refundkit._errors import AmountNotRepresentable, InvalidMoney, RefundkitError
from refundkit._gateway import (
    Capabilities,
    Gateway,
    GatewayPayment,
    GatewayRefundRequest,
    GatewayRefundResult,
)
from refundkit._money import Money

INT64_MAX = 2**63 - 1

# ISO 4217 minor units straight from the iso4217 package, independent of refundkit's table.
ISO: dict[str, int] = {c.code: c.exponent for c in iso4217.Currency if c.exponent is not None}
CURRENCIES = sorted(ISO)

# Stripe: MGA is zero-decimal (ISO says 2); ISK and UGX are sent as two-decimal with "00".
STRIPE_EXPONENTS: Mapping[str, int] = {"MGA": 0, "ISK": 2, "UGX": 2}
# Adyen: "the decimals in the table on this page are leading" for CLP, CVE, IDR and ISK.
ADYEN_EXPONENTS: Mapping[str, int] = {"CLP": 2, "ISK": 2, "IDR": 0, "CVE": 0}


class _AmountsOnlyGateway(Gateway):
    """Implements the abstract calls as unusable: only the amount conversion is tested."""

    def refund(self, request: GatewayRefundRequest) -> GatewayRefundResult:
        raise NotImplementedError

    def lookup_refund(self, request: GatewayRefundRequest) -> GatewayRefundResult | None:
        raise NotImplementedError

    def fetch_payment(self, gateway_payment_id: str) -> GatewayPayment:
        raise NotImplementedError


class StripeLike(_AmountsOnlyGateway):
    name = "stripe-like"
    capabilities = Capabilities(currency_exponents=dict(STRIPE_EXPONENTS))


class AdyenLike(_AmountsOnlyGateway):
    name = "adyen-like"
    capabilities = Capabilities(currency_exponents=dict(ADYEN_EXPONENTS))


class IsoOnly(_AmountsOnlyGateway):
    """A gateway that takes ISO 4217 minor units as they are (no overrides)."""

    name = "iso-only"


STRIPE = StripeLike()
ADYEN = AdyenLike()
ISO_ONLY = IsoOnly()
GATEWAYS: list[tuple[Gateway, Mapping[str, int]]] = [
    (STRIPE, STRIPE_EXPONENTS),
    (ADYEN, ADYEN_EXPONENTS),
    (ISO_ONLY, {}),
]


def gateway_exponent(overrides: Mapping[str, int], currency: str) -> int:
    return overrides.get(currency, ISO[currency])


def assert_not_representable(exc: BaseException) -> None:
    assert isinstance(exc, AmountNotRepresentable)
    assert isinstance(exc, InvalidMoney)
    assert isinstance(exc, ValueError)
    assert isinstance(exc, RefundkitError)
    assert exc.code == "amount_not_representable"


# --- table tests per gateway ---------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "iso_minor", "wire"),
    [
        ("USD", 1099, 1099),
        ("JPY", 500, 500),
        ("MGA", 1000, 10),  # 10.00 MGA (ISO 2) is 10 on zero-decimal Stripe
        ("MGA", -1000, -10),
        ("MGA", 0, 0),
        ("ISK", 5, 500),  # ISK: zero-decimal, but sent as two-decimal with "00"
        ("UGX", 5, 500),
        ("KWD", 1234, 1234),  # not overridden: ISO 3 decimals pass through
        ("CLP", 1000, 1000),  # Adyen's CLP override must not leak into Stripe
        ("IDR", 1000000, 1000000),  # nor Adyen's IDR
    ],
)
def test_r6_4_stripe_like_to_gateway(currency: str, iso_minor: int, wire: int) -> None:
    """R-6.4 Stripe: USD 1099 → 1099, JPY 500 → 500, MGA 1000 → 10, ISK 5 → 500, UGX 5 → 500."""
    money = Money(iso_minor, currency)
    sent = STRIPE.to_gateway_amount(money)
    assert type(sent) is int
    assert sent == wire
    assert STRIPE.from_gateway_amount(wire, currency) == money


@pytest.mark.parametrize(
    ("currency", "iso_minor"),
    [("MGA", 1050), ("MGA", 1001), ("MGA", 1), ("MGA", -1), ("MGA", -1050), ("MGA", 99)],
)
def test_r6_4_stripe_like_refuses_unrepresentable_mga(currency: str, iso_minor: int) -> None:
    """R-6.4 Stripe: MGA 10.50 (ISO minor 1050) has no zero-decimal form; refused, not rounded."""
    with pytest.raises(AmountNotRepresentable) as info:
        STRIPE.to_gateway_amount(Money(iso_minor, currency))
    assert_not_representable(info.value)


@pytest.mark.parametrize(
    ("currency", "wire"),
    [("ISK", 550), ("ISK", 501), ("ISK", 1), ("ISK", -550), ("UGX", 550), ("UGX", 99)],
)
def test_r6_4_stripe_like_refuses_isk_ugx_coming_back_not_divisible_by_100(
    currency: str, wire: int
) -> None:
    """R-6.4 Stripe: an ISK/UGX amount coming back that is not a multiple of 100 is an error."""
    with pytest.raises(AmountNotRepresentable) as info:
        STRIPE.from_gateway_amount(wire, currency)
    assert_not_representable(info.value)


@pytest.mark.parametrize(
    ("currency", "wire", "iso_minor"),
    [("ISK", 500, 5), ("ISK", -500, -5), ("UGX", 500, 5), ("ISK", 0, 0), ("MGA", 10, 1000)],
)
def test_r6_4_stripe_like_from_gateway(currency: str, wire: int, iso_minor: int) -> None:
    """R-6.4 Stripe: what comes back is converted to ISO minor units exactly."""
    assert STRIPE.from_gateway_amount(wire, currency) == Money(iso_minor, currency)


@pytest.mark.parametrize(
    ("currency", "iso_minor", "wire"),
    [
        ("CLP", 1000, 100000),  # ISO 0, Adyen 2
        ("ISK", 5, 500),  # ISO 0, Adyen 2
        ("IDR", 1000000, 10000),  # 10000.00 IDR (ISO 2) is 10000 on Adyen (0)
        ("IDR", -1000000, -10000),
        ("CVE", 10000, 100),  # 100.00 CVE (ISO 2) is 100 on Adyen (0)
        ("USD", 1099, 1099),
        ("JPY", 500, 500),
        ("KWD", 1234, 1234),
        ("MGA", 1050, 1050),  # Stripe's MGA override must not leak into Adyen
        ("UGX", 5, 5),  # nor Stripe's UGX
    ],
)
def test_r6_4_adyen_like_to_gateway(currency: str, iso_minor: int, wire: int) -> None:
    """R-6.4 Adyen: CLP 1000 → 100000, ISK 5 → 500, IDR 1000000 → 10000, CVE 10000 → 100."""
    money = Money(iso_minor, currency)
    sent = ADYEN.to_gateway_amount(money)
    assert type(sent) is int
    assert sent == wire
    assert ADYEN.from_gateway_amount(wire, currency) == money


@pytest.mark.parametrize(
    ("currency", "iso_minor"),
    [("IDR", 1000050), ("IDR", 1), ("IDR", -1000050), ("CVE", 10050), ("CVE", 10001)],
)
def test_r6_4_adyen_like_refuses_unrepresentable(currency: str, iso_minor: int) -> None:
    """R-6.4 Adyen: IDR 10000.50 (ISO minor 1000050) is refused, not rounded; CVE likewise."""
    with pytest.raises(AmountNotRepresentable) as info:
        ADYEN.to_gateway_amount(Money(iso_minor, currency))
    assert_not_representable(info.value)


@pytest.mark.parametrize(("currency", "wire"), [("CLP", 100050), ("CLP", 1), ("ISK", 550)])
def test_r6_4_adyen_like_refuses_fractional_amounts_coming_back(currency: str, wire: int) -> None:
    """R-6.4 Adyen: a CLP/ISK amount with non-zero decimals from the gateway is an error."""
    with pytest.raises(AmountNotRepresentable):
        ADYEN.from_gateway_amount(wire, currency)


@pytest.mark.parametrize(("gateway", "overrides"), GATEWAYS, ids=[g.name for g, _ in GATEWAYS])
def test_r6_4_gateway_exponent_is_override_else_iso(
    gateway: Gateway, overrides: Mapping[str, int]
) -> None:
    """R-6.4: the wire exponent is a function of (currency, gateway), for every ISO code."""
    for currency in CURRENCIES:
        assert gateway.exponent(currency) == gateway_exponent(overrides, currency), currency


def test_r6_4_capabilities_report_the_overrides() -> None:
    """R-6.4: the overrides are visible in the gateway's capabilities (what the policy reads)."""
    assert STRIPE.capabilities.to_dict()["currency_exponents"] == dict(STRIPE_EXPONENTS)
    assert ADYEN.capabilities.to_dict()["currency_exponents"] == dict(ADYEN_EXPONENTS)
    assert ISO_ONLY.capabilities.to_dict()["currency_exponents"] == {}


def test_r6_4_refusal_names_the_gateway_and_amount() -> None:
    """R-6.4: the error says which gateway and which amount, and that it was not rounded."""
    with pytest.raises(AmountNotRepresentable, match="stripe-like") as info:
        STRIPE.to_gateway_amount(Money(1050, "MGA"))
    assert "10.50 MGA" in str(info.value)
    assert "not rounded" in str(info.value)


EDGE_GATEWAYS = (STRIPE, ADYEN, ISO_ONLY)
EDGE_CURRENCIES = ("USD", "JPY", "ISK", "MGA", "IDR", "CLP", "CVE")


@pytest.mark.parametrize(
    "amount",
    [
        1.0,
        500.0,
        1e20,
        Decimal("500"),
        True,
        False,
        None,
        "500",
    ],
    ids=repr,
)
def test_r6_1_from_gateway_refuses_non_int_amounts(amount: Any) -> None:
    """R-6.1 at the edge: a gateway float/Decimal/bool/str/None never becomes Money, and the
    refusal is InvalidMoney for every gateway and currency."""
    for gateway in EDGE_GATEWAYS:
        for currency in EDGE_CURRENCIES:
            with pytest.raises(InvalidMoney):
                gateway.from_gateway_amount(amount, currency)


@pytest.mark.parametrize("currency", ["usd", "XAU", "MRO"])
def test_r6_3_from_gateway_refuses_unknown_currency_with_invalid_money(currency: str) -> None:
    """R-6.3 at the edge: a currency code from a gateway is checked like any other."""
    with pytest.raises(InvalidMoney):
        ISO_ONLY.from_gateway_amount(100, currency)


# --- properties for every (currency, gateway) pair -----------------------------------

PROBE_AMOUNTS = [0, 1, -1, 5, 9, 10, 99, 100, 101, 1000, 1050, 10**6, 10**6 + 50]
PROBE_AMOUNTS += [INT64_MAX, -INT64_MAX, INT64_MAX - INT64_MAX % 100, 2**53 + 1]


def check_round_trip_or_refusal(
    gateway: Gateway, overrides: Mapping[str, int], currency: str, amount: int
) -> None:
    """The R-6.5 property for one x: exact round trip if representable, else a refusal."""
    iso_exp = ISO[currency]
    shift = gateway_exponent(overrides, currency) - iso_exp
    money = Money(amount, currency)
    representable = shift >= 0 or amount % 10**-shift == 0
    if representable:
        wire = gateway.to_gateway_amount(money)
        assert type(wire) is int
        # Same value, exactly: wire / 10**gateway_exp == amount / 10**iso_exp.
        assert Fraction(wire, 10 ** (iso_exp + shift)) == Fraction(amount, 10**iso_exp)
        assert gateway.from_gateway_amount(wire, currency) == money
    else:
        with pytest.raises(AmountNotRepresentable):
            gateway.to_gateway_amount(money)


def test_r6_5_every_currency_gateway_pair_on_probe_amounts() -> None:
    """R-6.5: every (ISO currency, gateway) pair, on amounts around every power-of-10 boundary."""
    checked = 0
    for gateway, overrides in GATEWAYS:
        for currency in CURRENCIES:
            for amount in PROBE_AMOUNTS:
                check_round_trip_or_refusal(gateway, overrides, currency, amount)
                checked += 1
    assert checked == len(GATEWAYS) * len(ISO) * len(PROBE_AMOUNTS)


iso_amounts = st.one_of(
    st.integers(min_value=-INT64_MAX, max_value=INT64_MAX),
    # near multiples of 100, so that both outcomes come up for a zero-decimal override
    st.builds(
        lambda k, r: k * 100 + r,
        st.integers(min_value=-(10**15), max_value=10**15),
        st.integers(min_value=-99, max_value=99),
    ),
    st.integers(min_value=-(10**15), max_value=10**15).map(lambda k: k * 100),
)


@given(
    pair=st.sampled_from(GATEWAYS),
    currency=st.sampled_from(CURRENCIES),
    amount=iso_amounts,
)
def test_r6_5_property_any_pair_round_trips_or_refuses(
    pair: tuple[Gateway, Mapping[str, int]], currency: str, amount: int
) -> None:
    """R-6.5: from_gateway(to_gateway(x)) == x when representable; otherwise it raises."""
    gateway, overrides = pair
    check_round_trip_or_refusal(gateway, overrides, currency, amount)


OVERRIDDEN_PAIRS = [(STRIPE, STRIPE_EXPONENTS, c) for c in sorted(STRIPE_EXPONENTS)] + [
    (ADYEN, ADYEN_EXPONENTS, c) for c in sorted(ADYEN_EXPONENTS)
]


@pytest.mark.parametrize(
    ("gateway", "overrides", "currency"),
    OVERRIDDEN_PAIRS,
    ids=[f"{g.name}-{c}" for g, _, c in OVERRIDDEN_PAIRS],
)
@given(amount=iso_amounts)
def test_r6_5_property_overridden_pairs_round_trip_or_refuse(
    gateway: Gateway, overrides: Mapping[str, int], currency: str, amount: int
) -> None:
    """R-6.5: each pair where the gateway differs from ISO gets its own run."""
    check_round_trip_or_refusal(gateway, overrides, currency, amount)


ZERO_DECIMAL_OVERRIDES = [
    (g, o, c) for g, o, c in OVERRIDDEN_PAIRS if gateway_exponent(o, c) < ISO[c]
]


@pytest.mark.parametrize(
    ("gateway", "overrides", "currency"),
    ZERO_DECIMAL_OVERRIDES,
    ids=[f"{g.name}-{c}" for g, _, c in ZERO_DECIMAL_OVERRIDES],
)
@given(
    whole=st.integers(min_value=-(10**15), max_value=10**15),
    remainder=st.integers(min_value=1, max_value=99),
)
def test_r6_5_property_never_rounds_when_the_gateway_has_fewer_decimals(
    gateway: Gateway, overrides: Mapping[str, int], currency: str, whole: int, remainder: int
) -> None:
    """R-6.5: Stripe MGA, Adyen IDR/CVE: any amount with non-zero cents is refused, never
    rounded up, down or truncated."""
    factor = 10 ** (ISO[currency] - gateway_exponent(overrides, currency))
    assert factor == 100
    with pytest.raises(AmountNotRepresentable):
        gateway.to_gateway_amount(Money(whole * factor + remainder, currency))
    assert gateway.to_gateway_amount(Money(whole * factor, currency)) == whole


MORE_DECIMAL_OVERRIDES = [
    (g, o, c) for g, o, c in OVERRIDDEN_PAIRS if gateway_exponent(o, c) > ISO[c]
]


@pytest.mark.parametrize(
    ("gateway", "overrides", "currency"),
    MORE_DECIMAL_OVERRIDES,
    ids=[f"{g.name}-{c}" for g, _, c in MORE_DECIMAL_OVERRIDES],
)
@given(wire=st.integers(min_value=-(10**17), max_value=10**17))
def test_r6_5_property_from_gateway_refuses_fractions_when_the_gateway_has_more_decimals(
    gateway: Gateway, overrides: Mapping[str, int], currency: str, wire: int
) -> None:
    """R-6.5: Stripe ISK/UGX, Adyen CLP/ISK: a wire amount is accepted iff it is a whole ISO
    amount, and then it converts back to exactly the same wire amount."""
    factor = 10 ** (gateway_exponent(overrides, currency) - ISO[currency])
    assert factor == 100
    if wire % factor:
        with pytest.raises(AmountNotRepresentable):
            gateway.from_gateway_amount(wire, currency)
    else:
        money = gateway.from_gateway_amount(wire, currency)
        assert money == Money(wire // factor, currency)
        assert gateway.to_gateway_amount(money) == wire


@given(
    pair=st.sampled_from(GATEWAYS),
    currency=st.sampled_from(CURRENCIES),
    wire=st.integers(min_value=-(10**16), max_value=10**16),
)
def test_r6_5_property_wire_amounts_round_trip_or_are_refused(
    pair: tuple[Gateway, Mapping[str, int]], currency: str, wire: int
) -> None:
    """R-6.5 from the gateway side: to_gateway(from_gateway(y)) == y whenever y is accepted."""
    gateway, overrides = pair
    shift = gateway_exponent(overrides, currency) - ISO[currency]
    try:
        money = gateway.from_gateway_amount(wire, currency)
    except AmountNotRepresentable:
        assert shift > 0
        assert wire % 10**shift != 0
        return
    assert gateway.to_gateway_amount(money) == wire
