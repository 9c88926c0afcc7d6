"""widthwise.claims: validation of thresholds, tiers and grouping, and every gate on real-shaped Results."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

from widthwise.claims import evaluate, exit_code, parse_thresholds
from widthwise.claims.kinds.pairwise import gate_pairwise
from widthwise.claims.kinds.ratio import gate_ratio
from widthwise.claims.kinds.trend import gate_correlation
from widthwise.errors import WidthwiseError
from widthwise.points import group_results
from widthwise.results import collect_results, new_provenance, upgrade

PAPER = Path(__file__).resolve().parents[2] / "baselines" / "paper"
B1, B3 = "meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-3B"


@pytest.fixture(scope="module")
def paper():
    return collect_results([PAPER])


def one_claim(**kw):
    t = {"statement": "s", "models": [B1], "tiers": ["gpu"], **kw}
    return parse_thresholds({"claims": {"c": t}})


def measured(paper, model, pcts):
    """Copies of the paper's Results relabelled as a GPU-tier measurement (suite 'paper', stage eval)."""
    out = []
    for r in paper:
        if r["model"]["name"] == model and (r["pruning"] or {}).get("pct") in pcts:
            r = copy.deepcopy(r)
            r["stage"], r["tier"] = "eval", "gpu"
            r["provenance"] = new_provenance(stage="eval", model_source="/models/llama")
            out.append(r)
    return out


# ---- validation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "table, needle",
    [
        ({"kind": "falls"}, "unknown kind 'falls'"),
        (
            {"kind": "drop", "metric": "mmlu/acc", "configs": "all_pruned", "margin": 0, "tolerance": 1},
            "tolerance",
        ),
        ({"kind": "drop", "metric": "mmlu/accuracy", "configs": "all_pruned"}, "unknown metric"),
        ({"kind": "drop", "metric": "mmlu/acc"}, "exactly one of configs, pcts or ratios"),
        ({"kind": "drop", "metric": "mmlu/acc", "configs": "some"}, "'all_pruned' or 'most_pruned'"),
        ({"kind": "non_inferior", "metric": "mmlu/acc", "configs": "all_pruned"}, "stated margin"),
        ({"kind": "drop", "metric": "bench:avg/j_per_token", "configs": "most_pruned"}, "only ratios"),
        (
            {"kind": "ratio_at_most", "metric": "bench:avg/j_per_token", "configs": "most_pruned"},
            "needs a bound",
        ),
        ({"kind": "correlation", "metric": "mmlu/acc", "metric_y": "truthfulqa_mc2/acc"}, "r_at_most"),
        ({"kind": "drop", "metric": "mmlu/acc", "configs": "all_pruned", "alpha": 0.7}, "alpha"),
        ({"kind": "drop", "metric": "mmlu/acc", "configs": "all_pruned", "tiers": ["tpu"]}, "unknown tier"),
        (
            {"kind": "drop", "metric": "mmlu/acc", "configs": "all_pruned", "exclude_degenerate": True},
            "ifeval",
        ),
        ({"kind": "beats_control", "metric": "mmlu/acc", "pcts": [40]}, "needs control"),
        (
            {"kind": "beats_control", "metric": "mmlu/acc", "pcts": [40], "control": "maw"},
            "also in methods",
        ),
        ({"kind": "beats_control", "metric": "mmlu/acc", "control": "random"}, "exactly one of configs"),
    ],
)
def test_invalid_claims_are_refused_with_the_claim_and_key_named(table, needle):
    t = {"statement": "s", "models": [B1], "tiers": ["gpu"], **table}
    with pytest.raises(WidthwiseError, match="claim 'c'") as e:
        parse_thresholds({"claims": {"c": t}}, "t.toml")
    assert needle in str(e.value)
    assert str(e.value).startswith("t.toml: ")


def test_dotted_id_and_unknown_top_level_are_explained():
    with pytest.raises(WidthwiseError, match="must not contain '.'"):
        parse_thresholds({"claims": {"a-2": {"4x": {"kind": "drop"}}}})
    with pytest.raises(WidthwiseError, match="unknown top-level key"):
        parse_thresholds({"claim": {}})
    with pytest.raises(WidthwiseError, match="no \\[claims.ID\\]"):
        parse_thresholds({"version": 1})


# ---- pure gates ---------------------------------------------------------------------------------------


