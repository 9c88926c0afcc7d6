"""The CPU tier: thresholds.toml's claims on the default model's stored sweep (baselines/measured/cpu).

The claims are stated so the stored measurements satisfy them with statistical backing; a sweep whose
pruning did nothing, or whose pruned model stopped being worse, must fail them.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from widthwise.claims import evaluate
from widthwise.results import collect_results

CPU = Path(__file__).resolve().parents[2] / "baselines" / "measured" / "cpu"


@pytest.fixture(scope="module")
def stored():
    return collect_results([CPU])


def cpu_claims(claims):
    return [c for c in claims if "cpu" in c.tiers]


def test_cpu_claims_hold_on_the_stored_sweep(claims, stored):
    verdicts = evaluate(cpu_claims(claims), stored)
    assert {v.claim for v in verdicts} == {c.id for c in cpu_claims(claims)}
    bad = [v.message for v in verdicts if v.verdict != "holds"]
    assert not bad, "\n".join(bad)


def test_a_pruner_that_changes_nothing_fails_every_cpu_claim(claims, stored):
    base = next(r for r in stored if r["pruning"] is None)
    no_op = []
    for r in copy.deepcopy(stored):
        if r["pruning"] is not None:
            r["metrics"], r["samples"] = copy.deepcopy(base["metrics"]), copy.deepcopy(base["samples"])
        no_op.append(r)
    verdicts = evaluate(cpu_claims(claims), no_op)
    assert {v.claim for v in verdicts if v.verdict == "fails"} == {c.id for c in cpu_claims(claims)}


def test_the_sweep_is_what_its_readme_says(stored):
    labels = {
        "base" if r["pruning"] is None else f"{r['pruning']['method']}-pct{r['pruning']['pct']:g}"
        for r in stored
    }
    assert {"base", "ppm-pct10", "ppm-pct20", "ppm-pct40"} <= labels
    assert {r["suite"] for r in stored} == {"cpu"}
    assert len({r["provenance"]["weights_sha256"] for r in stored}) == len(stored)  # really different models


def _swap(stored, a: str, b: str):
    """The stored sweep with the Results of methods a and b at 40% exchanged (metrics and samples)."""
    out = copy.deepcopy(stored)
    at40 = {r["pruning"]["method"]: r for r in out if r["pruning"] and r["pruning"]["pct"] == 40}
    x, y = at40[a], at40[b]
    for key in ("metrics", "samples"):
        x[key], y[key] = y[key], x[key]
    return out


@pytest.mark.parametrize("control", ["ppm-reverse", "random"])
def test_a_selection_no_better_than_its_control_fails_the_control_claim(claims, stored, control):
    """A PPM whose selection is inverted (it keeps the lowest scores) measures what ppm-reverse measures;
    swapping the two Results is that bug, and the claim against that control must fail."""
    mine = [c for c in cpu_claims(claims) if c.kind == "beats_control" and c.control == control]
    assert mine, f"no CPU claim against {control}"
    verdicts = evaluate(mine, _swap(stored, "ppm", control))
    assert verdicts and all(v.verdict == "fails" for v in verdicts), [v.message for v in verdicts]
