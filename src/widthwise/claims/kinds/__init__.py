"""The claim kinds; importing this package registers each one (widthwise.claims.registry)."""

from widthwise.claims.kinds import chance, control, pairwise, ratio, shift, trend

__all__ = ["chance", "control", "pairwise", "ratio", "shift", "trend"]
