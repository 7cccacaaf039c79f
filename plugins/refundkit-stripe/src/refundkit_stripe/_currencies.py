"""Stripe's minor units where they differ from ISO 4217 (docs.stripe.com/currencies).

* ISK and UGX: zero-decimal, but Stripe takes them as two-decimal values ending in 00 for
  backwards compatibility (5 ISK is sent as 500; 5.50 ISK cannot be sent).
* MGA: ISO 4217 has 2 decimals; Stripe lists it as zero-decimal.

Every other currency uses its ISO exponent, which already agrees with Stripe's zero-decimal
list (BIF, CLP, DJF, GNF, JPY, KMF, KRW, PYG, RWF, VND, VUV, XAF, XOF, XPF) and its
three-decimal list (BHD, JOD, KWD, OMR, TND).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

STRIPE_EXPONENTS: Final[Mapping[str, int]] = MappingProxyType({"ISK": 2, "UGX": 2, "MGA": 0})
