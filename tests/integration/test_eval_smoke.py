"""`widthwise eval` on the embedded default model through real lm-eval: the smoke suite end to end.

One session-wide set of runs (shared across xdist workers through a lock) feeds every assertion:
  A  smoke, computed (--refresh)             the Result under test
  B  smoke, computed again (--refresh)       CPU determinism: identical per-sample results
  C  smoke, unchanged configuration          a cache hit, no evaluation
  P  smoke --tasks piqa --pct 40             pruning in memory first, recorded in the Result
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from widthwise import fetch
from widthwise.results import PROVENANCE_KEYS, read_result

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m-instruct"
FAMILIES = {
    "lambada_openai",
    "mmlu",
    "gsm8k",
    "arc_challenge",
    "hellaswag",
    "boolq",
    "piqa",
    "winogrande",
    "truthfulqa_mc1",
    "truthfulqa_mc2",
    "ifeval",
}
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def widthwise(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "widthwise", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=900,
    )
    return proc, time.perf_counter() - t0


def _run_all(out: Path) -> dict:
    runs = {}
    for name, extra in [
        ("A", ["--refresh", "--profile"]),
        ("B", ["--refresh"]),
        ("C", []),
        ("P", ["--tasks", "piqa", "--pct", "40", "--refresh"]),
    ]:
        proc, seconds = widthwise(
            "eval", MODEL, "--suite", "smoke", "--out", str(out / f"{name}.json"), *extra
        )
        assert proc.returncode == 0, f"run {name} failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
        runs[name] = {"stdout": proc.stdout, "seconds": seconds, "path": str(out / f"{name}.json")}
    return runs


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict:
    from filelock import FileLock

    # Under xdist the parent of each worker's temp dir belongs to this session and is shared by all
    # workers, so the runs happen once; without xdist the session's own temp dir is used.
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "widthwise-eval-smoke"
    root.mkdir(exist_ok=True)
    done = root / "runs.json"
    with FileLock(str(root / ".lock")):
        if not done.exists():
            done.write_text(json.dumps(_run_all(root)))
    out = json.loads(done.read_text())
    for r in out.values():
        r["result"] = read_result(Path(r["path"]))
    return out


@pytest.fixture(scope="session")
def result(runs) -> dict:
    return runs["A"]["result"]


def test_every_task_present(result):
    assert result["suite"] == "smoke"
    assert set(result["headline"]) == FAMILIES
    assert set(result["samples"]) == FAMILIES
    for task, key in result["headline"].items():
        assert key.startswith(f"{task}/") and key in result["metrics"]
        assert len(result["samples"][task]) == result["settings"]["tasks"][task]["n"] > 0
    assert result["headline"]["gsm8k"] == "gsm8k/exact_match,flexible-extract"
    assert "gsm8k/exact_match,strict-match" in result["metrics"]
    for key in ("inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc"):
        assert f"ifeval/{key}" in result["metrics"]
    # Tasks the suite cannot run offline are named, not silently dropped.
    for key in ("wikitext/word_perplexity", "leaderboard_musr/acc_norm"):
        assert result["metrics"][key]["value"] is None and result["metrics"][key]["not_measurable"]


def test_metrics_in_range(result):
    for key, m in result["metrics"].items():
        v = m["value"]
        if v is None:
            assert m["not_measurable"]
            continue
        assert math.isfinite(v)
        if m["stderr"] is not None:
            assert m["stderr"] >= 0, key
        assert m["n"] > 0, key
        if "perplexity" in key:
            assert v >= 1.0, key
        elif key.endswith("/gold_logprob"):  # a mean log-likelihood (per character for acc_norm tasks)
            assert v <= 0.0, key
        elif key.endswith("/margin"):  # gold minus the best wrong choice: either sign
            assert -1e4 < v < 1e4, key
        else:
            assert 0.0 <= v <= 1.0, key


def test_per_sample_records_reproduce_the_headlines(result):
    for task, records in result["samples"].items():
        ids = [r["doc_id"] for r in records]
        assert len(set(ids)) == len(ids), task
        for r in records:
            assert HEX64.match(r["doc_hash"]) and HEX64.match(r["prompt_hash"]), task
            assert isinstance(r.get("correct"), bool) or isinstance(r.get("score"), float), task
        head = result["metrics"][result["headline"][task]]["value"]
        if task == "lambada_openai":  # perplexity = exp(-mean log-likelihood)
            assert head == pytest.approx(math.exp(-sum(r["score"] for r in records) / len(records)), rel=1e-9)
        elif task == "truthfulqa_mc2":
            assert head == pytest.approx(sum(r["score"] for r in records) / len(records), rel=1e-9)
        else:
            assert head == pytest.approx(sum(r["correct"] for r in records) / len(records), rel=1e-9), task
    assert all("/" in r["doc_id"] for r in result["samples"]["mmlu"])  # subject/index


def test_ifeval_records_and_breakdown(result):
    records = result["samples"]["ifeval"]
    for r in records:
        assert isinstance(r["response"], str)
        assert isinstance(r["degenerate"], bool) and r["degeneracy"]["degenerate"] == r["degenerate"]
        assert r["instructions"] and all({"id", "strict", "loose"} <= set(i) for i in r["instructions"])
        assert r["correct"] == all(i["strict"] for i in r["instructions"])
    m = result["metrics"]
    share = sum(r["degenerate"] for r in records) / len(records)
    assert m["ifeval/degenerate_share"]["value"] == pytest.approx(share)
    ok = [r for r in records if not r["degenerate"]]
    nondeg = m["ifeval/prompt_level_strict_acc_nondegenerate"]
    if ok:
        assert nondeg["value"] == pytest.approx(sum(r["correct"] for r in ok) / len(ok)) and nondeg[
            "n"
        ] == len(ok)
    else:
        assert nondeg["value"] is None and nondeg["not_measurable"]
    types = {i["id"] for r in records for i in r["instructions"]}
    assert {k.split("@", 1)[1] for k in m if k.startswith("ifeval/strict_acc@")} == types


def test_provenance_and_settings(result, default_model):
    p, s = result["provenance"], result["settings"]
    assert set(p) == set(PROVENANCE_KEYS) and p["stage"] == result["stage"] == "eval"
    assert p["widthwise_version"] and HEX64.match(p["base_weights_sha256"])
    assert p["git_sha"] is None or re.match(r"^[0-9a-f]{40}$", p["git_sha"])
    assert all(p["versions"][k] for k in ("lm_eval", "torch", "transformers"))
    assert result["model"]["weights_sha256"] == default_model.weights_sha256 == p["base_weights_sha256"]
    assert result["pruning"] is None and result["tier"] == "cpu"
    assert p["device"] == "cpu" and p["dtype"] == s["dtype"] == "float32"
    assert p["seed"] == s["seed"]
    # The data actually read, with the checksums the project pins (data.sha256).
    sums = fetch.expected()
    files = p["data"]["ifeval"]["files"]
    assert files["data:ifeval/input_data.jsonl"]["sha256"] == sums["ifeval/input_data.jsonl"]
    assert p["data"]["mmlu"]["files"] == 114 and HEX64.match(p["data"]["mmlu"]["combined_sha256"])
    assert s["lm_eval"] == p["versions"]["lm_eval"]
    assert s["limit"] is None and s["batch_size"] >= 1
    for task, t in s["tasks"].items():
        assert t["source"] == "local" and HEX64.match(t["sample_ids_sha256"])
        assert t["chat_template"] is (task in {"gsm8k", "ifeval"})
    assert s["tasks"]["mmlu"]["shots"] == 5 and s["tasks"]["gsm8k"]["shots"] == 5
    assert s["tasks"]["gsm8k"]["fewshot_as_multiturn"] is True
    assert s["tasks"]["ifeval"]["generation_kwargs"]["max_gen_toks"] > 0


def test_the_profile_says_where_the_time_went(runs, result):
    p = result["provenance"]
    assert p["scoring"] == "prefix" and p["profile"]["gemm"]["gflops"] > 0
    tasks = p["profile"]["tasks"]
    assert set(tasks) == FAMILIES  # MMLU's subjects summed into one row
    assert all(t["requests"] > 0 and t["seconds"] > 0 and t["tokens"] > 0 for t in tasks.values())
    assert {t["kind"] for t in tasks.values()} == {"loglikelihood", "generate_until"}
    out = runs["A"]["stdout"]
    assert "attainable fp32 GEMM 1024^3" in out and "| total" in out and "tokens/s" in out


def test_cpu_runs_are_deterministic(runs):
    a, b = runs["A"]["result"], runs["B"]["result"]
    assert "cache hit" not in runs["B"]["stdout"]
    assert a["samples"] == b["samples"]
    assert a["metrics"] == b["metrics"]
    assert a["settings"] == b["settings"]


def test_unchanged_configuration_is_a_cache_hit(runs):
    c = runs["C"]
    assert "cache hit" in c["stdout"], c["stdout"]
    assert c["result"]["samples"] == runs["B"]["result"]["samples"]
    assert c["seconds"] < runs["B"]["seconds"] / 2


def test_pruned_in_memory_first(runs, result):
    r = runs["P"]["result"]
    assert r["pruning"]["method"] == "ppm" and r["pruning"]["pct"] == 40
    assert (
        r["model"]["intermediate_size"]
        == r["pruning"]["intermediate_size"]
        < result["model"]["intermediate_size"]
    )
    assert r["model"]["weights_sha256"] != result["model"]["weights_sha256"]
    assert r["provenance"]["base_weights_sha256"] == result["model"]["weights_sha256"]
    assert r["expansion_ratio"] < result["expansion_ratio"]
    assert set(r["headline"]) == {"piqa"}
    # Same documents and prompts as the base run, so the two can be paired.
    base = {x["doc_id"]: (x["doc_hash"], x["prompt_hash"]) for x in result["samples"]["piqa"]}
    assert {x["doc_id"]: (x["doc_hash"], x["prompt_hash"]) for x in r["samples"]["piqa"]} == base
