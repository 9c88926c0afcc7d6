"""The bench on a real GPU with the real NVML energy counter (skipped, with the reason, without CUDA).

The same measurement code runs on the CPU under FakePynvml in tests/unit/test_bench_energy.py; here it
meets the hardware: the counter, 10 s windows, idle before and after, and a pruned model that must be
cheaper and faster than its base. About two minutes on one H100, most of it the timed windows.
"""

from __future__ import annotations

import copy
import statistics
import time

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs CUDA: torch.cuda.is_available() is False"
    ),
]

IDLE_S = 5.0  # each idle window; NVML's counter updates every ~100 ms, so it is read to ~2%


@pytest.fixture(scope="module")
def meter():
    from widthwise.bench.energy import open_meter
    from widthwise.device import cuda_uuid

    m = open_meter("nvml", device="cuda", gpu_uuid=cuda_uuid("cuda"))
    yield m
    m.close()


def test_nvml_counter_measures_a_busy_window_above_idle(meter):
    from widthwise.bench.energy import calibrate_idle, power_flag

    assert meter.facts()["fake"] is None  # the real bindings, not the rehearsal's fake
    idle = calibrate_idle(meter, 2.0)
    x = torch.randn(8192, 8192, device="cuda")
    torch.cuda.synchronize()
    meter.start()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 2.0:
        x = torch.tanh(x @ x)
    torch.cuda.synchronize()
    busy = meter.stop()
    assert power_flag(busy, idle.watts, meter.power_limit_w()) is None
    assert busy.watts > idle.watts
    print(
        f"\nidle {idle.watts:.1f} W, busy {busy.watts:.1f} W ({busy.method}), limit {meter.power_limit_w()} W"
    )


def test_gpu_facts_name_the_board(meter):
    from widthwise.device import device_facts

    facts = device_facts("cuda", meter)
    assert facts["gpu_name"] and facts["driver"] and facts["power_limit_w"] > 0
    assert facts["cuda_device_name"] == torch.cuda.get_device_name()


class Tok:
    """Token ids only (one per character, truncated to max_length): the bench needs padding and ids."""

    padding_side = "left"
    pad_token, eos_token, pad_token_id, eos_token_id = "<pad>", "<eos>", 1, 2

    def __call__(self, texts, max_length=None, **_):
        ids = [[3 + (ord(c) % 900) for c in t][:max_length] for t in texts]
        n = max(map(len, ids))
        return {
            "input_ids": torch.tensor([[1] * (n - len(i)) + i for i in ids]),
            "attention_mask": torch.tensor([[0] * (n - len(i)) + [1] * len(i) for i in ids]),
        }


def test_pruned_llama_1b_shape_is_cheaper_and_faster_per_token_than_its_base(meter):
    from widthwise.bench import figures, timing
    from widthwise.bench.accounting import EnergyAccount
    from widthwise.bench.config import DEFAULT_MIN_WINDOW_S, MIN_REPEATS
    from widthwise.bench.models import random_model
    from widthwise.bench.workloads import Workload
    from widthwise.prune import PruneSpec, prune_model

    base = random_model("random:llama-3.2-1b-shape:16", dtype=torch.bfloat16).to("cuda")
    pruned = copy.deepcopy(base)
    prune_model(pruned, PruneSpec(pct=40))
    assert pruned.config.intermediate_size == 4916  # 2.40x of hidden 2048, the paper's narrowest 1B width

    # Prefill-heavy on purpose: 8 x 2048 prompt tokens and 2 new ones per call. HF's eager decode of a 1B
    # model on an H100 is bound by launching kernels from Python, the same for both widths; a 16k-token
    # prefill is bound by the GPU's matmuls, of which pruning removes a third.
    w = Workload("long", tuple(f"prompt {i} " * 300 for i in range(8)), tuple(map(str, range(8))), 2, "t")
    account = EnergyAccount(meter, IDLE_S, print)
    assert account.window_meter is meter
    cell = timing.run_cell(
        [("base", base), ("pruned", pruned)],
        Tok(),
        w,
        8,
        repeats=MIN_REPEATS,
        warmup=1,
        device="cuda",
        max_prompt_tokens=2048,
        meter=account.window_meter,
        min_window_s=DEFAULT_MIN_WINDOW_S,
    )
    energy = account.settle([cell])
    assert energy["not_measurable"] is None and energy["flagged_windows"] == 0, energy
    idle_w = energy["idle"]["watts"]
    assert idle_w > 0 and energy["idle"]["before"]["seconds"] >= IDLE_S
    print(f"\nidle {energy['idle']}")

    medians = {}
    for label in ("base", "pruned"):
        nets = []
        for win in cell.windows[label]:
            assert win.energy is not None and win.energy.method == "nvml-energy-counter"
            assert win.seconds >= DEFAULT_MIN_WINDOW_S and win.energy.seconds >= DEFAULT_MIN_WINDOW_S
            assert win.tokens == len(win.calls) * 8 * 2  # whole passes over the one batch, 2 tokens each
            net = (win.energy.joules - idle_w * win.energy.seconds) / win.tokens
            f = win.figures()
            assert f["j_per_token"] == pytest.approx(net, rel=1e-9)
            assert f["j_per_token_gross"] == pytest.approx(win.energy.joules / win.tokens, rel=1e-9)
            assert net > 0  # generating draws more than idle
            nets.append(net)
        m = figures.metrics(figures.series([cell], label), None, figures.flags([cell], label))
        assert m["bench:long_b8/j_per_token"]["value"] == pytest.approx(statistics.median(nets))
        medians[label] = {k: m[f"bench:long_b8/{k}"]["value"] for k in ("j_per_token", "throughput_tok_s")}
        medians[label]["ttft_ms"] = m["bench:long_b8/ttft_ms"]["value"]
    print(f"medians {medians}")
    assert medians["pruned"]["j_per_token"] < medians["base"]["j_per_token"]
    assert medians["pruned"]["throughput_tok_s"] > medians["base"]["throughput_tok_s"]
    assert medians["pruned"]["ttft_ms"] < medians["base"]["ttft_ms"]