def test_pairwise_gate():
    assert gate_pairwise("drop", True, -1, -0.01, 0.0)
    assert not gate_pairwise("drop", True, -1, 0.001, 0.0)
    assert not gate_pairwise("drop", True, -1, -0.01, 0.02)  # must fall by more than the margin
    assert gate_pairwise("non_inferior", True, -0.019, 1, 0.02)
    assert not gate_pairwise("non_inferior", True, -0.021, 1, 0.02)
    assert gate_pairwise("non_inferior", False, -1, 0.5, 1.0)  # lower is better: may rise by the margin
    assert gate_pairwise("improves", True, 0.011, 1, 0.01) and not gate_pairwise(
        "improves", True, 0.0, 1, 0.0
    )


def test_ratio_and_correlation_gates():
    assert gate_ratio("ratio_at_most", 0.9, 0.9) and not gate_ratio("ratio_at_most", 0.91, 0.9)
    assert gate_ratio("ratio_at_least", 1.3, 1.3) and not gate_ratio("ratio_at_least", 1.29, 1.3)
    assert gate_correlation(-0.86, 0.012, 0.05, -0.8, None)
    assert not gate_correlation(-0.86, 0.06, 0.05, -0.8, None)  # strong but not significant
    assert not gate_correlation(-0.7, 0.01, 0.05, -0.8, None)


# ---- tiers and grouping --------------------------------------------------------------------------------


def test_old_results_get_the_tier_their_fields_implied(paper):
    """Schema 1 had no tier field: the upgrade reads it from the fields that implied it, once."""
    v1 = json.loads((PAPER / "llama-3.2-1b_base_paper.json").read_text())
    assert v1["schema"] == "widthwise.result/1" and "tier" not in v1
    assert upgrade(v1)["tier"] == "paper" and upgrade(v1)["stage"] == "paper"
    measured_v1 = {**v1, "provenance": {"source": "/x"}}
    assert upgrade(measured_v1)["tier"] == "gpu"  # suite "paper" measured by widthwise
    assert upgrade({**measured_v1, "suite": "cpu"})["tier"] == "cpu"
    bench = {**measured_v1, "suite": "bench", "bench": {"role": "base"}}
    assert upgrade({**bench, "settings": {"device_kind": "cuda"}})["tier"] == "gpu"
    assert upgrade({**bench, "settings": {"device_kind": "cpu"}})["stage"] == "bench"
    assert upgrade({**bench, "settings": {"device_kind": "cpu"}})["tier"] == "cpu"


def test_the_tier_is_what_a_result_says_not_what_its_suite_suggests(paper):
    r = measured(paper, B1, {None})[0]
    assert r["suite"] == "paper"
    r["tier"] = "cpu"
    (g,) = group_results([r])
    assert g.tier == "cpu"


def test_grouping_merges_shards_and_refuses_conflicts(paper):
    eval_shard = measured(paper, B1, {None})[0]
    bench_shard = copy.deepcopy(eval_shard)
    eval_shard["metrics"] = {k: v for k, v in eval_shard["metrics"].items() if not k.startswith("bench:")}
    bench_shard["metrics"] = {k: v for k, v in bench_shard["metrics"].items() if k.startswith("bench:")}
    (g,) = group_results([eval_shard, bench_shard])
    assert (
        len(g.points) == 1
        and "mmlu/acc" in g.points[0].metrics
        and "bench:avg/j_per_token" in g.points[0].metrics
    )
    other = copy.deepcopy(eval_shard)
    other["metrics"]["mmlu/acc"]["value"] = 0.5
    with pytest.raises(WidthwiseError, match="two Results give mmlu/acc"):
        group_results([eval_shard, other])


# ---- per-sample records ---------------------------------------------------------------------------------


def _h(*parts) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


def _ifeval_samples(correct: set[int], degenerate: set[int], n: int = 541):
    return [
        {
            "doc_id": i,
            "doc_hash": _h("doc", i),
            "prompt_hash": _h("prompt", i),
            "correct": i in correct,
            "degenerate": i in degenerate,
        }
        for i in range(n)
    ]


def _with_ifeval(paper, correct_base, correct_pruned, degenerate_pruned):
    base, pruned = measured(paper, B1, {None, 40})
    base, pruned = (base, pruned) if base["pruning"] is None else (pruned, base)
    for r, c, d in ((base, correct_base, set()), (pruned, correct_pruned, degenerate_pruned)):
        r["samples"] = {"ifeval": _ifeval_samples(c, d)}
        r["metrics"]["ifeval/prompt_level_strict_acc"] = {"value": len(c) / 541, "stderr": None, "n": 541}
    return base, pruned


