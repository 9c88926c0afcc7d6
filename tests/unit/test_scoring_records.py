"""Continuous per-document scores from the choices' log-likelihoods, normalised as the task's accuracy."""

from __future__ import annotations

import pytest

from widthwise.evaluation.scoring import continuous_scores
from widthwise.evaluation.suites import get_suite


def spec(task):
    return next(t for t in get_suite("cpu").tasks if t.name == task)


def test_acc_norm_tasks_compare_log_likelihood_per_character():
    # hellaswag scores acc_norm: choice 1 has the higher raw log-likelihood but the lower per-character one
    choices = {"ll": [-20.0, -12.0, -30.0], "chars": [40, 12, 50], "gold": 0}
    s = continuous_scores(spec("hellaswag"), choices)
    assert s == pytest.approx({"gold_logprob": -0.5, "margin": -0.5 + 0.6})
    # piqa scores acc: raw log-likelihoods, so the same numbers put gold 8 nats behind
    s = continuous_scores(spec("piqa"), choices)
    assert s == pytest.approx({"gold_logprob": -20.0, "margin": -8.0})


def test_the_margin_is_positive_exactly_when_the_document_is_correct():
    for gold in range(3):
        s = continuous_scores(
            spec("arc_challenge"), {"ll": [-3.0, -1.0, -2.0], "chars": [3, 3, 3], "gold": gold}
        )
        assert (s["margin"] > 0) == (gold == 1)


@pytest.mark.parametrize(
    "task, choices",
    [
        ("truthfulqa_mc2", {"ll": [-1.0, -2.0], "chars": [1, 1], "gold": 0}),  # several true answers
        ("arc_challenge", {"ll": [-1.0, -2.0], "chars": [1, 1], "gold": 2}),  # gold out of range
        ("arc_challenge", {"ll": [-1.0, -2.0], "chars": [1, 1], "gold": None}),
        ("arc_challenge", {"ll": [-1.0], "chars": [1], "gold": 0}),  # nothing to be wrong against
    ],
)
def test_no_continuous_score_where_it_has_no_meaning(task, choices):
    assert continuous_scores(spec(task), choices) is None
