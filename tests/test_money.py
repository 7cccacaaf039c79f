"""Money correctness: R-6.1 (int minor units only), R-6.2 (strict parser), R-6.3 (pinned table).

Requirements are in /work/shared/reference/reliability.md, section "6. Money correctness" and
"Bad inputs to try" (amounts and currencies).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from fractions import Fraction
from typing import Any

import iso4217
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refundkit._currencies import EXPONENTS, ISO4217_VERSION
from refundkit._errors import (
    CurrencyMismatch,
    InvalidInput,
    InvalidMoney,
    InvalidMoneyType,
    RefundkitError,
)
from refundkit._money import MAX_AMOUNT, Money, check_currency, exponent

INT64_MAX = 2**63 - 1
CURRENCIES = sorted(EXPONENTS)
# The grammar allows, used as an independent oracle for the fuzz tests.
PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?", re.ASCII)
# Deliberately built from a float: 0.1000000000000000055511151231257827021181583404541015625
DECIMAL_FROM_FLOAT = Decimal(0.1)  # noqa: RUF032


def iso_table() -> dict[str, int]:
    """Every code the iso4217 package lists with minor units (None means "N.A.": metals, funds)."""
    return {c.code: c.exponent for c in iso4217.Currency if c.exponent is not None}


def assert_invalid_money(exc: BaseException) -> None:
    assert isinstance(exc, InvalidMoney)
    assert isinstance(exc, ValueError)
    assert isinstance(exc, InvalidInput)
    assert isinstance(exc, RefundkitError)
    assert exc.code == "invalid_money"
    assert str(exc)  # a message for people, never empty


# --- the pinned ISO 4217 exponent table ----------------------------------------------


def test_r6_3_pinned_table_equals_iso4217_package() -> None:
    """R-6.3: same codes and same exponents as the iso4217 package, code by code."""
    expected = iso_table()
    assert set(EXPONENTS) == set(expected), (
        f"missing: {sorted(set(expected) - set(EXPONENTS))}, "
        f"extra: {sorted(set(EXPONENTS) - set(expected))}"
    )
    differing = {c: (EXPONENTS[c], expected[c]) for c in expected if EXPONENTS[c] != expected[c]}
    assert differing == {}
    assert expected == EXPONENTS


def test_r6_3_pinned_table_version_matches_iso4217_package() -> None:
    """R-6.3: the table says which ISO publication it was generated from; it is the package's."""
    assert iso4217.__published__.isoformat() == ISO4217_VERSION


def test_r6_3_table_has_no_codes_without_minor_units() -> None:
    """R-6.3: metals, funds and test codes ("N.A." minor units) are not in the table."""
    no_minor_units = {c.code for c in iso4217.Currency if c.exponent is None}
    assert {"XAU", "XDR", "XXX", "XTS"} <= no_minor_units
    assert no_minor_units.isdisjoint(EXPONENTS)


def test_r6_3_table_is_well_formed() -> None:
    """R-6.3: upper-case alpha-3 keys and exponents in 0..4 (ISO uses no other values)."""
    for code, exp in EXPONENTS.items():
        assert re.fullmatch(r"[A-Z]{3}", code, re.ASCII), code
        assert type(exp) is int
        assert exp in {0, 2, 3, 4}, (code, exp)


SPOT_CHECKS = [
    ("JPY", 0),
    ("KRW", 0),
    ("CLP", 0),
    ("ISK", 0),
    ("UGX", 0),
    ("VND", 0),
    ("KWD", 3),
    ("BHD", 3),
    ("JOD", 3),
    ("OMR", 3),
    ("TND", 3),
    ("LYD", 3),
    ("IQD", 3),
    ("CLF", 4),
    ("UYW", 4),
    ("USD", 2),
    ("IDR", 2),
    ("HUF", 2),
    ("MGA", 2),
]


@pytest.mark.parametrize(("code", "expected"), SPOT_CHECKS)
def test_r6_3_spot_check_exponent(code: str, expected: int) -> None:
    """R-6.3: the named spot checks, through the table, exponent() and Money.exponent."""
    assert EXPONENTS[code] == expected
    assert exponent(code) == expected
    assert Money(0, code).exponent == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("IQD", 3),
        ("MGA", 2),
        ("LAK", 2),
        ("MMK", 2),
        ("RSD", 2),
        ("COP", 2),
        ("HUF", 2),
        ("IDR", 2),
        ("PKR", 2),
    ],
)
def test_r6_3_iso_not_cldr_for_codes_where_they_disagree(code: str, expected: int) -> None:
    """R-6.3: CLDR/Babel say 0 (IQD, MGA, LAK, MMK, RSD; CLDR 48 COP/HUF/IDR/PKR); ISO wins."""
    assert EXPONENTS[code] == expected