IFEVAL_CLAIMS = {
    "plain": {
        "kind": "non_inferior",
        "metric": "ifeval/prompt_level_strict_acc",
        "ratios": [2.4],
        "margin": 0.02,
        "statement": "s",
        "models": [B1],
        "tiers": ["gpu"],
    },
}
IFEVAL_CLAIMS["nondegenerate"] = {**IFEVAL_CLAIMS["plain"], "exclude_degenerate": True}


def test_a_rise_made_of_degenerate_responses_does_not_hold(paper):
    # Pruned loses 30 of the base model's correct answers and "gains" 50 that are all degenerate text.
    base_ok = set(range(56))
    pruned_ok = set(range(30, 56)) | set(range(100, 150))
    base, pruned = _with_ifeval(paper, base_ok, pruned_ok, degenerate_pruned=set(range(100, 200)))
    claims = parse_thresholds({"claims": IFEVAL_CLAIMS})
    plain, nondeg = evaluate(claims, [base, pruned])
    assert plain.verdict == "holds" and "exact McNemar (paired, b=30, c=50)" in plain.method
    assert nondeg.verdict == "fails" and "b=30, c=0" in nondeg.method
    assert nondeg.value == pytest.approx(-30 / 541)
    assert f"({26 / 541:.4g} vs base {56 / 541:.4g}, paired over 541 docs)" in nondeg.observed
    assert exit_code([plain, nondeg]) == 1


def test_instruction_level_ifeval_is_paired_per_instruction_and_clustered_by_prompt(paper):
    # 541 prompts of two instructions each; pruning loses one instruction in 60 prompts and both in 20.
    base, pruned = _with_ifeval(paper, set(range(100)), set(range(20, 100)), degenerate_pruned=set())

    def flags(i: int, is_pruned: bool) -> list[bool]:
        if i >= 100 or (is_pruned and i < 20):
            return [False, False]
        return [True, False] if is_pruned and i < 80 else [True, True]

    for r in (base, pruned):
        for rec in r["samples"]["ifeval"]:
            fl = flags(rec["doc_id"], r is pruned)
            rec["instructions"] = [{"id": f"k{j}", "strict": f, "loose": f} for j, f in enumerate(fl)]
    claim = {
        **IFEVAL_CLAIMS["plain"],
        "kind": "drop",
        "margin": 0.0,
        "metric": "ifeval/inst_level_strict_acc",
    }
    (v,) = evaluate(parse_thresholds({"claims": {"inst": claim}}), [base, pruned])
    assert v.verdict == "holds" and "1082 instructions in 541 prompts" in v.method
    assert v.value == pytest.approx(-(20 * 2 + 60) / 1082)
    assert "paired over 1082 instructions" in v.observed
    pruned["samples"]["ifeval"][3]["instructions"][0]["id"] = "other"
    with pytest.raises(WidthwiseError, match="different instructions"):
        evaluate(parse_thresholds({"claims": {"inst": claim}}), [base, pruned])


def test_pairing_is_refused_when_doc_hashes_differ(paper):
    base, pruned = _with_ifeval(paper, set(range(56)), set(range(80)), set())
    pruned["samples"]["ifeval"][7]["doc_hash"] = "different"
    with pytest.raises(WidthwiseError, match="doc_hash differs for doc_id 7"):
        evaluate(parse_thresholds({"claims": IFEVAL_CLAIMS}), [base, pruned])
    pruned["samples"]["ifeval"].pop()
    with pytest.raises(WidthwiseError, match="different documents"):
        evaluate(parse_thresholds({"claims": IFEVAL_CLAIMS}), [base, pruned])


@pytest.mark.parametrize("strip", ["doc_hash", "prompt_hash"])
@pytest.mark.parametrize("sides", ["one", "both"])
def test_pairing_is_refused_when_hashes_are_absent(paper, strip, sides):
    # Stripping the hashes must not turn a refused pairing into an accepted one.
    base, pruned = _with_ifeval(paper, set(range(56)), set(range(80)), set())
    for r in [pruned] + ([base] if sides == "both" else []):
        for rec in r["samples"]["ifeval"]:
            rec.pop(strip, None)
    side = "either side" if sides == "both" else "one side"
    with pytest.raises(WidthwiseError, match=f"has no {strip} on {side}.*pairing refused"):
        evaluate(parse_thresholds({"claims": IFEVAL_CLAIMS}), [base, pruned])


