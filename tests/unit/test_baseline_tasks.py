"""`widthwise baseline update --tasks`: fresh families replace exactly those of the stored Result."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from widthwise.baselines import _suite_expectations as expectations
from widthwise.baselines import family_of, merge_families, partial_refusals, plan_partial
from widthwise.cli import main
from widthwise.errors import WidthwiseError
from widthwise.results import read_result, write_result

CPU = Path(__file__).resolve().parents[2] / "baselines" / "measured" / "cpu"
BASE = "smollm2-135m-instruct_base_cpu.json"
REASON = "issue 25: GSM8K as a log-likelihood of the gold solution on CPU"


def _fresh(stored: dict) -> dict:
    """A Result of the same configuration holding only gsm8k (2 documents) and gsm8k_gold, as
    `widthwise eval --tasks gsm8k,gsm8k_gold` writes one, made on another machine."""
    r = copy.deepcopy(stored)
    gsm = copy.deepcopy(stored["settings"]["tasks"]["gsm8k"]) | {"n": 2, "sample_ids_sha256": "x" * 64}
    gold = {"n": 24, "shots": 0, "split": "test", "source": "local", "sample_ids_sha256": "y" * 64,
            "generation_kwargs": None, "chat_template": False, "fewshot_as_multiturn": False,
            "fewshot_split": None, "backend": "hf"}  # fmt: skip
    r["settings"]["tasks"] = {"gsm8k": gsm, "gsm8k_gold": gold}
    r["settings"]["substitutes"] = {}
    recs = [{"doc_id": i, "doc_hash": f"d{i}", "prompt_hash": "p", "target_hash": "t", "metrics": {"acc": 0},
             "ll": -90.0 - i, "tokens": 90, "gold_logprob": -1.0 - i / 90, "score": -1.0 - i / 90}
            for i in range(24)]  # fmt: skip
    r["samples"] = {
        "gsm8k": [x | {"response": "x"} for x in stored["samples"]["gsm8k"][:2]],
        "gsm8k_gold": recs,
    }
    r["metrics"] = {
        "gsm8k/exact_match,flexible-extract": {"value": 0.5, "stderr": 0.5, "n": 2},
        "gsm8k_gold/acc": {"value": 0.0, "stderr": 0.0, "n": 24},
        "gsm8k_gold/gold_logprob": {"value": -1.13, "stderr": 0.05, "n": 24},
    }
    r["headline"] = {"gsm8k": "gsm8k/exact_match,flexible-extract", "gsm8k_gold": "gsm8k_gold/gold_logprob"}
    p = r["provenance"]
    p["git_sha"], p["cache_key"] = "abc1234", "k" * 64
    p["versions"]["torch_cpu_capability"] = "AVX2"
    p["machine"] = p["machine"] | {"load_average_1_5_15": [1.2, 1.0, 0.9]}
    p["sample_ids"] = {"gsm8k": [0, 1], "gsm8k_gold": list(range(24))}
    p["data"] = {"gsm8k": {"olmo:f": "c" * 64}, "gsm8k_gold": {"olmo:f": "c" * 64}}
    p["profile"] = p["profile"] | {"gemm": {"gflops": 88.0, "n": 1024, "threads": 1, "dtype": "float32"}}
    p["profile"]["tasks"] = {"gsm8k": {"seconds": 30.0}, "gsm8k_gold": {"seconds": 40.0}}
    return r


@pytest.fixture(scope="module")
def stored() -> dict:
    return read_result(CPU / BASE)


def test_metric_keys_belong_to_their_family_and_its_leaves():
    fams = ["gsm8k", "gsm8k_gold", "mmlu", "truthfulqa_mc1"]
    assert family_of("gsm8k/exact_match,strict-match", fams) == "gsm8k"
    assert family_of("gsm8k_gold/gold_logprob", fams) == "gsm8k_gold"
    assert family_of("mmlu_anatomy/acc", fams) == "mmlu"
    assert family_of("truthfulqa_mc1/margin", fams) == "truthfulqa_mc1"
    assert family_of("wikitext/word_perplexity", fams) is None


def test_merge_replaces_exactly_the_named_families(stored):
    fresh, before = _fresh(stored), copy.deepcopy(stored)
    merged = merge_families(stored, fresh, ["gsm8k", "gsm8k_gold"], REASON, "2026-12-07")
    for t in set(stored["samples"]) - {"gsm8k", "gsm8k_gold"}:
        assert merged["samples"][t] == stored["samples"][t]
        assert merged["settings"]["tasks"][t] == stored["settings"]["tasks"][t]
        assert merged["provenance"]["profile"]["tasks"][t] == stored["provenance"]["profile"]["tasks"][t]
    kept = {k: v for k, v in stored["metrics"].items() if not k.startswith("gsm8k")}
    assert {k: v for k, v in merged["metrics"].items() if not k.startswith("gsm8k")} == kept
    gsm = {k: v for k, v in merged["metrics"].items() if k.startswith("gsm8k")}
    assert gsm == fresh["metrics"]  # the stored values of the replaced families go, all of them
    assert merged["metrics"]["gsm8k_gold/gold_logprob"]["n"] == 24
    assert len(merged["samples"]["gsm8k"]) == 2 and len(merged["samples"]["gsm8k_gold"]) == 24
    assert merged["headline"]["gsm8k_gold"] == "gsm8k_gold/gold_logprob"
    assert merged["settings"]["substitutes"] == stored["settings"]["substitutes"]
    p = merged["provenance"]
    assert p["sample_ids"]["gsm8k_gold"] == list(range(24)) and "gsm8k_gold" in p["data"]
    assert p["profile"]["gemm"] == stored["provenance"]["profile"]["gemm"]  # the stored run's own probe
    assert p["git_sha"] == stored["provenance"]["git_sha"]
    why = p["tasks_restored"]["gsm8k_gold"]
    assert why["reason"] == REASON and why["git_sha"] == "abc1234" and why["date"] == "2026-12-07"
    assert why["torch_cpu_capability"] == "AVX2" and why["gemm"]["gflops"] == 88.0 and why["seconds"] == 40.0
    assert stored == before  # the input was copied, not changed


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda s, f: f["provenance"]["versions"].update(torch="2.99"), "torch: stored"),
        (lambda s, f: f["provenance"]["versions"].update(transformers="9"), "transformers"),
        (lambda s, f: f["provenance"].update(threads=2), "threads"),
        (lambda s, f: f["settings"].update(batch_size=1), "settings.batch_size"),
        (lambda s, f: s["settings"]["tasks"]["arc_challenge"].update(n=299), "arc_challenge.n: stored 299"),
        (lambda s, f: f["settings"]["tasks"]["gsm8k"].update(n=16), "gsm8k.n: fresh 16"),
        (lambda s, f: f["samples"].pop("gsm8k_gold"), "has no gsm8k_gold"),
        (lambda s, f: f["pruning"].__class__ and f.update(pruning={"method": "ppm"}), "pruning differs"),
        (lambda s, f: s["settings"]["tasks"].pop("piqa"), "missing: ['piqa']"),
    ],
)
def test_a_family_is_replaced_only_where_everything_else_matches(stored, change, why):
    s, f = copy.deepcopy(stored), _fresh(stored)
    assert partial_refusals(s, f, ["gsm8k", "gsm8k_gold"], expectations("cpu")) == []
    change(s, f)
    assert any(why in r for r in partial_refusals(s, f, ["gsm8k", "gsm8k_gold"], expectations("cpu")))


def _store(tmp_path: Path, stored: dict) -> tuple[Path, Path]:
    root = tmp_path / "baselines"
    (root / "measured" / "cpu").mkdir(parents=True)
    shutil.copy(CPU / BASE, root / "measured" / "cpu" / BASE)
    fresh = tmp_path / "fresh" / "base.json"
    write_result(_fresh(stored), fresh)
    return root, fresh


def test_update_tasks_shows_the_difference_and_writes_only_with_yes(stored, tmp_path, capsys):
    root, fresh = _store(tmp_path, stored)
    path = root / "measured" / "cpu" / BASE
    before = path.read_bytes()
    args = ["baseline", "update", str(fresh), "--name", "measured/cpu", "--root", str(root)]
    args += ["--tasks", "gsm8k,gsm8k_gold", "--reason", REASON]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "gsm8k_gold/gold_logprob" in out and "dry run: 1 file(s)" in out
    assert "arc_challenge" not in out  # nothing of the other families changes
    assert path.read_bytes() == before
    assert main([*args, "--yes"]) == 0
    after = json.loads(path.read_text())
    assert after["provenance"]["tasks_restored"]["gsm8k"]["reason"] == REASON
    assert after["samples"]["arc_challenge"] == stored["samples"]["arc_challenge"]
    assert not list(path.parent.glob(".*.tmp"))  # written through a temporary file and a rename
    assert main([*args, "--yes"]) == 0
    assert "already up to date" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "why"),
    [(["--allow-mismatch", "--reason", "r"], "takes no --allow-mismatch"), ([], "needs --reason")],
)
def test_update_tasks_refusals_are_one_line(stored, tmp_path, extra, why):
    root, fresh = _store(tmp_path, stored)
    args = ["baseline", "update", str(fresh), "--name", "measured/cpu", "--root", str(root)]
    with pytest.raises(WidthwiseError, match=why):
        from widthwise.commands import baseline

        baseline.run(_namespace([*args, "--tasks", "gsm8k,gsm8k_gold", *extra]))


def test_update_tasks_needs_a_stored_result_and_refuses_a_rehearsal(stored, tmp_path):
    root, _ = _store(tmp_path, stored)
    other = _fresh(stored) | {
        "pruning": read_result(CPU / "smollm2-135m-instruct_ppm-pct2_cpu.json")["pruning"]
    }
    with pytest.raises(WidthwiseError, match="no stored Result"):
        plan_partial([other], root / "measured" / "cpu", ["gsm8k"], REASON, "2026-12-07")
    limited = _fresh(stored)
    limited["settings"]["limit"] = 2
    with pytest.raises(WidthwiseError, match="rehearsal"):
        plan_partial([limited], root / "measured" / "cpu", ["gsm8k"], REASON, "2026-12-07")


def _namespace(argv):
    import argparse

    from widthwise.commands import baseline

    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd")
    baseline.add_arguments(sub.add_parser("baseline"))
    return p.parse_args(argv)
