"""The engine on real `widthwise bench` output: the embedded default model, base and 40% pruned, on CPU.

data/bench-cpu/ holds one bench run (mmlu and ifeval workloads, batch 1 and 8, 4 new tokens, 8 prompts,
5 repeats, 1 thread) made on a CPU machine without RAPL, so every energy figure is null with a reason.
"""

from __future__ import annotations

from pathlib import Path

from widthwise.claims import evaluate, exit_code, parse_thresholds
from widthwise.points import group_results
from widthwise.results import collect_results

DATA = Path(__file__).parent / "data" / "bench-cpu"
MODEL = "smollm2-135m-instruct"


def _claims(**over):
    base = {"statement": "s", "models": [MODEL], "tiers": ["cpu"], "configs": "most_pruned"}
    return parse_thresholds(
        {
            "claims": {
                "energy": {**base, "metric": "bench:avg/j_per_token", "kind": "ratio_at_most", "bound": 0.9},
                "throughput": {
                    **base,
                    "metric": "bench:b8/throughput_tok_s",
                    "kind": "ratio_at_least",
                    **over,
                },
            }
        }
    )


def test_real_bench_run_pairs_with_its_interleaved_base():
    results = collect_results([DATA])
    (g,) = group_results(results)
    assert g.tier == "cpu" and g.base is None  # the run's base is the pruned point's reference
    (p,) = g.points
    assert p.pct == 40 and "bench:b8/throughput_tok_s" in p.refs


def test_energy_on_cpu_is_not_measurable_and_fails_the_measured_tier():
    energy, throughput = evaluate(_claims(bound=1.0), collect_results([DATA]))
    assert energy.verdict == "not_measurable"
    assert energy.observed.startswith("not measurable: energy: not measurable here")
    results = collect_results([DATA])
    base = next(r for r in results if r["bench"]["role"] == "base")["metrics"]["bench:b8/throughput_tok_s"]
    pruned = next(r for r in results if r["bench"]["role"] == "pruned")["metrics"][
        "bench:b8/throughput_tok_s"
    ]
    assert throughput.value == pruned["value"] / base["value"]
    assert "t with 4 df" in throughput.method  # five repeats a side
    assert throughput.verdict in ("holds", "fails")
    assert exit_code([energy]) == 1  # evidence is required on a measured tier; only a waiver accepts the gap


def test_an_impossible_bound_fails_on_real_data():
    _, throughput = evaluate(_claims(bound=10.0), collect_results([DATA]))
    assert throughput.verdict == "fails" and exit_code([throughput]) == 1
