"""Timing of generation at a fixed output length: TTFT, time per output token, latency, throughput, J/token.

What is measured, and how (the paper's flaws, NOTES.md section 3, are the reasons for each rule):

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
  energy meter and the clock, run the calls, synchronise, stop both. Throughput and J/token come from the
  same window that counts the tokens. Warm-up windows run first and are discarded.
* A/B. Base and pruned models alternate window by window (A B A B ...), so drift in clocks, temperature
  or other load on the machine hits both alike; ratios are taken per repeat (paired) and summarised.
* Ideal speed-up: each generated token multiplies every decoder weight matrix and the LM head once, so the
  compute (and, when decoding is memory-bound, the bytes read) per token is proportional to those
  parameters; base/pruned of that count bounds what pruning can buy per generated token (TPOT). Prefill
  runs the LM head on one position per sequence only, so TTFT's bound is the decoder's matmul parameters
  alone. Latency, throughput and J/token mix both phases: their bound is the base's own prefill and
  decode times each divided by its ideal. Attention over the cache, norms and sampling do not shrink, so
  achieved/ideal < 1 is expected.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from widthwise.energy import Meter, Reading, check_power
from widthwise.errors import WidthwiseError

# "random:llama-3.2-1b-shape[:LAYERS]": Llama-3.2-1B's layer shapes with random weights, built locally.
LLAMA_32_1B_SHAPE = dict(
    hidden_size=2048,
    intermediate_size=8192,
    num_attention_heads=32,
    num_key_value_heads=8,
    vocab_size=128256,
    tie_word_embeddings=True,
    rope_theta=500000.0,
    max_position_embeddings=131072,
)
RANDOM_SHAPES = {"llama-3.2-1b-shape": LLAMA_32_1B_SHAPE}

TIME_METRICS = ("ttft_ms", "tpot_ms", "latency_ms")  # lower is better
RATE_METRICS = ("throughput_tok_s",)  # higher is better
ENERGY_METRICS = ("j_per_token", "j_per_token_gross")  # lower is better


class MeasurementError(WidthwiseError):
    """A generation broke a measurement rule (wrong number of new tokens, EOS inside the fixed length)."""


# ---------------------------------------------------------------------------------------------------
# Models to bench
# ---------------------------------------------------------------------------------------------------
def random_model(spec: str, *, dtype: torch.dtype = torch.float32, seed: int = 0) -> torch.nn.Module:
    """A randomly initialised Llama with a named real model's layer shapes (no hub)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    _, shape, *rest = spec.split(":")
    if shape not in RANDOM_SHAPES or len(rest) > 1:
        raise WidthwiseError(f"random model {spec!r}: expected random:<{'|'.join(RANDOM_SHAPES)}>[:LAYERS]")
    try:
        layers = int(rest[0]) if rest else 2
    except ValueError:
        raise WidthwiseError(f"random model {spec!r}: LAYERS must be an integer") from None
    if layers < 1:
        raise WidthwiseError(f"random model {spec!r}: LAYERS must be at least 1")
    config = LlamaConfig(num_hidden_layers=layers, **RANDOM_SHAPES[shape])
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).to(dtype).eval()


def load_bench_model(spec: str, *, dtype: str = "float32", device: str = "cpu") -> Any:
    """widthwise.models.Loaded for MODEL or a `random:` spec (which borrows the default model's tokenizer:
    token ids only feed embeddings, and the default tokenizer's ids all fit in a Llama-3 vocabulary)."""
    from transformers import AutoTokenizer

    from widthwise.models import DEFAULT_MODEL, Loaded, load_model, resolve, weights_sha256

    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise WidthwiseError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
    if not spec.startswith("random:"):
        return load_model(spec, dtype=torch_dtype, device=device)
    model = random_model(spec, dtype=torch_dtype).to(device)
    tokenizer = AutoTokenizer.from_pretrained(resolve(DEFAULT_MODEL))
    return Loaded(
        model=model, tokenizer=tokenizer, name=spec, path=spec, weights_sha256=weights_sha256(model)
    )


