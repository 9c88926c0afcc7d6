"""Width pruning of GLU MLPs: score each intermediate neuron, keep the top k, slice gate/up/down.

The method follows the paper's code (optipfair `mlp_glu.py`, docs/paper.md §1): the same k in every
layer, kept indices ascending, config.intermediate_size = k. Which neurons score highest is the method's
(widthwise.pruners: PPM, the other built-ins, installed plug-ins); the invariants are the pruner's, whatever
a method returns: one score per neuron, no NaN, the same k in every layer, ties to the lower index.
Width planning and selection are pure functions so they can be tested without a model.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

import torch

from widthwise import pruners
from widthwise.errors import WidthwiseError
from widthwise.models import count_parameters, mlp_layers
from widthwise.names import config_slug
from widthwise.widths import exact, width_from_pct


def canonical_method(name: str) -> str:
    """The registered method `name` names (aliases resolved); WidthwiseError listing the known ones."""
    return pruners.get(name).name


# ---------------------------------------------------------------------------------------------
# Width planning: pure functions of (I, H, request).
# ---------------------------------------------------------------------------------------------
def width_from_ratio(intermediate: int, hidden: int, ratio: float) -> int:
    """k = ceil(R*H), for a target expansion ratio no larger than the current one."""
    r = float(ratio)
    if not math.isfinite(r) or r <= 0:
        raise WidthwiseError(f"--ratio must be positive, got {ratio}")
    exact_ratio = exact(ratio)
    if exact_ratio > Fraction(intermediate, hidden):
        raise WidthwiseError(
            f"--ratio {ratio} is above the model's current expansion ratio {intermediate / hidden:.4g} "
            f"({intermediate}/{hidden}); pruning only narrows"
        )
    return math.ceil(exact_ratio * hidden)


def align_width(k: int, align: int | None) -> int:
    """Round k down to a multiple of align, never up and never below align."""
    if align is None:
        return k
    if isinstance(align, bool) or not isinstance(align, int) or align <= 0:
        raise WidthwiseError(f"--align must be a positive integer, got {align}")
    if k < align:
        raise WidthwiseError(
            f"--align {align} is larger than the planned width {k}; rounding down would give 0"
        )
    return (k // align) * align


@dataclass(frozen=True)
class PruneSpec:
    """What to prune: exactly one of pct, ratio, intermediate_size."""

    method: str = "ppm"
    pct: float | None = None
    ratio: float | None = None
    intermediate_size: int | None = None
    align: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        given = [n for n in ("pct", "ratio", "intermediate_size") if getattr(self, n) is not None]
        if len(given) != 1:
            raise WidthwiseError("give exactly one of --pct, --ratio, --intermediate-size")
        object.__setattr__(self, "method", canonical_method(self.method))
        # Checks that need no model run here, so bad input fails before anything is loaded.
        if self.pct is not None:
            width_from_pct(1, self.pct)
        if self.ratio is not None and not (math.isfinite(float(self.ratio)) and float(self.ratio) > 0):
            raise WidthwiseError(f"--ratio must be positive, got {self.ratio}")
        k = self.intermediate_size
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k <= 0):
            raise WidthwiseError(f"--intermediate-size must be a positive integer, got {k}")
        if self.align is not None:
            align_width(self.align, self.align)

    def width(self, intermediate: int, hidden: int) -> int:
        if self.pct is not None:
            k = width_from_pct(intermediate, self.pct)
        elif self.ratio is not None:
            k = width_from_ratio(intermediate, hidden, self.ratio)
        else:
            k = self.intermediate_size
            if isinstance(k, bool) or not isinstance(k, int) or not 0 < k <= intermediate:
                raise WidthwiseError(
                    f"--intermediate-size must be an integer in [1, {intermediate}], got {k}"
                )
        return align_width(k, self.align)

    def label(self) -> str:
        return config_slug(asdict(self))


# ---------------------------------------------------------------------------------------------
# The command-line arguments of every command that prunes (prune, eval, bench).
# ---------------------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser, *, required: bool, what: str = "prune") -> None:
    """--pct | --ratio | --intermediate-size, --method, --align and --seed, the same for every command."""
    how = p.add_mutually_exclusive_group(required=required)
    how.add_argument(
        "--pct", type=float, help=f"{what}: percentage of intermediate neurons to remove, in [0, 100)"
    )
    how.add_argument(
        "--ratio", type=str, help=f"{what}: target expansion ratio intermediate/hidden; k = ceil(R*H)"
    )
    how.add_argument("--intermediate-size", type=int, help=f"{what}: target intermediate size k")
    p.add_argument(
        "--method",
        default="ppm",
        help="neuron importance: ppm (alias maw), vow, pon, l2, random, an installed plug-in, or any of "
        "them with -reverse (`widthwise methods` lists them)",
    )
    p.add_argument("--align", type=int, help="round k down to a multiple of N (never up, never below N)")
    p.add_argument("--seed", type=int, default=0, help="seed for --method random")


def spec_from_args(args: argparse.Namespace) -> PruneSpec | None:
    """The PruneSpec the arguments ask for, checked before any model is loaded; None for no pruning."""
    if args.pct is None and args.ratio is None and args.intermediate_size is None:
        if args.align is not None:
            raise WidthwiseError("--align needs --pct, --ratio or --intermediate-size")
        canonical_method(args.method)
        return None
    ratio = None
    if args.ratio is not None:
        try:
            ratio = float(args.ratio)
        except ValueError:
            raise WidthwiseError(f"--ratio must be a number, got {args.ratio!r}") from None
    return PruneSpec(
        method=args.method,
        pct=args.pct,
        ratio=ratio,
        intermediate_size=args.intermediate_size,
        align=args.align,
        seed=args.seed,
    )


# ---------------------------------------------------------------------------------------------
# Selection and slicing.
# ---------------------------------------------------------------------------------------------
def select_neurons(scores: torch.Tensor, k: int, keep: str = "highest") -> torch.Tensor:
    """Indices of the k neurons to keep, ascending; ties go to the lower index.

    A stable sort (rather than topk, whose tie order is unspecified) makes the choice reproducible.
    """
    if not 0 < k <= scores.numel():
        raise WidthwiseError(f"cannot keep {k} of {scores.numel()} neurons")
    order = torch.sort(scores, descending=(keep == "highest"), stable=True).indices
    return torch.sort(order[:k]).values


def _sliced(linear: torch.nn.Linear, idx: torch.Tensor, dim: int) -> torch.nn.Linear:
    w = linear.weight.data.index_select(dim, idx.to(linear.weight.device))
    out_f, in_f = w.shape
    new = torch.nn.Linear(in_f, out_f, bias=linear.bias is not None, device=w.device, dtype=w.dtype)
    new.weight.data.copy_(w)
    if linear.bias is not None:
        # gate/up biases follow their rows; down_proj's bias is per output feature and is kept whole.
        b = linear.bias.data.index_select(0, idx.to(w.device)) if dim == 0 else linear.bias.data
        new.bias.data.copy_(b)
    return new


def slice_mlp(mlp: torch.nn.Module, keep: torch.Tensor) -> None:
    """Keep gate/up rows and down columns `keep`, in place."""
    mlp.gate_proj = _sliced(mlp.gate_proj, keep, 0)
    mlp.up_proj = _sliced(mlp.up_proj, keep, 0)
    mlp.down_proj = _sliced(mlp.down_proj, keep, 1)
    if hasattr(mlp, "intermediate_size"):
        mlp.intermediate_size = keep.numel()


def indices_sha256(idx: torch.Tensor) -> str:
    return hashlib.sha256(idx.to(torch.int64).cpu().numpy().tobytes()).hexdigest()


@dataclass
class PruneReport:
    method: str
    pct: float | None
    ratio: float | None
    align: int | None
    seed: int
    hidden_size: int
    intermediate_size_before: int
    intermediate_size: int
    expansion_ratio_before: float
    expansion_ratio: float
    params_before: int
    params_after: int
    kept_indices_sha256: list[str] = field(default_factory=list)
    # Which code chose the neurons (pruners.Method.provenance) and the calibration set it read, if any.
    pruner: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_finite(mlps: list[torch.nn.Module]) -> None:
    for i, mlp in enumerate(mlps):
        for name in ("gate_proj", "up_proj", "down_proj"):
            w = getattr(mlp, name).weight
            if w.device.type != "meta" and not torch.isfinite(w).all():
                raise WidthwiseError(f"layer {i} {name} holds NaN or Inf weights; refusing to prune")


def checked_scores(scores: object, size: int, method: str, layer: int) -> torch.Tensor:
    """A method's scores for one layer as a CPU tensor of `size` real numbers, or WidthwiseError saying
    what is wrong with them: a plug-in's bug is refused here, never turned into a pruned model."""
    where = f"method {method}, layer {layer}"
    if not isinstance(scores, torch.Tensor):
        raise WidthwiseError(
            f"{where}: returned {type(scores).__name__}, not a torch.Tensor of {size} scores"
        )
    if scores.dtype.is_complex or scores.dtype == torch.bool:
        raise WidthwiseError(f"{where}: returned {scores.dtype} scores; scores must be real numbers")
    if tuple(scores.shape) != (size,):
        raise WidthwiseError(
            f"{where}: returned scores of shape {tuple(scores.shape)}; "
            f"one per intermediate neuron is ({size},)"
        )
    scores = scores.detach().cpu()
    if scores.is_floating_point():
        bad = int(torch.isnan(scores).sum())
        if bad:
            raise WidthwiseError(f"{where}: {bad} of {size} scores are NaN; refusing to prune")
    return scores


