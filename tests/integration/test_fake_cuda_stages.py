"""Every stage's CUDA path, run on this CPU through FakeCudaDevice (WIDTHWISE_FAKE_CUDA=1).

At 604ca20 a one-GPU evaluation crashed at its very end: the GEMM probe was taken only when the device
was "cpu", so on CUDA `profile.build` got None and raised TypeError after lm-eval had run for hours, before
the Result or its cache entry was written. No test ran evaluate() down its CUDA branch. These do, with a
real (tiny, random) Llama, real lm-eval tasks and the real bench, so restoring that line fails here.
"""

from __future__ import annotations

import pytest

from support import save_tiny_llama, word_llama, word_tokenizer
from widthwise import device

pytestmark = pytest.mark.slow

TASKS = ["lambada_openai", "piqa", "ifeval"]  # perplexity, multiple choice, generation


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory, default_model):
    return save_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama", default_model.tokenizer)


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setenv(device.FAKE_ENV, "1")
    return device.resolve("cuda")


def test_evaluate_runs_its_cuda_branch_to_a_result(tiny_llama, fake_cuda, tmp_path):
    from widthwise.evaluation import evaluate
    from widthwise.models import load_model
    from widthwise.prune import PruneSpec, prune_model
    from widthwise.results import read_result

    loaded = load_model(str(tiny_llama), device="cuda", dtype=fake_cuda.dtype)
    assert loaded.device == fake_cuda and next(loaded.model.parameters()).device.type == "cpu"
    report = prune_model(loaded.model, PruneSpec(method="ppm", pct=25))
    outcome = evaluate(
        loaded, report, "smoke", tasks=TASKS, backend="hf", use_cache=True, checkpoints=tmp_path / "ck"
    )
    r = outcome.result
    assert read_result(outcome.cache_file)["provenance"]["cache_key"] == r["provenance"]["cache_key"]
    prov = r["provenance"]
    assert prov["device"] == "cuda:0" and prov["dtype"] == "bfloat16"
    assert prov["machine"]["fake"] == fake_cuda.fake
    assert "FakeCudaDevice" in prov["stand_in"]
    gemm = prov["profile"]["gemm"]
    assert gemm["gflops"] > 0 and gemm["fake"] == fake_cuda.fake
    assert sorted(prov["profile"]["tasks"]) == sorted(TASKS)
    assert all(t["backend"] == "hf" for t in prov["profile"]["tasks"].values())
    assert {t["backend"] for t in r["settings"]["tasks"].values()} == {"hf"}
    assert r["tier"] == "cpu"  # the suite's tier: smoke is a CPU suite whatever the device
    assert r["metrics"]["piqa/acc"]["value"] is not None
    assert not (tmp_path / "ck" / prov["cache_key"][:16]).exists()  # checkpoints removed once written


def test_the_bench_runs_its_cuda_branch(fake_cuda):
    import copy

    from widthwise.bench import BenchConfig, bench
    from widthwise.bench.workloads import Workload
    from widthwise.models import Loaded, weights_sha256
    from widthwise.prune import PruneSpec, prune_model

    base = word_llama().to(fake_cuda.dtype)
    loaded = Loaded(base, word_tokenizer(), "tiny", "tiny", weights_sha256(base), device=fake_cuda)
    pruned = copy.deepcopy(base)
    report = prune_model(pruned, PruneSpec(method="ppm", pct=50))
    prompts = tuple(f"the man is on the roof {i}" for i in range(8))
    wl = Workload("toy", prompts, tuple(map(str, range(8))), 4, "test")
    outcome = bench(loaded, (pruned, report), BenchConfig(meter="none", repeats=5), workloads=[wl])
    for r in outcome.results.values():
        assert r["tier"] == "gpu" and r["settings"]["device_kind"] == "cuda"
        assert r["settings"]["dtype"] == "bfloat16"
        assert r["settings"]["device_name"].startswith("FakeCudaDevice")
        assert "FakeCudaDevice" in r["provenance"]["stand_in"]
        assert r["metrics"]["bench:toy_b8/throughput_tok_s"]["value"] > 0
