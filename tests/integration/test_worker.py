"""The multi-device hf path end to end on CPU: a pruned model saved to a folder, two torchrun ranks of
widthwise.evaluation.dataparallel, lm-eval in each, and rank 0's output identical to the in-process
evaluation.

What CPU cannot show: lm-eval shards documents across ranks only when it counts more than one GPU, so
here each rank scores every document. The launch, the folder round trip, the worker and the single write
by rank 0 are real; the sharding itself is lm-eval's, exercised on GPU runners.
"""

import pytest

from support import evaluate_at, save_tiny_llama
from widthwise.evaluation import backends
from widthwise.models import load_model, save_model
from widthwise.prune import PruneSpec, prune_model

pytestmark = pytest.mark.slow

TASKS = ["lambada_openai", "piqa", "ifeval"]  # perplexity, multiple choice, generation + IFEval extras


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory, default_model):
    return save_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama", default_model.tokenizer)


def test_two_ranks_reproduce_the_in_process_result(tiny_llama, tmp_path):
    one = evaluate_at(str(tiny_llama), "smoke", pct=25, tasks=TASKS)
    assert one["settings"]["backend"] == "hf"
    assert one["provenance"]["backend"]["devices"] == 1

    loaded = load_model(str(tiny_llama))
    prune_model(loaded.model, PruneSpec(method="ppm", pct=25))
    folder = save_model(loaded.model, loaded.tokenizer, tmp_path / "pruned", {"test": True}, force=False)
    parts = backends.run_data_parallel(
        folder,
        "smoke",
        TASKS,
        dtype="float32",
        nproc=2,
        workdir=tmp_path,
        env={"ACCELERATE_USE_CPU": "true"},
    )
    assert parts["headline"] == one["headline"]
    assert parts["samples"] == one["samples"]
    for key, entry in one["metrics"].items():
        if "not_measurable" in entry:
            continue
        assert parts["metrics"][key] == pytest.approx(entry, nan_ok=True), key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parts.json", "pruned"]  # one file, one writer


def test_a_failing_rank_is_reported_with_its_error(tmp_path):
    with pytest.raises(backends.WidthwiseError, match="data-parallel evaluation failed"):
        backends.run_data_parallel(
            tmp_path / "missing",
            "smoke",
            ["piqa"],
            dtype="float32",
            nproc=2,
            workdir=tmp_path,
            env={"ACCELERATE_USE_CPU": "true"},
        )