def test_r6_3_non_two_decimal_codes_are_exactly_the_listed_ones() -> None:
    """R-6.3: the reference lists every code whose exponent is not 2."""
    by_exp: dict[int, set[str]] = {}
    for code, exp in EXPONENTS.items():
        if exp != 2:
            by_exp.setdefault(exp, set()).add(code)
    assert by_exp == {
        0: {
            *("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG"),
            *("RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"),
        },
        3: {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"},
        4: {"CLF", "UYW"},
    }


BAD_CURRENCIES: list[Any] = [
    "XAU",  # gold: no minor units
    "XDR",  # SDR: no minor units
    "XXX",  # "no currency"
    "XTS",  # testing code
    "MRO",  # historic, replaced by MRU
    "VEF",  # historic, replaced by VES/VED
    "US",
    "USDX",
    "",
    "usd",
    "Usd",
    "uSD",
    "eur",
    " USD",
    "USD ",
    "U\u0405D",  # Cyrillic DZE looks like S
    None,
    840,  # the numeric code is not accepted in place of the alpha code
    b"USD",
    ["USD"],
]


@pytest.mark.parametrize("code", BAD_CURRENCIES, ids=repr)
def test_r6_3_bad_currency_codes_are_invalid_money(code: Any) -> None:
    """R-6.3: funds/metals/test codes, historic codes, wrong length, wrong case, non-str."""
    with pytest.raises(InvalidMoney) as info:
        Money(100, code)
    assert_invalid_money(info.value)
    with pytest.raises(InvalidMoney):
        Money.parse("1", code)
    with pytest.raises(InvalidMoney):
        Money.zero(code)
    with pytest.raises(InvalidMoney):
        exponent(code)
    with pytest.raises(InvalidMoney):
        check_currency(code)


def test_r6_3_lowercase_currency_message_names_the_upper_case_code() -> None:
    """R-6.3: "usd" is refused, not normalised, and the message says what to use instead."""
    with pytest.raises(InvalidMoney, match="'USD'"):
        Money(100, "usd")


@pytest.mark.parametrize("code", ["XAU", "ABC", "usdx"])
def test_r6_3_an_unknown_code_is_called_unknown_not_a_case_slip(code: str) -> None:
    """Only a code whose upper case is known gets "use 'USD'". Kills the test of
    ``currency.upper() in EXPONENTS`` forced true."""
    with pytest.raises(InvalidMoney) as info:
        Money(100, code)
    assert str(info.value) == (f"unknown currency {code!r}: not an ISO 4217 code with minor units")


def test_r6_3_str_subclass_currency_is_refused() -> None:
    """R-6.3: only an exact str is a currency code (a subclass could override __eq__/__hash__)."""

    class Code(str):
        pass

    with pytest.raises(InvalidMoney):
        Money(100, Code("USD"))


@pytest.mark.parametrize("code", CURRENCIES)
def test_r6_3_every_table_code_is_accepted(code: str) -> None:
    """R-6.3: every pinned code builds Money and keeps its code unchanged."""
    m = Money(1, code)
    assert m.currency == code
    assert m.exponent == EXPONENTS[code]


# --- int minor units only ------------------------------------------------------------

BAD_AMOUNTS: list[Any] = [
    19.99,
    0.1 + 0.2,
    100.0,
    1e2,
    float("nan"),
    float("inf"),
    True,
    False,
    None,
    "100",
    "19.99",
    Decimal("1"),
    Decimal("19.99"),
    Fraction(1, 1),
    1 + 0j,
    2**63,
    2**64,
    -(2**63) - 1,
    10**30,
]


@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
def test_r6_1_money_refuses_non_int_and_out_of_range_amounts(amount: Any) -> None:
    """R-6.1: float, bool, None, str, Decimal and > 2**63-1 are refused, never converted."""
    with pytest.raises(InvalidMoney) as info:
        Money(amount, "USD")
    assert_invalid_money(info.value)


@pytest.mark.parametrize(
    ("amount", "hint"), [("1.00", True), (Decimal("1.00"), True), (1.0, False), (None, False)]
)
def test_r6_1_a_decimal_string_is_pointed_to_the_parser(amount: Any, hint: bool) -> None:
    """R-6.1: a str or Decimal amount is told to use ``Money.parse()``; a float is not (it has
    no exact decimal form to parse). Kills the hint's condition forced either way."""
    with pytest.raises(InvalidMoneyType) as info:
        Money(amount, "USD")
    assert str(info.value).startswith(
        f"amount must be an int of minor units, not {type(amount).__name__}"
    )
    assert ("; use Money.parse() for decimal strings" in str(info.value)) is hint


def test_r6_1_int_subclass_is_refused() -> None:
    """R-6.1: bool is the famous int subclass; any other int subclass is refused the same way."""

    class Cents(int):
        pass

    with pytest.raises(InvalidMoney):
        Money(Cents(5), "USD")


@pytest.mark.parametrize(
    "amount", [0, 1, -1, 2**31, 2**53 + 1, -(2**53 + 1), INT64_MAX, -INT64_MAX, 10**12], ids=repr
)
def test_r6_1_money_keeps_exact_ints(amount: int) -> None:
    """R-6.1: 2**31, 2**53+1 (not a float), 0, negatives and 2**63-1 are kept exactly."""
    m = Money(amount, "USD")
    assert type(m.amount) is int
    assert m.amount == amount
    assert m.currency == "USD"


def test_r6_1_two_pow_53_plus_one_is_not_rounded_through_float() -> None:
    """R-6.1: float(2**53+1) == 2**53; Money must keep the odd value."""
    assert Money(2**53 + 1, "USD").amount - Money(2**53, "USD").amount == 1
    assert Money(2**53 + 1, "USD").decimal_str() == "90071992547409.93"


def test_r6_1_max_amount_is_int64() -> None:
    """R-6.1: the storage bound is exactly signed 64-bit."""
    assert MAX_AMOUNT == INT64_MAX
    Money(INT64_MAX, "USD")
    with pytest.raises(InvalidMoney):
        Money(INT64_MAX + 1, "USD")


def test_r6_1_money_is_frozen() -> None:
    """R-6.1: an amount cannot be swapped for a float after construction."""
    m = Money(100, "USD")
    with pytest.raises(AttributeError):
        m.amount = 1.5  # type: ignore[assignment, misc]
    assert m.amount == 100


@pytest.mark.parametrize(
    "payload",
    [
        '{"amount": 1e2, "currency": "USD"}',
        '{"amount": 100.0, "currency": "USD"}',
        '{"amount": 12345678901234567890.12, "currency": "USD"}',
        '{"amount": NaN, "currency": "USD"}',
        '{"amount": Infinity, "currency": "USD"}',
        '{"amount": true, "currency": "USD"}',
        '{"amount": "100", "currency": "USD"}',
        '{"amount": null, "currency": "USD"}',
        '{"amount": 100, "currency": "usd"}',
        '{"amount": 100, "currency": "XXX"}',
    ],
)
def test_r6_1_from_dict_refuses_json_floats_and_bad_values(payload: str) -> None:
    """R-6.1 "Bad inputs": json.loads turns 1e2/100.0 into floats and accepts NaN/Infinity."""
    with pytest.raises(InvalidMoney):
        Money.from_dict(json.loads(payload))


def test_r6_1_dict_round_trip() -> None:
    """R-6.1: to_dict/from_dict carry int minor units and the code unchanged."""
    m = Money(-1234, "KWD")
    assert m.to_dict() == {"amount": -1234, "currency": "KWD"}
    assert type(m.to_dict()["amount"]) is int
    assert Money.from_dict(json.loads(json.dumps(m.to_dict()))) == m


# --- the strict decimal-string parser ------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "minor"),
    [
        ("12.34", "USD", 1234),
        ("0.01", "USD", 1),
        ("1234", "USD", 123400),
        ("-5.00", "USD", -500),
        ("12.3", "USD", 1230),
        ("0", "USD", 0),
        ("-0", "USD", 0),
        ("-0.00", "USD", 0),
        ("007.50", "USD", 750),
        ("1.234", "KWD", 1234),
        ("1.2", "KWD", 1200),
        ("-0.005", "KWD", -5),
        ("500", "JPY", 500),
        ("-500", "JPY", -500),
        ("1.2345", "CLF", 12345),
        ("0.0001", "UYW", 1),
        ("92233720368547758.07", "USD", INT64_MAX),
        ("-92233720368547758.07", "USD", -INT64_MAX),
        ("9007199254740993", "JPY", 2**53 + 1),
        (Decimal("12.34"), "USD", 1234),
        (Decimal("-5.00"), "USD", -500),
        (Decimal("500"), "JPY", 500),
        (Decimal("1.234"), "KWD", 1234),
        (Decimal("-0"), "USD", 0),
    ],
    ids=repr,
)
def test_r6_2_parse_accepts_plain_decimals(value: str | Decimal, currency: str, minor: int) -> None:
    """R-6.2: plain ASCII decimals with at most the currency's decimals, exactly."""
    m = Money.parse(value, currency)
    assert m == Money(minor, currency)
    assert type(m.amount) is int


