"""Timing of generation at a fixed output length: TTFT, time per output token, latency, throughput, J/token.

What is measured, and how (the paper's flaws, docs/paper.md §3, are the reasons for each rule):

* Fixed length. Every generate() runs greedy with min_new_tokens = max_new_tokens = N, so EOS cannot end a
  sequence early and a pruned model cannot "talk longer". Each call is verified: N new positions, N tokens
  streamed, no EOS among them (so no sequence finished and nothing after it was padding). Only those B x N
  real tokens are counted; left padding of prompts is never counted.
* One call, per-token timestamps. A streamer records the host clock each time HF hands it a step's tokens,
  which it does after copying them to the host (so the device has finished that step). For one call:
    TTFT    = first new token on the host - call start: the prefill forward plus choosing the first token,
              plus generate()'s own setup; tokenisation is outside (inputs are prepared on the device before).
    TPOT    = (last token time - first token time) / (N - 1): the decode steps only.
    latency = call end - call start, the device synchronised at both edges.
* Windows. A repeat is one window over all batches of a (workload, batch size) cell: synchronise, start the
  energy meter and the clock, run the calls (all batches again, whole, until the window has lasted at least
  the minimum: 10 s with a meter, so an energy counter that updates every ~100 ms is read to about 1%),
  synchronise, stop both. Throughput and J/token come from the same window that counts the tokens. Warm-up
  windows (one pass over the batches, never extended) run first and are discarded.
* Energy. J/token gross = window joules / tokens; net = (joules - idle W x window seconds) / tokens, idle
  measured before and after the cells (energy.idle_power). A window whose energy is implausible (not > 0,
  or average power below idle or above the power limit) keeps its timings and is flagged (Window.flag):
  it is left out of every energy figure, never silently averaged in (figures.py).
* A/B. Base and pruned models alternate window by window (A B A B ...), so drift in clocks, temperature
  or other load on the machine hits both alike; ratios are taken per repeat (paired) and summarised.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from widthwise.bench.energy import Meter, Reading, power_flag
from widthwise.claims.metrics import cell_group
from widthwise.errors import WidthwiseError


class MeasurementError(WidthwiseError):
    """A generation broke a measurement rule (wrong number of new tokens, EOS inside the fixed length)."""


# ---------------------------------------------------------------------------------------------------
# One generate() call
# ---------------------------------------------------------------------------------------------------
def synchronize(device: Any) -> None:
    """Wait for the device's queued work (a widthwise.device.Device, or its spec)."""
    from widthwise.device import resolve

    resolve(device).synchronize()


