"""Pruning methods by name: the built-ins and every installed plug-in of the `widthwise.pruners` group.

A method scores the intermediate neurons of one GLU MLP layer; widthwise.prune keeps the top k of every
layer. A plug-in is an installed package that names a score function in its entry points:

    # pyproject.toml of the plug-in package
    [project.entry-points."widthwise.pruners"]
    my-method = "my_package.scores:my_method"

    # my_package/scores.py
    import widthwise

    @widthwise.pruner(calibration="intermediate")        # or no decorator: weights only, keep highest
    def my_method(layer: widthwise.Layer) -> torch.Tensor:
        '''One line that `widthwise methods` prints.'''
        return layer.down.abs().sum(dim=0) * layer.intermediate.norm(dim=0)

The entry point's name is the method's name. Every method also has its reverse, `<name>-reverse`: the same
scores with the other end kept, the ablation control `sweep --controls` runs beside it (random has none).
$WIDTHWISE_PLUGINS restricts which plug-ins load (unset: all; empty: none; "a,b": only those), as vLLM's
VLLM_PLUGINS does. A plug-in that cannot load, or whose function cannot be a score function, is one line
naming its package: never a traceback, never a method silently missing.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import inspect
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from widthwise.errors import WidthwiseError
from widthwise.names import METHOD_ALIASES, REVERSE

GROUP = "widthwise.pruners"
PLUGINS_ENV = "WIDTHWISE_PLUGINS"
KEEPS = ("highest", "lowest")
# What a method may ask to see of the calibration documents (widthwise.calibration), per layer:
#   inputs        the MLP's input (post-attention RMSNorm), [tokens, hidden]
#   intermediate  act(gate x) * (up x), the input of down_proj, [tokens, intermediate]
CALIBRATION = ("inputs", "intermediate")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._]*(-[a-z0-9._]+)*$")
_ATTR = "__widthwise_pruner__"


@dataclass(frozen=True)
class Layer:
    """What a score function sees of one layer. Weights are fp32 copies on the model's device; the
    calibration activations are fp32 on the CPU, present only when the method asked for them."""

    index: int
    gate: torch.Tensor  # [intermediate, hidden]
    up: torch.Tensor  # [intermediate, hidden]
    down: torch.Tensor  # [hidden, intermediate]
    generator: torch.Generator  # seeded by --seed; one per prune, drawn from layer by layer
    inputs: torch.Tensor | None = None  # [tokens, hidden]
    intermediate: torch.Tensor | None = None  # [tokens, intermediate]

    @property
    def size(self) -> int:
        return self.gate.shape[0]


ScoreFn = Callable[[Layer], torch.Tensor]


@dataclass(frozen=True)
class Method:
    name: str
    score: ScoreFn
    keep: str  # "highest" or "lowest"
    doc: str
    calibration: tuple[str, ...] = ()  # of CALIBRATION
    package: str = "widthwise"
    version: str | None = None
    entry_point: str | None = None  # "module:function"; None for a built-in
    reverse_of: str | None = None
    reversible: bool = True
    source_sha256: str = field(default="", compare=False)

    @property
    def builtin(self) -> bool:
        return self.entry_point is None

    @property
    def reverse(self) -> str | None:
        """The name of this method's reverse control; None for a reverse or a method that has none."""
        return self.name + REVERSE if self.reversible and self.reverse_of is None else None

    def provenance(self) -> dict[str, Any]:
        """Which code chose the neurons: recorded in every pruned Result (provenance.pruner)."""
        return {
            "method": self.name,
            "reverse_of": self.reverse_of,
            "package": self.package,
            "version": self.version,
            "entry_point": self.entry_point,
            "source_sha256": self.source_sha256,
        }


def pruner(
    *, keep: str = "highest", calibration: str | tuple[str, ...] | None = None, reversible: bool = True
) -> Callable:
    """Mark a score function with what it needs (a plug-in's decorator; the entry point registers it).
    reversible=False: its scores carry no order to turn round (random), so it gets no `-reverse`."""
    needs = (calibration,) if isinstance(calibration, str) else tuple(calibration or ())

    def mark(fn: ScoreFn) -> ScoreFn:
        setattr(fn, _ATTR, {"keep": keep, "calibration": needs, "reversible": reversible})
        return fn

    return mark