@pytest.mark.parametrize(
    ("value", "currency"),
    [
        ("10.005", "USD"),
        ("100.5", "JPY"),
        ("100.0", "JPY"),
        ("1.2345", "KWD"),
        ("1.23456", "CLF"),
        ("0.001", "USD"),
        ("10.000", "USD"),
        ("1e3", "USD"),
        ("1E3", "USD"),
        ("1_000", "USD"),
        ("\u0661\u0662\u0663", "USD"),  # Arabic-Indic 123: int() accepts it
        ("\uff11\uff10\uff10", "USD"),  # fullwidth 100: int() accepts it
        ("\u0661\u0662\u0663", "JPY"),
        (" 10.00 ", "USD"),
        ("10.00 ", "USD"),
        (" 10.00", "USD"),
        ("10.00\n", "USD"),  # "$" in a regex would let this through
        ("\t42", "JPY"),
        ("10,00", "USD"),
        ("1,000.00", "USD"),
        ("+10", "USD"),
        ("--10", "USD"),
        ("-", "USD"),
        ("NaN", "USD"),
        ("nan", "USD"),
        ("sNaN", "USD"),
        ("Infinity", "USD"),
        ("-Infinity", "USD"),
        ("inf", "USD"),
        ("", "USD"),
        ("10.", "USD"),
        (".5", "USD"),
        ("-.5", "USD"),
        ("1.2.3", "USD"),
        ("0x10", "USD"),
        ("$10", "USD"),
        ("10 USD", "USD"),
        ("92233720368547758.08", "USD"),  # one minor unit above int64
        ("9223372036854775808", "JPY"),
        (Decimal("NaN"), "USD"),
        (Decimal("-NaN"), "USD"),
        (Decimal("sNaN"), "USD"),
        (Decimal("Infinity"), "USD"),
        (Decimal("-Infinity"), "USD"),
        (Decimal("1E+2"), "USD"),
        (Decimal("1E+2"), "JPY"),
        (DECIMAL_FROM_FLOAT, "USD"),
        (DECIMAL_FROM_FLOAT, "CLF"),
        (Decimal("10.005"), "USD"),
        (Decimal("100.5"), "JPY"),
        (Decimal("1.2345"), "KWD"),
        (19.99, "USD"),
        (0.1 + 0.2, "USD"),
        (100.0, "JPY"),
        (True, "USD"),
        (False, "USD"),
        (None, "USD"),
        (100, "USD"),
        (b"10.00", "USD"),
        (Fraction(1, 2), "USD"),
    ],
    ids=repr,
)
def test_r6_2_parse_refuses_everything_else(value: Any, currency: str) -> None:
    """R-6.2: too many decimals (never rounded), exponent forms, separators, non-ASCII digits,
    whitespace, signs other than a leading "-", NaN/Infinity, float-built Decimals and non-str."""
    with pytest.raises(InvalidMoney) as info:
        Money.parse(value, currency)
    assert_invalid_money(info.value)


