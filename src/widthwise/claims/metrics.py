"""The metric catalogue: every metric a claim, the bench or the report may name, with its type and direction.

One catalogue for evaluation and bench metrics. Evaluation metrics are listed by name. Bench metrics are
derived: `bench:<group>/<figure>`, where a group is a cell `<workload>_b<B>` (workload names from
bench/workloads.toml, any batch size B), a per-batch-size aggregate `b<B>` or `avg`, and a figure is one of
BENCH_FIGURES. The bench writes exactly these keys, so a `--batch-sizes 4` run is as nameable as 1 or 8.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class MetricInfo:
    # proportion | score (mean of [0, 1] scores) | logprob (nats) | perplexity | energy | throughput | latency
    type: str
    higher_is_better: bool
    # How a paired difference of this metric reads in a verdict; empty where the type says it all.
    unit: str = ""

    @property
    def efficiency(self) -> bool:
        return self.type in ("energy", "throughput", "latency")


_PROPORTIONS = (
    "mmlu/acc",
    "gsm8k/exact_match,flexible-extract",
    "gsm8k/exact_match,strict-match",
    "arc_challenge/acc",
    "arc_challenge/acc_norm",
    "hellaswag/acc",
    "hellaswag/acc_norm",
    "boolq/acc",
    "piqa/acc",
    "piqa/acc_norm",
    "winogrande/acc",
    "truthfulqa_mc1/acc",
    "lambada_openai/acc",
    "leaderboard_musr/acc_norm",
    "ifeval/prompt_level_strict_acc",
    "ifeval/inst_level_strict_acc",
    "ifeval/prompt_level_loose_acc",
    "ifeval/inst_level_loose_acc",
    "ifeval/prompt_level_strict_acc_nondegenerate",
)
EVAL: dict[str, MetricInfo] = {k: MetricInfo("proportion", True) for k in _PROPORTIONS}
EVAL["ifeval/degenerate_share"] = MetricInfo("proportion", False)
EVAL["truthfulqa_mc2/acc"] = MetricInfo("score", True)
for _k in ("wikitext/word_perplexity", "wikitext/byte_perplexity", "wikitext/bits_per_byte"):
    EVAL[_k] = MetricInfo("perplexity", False, "nats/doc log-likelihood")
EVAL["lambada_openai/perplexity"] = MetricInfo("perplexity", False, "nats/doc log-likelihood")
# Per-document continuous scores of the multiple-choice tasks (evaluation/scoring.CONTINUOUS), in nats
# (per character where the headline is acc_norm): the mean gold log-likelihood and the margin over the best
# wrong choice. The score_shift kind pairs them per document.
CONTINUOUS_TASKS = ("mmlu", "arc_challenge", "hellaswag", "boolq", "piqa", "winogrande", "truthfulqa_mc1")
CONTINUOUS_SCORES = ("gold_logprob", "margin")
for _t in CONTINUOUS_TASKS:
    for _s in CONTINUOUS_SCORES:
        EVAL[f"{_t}/{_s}"] = MetricInfo("logprob", True, "nats")
# GSM8K's gold solutions, teacher-forced: the mean log-probability per gold token (no choices, no margin).
EVAL["gsm8k_gold/gold_logprob"] = MetricInfo("logprob", True, "nats/token")

# What one bench window yields (bench/timing.py), and the paper's TTLT (whole generate() wall time).
BENCH_FIGURES: dict[str, MetricInfo] = {
    "ttft_ms": MetricInfo("latency", False),
    "tpot_ms": MetricInfo("latency", False),
    "latency_ms": MetricInfo("latency", False),
    "throughput_tok_s": MetricInfo("throughput", True),
    "j_per_token": MetricInfo("energy", False),
    "j_per_token_gross": MetricInfo("energy", False),
    "ttlt_ms": MetricInfo("latency", False),
}
BENCH_PREFIX = "bench:"


@functools.cache
def workload_names() -> tuple[str, ...]:
    """The bench workloads, read from the bench's own workloads.toml (data, not code)."""
    text = resources.files("widthwise").joinpath("bench", "workloads.toml").read_text(encoding="utf-8")
    return tuple(tomllib.loads(text)["workload"])


def bench_key(group: str, figure: str) -> str:
    return f"{BENCH_PREFIX}{group}/{figure}"


def cell_group(workload: str, batch_size: int) -> str:
    return f"{workload}_b{batch_size}"


@functools.cache
def _bench_pattern() -> re.Pattern[str]:
    workloads = "|".join(map(re.escape, workload_names()))
    figures = "|".join(map(re.escape, BENCH_FIGURES))
    return re.compile(
        rf"^{re.escape(BENCH_PREFIX)}(?:(?:{workloads})_b[1-9][0-9]*|b[1-9][0-9]*|avg)/({figures})$"
    )


def metric_info(key: str) -> MetricInfo | None:
    if key in EVAL:
        return EVAL[key]
    m = _bench_pattern().match(key)
    return BENCH_FIGURES[m.group(1)] if m else None


def known(key: str) -> bool:
    return metric_info(key) is not None
