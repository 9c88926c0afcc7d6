"""The CPU tier: thresholds.toml's claims on the default model's stored sweep (baselines/measured/cpu).

The claims are stated so the stored measurements satisfy them with statistical backing; a sweep whose
pruning did nothing, or whose pruned model stopped being worse, must fail them.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from widthwise.claims import evaluate, exit_code
from widthwise.claims.kinds.shift import has_accuracy
from widthwise.results import collect_results

ROOT = Path(__file__).resolve().parents[2]
CPU = ROOT / "baselines" / "measured" / "cpu"


@pytest.fixture(scope="module")
def stored():
    return collect_results([CPU])


def cpu_claims(claims):
    return [c for c in claims if "cpu" in c.tiers]


def gating(claims):
    """The CPU claims that turn a build red: frozen - demoted in gating.toml (claims check keeps
    thresholds.toml to that set)."""
    return [c for c in cpu_claims(claims) if not c.reported_only]


def test_the_cpu_claims_are_the_rule_applied_to_the_stored_sweep(capsys):
    """thresholds.toml's CPU block and the README's table are what rule.toml and gating.toml give on these
    Results, and every frozen gating claim holds on them (`widthwise claims check --tier cpu`)."""
    from widthwise.cli import main

    assert main(["claims", "check", "--tier", "cpu", "--thresholds", str(ROOT / "thresholds.toml")]) == 0, (
        capsys.readouterr().out
    )


def test_a_hand_edit_of_the_generated_block_is_caught(tmp_path):
    """Promoting a reported-only claim to gating by deleting its reported_only line fails the check."""
    from widthwise.claims import rules

    text = (ROOT / "thresholds.toml").read_text()
    start = text.index("[claims.cpu-hellaswag-margin-falls]")
    cut = text.index("reported_only = ", start)
    end = text.index('"""', text.index('"""', cut) + 3) + 3
    edited = tmp_path / "thresholds.toml"
    edited.write_text(text[:cut] + text[end + 1 :])
    bad = rules.problems(rules.layout("cpu", edited, CPU))
    assert any("thresholds.toml: not what the rule and gating.toml give" in b for b in bad), bad
    assert any(b.startswith("cpu-hellaswag-margin-falls: gates on cpu") for b in bad), bad


def test_gating_cpu_claims_hold_and_the_rest_are_reported(claims, stored):
    verdicts = evaluate(cpu_claims(claims), stored)
    assert {v.claim for v in verdicts} == {c.id for c in cpu_claims(claims)}
    assert exit_code(verdicts) == 0
    mine = {c.id for c in gating(claims)}
    assert mine, "the rule left nothing that gates"
    bad = [v.message for v in verdicts if v.claim in mine and v.verdict != "holds"]
    assert not bad, "\n".join(bad)
    shown = {v.verdict for v in verdicts if v.claim not in mine}
    assert shown <= {"reported"}, shown  # a reported-only claim still needs its evidence


def _non_inferior(c) -> bool:
    return c.kind == "non_inferior" or (c.kind == "score_shift" and c.direction == "holds")


def test_a_pruner_that_changes_nothing_fails_the_cpu_gate(claims, stored):
    base = next(r for r in stored if r["pruning"] is None)
    no_op = []
    for r in copy.deepcopy(stored):
        if r["pruning"] is not None:
            r["metrics"], r["samples"] = copy.deepcopy(base["metrics"]), copy.deepcopy(base["samples"])
        no_op.append(r)
    verdicts = evaluate(gating(claims), no_op)
    assert exit_code(verdicts) == 1
    # Every gating claim of a change fails; a non-inferiority claim holds on no change by design, and the
    # model-at-chance test below is what it must fail.
    expect = {c.id for c in gating(claims) if not _non_inferior(c)}
    assert {v.claim for v in verdicts if v.verdict == "fails"} == expect


def _ppm_at_chance(stored):
    """A broken pruner: every PPM model answers wrong and its log-likelihoods collapse (the controls,
    pruned by other code, are untouched)."""
    out = copy.deepcopy(stored)
    for r in out:
        if (r["pruning"] or {}).get("method") != "ppm":
            continue
        for recs in r["samples"].values():
            for rec in recs:
                if "correct" in rec:
                    rec["correct"] = False
                for k in ("margin", "gold_logprob"):
                    if k in rec:
                        rec[k] -= 100.0
                if isinstance(rec.get("score"), float):
                    rec["score"] = 0.0 if rec["score"] >= 0 else rec["score"] - 100.0
    return out


def _guarded(claim, stored) -> bool:
    """Is a collapse a failure of this claim? Not for a rising perplexity curve, nor for a falling score
    whose family has no accuracy and so no chance guard (GSM8K's gold log-likelihood: a collapse is a
    fall, as it is a rise of perplexity)."""
    if claim.kind in ("drop", "monotone_increasing"):
        return False
    if claim.kind == "score_shift" and claim.direction == "falls":
        task = claim.metric.split("/", 1)[0]
        base = next(r for r in stored if r["pruning"] is None)
        return has_accuracy(base["headline"].get(task))
    return True


def test_a_pruner_at_chance_fails_the_cpu_gate(claims, stored):
    """Every gating claim that a collapse can fail must fail on it."""
    verdicts = evaluate(gating(claims), _ppm_at_chance(stored))
    assert exit_code(verdicts) == 1
    expect = {c.id for c in gating(claims) if _guarded(c, stored)}
    failed = {v.claim for v in verdicts if v.verdict == "fails"}
    assert expect and expect <= failed, expect - failed


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


def test_a_selection_no_better_than_its_control_fails_the_control_claims(claims, stored):
    """A PPM whose selection is inverted (it keeps the lowest scores) measures what ppm-reverse measures;
    swapping the two Results is that bug (and likewise for random), and every gating claim against that
    control must fail."""
    mine = [c for c in gating(claims) if c.kind == "beats_control"]
    assert mine, "no gating CPU claim against a control"
    for control in sorted({c.control for c in mine}):
        against = [c for c in mine if c.control == control]
        verdicts = evaluate(against, _swap(stored, "ppm", control))
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
    assert sorted((v.claim, v.config) for v in missing) == sorted(
        (c.id, f"pct 20 (2.13x) vs {c.control}") for c in mine
    )