def test_r6_2_parse_refuses_str_subclass() -> None:
    """R-6.2: only an exact str is parsed (a subclass can change strip/partition)."""

    class Text(str):
        pass

    with pytest.raises(InvalidMoney):
        Money.parse(Text("12.34"), "USD")


def test_r6_2_too_many_decimals_message_says_not_rounded() -> None:
    """R-6.2: the refusal explains itself instead of silently rounding 10.005 to 10.00/10.01."""
    with pytest.raises(InvalidMoney, match="not rounded"):
        Money.parse("10.005", "USD")


@pytest.mark.parametrize("exponent", [-3, -1_000_000])
def test_r6_2_a_decimal_with_too_many_decimals_is_refused_before_it_is_written_out(
    exponent: int,
) -> None:
    """R-6.2: ``Decimal("1E-1000000")`` is refused by looking at its exponent, not by writing
    out a million zeros (and echoing them in the message). Kills the removal of the guard in
    ``_decimal_text`` and ``digits_exp < -max_decimals`` → ``<=`` / ``or`` → ``and``."""
    value = Decimal(f"1E{exponent}")
    with pytest.raises(InvalidMoney) as info:
        Money.parse(value, "USD")
    assert str(info.value) == f"{value!r} has more decimals than the currency allows"


def test_r6_2_a_decimal_with_exactly_the_currencys_decimals_is_accepted() -> None:
    assert Money.parse(Decimal("1E-2"), "USD") == Money(1, "USD")
    assert Money.parse(Decimal("-0.001"), "KWD") == Money(-1, "KWD")


