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


def test_the_gpu_gate_passes_a_faithful_rerun_at_least_95_percent_of_the_time():
    """Issue 26: the GPU gate's whole pass rate is at least 0.95 (Bonferroni over its 19 candidates,
    baselines/measured/gpu/rule.toml), and every claim that gates there is within its share of the 5%."""
    stored = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert stored["pass_rates"]["whole_gate"] >= 0.95
    rates = {cid: c["expected_pass_rate"] for cid, c in stored["claims"].items()}
    assert sum(r is not None for r in rates.values()) == 19  # every candidate is rated
    gating = {cid for cid, c in stored["claims"].items() if "gpu" in c["tiers"] and not c["reported_only"]}
    gating -= {cid for cid, c in stored["claims"].items() if dict(c["reported_on"]).get("gpu")}
    assert len(gating) == 10 and all(rates[cid] >= 1 - 0.05 / 19 for cid in gating)
