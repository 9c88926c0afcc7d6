"""Backend and device choices: refused before any model loads when they cannot run, recorded when they do."""

from dataclasses import dataclass

import pytest

from widthwise.cli import main
from widthwise.device import CudaDevice, Device, FakeCudaDevice
from widthwise.errors import WidthwiseError
from widthwise.evaluation import backends
from widthwise.results import read_result, settings_mismatch, write_result

CPU = Device()


@dataclass(frozen=True)
class FakeFourGpus(CudaDevice):
    """FAKE: a CUDA device that counts four visible boards (this machine has none), for the counting
    rules alone; nothing runs on it."""

    fake: str | None = None  # counts as real hardware for the refusals under test

    def visible_count(self) -> int:
        return 4


def test_auto_is_one_device_on_cpu():
    assert backends.resolve_devices("hf", "auto", CPU) == 1
    assert backends.resolve_devices("hf", "1", CPU) == 1
    assert backends.resolve_devices("auto", "auto", CPU) == 1


def test_auto_backend_runs_generation_on_vllm_only_on_a_gpu():
    assert backends.per_kind("auto", CPU) == {"loglikelihood": "hf", "generate": "hf"}
    assert backends.per_kind("auto", FakeCudaDevice()) == {"loglikelihood": "hf", "generate": "vllm"}
    assert backends.per_kind("hf", FakeCudaDevice()) == {"loglikelihood": "hf", "generate": "hf"}
    assert backends.per_kind("vllm", FakeCudaDevice()) == {"loglikelihood": "vllm", "generate": "vllm"}
    assert backends.mix_label({"a": "hf", "b": "vllm", "c": "hf"}) == "hf+vllm"
    assert backends.mix_label({"a": "hf"}) == "hf"


@pytest.mark.parametrize(
    "backend, devices, device, why",
    [
        ("tgi", "1", "cpu", "unknown backend 'tgi'"),
        ("hf", "two", "cpu", "must be a number or auto"),
        ("hf", "0", "cpu", "at least 1"),
        ("hf", "2", "cpu", "needs --device cuda"),
        ("vllm", "1", "cpu", "vllm needs a CUDA device"),
    ],
)
def test_impossible_choices_are_refused(backend, devices, device, why):
    assert device == "cpu"
    with pytest.raises(WidthwiseError, match=why):
        backends.resolve_devices(backend, devices, CPU)


def test_gpu_counts(monkeypatch):
    gpus = FakeFourGpus()
    # --devices auto is the runner's allocation (CUDA_VISIBLE_DEVICES), never every board on a shared host.
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert backends.resolve_devices("hf", "auto", gpus) == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert backends.resolve_devices("hf", "auto", gpus) == 2
    assert backends.resolve_devices("hf", "4", gpus) == 4
    with pytest.raises(WidthwiseError, match="only 4 CUDA device"):
        backends.resolve_devices("hf", "8", gpus)
    if backends.importlib.util.find_spec("vllm") is None:
        for backend, what in (("vllm", "every task"), ("auto", "generation")):
            with pytest.raises(WidthwiseError, match=f"runs {what} on vLLM, which is not installed") as e:
                backends.resolve_devices(backend, "1", gpus)
            assert "constraints/gpu.txt" in str(e.value) and "--backend hf" in str(e.value)