def test_r6_2_a_decimal_of_more_than_64_digits_is_refused_before_it_is_written_out() -> None:
    """64 digits is past any storable amount; more are refused without formatting them."""
    value = Decimal("1" * 65)
    with pytest.raises(InvalidMoney) as info:
        Money.parse(value, "USD")
    assert str(info.value) == f"{value!r} has more decimals than the currency allows"
    with pytest.raises(InvalidMoney, match="is too large to be an amount"):
        Money.parse(Decimal("1" * 64), "JPY")


def test_r6_2_more_than_19_whole_digits_are_refused_before_int() -> None:
    """19 digits still reach ``int()`` (and Money's own range check); 20 never could fit an
    amount and are refused by the parser first. Kills ``_MAX_WHOLE_DIGITS`` 19 → 20."""
    with pytest.raises(InvalidMoney, match=r"more than 2\*\*63 - 1 minor units"):
        Money.parse("9" * 19, "JPY")
    with pytest.raises(InvalidMoney) as info:
        Money.parse("1" + "0" * 19, "JPY")
    assert str(info.value) == "'10000000000000000000'... is too large to be an amount"
    assert Money.parse("000" + "9" * 18, "JPY") == Money(10**18 - 1, "JPY")  # zeros don't count


@pytest.mark.parametrize("value", [Decimal("1E+1"), Decimal("5E+3")])
def test_r6_2_a_decimal_in_exponent_form_is_refused_even_for_a_whole_number(value: Decimal) -> None:
    """Kills ``digits_exp > 0`` → ``> 1`` (``Decimal("1E+1")`` would have become 10)."""
    with pytest.raises(InvalidMoney, match="exponent notation is not accepted"):
        Money.parse(value, "JPY")


def test_r6_2_parse_refuses_huge_digit_strings_with_invalid_money() -> None:
    """R-6.2/R-6.1: a 4301-digit amount is too large; it must be InvalidMoney like 2**63."""
    with pytest.raises(InvalidMoney):
        Money.parse("1" * 4301, "USD")


# --- arithmetic, comparisons, formatting ----------------------------------------------------


def test_money_add_and_sub_within_a_currency() -> None:
    a, b = Money(1099, "USD"), Money(1, "USD")
    assert a + b == Money(1100, "USD")
    assert a - b == Money(1098, "USD")
    assert b - a == Money(-1098, "USD")
    assert -a == Money(-1099, "USD")
    assert a + Money.zero("USD") == a
    assert (a + b).currency == "USD"


def test_money_comparisons_within_a_currency() -> None:
    small, big = Money(1, "KWD"), Money(2, "KWD")
    assert small < big
    assert small <= big
    assert small <= Money(1, "KWD")
    assert big > small
    assert big >= small
    assert big >= Money(2, "KWD")
    assert not big < small
    assert not small > big
    assert small == Money(1, "KWD")
    assert small != big
    assert small.min(big) == small
    assert big.min(small) == small
    assert bool(small)
    assert not Money.zero("KWD")


def test_money_comparisons_at_equality() -> None:
    """The boundary every cap check stands on: equal is not more, nor less. Kills ``>`` → ``>=``
    in ``Money.__gt__`` (the over-cap check's ``amount > max_amount``) and its three siblings."""
    one, same = Money(1, "KWD"), Money(1, "KWD")
    assert not one > same
    assert not one < same
    assert one >= same
    assert one <= same
    assert Money(-1, "KWD") < Money.zero("KWD") < one


