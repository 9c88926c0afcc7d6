"""Expected pass rates from the paper's own variances: easy claims near 1, claims at their bound near 1/2."""

from __future__ import annotations

from pathlib import Path

from widthwise.claims import parse_thresholds
from widthwise.claims.passrate import pass_rates
from widthwise.results import collect_results

PAPER = Path(__file__).resolve().parents[2] / "baselines" / "paper"


def _claims(margin: float):
    t = {
        "statement": "s",
        "metric": "hellaswag/acc_norm",
        "kind": "drop",
        "models": ["meta-llama/Llama-3.2-1B"],
        "tiers": ["paper"],
        "pcts": [10],
        "margin": margin,
    }
    return parse_thresholds({"claims": {"c": t}})


def test_rates_follow_the_distance_of_the_bound_from_the_observation():
    results = [r for r in collect_results([PAPER]) if r["model"]["name"] == "meta-llama/Llama-3.2-1B"]
    # HellaSwag 1B: 0.6363 -> 0.5791 at 10% (n = 10042): a drop of 0.057.
    (easy,), gate = pass_rates(_claims(0.0), results, runs=200)
    assert easy.rate == 1.0 and gate == 1.0 and easy.noisy
    (edge,), _ = pass_rates(_claims(0.0459), results, runs=200)  # the margin sits on the observed UCB
    assert 0.3 < edge.rate < 0.7
    (hard,), gate = pass_rates(_claims(0.08), results, runs=200)
    assert hard.rate == 0.0 and gate == 0.0
