"""The claim kinds; importing this package registers each one (widthwise.claims.registry)."""

from widthwise.claims.kinds import control, pairwise, ratio, trend

__all__ = ["control", "pairwise", "ratio", "trend"]
