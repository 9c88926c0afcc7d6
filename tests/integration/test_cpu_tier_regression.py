"""The CPU tier's regression gate catches a broken pruner on the real default model.

A fresh smoke-suite evaluation at PPM 20% is compared per document with the Result stored in
baselines/measured/smoke (stored on an AVX-512 machine). The correct pruner reproduces it within the
tolerance measured across CPU kernel levels (src/widthwise/claims/regression.toml), generated text
exactly; two realistic pruner bugs, keeping the lowest scores instead of the highest and slicing
down_proj with the wrong indices, both make it fail. The smallest changes the gate must catch are in
test_regression_mutants.py.
"""

from dataclasses import replace
from pathlib import Path

import pytest

import widthwise.prune as prune
from support import evaluate_at
from widthwise import pruners
from widthwise.claims.regression import check
from widthwise.models import DEFAULT_MODEL
from widthwise.results import read_result

pytestmark = pytest.mark.slow

STORED = Path(__file__).resolve().parents[2] / "baselines" / "measured" / "smoke"


def fresh_eval():
    return evaluate_at(DEFAULT_MODEL, "smoke", pct=20)


def stored():
    return [read_result(p) for p in sorted(STORED.glob("*.json"))]


def test_the_correct_pruner_reproduces_the_stored_baseline():
    verdicts = check([fresh_eval()], stored())
    assert verdicts and {v.verdict for v in verdicts} == {"holds"}, [v.message for v in verdicts]


def test_keeping_the_lowest_scores_fails(monkeypatch):
    broken = replace(pruners.get("ppm"), keep="lowest", doc="bug: keeps the least important neurons")
    monkeypatch.setitem(pruners.registry(), "ppm", broken)
    verdicts = check([fresh_eval()], stored())
    assert "fails" in {v.verdict for v in verdicts}


def test_slicing_down_proj_with_the_wrong_indices_fails(monkeypatch):
    right = prune.slice_mlp

    def off_by_one(mlp, keep):
        down = mlp.down_proj
        right(mlp, keep)
        # bug: down_proj columns taken for the neighbouring neurons, not the kept ones
        mlp.down_proj = prune._sliced(down, (keep + 1) % down.in_features, 1)

    monkeypatch.setattr(prune, "slice_mlp", off_by_one)
    verdicts = check([fresh_eval()], stored())
    assert "fails" in {v.verdict for v in verdicts}
