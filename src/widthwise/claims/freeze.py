"""The gate of `widthwise baseline update` on a measured tier: the update may not make a frozen gating claim
fail unless the person demotes it, by name and with a reason, and the demotion is then written down.

Pure but for reading: what would be stored after the update is judged, and the files to rewrite (the
tier's gating.toml, and on a tier with a rule thresholds.toml's block and the README) come back as texts,
so a refusal writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from widthwise.claims import gating, rules
from widthwise.claims.verdict import MEASURED_TIERS
from widthwise.errors import WidthwiseError
from widthwise.results import read_result, result_files


@dataclass(frozen=True)
class Outcome:
    tier: str
    generated: bool  # the tier's thresholds block is written from its rule (else the claims are by hand)
    demotions: tuple[gating.Demotion, ...]
    texts: dict[Path, str]  # the files to rewrite after the Results, path -> new text


def guarded(target: Path) -> bool:
    """Does a baseline update of `target` pass this gate: a measured tier's folder with a gating file."""
    return Path(target).name in MEASURED_TIERS and (Path(target) / gating.FILE).is_file()


def guard_update(
    target: Path,
    thresholds: Path,
    written: Mapping[Path, Mapping[str, Any]],
    demote: Sequence[str],
    reason: str,
    date: str,
    update: str,
) -> Outcome:
    """Judge the tier's gating claims on its stored Results with `written` (path -> Result) in place.
    WidthwiseError, one line per claim, when one fails and is not in `demote`, or when `demote` names a
    claim that is not gating or does not fail; else the demotions and the files to rewrite."""
    target = Path(target)
    tier = target.name
    lay = rules.layout(tier, thresholds, target)
    g = gating.read(lay.gating, tier)
    merged = {p: read_result(p) for p in result_files(target)} | {Path(p): r for p, r in written.items()}
    after = list(merged.values())
    failing = rules.failures(rules.gating_verdicts(lay, after, g), need_evidence=lay.generated)
    wrong = [
        f"  {c}: not a gating claim of tier {tier} (frozen - demoted in {lay.gating})"
        for c in demote
        if c not in g.gating
    ]
    wrong += [
        f"  {c}: holds after this update; only a gating claim it makes fail can be demoted"
        for c in demote
        if c in g.gating and c not in failing
    ]
    if wrong:
        raise WidthwiseError("--demote refused:\n" + "\n".join(wrong))
    kept = [c for c in failing if c not in demote]
    if kept:
        raise WidthwiseError(
            f"this update makes {len(kept)} gating claim(s) of tier {tier} fail; nothing written. Fix the "
            "change, or pass --demote CLAIM (each) --reason WHY to demote them:\n"
            + "\n".join(f"  {c}: {failing[c]}" for c in kept)
        )
    if demote and not reason.strip():
        raise WidthwiseError("--demote needs --reason: why the claim stops gating")
    if len(set(demote)) != len(demote):
        raise WidthwiseError("--demote names a claim twice")
    new = tuple(gating.Demotion(c, " ".join(reason.split()), date, update, tier) for c in demote)
    texts = {}
    if new:
        texts[lay.gating] = gating.appended(lay.gating.read_text(encoding="utf-8"), new)
    if lay.generated:  # the block and tables follow the stored Results and the gating file
        texts.update(rules.render(lay, after, replace(g, demoted=g.demoted + new))[1])
    return Outcome(tier, lay.generated, new, texts)


def record(result: Mapping[str, Any], demotions: Sequence[gating.Demotion]) -> dict[str, Any]:
    """`result` with `demotions` added to provenance.demotions (a copy)."""
    prov = dict(result.get("provenance") or {})
    prov["demotions"] = [
        *prov.get("demotions", []),
        *({"claim": d.claim, "reason": d.reason, "date": d.date} for d in demotions),
    ]
    return {**result, "provenance": prov}
