"""Backend and device choices: refused before any model loads when they cannot run, recorded when they do."""

import pytest

from widthwise.cli import main
from widthwise.errors import WidthwiseError
from widthwise.evaluation import backends
from widthwise.results import read_result, settings_mismatch, write_result


def test_auto_is_one_device_on_cpu():
    assert backends.resolve_devices("hf", "auto", "cpu") == 1
    assert backends.resolve_devices("hf", "1", "cpu") == 1


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
    with pytest.raises(WidthwiseError, match=why):
        backends.resolve_devices(backend, devices, device)


def test_gpu_counts(monkeypatch):
    # Fake at the hardware boundary: this machine has no GPU, so the count of visible GPUs is set by hand.
    monkeypatch.setattr(backends, "cuda_devices", lambda: 4)
    assert backends.resolve_devices("hf", "auto", "cuda") == 4
    assert backends.resolve_devices("hf", "2", "cuda") == 2
    with pytest.raises(WidthwiseError, match="only 4 CUDA device"):
        backends.resolve_devices("hf", "8", "cuda")
    if backends.importlib.util.find_spec("vllm") is None:
        with pytest.raises(WidthwiseError, match="vllm package is not installed"):
            backends.resolve_devices("vllm", "1", "cuda")


def test_which_paths_load_a_saved_folder():
    assert not backends.needs_folder("hf", 1)
    assert backends.needs_folder("hf", 2)
    assert backends.needs_folder("vllm", 1)
    assert "in-process" in backends.describe("hf", 1)["how"]
    assert backends.describe("vllm", 2) == {
        "name": "vllm",
        "devices": 2,
        "how": "VLLM, data_parallel_size 2, tensor_parallel_size 1",
    }


def test_launch_command_runs_the_worker_on_every_rank(tmp_path):
    cmd = backends.launch_command(
        tmp_path / "m", "paper", ["mmlu", "ifeval"], dtype="bfloat16", out=tmp_path / "o.json", nproc=4
    )
    assert cmd[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert "--nproc_per_node=4" in cmd
    worker = cmd[cmd.index("widthwise.evaluation.dataparallel") :]
    assert worker[1:] == [
        str(tmp_path / "m"),
        *(
            "--suite",
            "paper",
            "--dtype",
            "bfloat16",
            "--scoring",
            "prefix",
            "--out",
            str(tmp_path / "o.json"),
        ),
        *("--tasks", "mmlu,ifeval"),
    ]
    plain = backends.launch_command(
        tmp_path / "m", "paper", None, dtype="bfloat16", out=tmp_path / "o.json", nproc=4, scoring="plain"
    )
    assert plain[plain.index("--scoring") + 1] == "plain"


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