def plan(
    model: torch.nn.Module, spec: PruneSpec, tokenizer: Any = None
) -> tuple[list[torch.Tensor], dict[str, Any]]:
    """The kept indices of every layer, computed before anything is changed, and which code chose them
    (the method's package, version and source hash, and the calibration documents' hash when it read
    activations). `tokenizer` is needed only by methods that read calibration activations."""
    mlps = mlp_layers(model)
    sizes = {m.gate_proj.out_features for m in mlps}
    if len(sizes) != 1:
        raise WidthwiseError(f"layers have different intermediate sizes {sorted(sizes)}; not supported")
    intermediate, hidden = sizes.pop(), model.config.hidden_size
    k = spec.width(intermediate, hidden)
    _check_finite(mlps)
    m = pruners.get(spec.method)
    acts = None
    if m.calibration:
        from widthwise import calibration

        acts = calibration.collect(model, tokenizer, m.calibration)
    g = torch.Generator().manual_seed(spec.seed)
    keep = []
    for i, mlp in enumerate(mlps):
        layer = pruners.Layer(
            index=i,
            gate=mlp.gate_proj.weight.to(torch.float32, copy=True),
            up=mlp.up_proj.weight.to(torch.float32, copy=True),
            down=mlp.down_proj.weight.to(torch.float32, copy=True),
            generator=g,
            **(acts.at(i) if acts is not None else {}),
        )
        with torch.no_grad():
            scores = checked_scores(m.score(layer), intermediate, m.name, i)
        keep.append(select_neurons(scores, k, m.keep))
    return keep, {**m.provenance(), "calibration": acts.provenance if acts is not None else None}


