"""WikiText and MuSR through widthwise's evaluate(): lm-eval's own built-in tasks (their prompts, scorers and
metrics) on local stand-ins of their hub datasets, served from a hub mirror at the pinned revisions.

A tiny random Llama with the embedded default model's tokenizer scores them; what is asserted is the
machinery (finite metrics, one record per document, the revision recorded), not the numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hub_standins import MUSR_SPLITS, write_mirror
from support import save_tiny_llama
from widthwise import data
from widthwise.evaluation import evaluate
from widthwise.evaluation.suites import pinned_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    from transformers import AutoTokenizer

    from widthwise.models import DEFAULT_MODEL, load_model, resolve

    tokenizer = AutoTokenizer.from_pretrained(resolve(DEFAULT_MODEL))
    return load_model(str(save_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama", tokenizer)))


def test_wikitext_and_musr_run_offline_from_a_hub_mirror(tiny_llama, tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets")
    monkeypatch.setenv(data.MIRROR_ENV, str(write_mirror(tmp_path / "mirror")))
    monkeypatch.delenv(data.HUB_ENV, raising=False)
    result = evaluate(
        tiny_llama, None, "paper", tasks=["wikitext", "leaderboard_musr"], use_cache=False
    ).result

    metrics, samples, settings = result["metrics"], result["samples"], result["settings"]
    for key in ("wikitext/word_perplexity", "wikitext/byte_perplexity", "leaderboard_musr/acc_norm"):
        assert math.isfinite(metrics[key]["value"]), key
    assert metrics["wikitext/word_perplexity"]["value"] > 1
    assert 0 <= metrics["leaderboard_musr/acc_norm"]["value"] <= 1
    assert result["headline"] == {
        "wikitext": "wikitext/word_perplexity",
        "leaderboard_musr": "leaderboard_musr/acc_norm",
    }
    # One record per document: the 3 test pages of wikitext-2-raw-v1 (not the other configuration's),
    # and the 2 stories of each MuSR split, told apart by split (their ids restart in each).
    assert len(samples["wikitext"]) == 3 and all(math.isfinite(r["score"]) for r in samples["wikitext"])
    musr = samples["leaderboard_musr"]
    assert sorted(r["doc_id"] for r in musr) == sorted(f"{s}/{i}" for s in MUSR_SPLITS for i in (0, 1))
    assert all(len(r["choices"]["ll"]) in (2, 3) and isinstance(r["choices"]["gold"], int) for r in musr)
    assert all(math.isfinite(r["margin"]) for r in musr)
    for task in ("wikitext", "leaderboard_musr"):
        path, revision = pinned_dataset(task)
        assert settings["tasks"][task]["revision"] == revision and settings["tasks"][task]["source"] == "hub"
        prov = result["provenance"]["data"][task]
        assert (prov["dataset"], prov["revision"]) == (path, revision)
        assert Path(prov["mirror"]).name == revision and prov["files"]
    assert settings["chat_template_policy"] == "none"
