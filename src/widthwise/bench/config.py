"""What a bench measures (BenchConfig) and its command-line options; no torch, so parsers stay light."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from widthwise.bench.energy import METERS
from widthwise.bench.workloads import Workload, load
from widthwise.errors import WidthwiseError

MIN_REPEATS = 5  # a median and a p90 need at least this many windows to mean anything
# With a meter, a window lasts at least this long: NVML's energy counter updates on the order of every
# 100 ms, so a 10 s window is read to about 1% (a batch-8 window is one generate(), 1-2.5 s on an H100).
DEFAULT_MIN_WINDOW_S = 10.0


@dataclass(frozen=True)
class BenchConfig:
    """What a bench measures; everything that needs no model is checked when it is made."""

    workloads: tuple[str, ...] | None = None  # None: every workload in workloads.toml
    prompts: int | None = None  # per workload (None: workloads.toml's)
    new_tokens: int | None = None  # fixed output length (None: workloads.toml's)
    batch_sizes: tuple[int, ...] = (1, 8)
    repeats: int = MIN_REPEATS
    warmup: int = 1
    meter: str = "auto"
    idle_s: float = 10.0  # each of the two idle windows, before and after the cells
    min_window_s: float | None = None  # None: DEFAULT_MIN_WINDOW_S with a meter, none without

    def __post_init__(self) -> None:
        if self.repeats < MIN_REPEATS:
            raise WidthwiseError(f"--repeats must be at least {MIN_REPEATS}: a median and p90 need them")
        if self.warmup < 0:
            raise WidthwiseError("--warmup must be 0 or more")
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise WidthwiseError("--batch-sizes must be positive")
        if self.meter not in METERS:
            raise WidthwiseError(f"unknown meter {self.meter!r}; choose one of {', '.join(METERS)}")
        if self.idle_s <= 0:
            raise WidthwiseError("--idle-s must be positive")
        if self.min_window_s is not None and self.min_window_s < 0:
            raise WidthwiseError("--min-window-s must be 0 or more")

    def window_s(self, metered: bool) -> float:
        """The minimum timed window: as asked, else DEFAULT_MIN_WINDOW_S with a meter and none without
        (timings alone need no minimum: every call is timed on its own)."""
        if self.min_window_s is not None:
            return self.min_window_s
        return DEFAULT_MIN_WINDOW_S if metered else 0.0

    def load_workloads(self) -> list[Workload]:
        wls = load(
            list(self.workloads) if self.workloads else None, prompts=self.prompts, new_tokens=self.new_tokens
        )
        for w in wls:
            if max(self.batch_sizes) > len(w.prompts):
                raise WidthwiseError(
                    f"workload {w.name} has {len(w.prompts)} prompts; batch size {max(self.batch_sizes)} "
                    "needs more"
                )
        return wls


def _csv(text: str | None, what: str, cast: Any = str) -> tuple[Any, ...] | None:
    if text is None:
        return None
    try:
        items = tuple(cast(x.strip()) for x in text.split(",") if x.strip())
    except ValueError:
        raise WidthwiseError(f"{what}: expected a comma-separated list, got {text!r}") from None
    if not items:
        raise WidthwiseError(f"{what} is empty")
    return items


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of a BenchConfig, for `widthwise bench` and for `widthwise sweep --bench-args`."""
    p.add_argument("--workloads", default=None, help="comma-separated (default: all in workloads.toml)")
    p.add_argument("--batch-sizes", default="1,8", help="comma-separated batch sizes (default 1,8)")
    p.add_argument(
        "--new-tokens", type=int, help="fixed output length for every workload (default: per workload)"
    )
    p.add_argument("--prompts", type=int, help="prompts per workload (default: per workload)")
    p.add_argument(
        "--repeats",
        type=int,
        default=MIN_REPEATS,
        help=f"timed windows per model and cell (>= {MIN_REPEATS})",
    )
    p.add_argument("--warmup", type=int, default=1, help="discarded windows per model and cell before timing")
    p.add_argument(
        "--meter", choices=METERS, default="auto", help="energy meter (auto: nvml on GPU, rapl on CPU)"
    )
    p.add_argument(
        "--idle-s",
        type=float,
        default=10.0,
        help="idle power calibration window in seconds, taken before and after the cells",
    )
    p.add_argument(
        "--min-window-s",
        type=float,
        help="repeat a window's batches until it lasts this long "
        f"(default {DEFAULT_MIN_WINDOW_S:g} with a meter, none without)",
    )


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    return BenchConfig(
        workloads=_csv(args.workloads, "--workloads"),
        prompts=args.prompts,
        new_tokens=args.new_tokens,
        batch_sizes=_csv(args.batch_sizes, "--batch-sizes", int) or (1, 8),
        repeats=args.repeats,
        warmup=args.warmup,
        meter=args.meter,
        idle_s=args.idle_s,
        min_window_s=args.min_window_s,
    )


def parse_config(argv: Sequence[str]) -> BenchConfig:
    """A BenchConfig from bench options given as words (`widthwise sweep --bench-args "..."`)."""

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # type: ignore[override]
            raise WidthwiseError(f"--bench-args: {message}")

    p = Parser(prog="--bench-args", add_help=False)
    add_arguments(p)
    return config_from_args(p.parse_args(list(argv)))


def base_result_path(path: Path) -> Path:
    """Where the base model's Result of a bench run goes, beside the pruned model's at `path`."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(".json") + ".base.json")
