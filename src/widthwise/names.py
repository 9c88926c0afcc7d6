"""One spelling for each small fact that several stages print or match on.

A configuration has two spellings, both derived from a Result's `pruning` entry and nothing else:
  * `config_slug`  for file names and sweep stages: "base", "ppm-pct40", "random-k922", "ppm-ratio2.4-align8";
  * `config_label` for tables and verdicts:       "base (2.67x)", "pct 40 (2.40x)", "pct 40 random (2.40x)".
A model has a key that matches it across places ("meta-llama/Llama-3.2-1B" and a local ".../Llama-3.2-1B"
folder are the same model) and a short name for display. Pure functions, no imports beyond the stdlib.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# The paper's v1 name for PPM. widthwise.prune validates a name against its registry; this only
# canonicalises, so a claim or a stored Result can be read without importing torch.
METHOD_ALIASES = {"maw": "ppm"}
# Every pruning method's ablation control keeping the other end of its scores is `<name>-reverse`
# (widthwise.pruners makes them; claims and reports tell controls from methods by it).
REVERSE = "-reverse"


def canonical_method(name: str) -> str:
    key = name.lower()
    return METHOD_ALIASES.get(key, key)


def slug(text: str) -> str:
    """Lowercase letters, digits, '.' and '_', everything else one '-': safe in file names and URLs."""
    return re.sub(r"[^a-z0-9._]+", "-", text.lower()).strip("-")


def model_key(name: str) -> str:
    """'meta-llama/Llama-3.2-1B' and a local '.../Llama-3.2-1B' folder are the same model."""
    return short_name(name).lower()


def short_name(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1]


def _width(pruning: Mapping[str, Any]) -> str:
    if pruning.get("pct") is not None:
        return f"pct{pruning['pct']:g}"
    if pruning.get("ratio") is not None:
        return f"ratio{pruning['ratio']:g}"
    return f"k{pruning['intermediate_size']}"


def config_slug(pruning: Mapping[str, Any] | None) -> str:
    """'base' or '<method>-<width>[-align<N>]', the width as it was asked for (pct, ratio or k)."""
    if not pruning:
        return "base"
    align = pruning.get("align")
    return f"{canonical_method(str(pruning.get('method', 'ppm')))}-{_width(pruning)}" + (
        f"-align{align}" if align else ""
    )


def config_label(pruning: Mapping[str, Any] | None, expansion_ratio: float) -> str:
    """How a configuration reads in a table: the method named only when it is not the paper's PPM."""
    if not pruning:
        head = "base"
    else:
        method = canonical_method(str(pruning.get("method", "ppm")))
        if pruning.get("pct") is not None:
            head = f"pct {pruning['pct']:g}" + ("" if method == "ppm" else f" {method}")
        else:
            head = f"k {pruning['intermediate_size']} {method}"
    return f"{head} ({expansion_ratio:.2f}x)"