def source_sha256(fn: Callable) -> str:
    """The score function's source, or its module's file when the source cannot be read alone."""
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        try:
            text = inspect.getsource(inspect.getmodule(fn))  # type: ignore[arg-type]
        except (OSError, TypeError):
            text = f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"
    return hashlib.sha256(text.encode()).hexdigest()


def _problem(fn: Any) -> str | None:
    """Why `fn` cannot be a score function (None: it can)."""
    if not callable(fn):
        return f"{type(fn).__name__} is not callable"
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None  # a builtin or C function: its call will say
    try:
        sig.bind(object())
    except TypeError:
        return f"its signature {sig} does not take one argument (a widthwise.Layer)"
    marks = getattr(fn, _ATTR, {})
    if marks.get("keep", "highest") not in KEEPS:
        return f"keep={marks['keep']!r} is not one of {', '.join(KEEPS)}"
    bad = [c for c in marks.get("calibration", ()) if c not in CALIBRATION]
    if bad:
        return f"calibration={bad} is not among {', '.join(CALIBRATION)}"
    return None


def _method(name: str, fn: ScoreFn, *, package: str, version: str | None, entry_point: str | None) -> Method:
    marks = getattr(fn, _ATTR, {})
    return Method(
        name=name,
        score=fn,
        keep=marks.get("keep", "highest"),
        doc=(inspect.getdoc(fn) or "").strip(),
        calibration=tuple(marks.get("calibration", ())),
        package=package,
        version=version,
        entry_point=entry_point,
        reversible=marks.get("reversible", True),
        source_sha256=source_sha256(fn),
    )


# ---- built-ins: registered here through the same decorator a plug-in uses --------------------------
_BUILTIN: dict[str, ScoreFn] = {}


def _builtin(name: str, **marks: Any) -> Callable[[ScoreFn], ScoreFn]:
    def register(fn: ScoreFn) -> ScoreFn:
        _BUILTIN[name] = pruner(**marks)(fn)
        return fn

    return register


def _range(w: torch.Tensor) -> torch.Tensor:
    return w.amax(dim=1) - w.amin(dim=1)


@_builtin("ppm")
def ppm(layer: Layer) -> torch.Tensor:
    """Peak-to-peak magnitude: (max - min) of the gate row plus (max - min) of the up row (the paper's).

    optipfair writes max + |min|, which equals max - min whenever a row holds both signs (always, for
    trained weights); peak-to-peak is what the paper's v3 names and what we compute.
    """
    return _range(layer.gate) + _range(layer.up)


@_builtin("vow")
def vow(layer: Layer) -> torch.Tensor:
    """Variance of weights: var(gate row) + var(up row) (unbiased), as optipfair."""
    return layer.gate.var(dim=1) + layer.up.var(dim=1)


@_builtin("pon")
def pon(layer: Layer) -> torch.Tensor:
    """Product of norms: L1(gate row) * L1(up row), as optipfair."""
    return layer.gate.abs().sum(dim=1) * layer.up.abs().sum(dim=1)


@_builtin("l2")
def l2(layer: Layer) -> torch.Tensor:
    """L2 norm of the gate row plus L2 norm of the up row."""
    return layer.gate.norm(dim=1) + layer.up.norm(dim=1)


@_builtin("random", reversible=False)
def random_scores(layer: Layer) -> torch.Tensor:
    """Uniform random scores from the seeded generator: an ablation control."""
    return torch.rand(layer.size, generator=layer.generator, dtype=torch.float32)


# ---- plug-ins -------------------------------------------------------------------------------------
def allowed_plugins(env: Mapping[str, str] | None = None) -> set[str] | None:
    """The plug-in names $WIDTHWISE_PLUGINS allows; None when it is unset (every installed one)."""
    text = (os.environ if env is None else env).get(PLUGINS_ENV)
    if text is None:
        return None
    return {n.strip() for n in text.split(",") if n.strip()}


def _dist(ep: importlib.metadata.EntryPoint) -> tuple[str, str | None]:
    d = getattr(ep, "dist", None)
    if d is None:
        return "an unknown package", None
    return d.metadata["Name"] or d.name, d.version