def apply(model: torch.nn.Module, keep: list[torch.Tensor]) -> None:
    """Slice every layer to its kept indices and record the new width in the config."""
    mlps = mlp_layers(model)
    if len(keep) != len(mlps) or len({k.numel() for k in keep}) != 1:
        raise WidthwiseError("need one equally sized index set per layer")
    for mlp, idx in zip(mlps, keep, strict=True):
        slice_mlp(mlp, idx)
    model.config.intermediate_size = keep[0].numel()


def pruned_copy(
    model: torch.nn.Module, spec: PruneSpec, tokenizer: Any = None
) -> tuple[torch.nn.Module, PruneReport]:
    """A pruned deep copy of `model` (which is left as it is) and what was done to it."""
    pruned = copy.deepcopy(model)
    return pruned, prune_model(pruned, spec, tokenizer)


def prune_model(model: torch.nn.Module, spec: PruneSpec, tokenizer: Any = None) -> PruneReport:
    """Prune `model` in place by `spec`; returns what was done, for widthwise.json and Results.
    `tokenizer`: for methods that read calibration activations (refused without it)."""
    keep, pruner = plan(model, spec, tokenizer)  # validates everything before the model is touched
    hidden = model.config.hidden_size
    before_i = model.config.intermediate_size
    before_p = count_parameters(model)
    apply(model, keep)
    k = keep[0].numel()
    return PruneReport(
        method=spec.method,
        pct=spec.pct,
        ratio=spec.ratio,
        align=spec.align,
        seed=spec.seed,
        hidden_size=hidden,
        intermediate_size_before=before_i,
        intermediate_size=k,
        expansion_ratio_before=round(before_i / hidden, 6),
        expansion_ratio=round(k / hidden, 6),
        params_before=before_p,
        params_after=count_parameters(model),
        kept_indices_sha256=[indices_sha256(i) for i in keep],
        pruner=pruner,
    )
