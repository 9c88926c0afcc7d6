"""The degenerate-text measure: loops are flagged, ordinary answers are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from widthwise import degeneracy
from widthwise.degeneracy import measure, repeated_share

LOOPS = [
    "is is is is is is is is is is is is is is is is",
    "F" * 60,
    "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
    "The answer is 5. The answer is 5. The answer is 5. The answer is 5.",
    "I'm sorry, I'm sorry, I'm sorry, I'm sorry, I'm sorry, I'm sorry",
    "Step 1: add. Step 1: add. Step 1: add. Step 1: add. Step 1: add.",
    "",
    "   \n  ",
]

ANSWERS = [
    "Paris is the capital of France.",
    "Sure! Here is a short poem about the sea:\n\nWaves roll in with silver light,\n"
    "gulls cry out against the night,\nthe tide withdraws, the sand lies bare,\n"
    "and salt hangs heavy in the air.",
    "* Apples are rich in fibre.\n* Oranges carry vitamin C.\n* Bananas provide potassium.\n"
    "* Grapes contain antioxidants.",
    "Janet sells 16 - 3 - 4 = 9 duck eggs a day. She makes 9 * 2 = $18 every day at the market. #### 18",
    "ok",
]


@pytest.mark.parametrize("text", LOOPS)
def test_loops_are_degenerate(text):
    d = measure(text)
    assert d.degenerate, d
    assert d.reason


@pytest.mark.parametrize("text", ANSWERS)
def test_answers_are_not_degenerate(text):
    d = measure(text)
    assert not d.degenerate, d
    assert d.reason is None


def test_long_real_prose_stays_below_thresholds():
    # Real prose from the project's own design notes, at IFEval response lengths (up to ~1000 words).
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()[:5000]
    d = measure(text)
    assert not d.degenerate, d
    assert d.word_repeat < degeneracy.WORD_THRESHOLD / 2
    assert d.char_repeat < degeneracy.CHAR_THRESHOLD / 2


def test_repeated_share():
    assert repeated_share([], 3) == 0.0
    assert repeated_share(list("ab"), 3) == 0.0
    assert repeated_share(list("abcdef"), 2) == 0.0
    assert repeated_share(list("aaaa"), 2) == pytest.approx(2 / 3)


def test_threshold_boundary_is_inclusive():
    # 8 word 3-grams, 4 distinct: exactly half repeated -> degenerate (>= threshold).
    text = "a b c d a b c d a b"
    d = measure(text)
    assert d.word_repeat == pytest.approx(0.5)
    assert d.degenerate


def test_definition_is_recorded():
    spec = degeneracy.definition()
    assert spec["word_threshold"] == degeneracy.WORD_THRESHOLD
    assert spec["char_ngram"] == degeneracy.CHAR_N
