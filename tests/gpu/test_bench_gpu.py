"""The bench on a real GPU with the real NVML energy counter (skipped, with the reason, without CUDA)."""

from __future__ import annotations

import copy
import time

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs CUDA: torch.cuda.is_available() is False"
    ),
]


@pytest.fixture(scope="module")
def meter():
    from widthwise.bench.energy import open_meter
    from widthwise.device import cuda_uuid

    m = open_meter("nvml", device="cuda", gpu_uuid=cuda_uuid("cuda"))
    yield m
    m.close()


def test_nvml_counter_measures_a_busy_window_above_idle(meter):
    from widthwise.bench.energy import calibrate_idle, check_power

    idle = calibrate_idle(meter, 2.0)
    x = torch.randn(8192, 8192, device="cuda")
    torch.cuda.synchronize()
    meter.start()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 2.0:
        x = torch.tanh(x @ x)
    torch.cuda.synchronize()
    busy = meter.stop()
    check_power(busy, idle.watts, meter.power_limit_w(), "matmul loop")
    assert busy.watts > idle.watts
    print(
        f"\nidle {idle.watts:.1f} W, busy {busy.watts:.1f} W ({busy.method}), limit {meter.power_limit_w()} W"
    )


def test_gpu_facts_name_the_board(meter):
    from widthwise.device import device_facts

    facts = device_facts("cuda", meter)
    assert facts["gpu_name"] and facts["driver"] and facts["power_limit_w"] > 0
    assert facts["cuda_device_name"] == torch.cuda.get_device_name()


def test_bench_on_gpu_reports_joules_per_token(meter):
    from transformers import LlamaConfig, LlamaForCausalLM

    from widthwise.bench.energy import calibrate_idle
    from widthwise.bench.timing import run_cell
    from widthwise.bench.workloads import Workload
    from widthwise.prune import PruneSpec, prune_model

    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=256, intermediate_size=1024, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=1000, eos_token_id=2, pad_token_id=1)  # fmt: skip
    base = LlamaForCausalLM(cfg).to("cuda", torch.bfloat16).eval()
    pruned = copy.deepcopy(base)
    prune_model(pruned, PruneSpec(pct=40))

    class Tok:  # ids only: the bench needs padding, nothing else from a tokenizer
        padding_side = "left"
        pad_token, eos_token, pad_token_id, eos_token_id = "<pad>", "<eos>", 1, 2

        def __call__(self, texts, **_):
            ids = [[3 + (ord(c) % 900) for c in t] for t in texts]
            n = max(map(len, ids))
            return {
                "input_ids": torch.tensor([[1] * (n - len(i)) + i for i in ids]),
                "attention_mask": torch.tensor([[0] * (n - len(i)) + [1] * len(i) for i in ids]),
            }

    w = Workload(
        "toy", tuple(f"prompt number {i} " * (i + 1) for i in range(8)), tuple(map(str, range(8))), 16, "t"
    )
    idle = calibrate_idle(meter, 2.0)
    cell = run_cell(
        [("base", base), ("pruned", pruned)],
        Tok(),
        w,
        8,
        repeats=5,
        warmup=1,
        device="cuda",
        max_prompt_tokens=512,
        meter=meter,
        idle=idle,
        power_limit_w=meter.power_limit_w(),
        min_window_s=1.0,
    )
    for label in ("base", "pruned"):
        for win in cell.windows[label]:
            f = win.figures()
            assert win.energy is not None and win.energy.method == "nvml-energy-counter"
            assert f["j_per_token_gross"] > f["j_per_token"]  # idle was taken off
            assert f["j_per_token_gross"] > 0 and f["throughput_tok_s"] > 0
