"""score_shift: paired bounds on a per-document continuous score, and why each verdict is what it is."""

from __future__ import annotations

import copy
import hashlib
import math
import random
from pathlib import Path

import pytest
from scipy import stats as st

from widthwise import stats
from widthwise.claims import evaluate, exit_code, parse_thresholds
from widthwise.claims.kinds.shift import gate
from widthwise.errors import WidthwiseError
from widthwise.results import collect_results, new_provenance

PAPER = Path(__file__).resolve().parents[2] / "baselines" / "paper"
B3 = "meta-llama/Llama-3.2-3B"
N = 300


def _h(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


@pytest.fixture(scope="module")
def pair():
    """The paper's 3B base and PPM 10% relabelled as gpu-tier measurements (which need paired records)."""
    out = []
    for r in collect_results([PAPER]):
        if r["model"]["name"] == B3 and (r["pruning"] or {}).get("pct") in (None, 10):
            r = copy.deepcopy(r)
            r["stage"], r["tier"] = "eval", "gpu"
            r["provenance"] = new_provenance(stage="eval", model_source="/models/llama")
            out.append(r)
    base, pruned = sorted(out, key=lambda r: r["pruning"] is not None)
    return base, pruned


def with_margins(result, margins, correct_share, seed):
    """HellaSwag records keeping a margin per document, `correct_share` of them correct."""
    r = copy.deepcopy(result)
    rng = random.Random(seed)
    right = set(rng.sample(range(len(margins)), round(correct_share * len(margins))))
    r["samples"] = {
        "hellaswag": [
            {
                "doc_id": i,
                "doc_hash": _h(i),
                "prompt_hash": _h("p", i),
                "target_hash": _h("t", i),
                "correct": i in right,
                "margin": m,
                "gold_logprob": m - 1.0,
            }
            for i, m in enumerate(margins)
        ]
    }
    r["headline"] = {**r.get("headline", {}), "hellaswag": "hellaswag/acc_norm"}
    mean = sum(margins) / len(margins)
    r["metrics"]["hellaswag/margin"] = {"value": mean, "stderr": None, "n": len(margins)}
    return r


def base_margins(seed=1):
    rng = random.Random(seed)
    return [rng.gauss(0.1, 0.5) for _ in range(N)]


def claim(direction="falls", **kw):
    t = {
        "statement": "s",
        "models": [B3],
        "tiers": ["gpu"],
        "kind": "score_shift",
        "metric": "hellaswag/margin",
        "direction": direction,
        "pcts": [10],
        **kw,
    }
    return parse_thresholds({"claims": {"c": t}})


def run(pair, shift, pruned_share, direction="falls", noise=0.2, **kw):
    base, pruned = pair
    b = base_margins()
    rng = random.Random(2)
    p = [m + shift + rng.gauss(0, noise) for m in b]
    results = [with_margins(base, b, 0.55, 3), with_margins(pruned, p, pruned_share, 4)]
    return evaluate(claim(direction, **kw), results)


def test_a_gradual_fall_of_the_margin_holds(pair):
    (v,) = run(pair, -0.1, 0.5)
    assert v.verdict == "holds" and v.method.startswith("paired t over 300")
    assert v.value == pytest.approx(-0.1, abs=0.03)
    assert float(v.mde) < 0.05  # the continuous score resolves what accuracy at n=300 cannot (~0.12)


def test_a_model_at_chance_fails_a_fall_claim(pair):
    (v,) = run(pair, -1.0, 0.25)
    assert v.verdict == "fails" and "at chance" in v.observed


def test_a_pruner_that_changes_nothing_fails_a_fall_claim(pair):
    (v,) = run(pair, 0.0, 0.55)
    assert v.verdict == "fails"


def test_holds_is_non_inferiority_and_a_collapse_fails_it(pair):
    (v,) = run(pair, -0.005, 0.55, direction="holds", margin=0.05)
    assert v.verdict == "holds"
    (v,) = run(pair, -1.0, 0.25, direction="holds", margin=0.05)
    assert v.verdict == "fails"


def test_records_without_the_score_are_a_gap_that_fails_a_measured_tier(pair):
    base, pruned = pair
    results = [with_margins(base, base_margins(), 0.55, 3), with_margins(pruned, base_margins(), 0.5, 4)]
    for rec in results[1]["samples"]["hellaswag"][:10]:
        del rec["margin"]
    verdicts = evaluate(claim(), results)
    assert [v.verdict for v in verdicts] == ["skipped"] and "10 of 300" in verdicts[0].observed
    assert exit_code(verdicts) == 1


@pytest.mark.parametrize(
    "extra, needle",
    [
        ({"direction": "sideways"}, "needs direction"),
        ({"metric": "hellaswag/acc_norm"}, "continuous score"),
        ({"direction": "holds"}, "stated margin"),
    ],
)
def test_bad_score_shift_claims_are_refused(extra, needle):
    t = {"statement": "s", "models": [B3], "tiers": ["gpu"], "kind": "score_shift", "pcts": [10]}
    t |= {"metric": "hellaswag/margin", "direction": "falls"} | extra
    with pytest.raises(WidthwiseError, match=needle):
        parse_thresholds({"claims": {"c": t}})


def test_the_gate_and_the_paired_t_bound():
    assert gate("falls", -0.02, 0.0) and not gate("falls", 0.01, 0.0)
    assert gate("holds", -0.04, 0.05) and not gate("holds", -0.06, 0.05)
    assert gate("rises", 0.03, 0.02) and not gate("rises", 0.01, 0.02)
    rng = random.Random(5)
    a = [rng.gauss(0, 1) for _ in range(50)]
    b = [x - 0.3 + rng.gauss(0, 0.5) for x in a]
    bd = stats.paired_t_bound(a, b, 0.05, "upper")
    ref = st.ttest_rel(b, a, alternative="less")
    assert bd.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    hi = st.t.interval(0.90, 49, loc=bd.delta, scale=bd.se)[1]  # one-sided 95% = two-sided 90%'s edge
    assert bd.bound == pytest.approx(hi, rel=1e-9) and math.isfinite(bd.bound)


def _gold(result, scores, seed):
    """gsm8k_gold records: a per-token gold log-probability per document and no accuracy at all."""
    r = with_margins(result, scores, 0.0, seed)
    recs = r["samples"].pop("hellaswag")
    r["samples"]["gsm8k_gold"] = [
        {k: v for k, v in x.items() if k not in ("correct", "margin")} | {"gold_logprob": s}
        for x, s in zip(recs, scores, strict=True)
    ]
    r["headline"] = {**r["headline"], "gsm8k_gold": "gsm8k_gold/gold_logprob"}
    r["metrics"]["gsm8k_gold/gold_logprob"] = {"value": sum(scores) / len(scores), "stderr": None, "n": N}
    return r


@pytest.mark.parametrize(("shift", "verdict"), [(-0.3, "holds"), (0.0, "fails")])
def test_a_family_without_an_accuracy_has_no_chance_guard(pair, shift, verdict):
    base, pruned = pair
    b = [x - 1.2 for x in base_margins()]
    rng = random.Random(5)
    p = [x + shift + rng.gauss(0, 0.2) for x in b]
    results = [_gold(base, b, 3), _gold(pruned, p, 4)]
    (v,) = evaluate(claim(metric="gsm8k_gold/gold_logprob"), results)
    assert v.verdict == verdict
    assert "no chance guard" in v.observed and "at chance" not in v.observed


def test_an_accuracy_family_without_correct_flags_still_fails_the_guard(pair):
    base, pruned = pair
    b = base_margins()
    results = [with_margins(base, b, 0.55, 3), with_margins(pruned, [x - 0.5 for x in b], 0.5, 4)]
    for rec in results[1]["samples"]["hellaswag"]:
        del rec["correct"]
    (v,) = evaluate(claim(), results)
    assert v.verdict == "fails" and "no correct flags" in v.observed