def test_pairing_needs_target_hash_when_one_side_has_it(paper):
    base, pruned = _with_ifeval(paper, set(range(56)), set(range(80)), set())
    for rec in base["samples"]["ifeval"]:
        rec["target_hash"] = "t"
    with pytest.raises(WidthwiseError, match="has no target_hash on one side"):
        evaluate(parse_thresholds({"claims": IFEVAL_CLAIMS}), [base, pruned])
    for rec in pruned["samples"]["ifeval"]:
        rec["target_hash"] = "t"
    assert evaluate(parse_thresholds({"claims": IFEVAL_CLAIMS}), [base, pruned])


def test_scores_are_paired_by_bootstrap(paper):
    base, pruned = measured(paper, B3, {None, 10})
    for r, shift in ((base, 0.0), (pruned, -0.01)):
        scores = [0.2 + 0.6 * ((i * 37) % 100) / 100 + shift for i in range(817)]
        r["samples"] = {
            "truthfulqa_mc2": [
                {"doc_id": i, "doc_hash": _h(i), "prompt_hash": _h("p", i), "score": s}
                for i, s in enumerate(scores)
            ]
        }
    claims = one_claim(
        kind="non_inferior", metric="truthfulqa_mc2/acc", ratios=[2.4], margin=0.02, models=[B3]
    )
    (v,) = evaluate(claims, [base, pruned])
    assert v.method.startswith("paired bootstrap") and v.verdict == "holds"
    assert float(v.mde) < 0.01  # paired scores detect far smaller effects than the unpaired 0.06
    assert v.value == pytest.approx(-0.01, abs=1e-3)


# ---- verdicts other than holds/fails ---------------------------------------------------------------------


def test_unmeasurable_energy_fails_a_measured_tier_unless_the_claim_waives_it(paper):
    base, pruned = measured(paper, B1, {None, 60})
    for r in (base, pruned):
        r["suite"], r["tier"], r["settings"] = "bench", "cpu", {"device_kind": "cpu"}
        r["metrics"] = {"bench:avg/j_per_token": {"value": None, "not_measurable": "no energy meter on CPU"}}
    kw = dict(kind="ratio_at_most", metric="bench:avg/j_per_token", configs="most_pruned", bound=0.9)
    (v,) = evaluate(one_claim(**kw, tiers=["cpu"]), [base, pruned])
    assert v.verdict == "not_measurable" and v.observed == "not measurable: no energy meter on CPU"
    assert exit_code([v]) == 1  # a measured tier needs the number: no meter is a red build
    (w,) = evaluate(
        one_claim(**kw, tiers=["cpu"], optional="runners without a meter, on purpose"), [base, pruned]
    )
    assert w.verdict == "waived" and "runners without a meter, on purpose" in w.observed
    assert "no energy meter on CPU" in w.observed and exit_code([w]) == 0
    for r in (base, pruned):
        r["tier"] = "paper"
    (p,) = evaluate(one_claim(**kw, tiers=["paper"]), [base, pruned])
    assert p.verdict == "not_measurable" and exit_code([p]) == 0  # the paper tier keeps its rules


def test_optional_must_name_a_measured_tier_of_the_claim_and_give_a_reason():
    kw = dict(kind="ratio_at_most", metric="bench:avg/j_per_token", configs="most_pruned", bound=0.9)
    with pytest.raises(WidthwiseError, match="not a measured tier"):
        one_claim(**kw, tiers=["paper", "gpu"], optional={"paper": "x"})
    with pytest.raises(WidthwiseError, match="needs a reason"):
        one_claim(**kw, tiers=["gpu"], optional={"gpu": " "})
    assert one_claim(**kw, tiers=["paper", "gpu"], optional="no meter")[0].optional == (("gpu", "no meter"),)


def test_a_value_missing_at_a_configuration_counts_as_failing(paper):
    base, pruned = measured(paper, B1, {None, 40})
    target = pruned if pruned["pruning"] else base
    del target["metrics"]["mmlu/acc"]
    (v,) = evaluate(one_claim(kind="drop", metric="mmlu/acc", configs="all_pruned"), [base, pruned])
    assert v.verdict == "missing" and "mmlu/acc at this configuration" in v.observed
    assert exit_code([v]) == 1