def _load_plugin(ep: importlib.metadata.EntryPoint, taken: set[str]) -> Method:
    package, version = _dist(ep)
    where = f"plug-in method {ep.name!r} (package {package} {version or ''}".rstrip() + ")"
    if not _NAME.match(ep.name) or ep.name.endswith(REVERSE) or ep.name == "base":
        raise WidthwiseError(
            f"{where}: the name must be lowercase letters, digits, '.', '_' and '-', and neither 'base' "
            f"nor end in {REVERSE!r} (every method has its reverse already)"
        )
    if ep.name in taken or ep.name in METHOD_ALIASES:
        raise WidthwiseError(f"{where}: the name is already taken by widthwise or another plug-in")
    try:
        fn = ep.load()
    except Exception as e:  # a plug-in's import can raise anything; one line, naming it
        raise WidthwiseError(f"{where}: cannot load {ep.value}: {type(e).__name__}: {e}") from None
    why = _problem(fn)
    if why:
        raise WidthwiseError(f"{where}: {ep.value} is not a score function: {why}")
    return _method(ep.name, fn, package=package, version=version, entry_point=ep.value)


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    seen: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        # One distribution found twice on sys.path (an editable install beside a build) is one plug-in.
        prior = seen.get(ep.name)
        if prior is not None and prior.value == ep.value and _dist(prior) == _dist(ep):
            continue
        if prior is not None:
            raise WidthwiseError(
                f"plug-in method {ep.name!r} is registered twice: by {_dist(prior)[0]} ({prior.value}) and "
                f"by {_dist(ep)[0]} ({ep.value}); uninstall one or leave one out with {PLUGINS_ENV}"
            )
        seen[ep.name] = ep
    return list(seen.values())


def _own_version() -> str | None:
    try:
        return importlib.metadata.version("widthwise")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return None


@functools.cache
def _registry(allowed: frozenset[str] | None) -> dict[str, Method]:
    version = _own_version()
    methods = {
        n: _method(n, fn, package="widthwise", version=version, entry_point=None)
        for n, fn in _BUILTIN.items()
    }
    eps = _entry_points()
    if allowed is not None:
        unknown = sorted(allowed - {ep.name for ep in eps})
        if unknown:
            raise WidthwiseError(
                f"{PLUGINS_ENV} names {', '.join(unknown)}, which no installed package registers in the "
                f"{GROUP!r} entry-point group (installed: {', '.join(sorted(e.name for e in eps)) or 'none'})"
            )
        eps = [ep for ep in eps if ep.name in allowed]
    for ep in eps:
        methods[ep.name] = _load_plugin(ep, set(methods))
    for m in list(methods.values()):
        if m.reverse is not None:
            methods[m.reverse] = replace(
                m,
                name=m.reverse,
                keep="lowest" if m.keep == "highest" else "highest",
                reverse_of=m.name,
                doc=f"{m.name} keeping the other end: an ablation control that should be worse than it",
            )
    return methods


def registry() -> dict[str, Method]:
    """Every method by name: built-ins, allowed plug-ins and each one's reverse (loaded once per process
    and $WIDTHWISE_PLUGINS value)."""
    allowed = allowed_plugins()
    return _registry(None if allowed is None else frozenset(allowed))


def clear() -> None:
    """Forget the loaded plug-ins (tests install and remove them)."""
    _registry.cache_clear()
    importlib.invalidate_caches()


def get(name: str) -> Method:
    """The method `name` names (aliases resolved); WidthwiseError listing the known ones."""
    from widthwise.names import canonical_method

    methods = registry()
    key = canonical_method(name)
    if key not in methods:
        hint = ""
        if key.endswith(REVERSE) and key.removesuffix(REVERSE) in methods:
            hint = f" ({key.removesuffix(REVERSE)} has no reverse)"
        raise WidthwiseError(
            f"unknown method {name!r}{hint}; known: {', '.join(sorted([*methods, *METHOD_ALIASES]))} "
            f"(`widthwise methods` lists them with their packages)"
        )
    return methods[key]


def reverse_of(name: str) -> str:
    """The name of `name`'s reverse control; WidthwiseError for a method that has none."""
    m = get(name)
    if m.reverse_of is not None:
        raise WidthwiseError(f"{name} is a reverse already; its control is {m.reverse_of}")
    if m.reverse is None:
        raise WidthwiseError(f"{name} has no reverse (its scores carry no order to turn round)")
    return m.reverse
