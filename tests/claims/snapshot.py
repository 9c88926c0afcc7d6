"""Every threshold of thresholds.toml and its expected pass rate, as one reviewable JSON file.

    python tests/claims/snapshot.py    rewrites tests/claims/thresholds.snapshot.json (a deliberate change)

test_threshold_snapshot.py fails while the file and thresholds.toml disagree, so loosening a margin, a
bound or a tier rule (or a code change that moves a pass rate) shows in review as a diff of this file.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = Path(__file__).with_name("thresholds.snapshot.json")
KEPT = (
    "kind", "metric", "metric_y", "models", "tiers", "configs", "pcts", "ratios", "methods", "alpha",
    "margin", "tolerance", "bound", "r_at_most", "r_at_least", "fraction", "exclude_degenerate", "control",
    "optional", "reported_only", "reported_on", "direction",
)  # fmt: skip


def snapshot() -> dict:
    sys.path.insert(0, str(ROOT / "src"))
    from widthwise.claims import load_thresholds
    from widthwise.claims.design import design
    from widthwise.results import collect_results

    claims = load_thresholds(ROOT / "thresholds.toml")
    d = design(claims, collect_results([ROOT / "baselines" / "paper"]), full=False)
    by_id = {r.claim: round(r.rate, 4) for r in d.claims}
    gate = {"runs": d.rule.runs, "seed": d.rule.seed, "concordance": d.rule.concordance}
    out: dict = {"pass_rates": {**gate, "whole_gate": round(d.whole, 4)}, "claims": {}, "tiers": {}}
    for c in claims:
        d = dataclasses.asdict(c)
        out["claims"][c.id] = {k: d[k] for k in KEPT} | {"expected_pass_rate": by_id.get(c.id)}
    out["tiers"] = {name: dataclasses.asdict(rule) for name, rule in claims.tiers.items()}
    return json.loads(json.dumps(out))  # tuples as lists, as the file holds them


if __name__ == "__main__":
    SNAPSHOT.write_text(json.dumps(snapshot(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {SNAPSHOT.relative_to(ROOT)}")
