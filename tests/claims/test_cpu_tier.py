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
    ppm = {f"ppm-pct{x}" for x in (2, 5, 10, 15, 20, 30, 40, 50, 60)}
    controls = {f"{m}-pct{x}" for m in ("random", "ppm-reverse") for x in (20, 40)}
    assert labels == {"base"} | ppm | controls
    assert {r["suite"] for r in stored} == {"cpu"}
    assert len({r["model"]["weights_sha256"] for r in stored}) == len(stored)  # really different models


def _swap(stored, a: str, b: str):
    """The stored sweep with the Results of methods a and b exchanged (metrics and samples) at every pct
    where both exist."""
    out = copy.deepcopy(stored)
    by = {(r["pruning"]["method"], r["pruning"]["pct"]): r for r in out if r["pruning"]}
    for method, pct in list(by):
        if method == b and (a, pct) in by:
            x, y = by[(a, pct)], by[(b, pct)]
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


def test_claims_cpu_remeasures_every_stored_configuration(stored):
    """`nox -s claims-cpu` regression-gates what is stored; a configuration it skips is never re-checked."""
    import ast

    # Read the constants without executing the noxfile (that would register its sessions a second time).
    tree = ast.parse((CPU.parents[2] / "noxfile.py").read_text())
    consts = {
        t.id: ast.literal_eval(n.value)
        for n in tree.body
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name) and t.id.startswith("CPU_TIER_")
    }
    pcts = {float(x) for x in consts["CPU_TIER_PCTS"].split(",")}
    control_pcts = {float(x) for x in consts["CPU_TIER_CONTROL_PCTS"].split(",")}
    for r in stored:
        pr = r["pruning"]
        if pr is None:
            assert 0.0 in pcts
        elif pr["method"] == "ppm":
            assert pr["pct"] in pcts, pr
        else:
            assert pr["pct"] in control_pcts, pr
    assert len(stored) == len(pcts) + 2 * len(control_pcts)


def test_control_claims_do_not_apply_to_a_sweep_without_controls(claims, stored):
    """The default sweep runs no controls: its check lists the control claims as not applicable rather than
    failing them; with one control present at another width, the missing width is a failure."""
    from widthwise.claims import unchecked

    mine = [c for c in cpu_claims(claims) if c.kind == "beats_control"]
    no_controls = [r for r in stored if r["pruning"] is None or r["pruning"]["method"] == "ppm"]
    verdicts = evaluate(mine, no_controls)
    assert verdicts == [] and set(unchecked(mine, verdicts)) == {c.id for c in mine}
    only_40 = [
        r
        for r in stored
        if r["pruning"] is None or r["pruning"]["method"] == "ppm" or r["pruning"]["pct"] != 20
    ]
    missing = [v for v in evaluate(mine, only_40) if v.verdict == "missing"]
    assert [v.config for v in missing] == ["pct 20 (2.13x) vs ppm-reverse"]