def test_the_fake_gpu_refuses_vllm_and_takes_hf(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake = FakeCudaDevice()
    assert backends.resolve_devices("hf", "auto", fake) == 1
    with pytest.raises(WidthwiseError, match="needs a real GPU .*FakeCudaDevice is a fake.*--backend hf"):
        backends.resolve_devices("auto", "1", fake)
    with pytest.raises(WidthwiseError, match="only 1 CUDA device"):
        backends.resolve_devices("hf", "2", fake)


def test_visible_devices_count_what_the_runner_hands_us():
    assert backends.visible_cuda_devices({}) is None
    assert backends.visible_cuda_devices({"CUDA_VISIBLE_DEVICES": "0"}) == 1
    assert backends.visible_cuda_devices({"CUDA_VISIBLE_DEVICES": "GPU-a,GPU-b"}) == 2
    assert backends.visible_cuda_devices({"CUDA_VISIBLE_DEVICES": ""}) == 0


def test_which_paths_load_a_saved_folder():
    assert not backends.needs_folder("hf", 1)
    assert backends.needs_folder("hf", 2)
    assert backends.needs_folder("vllm", 1)
    assert "in-process" in backends.describe("hf", 1)["how"]
    assert backends.describe("vllm", 2) == {
        "name": "vllm",
        "devices": 2,
        "how": "VLLM in a worker process, data_parallel_size 2, tensor_parallel_size 1",
    }
    mixed = backends.describe("hf+vllm", 1, {"ifeval": "vllm", "mmlu": "hf"})
    assert mixed["tasks"] == {"ifeval": "vllm", "mmlu": "hf"}
    assert mixed["how"].startswith("hf: in-process HFLM") and "vllm: VLLM in a worker" in mixed["how"]


def test_worker_command_runs_hf_on_every_rank_and_vllm_alone(tmp_path):
    kw = {"dtype": "bfloat16", "checkpoints": tmp_path / "ck", "key": "k" * 64}
    cmd = backends.worker_command(tmp_path / "m", "paper", ["mmlu", "ifeval"], backend="hf", devices=4, **kw)
    assert cmd[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert "--nproc_per_node=4" in cmd
    worker = cmd[cmd.index("widthwise.evaluation.worker") :]
    assert worker[1:] == [
        str(tmp_path / "m"),
        *("--suite", "paper", "--tasks", "mmlu,ifeval", "--backend", "hf", "--devices", "4"),
        *("--dtype", "bfloat16", "--scoring", "prefix", "--checkpoints", str(tmp_path / "ck")),
        *("--key", "k" * 64),
    ]
    vllm = backends.worker_command(tmp_path / "m", "paper", ["ifeval"], backend="vllm", limit=3, **kw)
    assert "torch.distributed.run" not in vllm and vllm[1:3] == ["-m", "widthwise.evaluation.worker"]
    assert vllm[vllm.index("--limit") + 1] == "3"


def test_backend_is_a_comparison_setting_and_old_evaluations_read_as_hf(tmp_path):
    from pathlib import Path

    # A stored evaluation from before the backend was recorded (schema 1) reads as lm-eval's HFLM.
    stored = Path(__file__).resolve().parents[2] / "baselines" / "measured" / "smoke"
    old = read_result(next(stored.glob("*.json")))
    assert old["settings"]["backend"] == "hf"
    vllm = {**old, "settings": {**old["settings"], "backend": "vllm"}}
    assert settings_mismatch(old, vllm) == ["backend: 'hf' != 'vllm'"]
    write_result(vllm, tmp_path / "v.json")
    assert settings_mismatch(read_result(tmp_path / "v.json"), old) == ["backend: 'vllm' != 'hf'"]


@pytest.mark.parametrize(
    "argv, why",
    [
        (["eval", "no-such-model", "--suite", "smoke", "--backend", "vllm"], "vllm needs a CUDA device"),
        (["eval", "no-such-model", "--suite", "smoke", "--devices", "2"], "needs --device cuda"),
        (["sweep", "no-such-model", "--devices", "2", "--out", "{tmp}/s"], "needs --device cuda"),
    ],
)
def test_cli_refuses_before_loading_anything(argv, why, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert why in err and "no-such-model" not in err  # refused before the model was looked up
    assert not (tmp_path / "s").exists()


def test_vllm_arguments_exist_in_lm_evals_vllm_backend(tmp_path):
    """vllm is not installed here, so lm-eval's VLLM class cannot be imported; its source is read instead,
    so a renamed argument in a new lm-eval fails here rather than on a GPU runner."""
    import ast
    import importlib.util
    from pathlib import Path

    source = Path(importlib.util.find_spec("lm_eval.models.vllm_causallms").origin).read_text()
    cls = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef) and n.name == "VLLM")
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    accepted = {a.arg for a in init.args.args + init.args.kwonlyargs}
    ours = backends.vllm_args(tmp_path, dtype="bfloat16", devices=2, seed=1234)
    assert set(ours) <= accepted
    assert ours["data_parallel_size"] == 2 and ours["tensor_parallel_size"] == 1
