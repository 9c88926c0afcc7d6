"""Flag degenerate generations: text that loops instead of answering.

A heavily pruned model emits "is is is ..." or "FFFF..." that still passes IFEval's negative and length
constraints (no commas, fewer than N words, a letter at most N times), so its IFEval score can rise while
it follows nothing. This measure lets a Result report IFEval over non-degenerate responses too.

The measure, on the lowercased response:
  * words: runs of letters/digits, and each punctuation mark, as tokens;
  * word_repeat = share of word 3-grams that repeat an earlier 3-gram (0 = all distinct, ->1 = a loop);
  * char_repeat = share of character 6-grams (whitespace collapsed) that repeat an earlier one; this
    catches loops without spaces ("FFFFFF", "!!!!!!") that form a single word;
  * degenerate = the response is empty, or word_repeat >= 0.5 over >= 6 words, or
    char_repeat >= 0.6 over >= 24 characters.
Ordinary prose stays far below both thresholds at IFEval lengths (prose of 400-900 words repeats 4-7% of
its word 3-grams and 10-18% of its character 6-grams); a response that repeats one short phrase is
above them after a few repetitions. The thresholds are deliberately coarse: the point is to separate
looping from answering, not to grade style.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

WORD_N = 3
CHAR_N = 6
WORD_THRESHOLD = 0.5
CHAR_THRESHOLD = 0.6
MIN_WORDS = 6
MIN_CHARS = 24

_TOKEN = re.compile(r"\w+|[^\w\s]")


def repeated_share(items: list[Any], n: int) -> float:
    """Share of n-grams in `items` that already occurred earlier (0.0 when there are none)."""
    grams = [tuple(items[i : i + n]) for i in range(len(items) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


@dataclass(frozen=True)
class Degeneracy:
    degenerate: bool
    reason: str | None
    words: int
    word_repeat: float
    char_repeat: float

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["word_repeat"] = round(self.word_repeat, 4)
        d["char_repeat"] = round(self.char_repeat, 4)
        return d


def measure(text: str) -> Degeneracy:
    lowered = text.lower()
    words = _TOKEN.findall(lowered)
    chars = list(re.sub(r"\s+", " ", lowered).strip())
    word_repeat = repeated_share(words, WORD_N)
    char_repeat = repeated_share(chars, CHAR_N)
    reason = None
    if not lowered.strip():
        reason = "empty"
    elif len(words) >= MIN_WORDS and word_repeat >= WORD_THRESHOLD:
        reason = f"word {WORD_N}-grams {word_repeat:.0%} repeated"
    elif len(chars) >= MIN_CHARS and char_repeat >= CHAR_THRESHOLD:
        reason = f"character {CHAR_N}-grams {char_repeat:.0%} repeated"
    return Degeneracy(reason is not None, reason, len(words), word_repeat, char_repeat)


def is_degenerate(text: str) -> bool:
    return measure(text).degenerate


def definition() -> dict[str, Any]:
    """The measure's parameters, recorded in Result settings so a changed definition is not compared."""
    return {
        "word_ngram": WORD_N,
        "word_threshold": WORD_THRESHOLD,
        "min_words": MIN_WORDS,
        "char_ngram": CHAR_N,
        "char_threshold": CHAR_THRESHOLD,
        "min_chars": MIN_CHARS,
        "empty_is_degenerate": True,
    }