class TimingStreamer:
    """Records the host clock at each step HF streams: the prompt first, then each new token."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.steps: list[torch.Tensor] = []
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        t = time.perf_counter()
        if not self._prompt_seen:  # generate() streams the prompt once before the first new token
            self._prompt_seen = True
            return
        self.times.append(t)
        self.steps.append(value.reshape(-1))

    def end(self) -> None:
        pass


@dataclass(frozen=True)
class Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor

    @property
    def size(self) -> int:
        return self.input_ids.shape[0]

    @property
    def real_prompt_tokens(self) -> int:
        return int(self.attention_mask.sum())


def make_batches(
    tokenizer: Any, prompts: Sequence[str], batch_size: int, max_prompt_tokens: int, device: Any
) -> list[Batch]:
    """Consecutive batches of `batch_size` prompts, left-padded and truncated (keeping the prompt's start);
    a remainder smaller than a batch is left out so every call has the same batch size."""
    if batch_size < 1 or batch_size > len(prompts):
        raise WidthwiseError(
            f"batch size {batch_size} needs 1..{len(prompts)} prompts per workload (--prompts)"
        )
    from widthwise.device import resolve

    where = resolve(device).torch_device  # a Device, or its spec
    tokenizer.padding_side = "left"  # decoder-only: new tokens must follow the last real token directly
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    batches = []
    for i in range(0, len(prompts) - batch_size + 1, batch_size):
        enc = tokenizer(
            list(prompts[i : i + batch_size]),
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=max_prompt_tokens,
        )
        batches.append(Batch(enc["input_ids"].to(where), enc["attention_mask"].to(where)))
    return batches


def generation_config(model: torch.nn.Module, tokenizer: Any, new_tokens: int) -> Any:
    from transformers import GenerationConfig

    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    return GenerationConfig(
        do_sample=False,
        num_beams=1,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos,
        use_cache=True,
    )


@dataclass(frozen=True)
class Call:
    batch_size: int
    new_tokens: int  # real generated tokens: batch_size x N
    ttft_s: float
    tpot_s: float
    latency_s: float


def eos_ids(gc: Any) -> set[int]:
    e = gc.eos_token_id
    return set() if e is None else {int(x) for x in (e if isinstance(e, (list, tuple)) else [e])}


def verify_fixed_length(
    out: torch.Tensor, prompt_len: int, n: int, streamer: TimingStreamer, eos: set[int]
) -> int:
    """Raise unless every sequence got exactly n real new tokens; returns how many were generated."""
    new = out[:, prompt_len:]
    if new.shape[1] != n or len(streamer.times) != n:
        raise MeasurementError(
            f"expected {n} new tokens per sequence, got {new.shape[1]} positions, {len(streamer.times)} steps"
        )
    hits = [e for e in eos if (new == e).any()]
    if hits:
        raise MeasurementError(
            f"EOS {hits} appeared within the fixed length of {n}; a sequence ended early and was padded"
        )
    return new.numel()


def timed_generate(model: torch.nn.Module, batch: Batch, gc: Any, device: str) -> Call:
    n = gc.max_new_tokens
    streamer = TimingStreamer()
    synchronize(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            generation_config=gc,
            streamer=streamer,
        )
    synchronize(device)
    t1 = time.perf_counter()
    tokens = verify_fixed_length(out, batch.input_ids.shape[1], n, streamer, eos_ids(gc))
    return Call(
        batch_size=batch.size,
        new_tokens=tokens,
        ttft_s=streamer.times[0] - t0,
        tpot_s=(streamer.times[-1] - streamer.times[0]) / (n - 1),
        latency_s=t1 - t0,
    )


# ---------------------------------------------------------------------------------------------------
# Windows, cells, A/B
# ---------------------------------------------------------------------------------------------------
@dataclass
class Window:
    calls: list[Call]
    seconds: float
    energy: Reading | None = None
    idle_w: float | None = None  # set once idle is known on both sides of the cells (assess_energy)
    flag: str | None = None  # why this window's energy is implausible: left out of the energy figures

    @property
    def tokens(self) -> int:
        return sum(c.new_tokens for c in self.calls)

    def figures(self) -> dict[str, float | None]:
        f: dict[str, float | None] = {
            "ttft_ms": 1e3 * statistics.fmean(c.ttft_s for c in self.calls),
            "tpot_ms": 1e3 * statistics.fmean(c.tpot_s for c in self.calls),
            "latency_ms": 1e3 * statistics.fmean(c.latency_s for c in self.calls),
            "throughput_tok_s": self.tokens / self.seconds,
            "j_per_token_gross": None,
            "j_per_token": None,
        }
        if self.energy is not None and self.idle_w is not None and self.flag is None:
            f["j_per_token_gross"] = self.energy.joules / self.tokens
            f["j_per_token"] = (self.energy.joules - self.idle_w * self.energy.seconds) / self.tokens
        return f

    def record(self) -> dict[str, Any]:
        """What the Result keeps of every window, flagged or not."""
        return {
            "seconds": self.seconds,
            "calls": len(self.calls),
            "tokens": self.tokens,
            "joules": self.energy.joules if self.energy else None,
            "meter_seconds": self.energy.seconds if self.energy else None,
            "watts": self.energy.watts if self.energy else None,
            "flag": self.flag,
        }


def measure_window(
    model: torch.nn.Module,
    batches: Sequence[Batch],
    gc: Any,
    device: str,
    meter: Meter | None = None,
    min_window_s: float = 0.0,
) -> Window:
    """All batches once, then all of them again until min_window_s has passed (an energy counter needs a
    long window); whole passes only, so every prompt weighs the same."""
    calls: list[Call] = []
    synchronize(device)
    if meter is not None:
        meter.start()
    t0 = time.perf_counter()
    while True:
        calls.extend(timed_generate(model, b, gc, device) for b in batches)
        if time.perf_counter() - t0 >= min_window_s:
            break
    synchronize(device)
    seconds = time.perf_counter() - t0
    reading = meter.stop() if meter is not None else None
    return Window(calls=calls, seconds=seconds, energy=reading)


@dataclass
class Cell:
    workload: str
    batch_size: int
    new_tokens: int
    batches: int
    real_prompt_tokens: int
    windows: dict[str, list[Window]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return cell_group(self.workload, self.batch_size)


def run_cell(
    models: Sequence[tuple[str, torch.nn.Module]],
    tokenizer: Any,
    workload: Any,
    batch_size: int,
    *,
    repeats: int,
    warmup: int,
    device: str,
    max_prompt_tokens: int,
    meter: Meter | None = None,
    min_window_s: float = 0.0,
    progress: Callable[[str], None] | None = None,
) -> Cell:
    """Warm-up windows, then `repeats` windows per model, the models alternating window by window. Energy
    is read, not yet judged: assess_energy() does that once idle is known on both sides of the cells."""
    if repeats < 1:
        raise WidthwiseError("--repeats must be at least 1")
    batches = make_batches(tokenizer, workload.prompts, batch_size, max_prompt_tokens, device)
    gcs = {label: generation_config(m, tokenizer, workload.new_tokens) for label, m in models}
    cell = Cell(
        workload=workload.name,
        batch_size=batch_size,
        new_tokens=workload.new_tokens,
        batches=len(batches),
        real_prompt_tokens=sum(b.real_prompt_tokens for b in batches),
        windows={label: [] for label, _ in models},
    )
    for _ in range(warmup):
        for label, m in models:
            measure_window(m, batches, gcs[label], device)
    for r in range(repeats):
        for label, m in models:
            w = measure_window(m, batches, gcs[label], device, meter, min_window_s)
            cell.windows[label].append(w)
            if progress:
                f = w.figures()
                watts = f", {w.energy.watts:.1f} W" if w.energy is not None else ""
                progress(
                    f"{cell.key} {label} repeat {r + 1}: {w.seconds:.1f}s, "
                    f"{f['throughput_tok_s']:.1f} tok/s, TTFT {f['ttft_ms']:.1f} ms{watts}"
                )
    return cell


def assess_energy(cells: Sequence[Cell], idle_w: float, limit_w: float | None) -> int:
    """Give every metered window the idle power its net energy takes off and flag the implausible ones
    (energy.power_flag); returns how many were flagged."""
    flagged = 0
    for cell in cells:
        for windows in cell.windows.values():
            for w in windows:
                if w.energy is None:
                    continue
                w.idle_w = idle_w
                w.flag = power_flag(w.energy, idle_w, limit_w)
                flagged += w.flag is not None
    return flagged
