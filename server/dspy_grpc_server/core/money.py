"""Money in integer micro-dollars (1 USD = 1,000,000): budgets add these, never floats."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

MICROS_PER_USD = 1_000_000


def usd_to_micros(usd: float, *, round_up: bool = True) -> int:
    """A USD amount in whole micro-dollars, from the float's shortest decimal form (so 0.01 is exactly
    10000); fractions of a micro-dollar round up (a cost) or down (``round_up=False``, a limit)."""

    if usd <= 0:
        return 0
    exact = Decimal(repr(float(usd))) * MICROS_PER_USD
    return int(exact.to_integral_value(rounding=ROUND_CEILING) if round_up else int(exact))


def micros_text(micros: int) -> str:
    """Micro-dollars as an exact decimal USD string: 1500000 -> "1.500000"."""

    sign = "-" if micros < 0 else ""
    whole, fraction = divmod(abs(micros), MICROS_PER_USD)
    return f"{sign}{whole}.{fraction:06d}"
