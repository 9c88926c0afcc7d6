"""The worker paths end to end on CPU: a pruned model saved to a folder, the evaluation worker on it (two
torchrun ranks of the hf backend, as several GPUs run it), each task family checkpointed as it finishes,
and the parts identical to the in-process evaluation's.

What CPU cannot show: lm-eval shards documents across ranks only when it counts more than one GPU, so
here each rank scores every document; and vLLM needs a GPU. The launch, the folder round trip, the worker,
the per-task checkpoints and the single write by rank 0 are real; the sharding itself is lm-eval's,
exercised on GPU runners.
"""

import json

import pytest

from support import evaluate_at, save_tiny_llama
from widthwise.errors import WidthwiseError
from widthwise.evaluation import backends
from widthwise.evaluation.pertask import Checkpoints
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
    assert {t["backend"] for t in one["settings"]["tasks"].values()} == {"hf"}
    assert one["provenance"]["backend"]["devices"] == 1

    loaded = load_model(str(tiny_llama))
    prune_model(loaded.model, PruneSpec(method="ppm", pct=25))
    folder = save_model(loaded.model, loaded.tokenizer, tmp_path / "pruned", {"test": True}, force=False)
    store = Checkpoints(tmp_path / "ck", "0123456789abcdef" * 4)
    kw = {"backend": "hf", "devices": 2, "dtype": "float32", "checkpoints": store.root, "key": store.key}
    cmd = backends.worker_command(folder, "smoke", TASKS, **kw)
    backends.run_worker(cmd, env={"ACCELERATE_USE_CPU": "true"})
    parts = store.load()
    assert sorted(parts) == sorted(TASKS)  # one part per family, written once (by rank 0)
    headline = {k: v for p in parts.values() for k, v in p["headline"].items()}
    samples = {k: v for p in parts.values() for k, v in p["samples"].items()}
    metrics = {k: v for p in parts.values() for k, v in p["metrics"].items()}
    assert headline == one["headline"]
    assert json.loads(json.dumps(samples)) == one["samples"]
    for key, entry in one["metrics"].items():
        if "not_measurable" in entry:
            continue
        assert metrics[key] == pytest.approx(entry, nan_ok=True), key
    assert {p["backend"] for p in parts.values()} == {"hf"}


def test_a_failing_worker_is_reported_with_its_error(tmp_path):
    cmd = backends.worker_command(
        tmp_path / "missing",
        "smoke",
        ["piqa"],
        backend="hf",
        devices=2,
        dtype="float32",
        checkpoints=tmp_path / "ck",
        key="f" * 64,
    )
    with pytest.raises(WidthwiseError, match="hf evaluation worker failed"):
        backends.run_worker(cmd, env={"ACCELERATE_USE_CPU": "true"})