def test_money_equality_and_hash_include_the_currency() -> None:
    """Equal amounts in two currencies are two values: unequal, and hashed apart (a hash of
    the amount alone would still make the set below right, only slowly; this says it is not)."""
    assert Money(100, "USD") != Money(100, "EUR")
    assert Money(0, "USD") != Money(0, "JPY")
    assert hash(Money(100, "USD")) != hash(Money(100, "EUR"))
    assert hash(Money(100, "USD")) != hash(Money(101, "USD"))
    assert {Money(100, "USD"): "usd", Money(100, "EUR"): "eur"}[Money(100, "EUR")] == "eur"
    assert len({Money(100, "USD"), Money(100, "USD"), Money(100, "EUR")}) == 2
    not_money: object = 100
    assert Money(100, "USD") != not_money


@pytest.mark.parametrize(
    "op",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
        lambda a, b: a.min(b),
    ],
    ids=["add", "sub", "lt", "le", "gt", "ge", "min"],
)
def test_money_mixing_currencies_raises_currency_mismatch(op: Any) -> None:
    """R-6.7 groundwork: a USD amount never meets a EUR amount silently."""
    with pytest.raises(CurrencyMismatch) as info:
        op(Money(100, "USD"), Money(100, "EUR"))
    assert isinstance(info.value, InvalidMoney)
    assert isinstance(info.value, ValueError)
    assert info.value.code == "currency_mismatch"


@pytest.mark.parametrize(
    "other", [100, 1.5, Decimal("1"), "1.00", None], ids=["int", "float", "decimal", "str", "none"]
)
def test_money_refuses_arithmetic_with_non_money(other: Any) -> None:
    m = Money(100, "USD")
    with pytest.raises(TypeError):
        m + other
    with pytest.raises(TypeError):
        m - other
    with pytest.raises(TypeError):
        m < other  # noqa: B015


def test_money_arithmetic_overflow_is_refused_not_wrapped() -> None:
    """R-6.1: the int64 bound also holds for results."""
    with pytest.raises(InvalidMoney):
        Money(INT64_MAX, "USD") + Money(1, "USD")
    with pytest.raises(InvalidMoney):
        Money(-INT64_MAX, "USD") - Money(1, "USD")


@pytest.mark.parametrize(
    ("amount", "currency", "decimal", "formatted"),
    [
        (0, "JPY", "0", "0 JPY"),
        (500, "JPY", "500", "500 JPY"),
        (-500, "JPY", "-500", "-500 JPY"),
        (0, "USD", "0.00", "0.00 USD"),
        (1, "USD", "0.01", "0.01 USD"),
        (-1, "USD", "-0.01", "-0.01 USD"),
        (5, "USD", "0.05", "0.05 USD"),
        (1234, "USD", "12.34", "12.34 USD"),
        (-1234, "USD", "-12.34", "-12.34 USD"),
        (100, "USD", "1.00", "1.00 USD"),
        (INT64_MAX, "USD", "92233720368547758.07", "92233720368547758.07 USD"),
        (0, "KWD", "0.000", "0.000 KWD"),
        (1234, "KWD", "1.234", "1.234 KWD"),
        (-5, "KWD", "-0.005", "-0.005 KWD"),
        (1000, "BHD", "1.000", "1.000 BHD"),
        (0, "CLF", "0.0000", "0.0000 CLF"),
        (12345, "CLF", "1.2345", "1.2345 CLF"),
        (1, "UYW", "0.0001", "0.0001 UYW"),
        (-10001, "UYW", "-1.0001", "-1.0001 UYW"),
    ],
)
def test_money_format_and_decimal_str(
    amount: int, currency: str, decimal: str, formatted: str
) -> None:
    """decimal_str()/format() for 0/2/3/4-exponent currencies and negatives."""
    m = Money(amount, currency)
    assert m.decimal_str() == decimal
    assert m.format() == formatted
    assert str(m) == formatted
    assert m.to_decimal() == Decimal(decimal)
    assert repr(m) == f"Money({amount}, {currency!r})"


# --- Hypothesis properties ------------------------------------------------------------------

