"""The paper's width arithmetic, torch-free, so that planning and checking need no model code."""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction

from widthwise.errors import WidthwiseError


def exact(x: float | int | str | Fraction) -> Fraction:
    # Fraction(repr(2.4)) is exactly 12/5, so ceil(2.4 * 2048) is 4916 and not a float accident.
    return x if isinstance(x, Fraction) else Fraction(repr(x) if isinstance(x, float) else str(x))


def width_from_pct(intermediate: int, pct: float) -> int:
    """k = I - min(floor(p*I/100), I-1), exactly as the paper's code."""
    p = float(pct)
    if not math.isfinite(p) or not 0 <= p < 100:
        raise WidthwiseError(f"--pct must be in [0, 100), got {pct}")
    return intermediate - min(math.floor(exact(pct) * intermediate / 100), intermediate - 1)


def pct_in(pct: float, pcts: Iterable[float]) -> bool:
    """Is `pct` one of `pcts`? Percentages come from TOML, JSON and the command line as floats, so they
    are the same width when they agree to 1e-9."""
    return any(abs(pct - p) < 1e-9 for p in pcts)
