"""Every threshold and expected pass rate equals tests/claims/thresholds.snapshot.json (see snapshot.py)."""

from __future__ import annotations

import json

from snapshot import SNAPSHOT, snapshot


def test_thresholds_and_pass_rates_match_the_reviewed_snapshot():
    stored = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    now = snapshot()
    changed = sorted(
        cid
        for cid in set(stored["claims"]) | set(now["claims"])
        if stored["claims"].get(cid) != now["claims"].get(cid)
    )
    assert not changed and stored == now, (
        f"thresholds or pass rates changed ({', '.join(changed) or 'tiers or the whole gate'}): if on "
        "purpose, run `python tests/claims/snapshot.py` and let review see the diff"
    )


def test_the_snapshot_names_the_claims_a_faithful_rerun_would_often_fail():
    """Pinned, not hidden: the claims under the 90% target are restated in a later change (issue 12
    part 6); this list may only shrink."""
    stored = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    below = {
        cid
        for cid, c in stored["claims"].items()
        if c["expected_pass_rate"] is not None and c["expected_pass_rate"] < 0.9
    }
    assert below <= {
        "arc-challenge-falls",
        "arc-challenge-keeps-above-chance-at-10pct",
        "ifeval-improves-2_4x",
        "mmlu-truthfulqa-correlation-3b",
        "energy-per-token-falls",
        "energy-per-token-mmlu-b1-1b",
        "ttlt-b1-rises",
    }
