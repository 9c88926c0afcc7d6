"""tools/gpu_smoke.py's assertions (judge) on hand-made Results: each one holds on a sound run and fails
on the defect it is there to catch. The smoke itself needs a GPU (nox -s gpu-smoke); on CPU it runs under
the fake device (see its docstring)."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "gpu_smoke.py"


@pytest.fixture(scope="module")
def smoke():
    spec = importlib.util.spec_from_file_location("gpu_smoke", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _bench(k: int, b1: float, b8: float, j_net: float = 0.2, j_gross: float = 0.3) -> dict:
    window = {"seconds": 10.4, "joules": 2100.0}
    metrics = {
        "bench:mmlu_b1/throughput_tok_s": {"value": b1},
        "bench:mmlu_b8/throughput_tok_s": {"value": b8},
        "bench:mmlu_b1/ttft_ms": {"value": 18.0},
        "bench:mmlu_b1/latency_ms": {"value": 640.0},
        "bench:mmlu_b1/j_per_token": {"value": j_net},
        "bench:mmlu_b1/j_per_token_gross": {"value": j_gross},
        "bench:avg/j_per_token": {"value": j_net},
    }
    return {
        "settings": {"device_kind": "cuda", "dtype": "bfloat16"},
        "model": {"intermediate_size": k},
        "expansion_ratio": k / 2048,
        "bench": {"windows": {"mmlu_b1": [dict(window)] * 5, "mmlu_b8": [dict(window)] * 5}},
        "metrics": metrics,
    }


def _sound():
    return {
        "40": _bench(4916, 50.0, 300.0),
        "40.base": _bench(8192, 48.0, 280.0),
        "60": _bench(3277, 50.0, 310.0),
        "60.base": _bench(8192, 48.0, 281.0),
    }


def _failed(smoke, benches, code=1, min_window=10.0):
    return [name for name, ok, _ in smoke.judge(benches, code, min_window) if not ok]


def test_a_sound_run_passes_every_assertion(smoke):
    assert _failed(smoke, _sound()) == []
    assert _failed(smoke, _sound(), code=0) == []


@pytest.mark.parametrize(
    "break_it, expected",
    [
        (lambda b: b["40"]["settings"].update(device_kind="cpu"), "device cuda"),
        (lambda b: b["40"]["settings"].update(dtype="float32"), "bf16"),
        (lambda b: b["40"].update(model={"intermediate_size": 4915}, expansion_ratio=4915 / 2048 - 0.006),
         "width 4916 at 40%"),
        (lambda b: b["60"]["bench"]["windows"]["mmlu_b8"].append({"seconds": 2.1, "joules": 400.0}),
         "60: every window >= 10 s"),
        (lambda b: b["60"]["bench"]["windows"]["mmlu_b8"].append({"seconds": 11.0, "joules": 0.0}),
         "60: every window > 0 J"),
        (lambda b: b["40"]["metrics"]["bench:mmlu_b1/j_per_token"].update(value=0.31),
         "40: 0 < net < gross J/token (bench:mmlu_b1/j_per_token)"),
        (lambda b: b["40"]["metrics"]["bench:mmlu_b1/j_per_token"].update(value=-0.01),
         "40: 0 < net < gross J/token (bench:mmlu_b1/j_per_token)"),
        (lambda b: b["40"]["metrics"]["bench:mmlu_b1/ttft_ms"].update(value=700.0),
         "40: TTFT < latency (bench:mmlu_b1/ttft_ms)"),
        (lambda b: b["40.base"]["metrics"]["bench:mmlu_b8/throughput_tok_s"].update(value=40.0),
         "base batch-8 throughput > batch 1"),
    ],
)  # fmt: skip
def test_each_assertion_fails_on_its_defect(smoke, break_it, expected):
    benches = copy.deepcopy(_sound())
    break_it(benches)
    assert expected in _failed(smoke, benches)


def test_a_check_that_cannot_decide_fails_the_smoke(smoke):
    assert _failed(smoke, _sound(), code=2) == ["check decides (exit 0 or 1, never 2)"]
