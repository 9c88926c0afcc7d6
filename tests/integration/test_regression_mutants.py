"""The regression gate fails each of the smallest real changes (tests/mutants.py) on the real default
model, and passes the unchanged code, against the Results stored on another machine (AVX-512).

Log-likelihood mutants (one neuron kept differently, down_proj x 1.001 in one layer) run on LL_TASKS of
the cpu suite at PPM 20% against baselines/measured/cpu (the smoke suite's few documents per family
hold too few log-likelihoods for the task-level statistic); the generation mutants (an instruction
checker inverted, a stop sequence added) on the smoke suite's generation families against
baselines/measured/smoke.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mutants import MUTANTS
from widthwise.claims.regression import compare, only_tasks
from widthwise.results import read_result

pytestmark = pytest.mark.slow

BASELINES = Path(__file__).resolve().parents[2] / "baselines" / "measured"
LL_TASKS = ["lambada_openai"]
TEXT_TASKS = ["gsm8k", "ifeval"]


def evaluate(suite: str, tasks: list[str], mutant: str, tmp_path: Path) -> dict:
    from widthwise.evaluation import evaluate, set_threads
    from widthwise.models import DEFAULT_MODEL, load_model
    from widthwise.prune import PruneSpec, prune_model

    set_threads(1)
    with MUTANTS[mutant]():
        loaded = load_model(DEFAULT_MODEL)
        report = prune_model(loaded.model, PruneSpec(method="ppm", pct=20))
        return evaluate(loaded, report, suite, tasks=tasks, use_cache=False, checkpoints=tmp_path).result


def stored(suite: str, tasks: list[str]) -> dict:
    (path,) = (BASELINES / suite).glob("*_ppm-pct20_*.json")
    return only_tasks(read_result(path), tasks)


def verdicts(suite: str, tasks: list[str], mutant: str, tmp_path: Path) -> dict[str, str]:
    fresh = evaluate(suite, tasks, mutant, tmp_path)
    out = compare(fresh, stored(suite, tasks))
    return {v.metric.split("/")[0]: f"{v.verdict}: {v.observed} [{v.method}]" for v in out}


def test_unchanged_code_reproduces_the_log_likelihoods_stored_on_another_machine(tmp_path):
    got = verdicts("cpu", LL_TASKS, "none", tmp_path)
    assert all(v.startswith("holds") for v in got.values()), got


@pytest.mark.parametrize("mutant", ["neuron", "down-scale"])
def test_a_model_changed_by_the_smallest_step_fails(mutant, tmp_path):
    got = verdicts("cpu", LL_TASKS, mutant, tmp_path)
    assert all(v.startswith("fails") for v in got.values()), got


def test_an_inverted_instruction_checker_fails_ifeval_alone(tmp_path):
    got = verdicts("smoke", TEXT_TASKS, "checker", tmp_path)
    # GSM8K's generations, untouched by the mutant, reproduce the text stored on the AVX-512 machine.
    assert got["ifeval"].startswith("fails: 1 of 2 documents changed"), got
    assert got["gsm8k"].startswith("holds: 0 of 1 documents changed"), got


def test_a_change_to_generated_text_alone_fails(tmp_path):
    got = verdicts("smoke", TEXT_TASKS, "stop", tmp_path)
    assert all(v.startswith("fails") for v in got.values()), got
