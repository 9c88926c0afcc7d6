"""The calibration documents an activation-aware method reads are no suite's documents: checked by
document hash (and by containment, which a hash cannot see) against every string of every data file
every suite's task families read, their few-shot splits included."""

import gzip
import json
from pathlib import Path

import pytest

from widthwise import calibration, data
from widthwise.evaluation.suites import get_suite, suite_names

# Task families with no offline copy here: WikiText and MuSR load from the hub at a pinned commit
# (suites.toml). Neither is SciQ; a new family without offline data fails this list until it is looked at.
HUB_ONLY = {"wikitext", "leaderboard_musr"}


def strings(x):
    if isinstance(x, str):
        yield x
    elif isinstance(x, dict):
        for v in x.values():
            yield from strings(v)
    elif isinstance(x, list | tuple):
        for v in x:
            yield from strings(v)


def file_strings(path: Path):
    name = path.name
    if name.endswith(".arrow"):
        import datasets

        for row in datasets.Dataset.from_file(str(path)):
            yield from strings(row)
    elif name.endswith(".jsonl.gz") or name.endswith(".jsonl"):
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            for line in f:
                yield from strings(json.loads(line))
    else:
        yield path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def scored():
    """Every task family of every suite -> the set of its strings, whitespace folded."""
    families = {t.name for s in suite_names() for t in get_suite(s).tasks}
    out, unchecked = {}, set()
    for task in sorted(families):
        files = data.locate(task)
        if files is None:
            unchecked.add(task)
            continue
        out[task] = {" ".join(s.split()) for f in files.values() for s in file_strings(f)}
    return out, unchecked


def test_calibration_documents_are_disjoint_from_every_suite(scored):
    by_task, unchecked = scored
    assert unchecked == HUB_ONLY
    docs = calibration.documents()
    assert len(docs.texts) == calibration.DOCUMENTS and len(set(docs.texts)) == len(docs.texts)
    mine = {calibration.doc_sha256(t): t for t in docs.texts}
    for task, texts in by_task.items():
        assert len(texts) > 10, task  # the files were read, not skipped
        theirs = {calibration.doc_sha256(t) for t in texts}
        assert not theirs & set(mine), f"{task} scores a calibration document"
        # A scored prompt may quote a passage inside a longer text: containment, both ways.
        big = "\0".join(texts)
        for t in mine.values():
            assert " ".join(t.split()) not in big, f"{task} contains a calibration document"


def test_the_check_would_catch_a_calibration_set_drawn_from_a_suite(scored):
    """The perturbation: documents taken from a scored split are caught, by hash and by containment."""
    by_task, _ = scored
    leaked = sorted(t for t in by_task["boolq"] if len(t) >= calibration.MIN_CHARS)[:3]
    assert leaked
    theirs = {calibration.doc_sha256(t) for t in by_task["boolq"]}
    assert {calibration.doc_sha256(t) for t in leaked} <= theirs
    quoted = "Context: " + leaked[0] + " Question: is it?"
    assert leaked[0] in "\0".join([quoted])


def test_the_calibration_hash_names_the_documents():
    docs = calibration.documents()
    other = calibration.Documents(docs.texts[:-1] + ("another passage",), docs.source)
    rewrapped = calibration.Documents(tuple("\n".join(t.split(" ")) for t in docs.texts), docs.source)
    assert other.sha256 != docs.sha256
    assert rewrapped.sha256 == docs.sha256  # whitespace folded: the same text, the same documents
