"""Energy you can trust: long windows, idle before and after, implausible windows flagged and kept, and a
cell with too few good windows not measurable (so the gate fails closed), on windows built by hand and on
real generation under the fake NVML (the GPU measurement path, run on the CPU with short windows)."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from support import WORDS, run_cli, word_llama, word_tokenizer
from widthwise.bench import BenchConfig, bench, energy, figures, parse_config, timing
from widthwise.bench.accounting import EnergyAccount
from widthwise.bench.config import DEFAULT_MIN_WINDOW_S, MIN_REPEATS
from widthwise.bench.energy import NvmlMeter, Reading, open_meter
from widthwise.bench.fake_nvml import FakePynvml
from widthwise.bench.workloads import Workload
from widthwise.device import FAKE_ENV
from widthwise.errors import WidthwiseError
from widthwise.models import Loaded, weights_sha256
from widthwise.prune import PruneSpec, pruned_copy
from widthwise.results import validate, write_result

PROMPTS = tuple(" ".join(WORDS[i : i + 3 + i % 5]) for i in range(8))
TOY = Workload("toy", PROMPTS, tuple(f"toy#{i}" for i in range(8)), 4, "test")
MODEL = "tiny-word-llama"
WINDOW_S = 0.3  # short windows for CPU tests; the fake's counter updates every 10 ms to match


# ---- windows built by hand: the rules, exactly ------------------------------------------------------------
def window(joules: float, seconds: float = 10.0, tokens: int = 100) -> timing.Window:
    call = timing.Call(batch_size=8, new_tokens=tokens, ttft_s=0.01, tpot_s=0.02, latency_s=seconds)
    return timing.Window(
        calls=[call], seconds=seconds, energy=Reading(joules, seconds, "nvml-energy-counter")
    )


def cell(workload: str, joules: list[float]) -> timing.Cell:
    return timing.Cell(workload, 8, 4, 1, 40, windows={"base": [window(j) for j in joules]})


def test_flagged_windows_leave_the_energy_figures_and_are_kept():
    # Idle 60 W over 10 s windows = 600 J; 400 J reads below idle, 9000 J above the 700 W limit.
    c = cell("w", [1000.0, 1100.0, 400.0, 1200.0, 1300.0, 9000.0, 1400.0])
    assert timing.assess_energy([c], 60.0, 700.0) == 2
    flags = [w.flag for w in c.windows["base"]]
    assert flags[2] == "average power 40.0 W below idle 60.0 W"
    assert flags[5] == "average power 900.0 W above the power limit 700.0 W"
    assert [f is None for f in flags] == [True, True, False, True, True, False, True]
    m = figures.metrics(figures.series([c], "base"), None, figures.flags([c], "base"))
    # Net J/token of the five good windows: (J - 60 W x 10 s) / 100 tokens = 4, 5, 6, 7, 8.
    assert m["bench:w_b8/j_per_token"] == {"value": 6.0, "stderr": pytest.approx(0.7071, abs=1e-4), "n": 5}
    assert m["bench:w_b8/j_per_token_gross"]["value"] == 12.0 and m["bench:w_b8/j_per_token_gross"]["n"] == 5
    assert m["bench:w_b8/throughput_tok_s"]["n"] == 7  # timings keep every window
    assert [r["flag"] for r in (w.record() for w in c.windows["base"])] == flags  # kept, with the flag


def test_too_few_good_windows_make_energy_not_measurable_with_the_reason():
    c = cell("w", [1000.0, 0.0, 1100.0, 1200.0, 1300.0])  # one window of no energy among MIN_REPEATS
    timing.assess_energy([c], 60.0, 700.0)
    m = figures.metrics(figures.series([c], "base"), None, figures.flags([c], "base"))
    e = m["bench:w_b8/j_per_token"]
    assert e["value"] is None and e["n"] is None
    assert e["not_measurable"].startswith("energy: 1 of 5 windows flagged (repeat 2: energy 0.0000 J over")
    assert f"4 of 5 windows measured it, {MIN_REPEATS} needed" in e["not_measurable"]
    assert (
        m["bench:avg/j_per_token"]["value"] is None
        and "repeat 2" in m["bench:avg/j_per_token"]["not_measurable"]
    )
    assert m["bench:w_b8/throughput_tok_s"]["value"] > 0  # the timings still stand


def test_an_aggregate_counts_a_repeat_only_when_all_its_cells_measured_it():
    a = cell("a", [1000.0, 400.0] + [1000.0] * 5)  # repeat 2 flagged
    b = cell("b", [1000.0, 1000.0, 400.0] + [1000.0] * 4)  # repeat 3 flagged
    timing.assess_energy([a, b], 60.0, None)
    figs, flags = figures.series([a, b], "base"), figures.flags([a, b], "base")
    assert flags["avg"][1].startswith("a_b8: average power") and flags["avg"][2].startswith("b_b8: ")
    m = figures.metrics(figs, None, flags)
    assert m["bench:avg/j_per_token"]["n"] == 5 and m["bench:avg/j_per_token"]["value"] == 4.0
    assert m["bench:a_b8/j_per_token"]["n"] == 6
    # Base and pruned pair repeat by repeat, only where both measured.
    pruned = copy.deepcopy(figs)
    r = figures.paired_ratios(figs["a_b8"], pruned["a_b8"], _ideal(), min_pairs=6)
    assert r["j_per_token"]["ratio"]["n"] == 6 and r["throughput_tok_s"]["ratio"]["n"] == 7
    assert "j_per_token" not in figures.paired_ratios(figs["a_b8"], pruned["a_b8"], _ideal(), min_pairs=7)


def _ideal():
    from widthwise.bench.models import Ideal

    return Ideal(decode=1.5, prefill=1.6)


def test_window_minimum_default_and_flags():
    assert BenchConfig().window_s(metered=True) == DEFAULT_MIN_WINDOW_S == 10.0
    assert BenchConfig().window_s(metered=False) == 0.0  # timings alone need no minimum
    assert parse_config(["--min-window-s", "0.3"]).window_s(metered=True) == 0.3
    with pytest.raises(WidthwiseError, match="--min-window-s must be 0 or more"):
        parse_config(["--min-window-s", "-1"])
    with pytest.raises(WidthwiseError, match="--idle-s must be positive"):
        parse_config(["--idle-s", "0"])


# ---- real generation under the fake NVML ----------------------------------------------------------------
@pytest.fixture
def fake_cuda_nvml(monkeypatch):
    """WIDTHWISE_FAKE_CUDA=1, as the fake CUDA device sets it, with a counter quick enough for 0.3 s; one
    torch thread, so that no idle worker thread spins into an idle window (the fake counts our CPU time)."""
    monkeypatch.setenv(FAKE_ENV, "1")
    monkeypatch.setenv("WIDTHWISE_FAKE_NVML_UPDATE_S", "0.01")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def loaded() -> Loaded:
    model = word_llama()
    return Loaded(model, word_tokenizer(), MODEL, MODEL, weights_sha256(model))


def run_bench(**config) -> dict:
    base = loaded()
    cfg = BenchConfig(
        batch_sizes=(8,), meter="nvml", idle_s=WINDOW_S, min_window_s=WINDOW_S, **config
    )  # fmt: skip
    outcome = bench(base, pruned_copy(base.model, PruneSpec(pct=50)), cfg, device="cpu", workloads=[TOY])
    for r in outcome.results.values():
        validate(r)
    return outcome.results


def test_the_gpu_measurement_path_under_the_fake_nvml(fake_cuda_nvml, monkeypatch):
    spied = []
    real = timing.timed_generate
    monkeypatch.setattr(timing, "timed_generate", lambda *a: spied.append(1) or real(*a))
    results = run_bench()
    base, pruned = results["base"], results["pruned"]
    e = base["bench"]["energy"]
    assert e["meter"] == "nvml" and e["method"] == "nvml-energy-counter" and e["fake"] == FakePynvml.FAKE
    assert base["provenance"]["machine"]["energy_meter"]["fake"] == FakePynvml.FAKE
    assert e["not_measurable"] is None and e["flagged_windows"] == 0
    idle = e["idle"]
    assert idle["before"]["seconds"] >= WINDOW_S and idle["after"]["seconds"] >= WINDOW_S
    assert idle["watts"] == pytest.approx((idle["before"]["watts"] + idle["after"]["watts"]) / 2)
    assert idle["before"]["watts"] == pytest.approx(60.0, rel=0.05)  # the fake's idle, read over a sleep
    # After the cells, threads of ours may still spin for a moment (as a board stays warm): the drift is
    # recorded, and flagged past its tolerance.
    assert idle["after"]["watts"] > 0.95 * 60.0
    assert idle["drift_w"] == pytest.approx(idle["after"]["watts"] - idle["before"]["watts"])
    assert (idle["drift_flag"] is None) == (abs(idle["drift_w"]) <= 0.1 * idle["watts"])
    assert base["settings"]["min_window_s"] == WINDOW_S
    calls = 0
    for r in (base, pruned):
        (records,) = r["bench"]["windows"].values()
        assert len(records) == MIN_REPEATS
        nets = []
        for w in records:
            assert w["seconds"] >= WINDOW_S and w["joules"] > 0 and w["flag"] is None
            assert w["tokens"] == w["calls"] * 8 * 4  # whole passes over the one batch of 8, 4 tokens each
            assert w["watts"] > idle["watts"]  # generating reads above idle
            nets.append((w["joules"] - idle["watts"] * w["meter_seconds"]) / w["tokens"])
            calls += w["calls"]
        assert r["bench"]["spread"]["toy_b8/j_per_token"]["values"] == pytest.approx(nets)
        m = r["metrics"]
        assert m["bench:toy_b8/j_per_token"]["n"] == MIN_REPEATS
        assert 0 < m["bench:toy_b8/j_per_token"]["value"] < m["bench:toy_b8/j_per_token_gross"]["value"]
        assert m["bench:avg/j_per_token"]["value"] == m["bench:toy_b8/j_per_token"]["value"]
    # Warm-up: one pass over the one batch per model, never extended to the minimum window.
    assert len(spied) == calls + 2
    assert "j_per_token" in pruned["bench"]["vs_base"]["toy_b8"]


def test_a_meter_reading_below_idle_is_flagged_not_fatal_and_check_shows_why(
    fake_cuda_nvml, monkeypatch, tmp_path, capsys
):
    # A meter that reads less while working than at rest: every timed window is implausible (60 W idle,
    # under 57 W as soon as generation holds 6% of a core).
    monkeypatch.setattr(energy, "import_pynvml", lambda: FakePynvml(busy_w=-55.0, update_s=0.01))
    results = run_bench()
    for r in results.values():
        assert r["bench"]["energy"]["flagged_windows"] == 2 * MIN_REPEATS
        (records,) = r["bench"]["windows"].values()
        assert len(records) == MIN_REPEATS and all("below idle" in w["flag"] for w in records)
        e = r["metrics"]["bench:avg/j_per_token"]
        assert e["value"] is None and "5 of 5 windows flagged" in e["not_measurable"]
        assert r["metrics"]["bench:b8/throughput_tok_s"]["value"] > 0
    write_result(results["base"], tmp_path / "r" / "p50.base.json")
    write_result(results["pruned"], tmp_path / "r" / "p50.json")
    claim = {
        "statement": "J/token falls",
        "metric": "bench:avg/j_per_token",
        "kind": "ratio_at_most",
        "models": [MODEL],
        "tiers": ["cpu"],
        "configs": "most_pruned",
        "bound": 0.95,
    }
    thresholds = tmp_path / "t.toml"
    thresholds.write_text(_toml({"claims": {"energy": claim}}))
    code, out, _ = run_cli(["check", str(tmp_path / "r"), "--thresholds", str(thresholds)], capsys)
    assert code == 1  # fails closed on the measured tier
    assert "energy: 5 of 5 windows flagged (repeat 1: toy_b8: average power" in out
    assert "below idle" in out and "3 more)" in out
    # Only a claim's `optional` accepts the gap, and the reason still shows.
    thresholds.write_text(_toml({"claims": {"energy": {**claim, "optional": "no trusted meter here"}}}))
    code, out, _ = run_cli(["check", str(tmp_path / "r"), "--thresholds", str(thresholds)], capsys)
    assert code == 0 and "no trusted meter here" in out


def _toml(doc: dict) -> str:
    lines = []
    for cid, c in doc["claims"].items():
        lines.append(f"[claims.{cid}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in c.items()]
    return "\n".join(lines) + "\n"


def test_a_counter_that_stops_during_the_cells_makes_energy_not_measurable(fake_cuda_nvml):
    meter = open_meter("nvml", device="cuda")
    assert isinstance(meter, NvmlMeter)
    account = EnergyAccount(meter, WINDOW_S)
    model, tok = word_llama(), word_tokenizer()
    c = timing.run_cell([("base", model)], tok, TOY, 8, repeats=MIN_REPEATS, warmup=0, device="cpu",
                        max_prompt_tokens=512, meter=account.window_meter, min_window_s=0.05)  # fmt: skip
    meter.nvml.nvmlDeviceGetTotalEnergyConsumption = lambda handle: 1_000  # stuck from here on
    e = account.settle([c])
    assert e["not_measurable"].startswith("idle after the cells: idle calibration measured 0.000 J")
    assert e["flagged_windows"] == MIN_REPEATS and all(w.flag for w in c.windows["base"])
    m = figures.metrics(figures.series([c], "base"), e["not_measurable"], figures.flags([c], "base"))
    assert "not counting" in m["bench:toy_b8/j_per_token"]["not_measurable"]
    assert m["bench:toy_b8/tpot_ms"]["value"] > 0


def test_widthwise_bench_under_fake_cuda_says_its_meter_is_a_fake(fake_cuda_nvml, tmp_path, capsys):
    from support import save_tiny_llama
    from widthwise.results import read_result

    folder = save_tiny_llama(
        tmp_path / "tiny", word_tokenizer(), vocab_size=64, eos_token_id=2, pad_token_id=1
    )
    out = tmp_path / "r" / "tiny.json"
    argv = ["bench", str(folder), "--pct", "50", "--workloads", "mmlu", "--prompts", "8", "--new-tokens", "3",
            "--batch-sizes", "8", "--meter", "nvml", "--min-window-s", "0.3", "--idle-s", "0.3",
            "--threads", "1", "--out", str(out)]  # fmt: skip
    code, printed, _ = run_cli(argv, capsys)
    assert code == 0
    assert f"energy meter: {FakePynvml.FAKE}" in printed and "0 window(s) flagged" in printed
    r = read_result(out)
    assert r["bench"]["energy"]["fake"] == FakePynvml.FAKE and r["settings"]["min_window_s"] == 0.3
    assert r["metrics"]["bench:mmlu_b8/j_per_token"]["value"] > 0
    assert all(w["seconds"] >= 0.3 for w in r["bench"]["windows"]["mmlu_b8"])