def test_claims_apply_only_to_their_tier_model_and_method(paper):
    rs = measured(paper, B1, {None, 10, 40})
    claim = one_claim(kind="drop", metric="mmlu/acc", configs="all_pruned")
    assert len(evaluate(claim, rs)) == 2
    assert evaluate(one_claim(kind="drop", metric="mmlu/acc", configs="all_pruned", tiers=["cpu"]), rs) == []
    for r in rs:
        if r["pruning"]:
            r["pruning"]["method"] = "random"
    assert evaluate(claim, rs) == []  # an ablation is not the paper's PPM


def test_bench_runs_compare_with_their_own_interleaved_base(paper):
    """A sweep writes one base bench Result per configuration; each ratio uses its own run's base."""
    results = []
    for run, pct, base_j, pruned_j in ((1, 40, 0.20, 0.15), (2, 60, 0.10, 0.135)):
        for r in measured(paper, B1, {None, pct}):
            role = "pruned" if r["pruning"] else "base"
            r["suite"], r["settings"] = "bench", {"device_kind": "cuda", "repeats": 3}
            r["bench"] = {"role": role, "run_id": f"run{run}", "device": {"name": "H200"}}
            value = pruned_j if r["pruning"] else base_j
            r["metrics"] = {"bench:avg/j_per_token": {"value": value, "stderr": None, "n": 3}}
            results.append(r)
    claims = one_claim(kind="ratio_at_most", metric="bench:avg/j_per_token", pcts=[40, 60], bound=0.9)
    v40, v60 = evaluate(claims, results)
    assert (v40.verdict, v40.value) == ("holds", pytest.approx(0.75))
    assert (v60.verdict, v60.value) == ("fails", pytest.approx(1.35))
    # Without the run facts the two base measurements are two values for one point, which is refused.
    for r in results:
        r["bench"] = None
    with pytest.raises(WidthwiseError, match="two Results give bench:avg/j_per_token"):
        evaluate(claims, results)


def test_pooled_needs_two_models_and_a_boolean():
    kw = dict(kind="improves", metric="ifeval/prompt_level_strict_acc", ratios=[2.4], margin=0.0)
    with pytest.raises(WidthwiseError, match="pooled needs two or more models"):
        one_claim(**kw, pooled=True)
    with pytest.raises(WidthwiseError, match="pooled must be true or false"):
        one_claim(**kw, pooled="yes", models=[B1, "meta-llama/Llama-3.2-3B"])


def test_schema_2_results_read_with_scoring_and_profile_unknown_not_guessed():
    import json

    from widthwise.results import SCHEMA, load

    path = PAPER.parent / "measured" / "cpu" / "smollm2-135m-instruct_base_cpu.json"
    # what 411b5d8 wrote (into result caches, say): schema 2, no scoring or profile in provenance
    v2 = load(json.loads(path.read_text()), str(path))
    v2["schema"] = "widthwise.result/2"
    for k in ("scoring", "profile"):
        del v2["provenance"][k]
    r = load(json.loads(json.dumps(v2)), "schema 2")
    assert r["schema"] == SCHEMA and r["provenance"]["scoring"] is None and r["provenance"]["profile"] is None
    assert r["samples"] == v2["samples"] and r["settings"] == v2["settings"]


def test_reported_only_per_tier_gates_the_paper_tier_and_reports_on_the_named_one():
    """reported_only.gpu: the GPU gate's design leaves a claim out of that tier's gate only; the paper's
    tables are still held to it, and a tier the claim does not measure cannot be named."""
    base = {
        "statement": "s",
        "metric": "mmlu/acc",
        "kind": "drop",
        "models": ["meta-llama/Llama-3.2-1B"],
        "tiers": ["paper", "gpu"],
        "configs": "all_pruned",
    }
    (c,) = parse_thresholds({"claims": {"c": {**base, "reported_only": {"gpu": "misses its share"}}}})
    assert c.reported("gpu") == "misses its share" and c.reported("paper") == "" and not c.reported_only
    for bad in ({"paper": "why"}, {"cpu": "why"}, {"gpu": " "}, {}):
        with pytest.raises(WidthwiseError, match="reported_only"):
            parse_thresholds({"claims": {"c": {**base, "reported_only": bad}}})