currencies = st.sampled_from(CURRENCIES)
amounts = st.one_of(
    st.integers(min_value=-INT64_MAX, max_value=INT64_MAX),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.sampled_from([0, 1, -1, INT64_MAX, -INT64_MAX, 2**53 + 1, 2**31]),
)


@given(currency=currencies, amount=amounts)
def test_r6_2_property_parse_decimal_str_round_trips(currency: str, amount: int) -> None:
    """R-6.2/R-6.3: for every currency and int in range, parse(decimal_str()) == m, exactly."""
    m = Money(amount, currency)
    text = m.decimal_str()
    assert PLAIN_DECIMAL.fullmatch(text)
    assert Fraction(text) == Fraction(amount, 10 ** EXPONENTS[currency])
    assert Money.parse(text, currency) == m
    assert Money.parse(m.to_decimal(), currency) == m
    assert m.format() == f"{text} {currency}"
    negated = -m  # the range is symmetric, so negation is always storable
    assert -negated == m


@given(
    currency=currencies,
    negative=st.booleans(),
    whole=st.integers(min_value=0, max_value=10**14),
    extra=st.integers(min_value=1, max_value=6),
    digits=st.data(),
)
def test_r6_2_property_parse_never_accepts_more_decimals_than_the_exponent(
    currency: str, negative: bool, whole: int, extra: int, digits: st.DataObject
) -> None:
    """R-6.2: a string with exponent+1 or more decimals is refused, even if they are zeros."""
    n = EXPONENTS[currency] + extra
    frac = digits.draw(st.text(alphabet="0123456789", min_size=n, max_size=n))
    text = f"{'-' if negative else ''}{whole}.{frac}"
    with pytest.raises(InvalidMoney):
        Money.parse(text, currency)
    with pytest.raises(InvalidMoney):
        Money.parse(Decimal(text), currency)


@given(
    currency=currencies,
    negative=st.booleans(),
    whole=st.integers(min_value=0, max_value=10**14),
    digits=st.data(),
)
def test_r6_2_property_parse_accepts_up_to_the_exponent_exactly(
    currency: str, negative: bool, whole: int, digits: st.DataObject
) -> None:
    """R-6.2: 0..exponent decimals are accepted and give the exact value in minor units."""
    exp = EXPONENTS[currency]
    n = digits.draw(st.integers(min_value=0, max_value=exp))
    frac = digits.draw(st.text(alphabet="0123456789", min_size=n, max_size=n))
    text = f"{'-' if negative else ''}{whole}" + (f".{frac}" if n else "")
    m = Money.parse(text, currency)
    assert Fraction(m.amount, 10**exp) == Fraction(text)
    assert Money.parse(Decimal(text), currency) == m


@given(currency=currencies, text=st.text(max_size=30))
def test_r6_2_property_parse_of_any_text_is_plain_and_exact_or_refused(
    currency: str, text: str
) -> None:
    """R-6.2: anything accepted matches the ASCII grammar and is the exact value, never rounded."""
    try:
        m = Money.parse(text, currency)
    except InvalidMoney:
        return
    assert PLAIN_DECIMAL.fullmatch(text)
    assert Fraction(m.amount, 10 ** EXPONENTS[currency]) == Fraction(text)


@given(
    currency=currencies,
    value=st.one_of(
        st.decimals(allow_nan=True, allow_infinity=True),
        st.floats().map(Decimal),
    ),
)
def test_r6_2_property_parse_of_any_decimal_is_exact_or_refused(
    currency: str, value: Decimal
) -> None:
    """R-6.2: a Decimal is accepted only when finite and exact in the currency; never rounded."""
    try:
        m = Money.parse(value, currency)
    except InvalidMoney:
        return
    assert value.is_finite()
    assert Fraction(m.amount, 10 ** EXPONENTS[currency]) == Fraction(value)


@given(
    currency=currencies,
    a=st.integers(min_value=-(2**62 - 1), max_value=2**62 - 1),
    b=st.integers(min_value=-(2**62 - 1), max_value=2**62 - 1),
)
def test_money_property_arithmetic_is_exact_integer_arithmetic(
    currency: str, a: int, b: int
) -> None:
    x, y = Money(a, currency), Money(b, currency)
    assert (x + y).amount == a + b
    assert (x - y).amount == a - b
    assert (x + y) - y == x
    assert (x < y) == (a < b)
    assert (x <= y) == (a <= b)
    assert x.min(y).amount == min(a, b)