def matmul_params_per_token(model: torch.nn.Module) -> int:
    """Weights multiplied once per generated token: every Linear (decoder projections and the LM head).
    The input embedding is a lookup, not a matmul; a tied LM head still counts as one matmul."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def prefill_matmul_params(model: torch.nn.Module) -> int:
    """Weights multiplied once per prompt token: the decoder's Linears, not the LM head (generate() computes
    logits for the last position only)."""
    return matmul_params_per_token(model) - model.get_output_embeddings().weight.numel()


@dataclass(frozen=True)
class Ideal:
    """Parameter-count bounds on pruned-over-base speed-up (see the module doc)."""

    decode: float  # per generated token
    prefill: float  # per prompt token

    @classmethod
    def of(cls, base: torch.nn.Module, pruned: torch.nn.Module) -> Ideal:
        return cls(
            decode=matmul_params_per_token(base) / matmul_params_per_token(pruned),
            prefill=prefill_matmul_params(base) / prefill_matmul_params(pruned),
        )

    def for_metric(self, metric: str, base: dict[str, list[float | None]]) -> float:
        if metric == "ttft_ms":
            return self.prefill
        if metric == "tpot_ms" or "ttft_ms" not in base or "latency_ms" not in base:
            return self.decode
        # Mixed: the base's measured prefill and decode times, each cut by its own ideal.
        t_first = statistics.median(base["ttft_ms"])
        t_all = statistics.median(base["latency_ms"])
        return t_all / (t_first / self.prefill + (t_all - t_first) / self.decode)


# ---------------------------------------------------------------------------------------------------
# One generate() call
# ---------------------------------------------------------------------------------------------------
def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))


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
    tokenizer: Any, prompts: Sequence[str], batch_size: int, max_prompt_tokens: int, device: str
) -> list[Batch]:
    """Consecutive batches of `batch_size` prompts, left-padded and truncated (keeping the prompt's start);
    a remainder smaller than a batch is left out so every call has the same batch size."""
    if batch_size < 1 or batch_size > len(prompts):
        raise WidthwiseError(
            f"batch size {batch_size} needs 1..{len(prompts)} prompts per workload (--prompts)"
        )
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
        batches.append(Batch(enc["input_ids"].to(device), enc["attention_mask"].to(device)))
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
    idle_w: float | None = None

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
        if self.energy is not None:
            f["j_per_token_gross"] = self.energy.joules / self.tokens
            f["j_per_token"] = (self.energy.joules - (self.idle_w or 0.0) * self.energy.seconds) / self.tokens
        return f


def measure_window(
    model: torch.nn.Module,
    batches: Sequence[Batch],
    gc: Any,
    device: str,
    meter: Meter | None = None,
    idle: Reading | None = None,
    power_limit_w: float | None = None,
    min_window_s: float = 0.0,
    what: str = "window",
) -> Window:
    """All batches once, again until min_window_s has passed (an energy counter needs a long window)."""
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
    if reading is not None:
        check_power(reading, idle.watts if idle else 0.0, power_limit_w, what)
    return Window(calls=calls, seconds=seconds, energy=reading, idle_w=idle.watts if idle else None)


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
        return f"{self.workload}_b{self.batch_size}"


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
    idle: Reading | None = None,
    power_limit_w: float | None = None,
    min_window_s: float = 0.0,
    progress: Callable[[str], None] | None = None,
) -> Cell:
    """Warm-up windows, then `repeats` windows per model, the models alternating window by window."""
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
            what = f"{cell.key} {label} repeat {r + 1}"
            w = measure_window(m, batches, gcs[label], device, meter, idle, power_limit_w, min_window_s, what)
            cell.windows[label].append(w)
            if progress:
                f = w.figures()
                progress(f"{what}: {f['throughput_tok_s']:.1f} tok/s, TTFT {f['ttft_ms']:.1f} ms")
    return cell


# ---------------------------------------------------------------------------------------------------
# Summaries and ratios
# ---------------------------------------------------------------------------------------------------
def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (numpy's default), q in [0, 1]."""
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """Median (the figure), p10/p90 (the spread) and the standard error of the mean across repeats."""
    n = len(values)
    return {
        "median": statistics.median(values),
        "p10": quantile(values, 0.1),
        "p90": quantile(values, 0.9),
        "mean": statistics.fmean(values),
        "stderr": statistics.stdev(values) / math.sqrt(n) if n > 1 else None,
        "n": n,
    }


def per_repeat(windows: Sequence[Window]) -> dict[str, list[float | None]]:
    figs = [w.figures() for w in windows]
    return {k: [f[k] for f in figs] for k in figs[0]}


def speedup(metric: str, base: float, pruned: float) -> float:
    """How many times faster (or more frugal) pruned is than base: > 1 is better for every metric."""
    return pruned / base if metric in RATE_METRICS else base / pruned


def paired_ratios(
    a: dict[str, list[float | None]], b: dict[str, list[float | None]], ideal: Ideal
) -> dict[str, dict[str, Any]]:
    """Per-repeat pruned/base ratios of every figure (per_repeat() of base `a` and pruned `b`, repeat r
    paired with repeat r), summarised, with the speed-up against the ideal."""
    out = {}
    for metric in a:
        if metric not in b or any(v is None for v in a[metric] + b[metric]):
            continue
        ratios = [y / x for x, y in zip(a[metric], b[metric], strict=True)]
        s = summary(ratios)
        sp = speedup(metric, 1.0, s["median"])
        bound = ideal.for_metric(metric, a)
        out[metric] = {
            "ratio": s,
            "speedup": sp,
            "ideal_speedup": bound,
            "achieved_over_ideal": sp / bound,
        }
    return out
