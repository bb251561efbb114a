"""Money is integer fen (分) inside and a decimal string like "123.45" at the edges.

Every conversion from a Decimal to an integer goes through a function here that names its
rounding, so that no fraction of a yuan, a growth point or a point is ever invented.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from loyalty.domain.errors import InvalidInput

FEN_PER_YUAN = 100
MAX_AMOUNT_FEN = 100_000_000_00  # ¥100,000,000: larger amounts are a client mistake.


def _shown(value: object) -> str:
    """The value as the client sent it: '12.345', not Decimal('12.345')."""
    return repr(str(value)) if isinstance(value, Decimal) else repr(value)


def parse_yuan(value: object, *, field: str = "amount", allow_zero: bool = False) -> int:
    """Parse a yuan amount ("123.45", 123, Decimal) into fen. Refuses floats and sub-fen digits."""
    if isinstance(value, (bool, float)):
        raise InvalidInput("amount must be a decimal string such as \"123.45\", not a float", field=field)
    try:
        yuan = Decimal(str(value).strip()) if isinstance(value, (str, int, Decimal)) else None
    except InvalidOperation:
        yuan = None
    if yuan is None or not yuan.is_finite():
        raise InvalidInput(f"not a decimal amount: {_shown(value)}", field=field)
    # IMPORTANT: judge the sign and size before scaling: "1e999999999" × 100 overflows the context.
    if yuan < 0:
        raise InvalidInput(f"amount must be positive: {_shown(value)}", field=field)
    if yuan > MAX_AMOUNT_FEN // FEN_PER_YUAN:
        raise InvalidInput(f"amount is implausibly large: {_shown(value)}", field=field)
    fen = yuan * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise InvalidInput(f"more than two decimal places: {_shown(value)}", field=field)
    fen_int = int(fen)
    if fen_int < 0 or (fen_int == 0 and not allow_zero):
        raise InvalidInput(f"amount must be positive: {_shown(value)}", field=field)
    if fen_int > MAX_AMOUNT_FEN:
        raise InvalidInput(f"amount is implausibly large: {_shown(value)}", field=field)
    return fen_int


def format_fen(amount_fen: int) -> str:
    """Fen as a decimal yuan string: 12345 -> "123.45", -5 -> "-0.05"."""
    sign = "-" if amount_fen < 0 else ""
    whole, fen = divmod(abs(amount_fen), FEN_PER_YUAN)
    return f"{sign}{whole}.{fen:02d}"


def floor_int(value: Decimal) -> int:
    """Floor to a whole unit: the engine's default rounding (never issue a fraction)."""
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def yuan_times_rate(amount_fen: int, rate: Decimal) -> Decimal:
    """An amount in fen times a per-yuan rate, exact (no rounding yet)."""
    return Decimal(amount_fen) * rate / FEN_PER_YUAN


def proportion_floor(whole: int, part_fen: int, of_fen: int) -> int:
    """floor(whole × part / of) in integers: the proportional share of a refund, never rounded up."""
    if of_fen <= 0:
        return 0
    return (whole * part_fen) // of_fen
