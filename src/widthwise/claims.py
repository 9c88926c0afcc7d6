"""thresholds.toml -> Claim -> Verdict. Claims are data; every gate below is a pure function.

A claim applies to a (tier, model) group of Results. Tiers come from fields a Result already has:
provenance.source == "paper" -> "paper" (baselines/paper); suite "cpu" -> "cpu"; suite "paper" -> "gpu";
a bench-only Result (suite "bench" or none) follows its device. Results for one (tier, model,
configuration) are merged, so eval and bench shards made on different machines check together.

Verdicts: holds, fails, missing (the claim applies but a needed value is absent: counts as failing),
not_measurable (a needed value is null with a reason, e.g. energy on CPU: never a pass, never a fail),
skipped (the claim needs per-sample records that these Results do not carry, e.g. the paper's tables).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from widthwise import stats
from widthwise.errors import WidthwiseError
from widthwise.results import require_comparable

TIERS = ("paper", "cpu", "gpu")
PAIRWISE = ("drop", "improves", "non_inferior")
TRENDS = ("monotone_decreasing", "monotone_increasing")
RATIOS = ("ratio_at_most", "ratio_at_least")
CONTROLS = ("beats_control",)  # widthwise.controls
KINDS = (*PAIRWISE, *TRENDS, "correlation", *RATIOS, *CONTROLS)
VERDICTS = ("holds", "fails", "missing", "not_measurable", "skipped")
FAILING = ("fails", "missing")
RATIO_MATCH = 0.01  # 7373/2048 = 3.6001 and 7373/3072 = 2.4001 both count as "2.4x" style ratios


# ---- metrics ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricInfo:
    type: str  # proportion | score (mean of [0, 1] scores) | perplexity | energy | throughput | latency
    higher_is_better: bool


_PROPORTIONS = [
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
]
METRICS: dict[str, MetricInfo] = {k: MetricInfo("proportion", True) for k in _PROPORTIONS}
METRICS["ifeval/degenerate_share"] = MetricInfo("proportion", False)
METRICS["truthfulqa_mc2/acc"] = MetricInfo("score", True)
for _k in ("wikitext/word_perplexity", "wikitext/byte_perplexity", "wikitext/bits_per_byte"):
    METRICS[_k] = MetricInfo("perplexity", False)
METRICS["lambada_openai/perplexity"] = MetricInfo("perplexity", False)

_BENCH = re.compile(
    r"^bench:(?:(?:hellaswag|mmlu|ifeval)_b(?:1|8)|avg|b1|b8)/"
    r"(j_per_token|j_per_token_gross|throughput_tok_s|ttlt_ms|latency_ms|ttft_ms|tpot_ms)$"
)
_BENCH_TYPES = {
    "j_per_token": MetricInfo("energy", False),
    "j_per_token_gross": MetricInfo("energy", False),
    "throughput_tok_s": MetricInfo("throughput", True),
    "ttlt_ms": MetricInfo("latency", False),
    "latency_ms": MetricInfo("latency", False),
    "ttft_ms": MetricInfo("latency", False),
    "tpot_ms": MetricInfo("latency", False),
}


def metric_info(key: str) -> MetricInfo | None:
    if key in METRICS:
        return METRICS[key]
    m = _BENCH.match(key)
    return _BENCH_TYPES[m.group(1)] if m else None


# ---- claims -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    metric: str
    kind: str
    models: tuple[str, ...]
    tiers: tuple[str, ...]
    configs: str | None = None  # "all_pruned" | "most_pruned"
    pcts: tuple[float, ...] = ()
    ratios: tuple[float, ...] = ()
    methods: tuple[str, ...] = ("ppm",)
    alpha: float = 0.05
    margin: float = 0.0
    tolerance: float = 0.0
    bound: float | None = None
    metric_y: str | None = None
    r_at_most: float | None = None
    r_at_least: float | None = None
    exclude_degenerate: bool = False
    control: str | None = None  # beats_control: the ablation method compared against
    why: str = ""

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.metric, self.metric_y) if self.metric_y else (self.metric,)


_COMMON = {"statement", "metric", "kind", "models", "tiers", "methods", "alpha", "why"}
_SELECT = {"configs", "pcts", "ratios"}
_ALLOWED = {
    **{k: _COMMON | _SELECT | {"margin", "exclude_degenerate"} for k in PAIRWISE},
    **{k: _COMMON | {"tolerance"} for k in TRENDS},
    "correlation": _COMMON | {"metric_y", "r_at_most", "r_at_least"},
    **{k: _COMMON | _SELECT | {"bound"} for k in RATIOS},
    "beats_control": _COMMON | _SELECT | {"margin", "control"},
}
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _num(cid: str, key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise WidthwiseError(f"claim {cid!r}: {key} must be a finite number, got {v!r}")
    return float(v)


def _strs(cid: str, key: str, v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not v or not all(isinstance(s, str) and s for s in v):
        raise WidthwiseError(f"claim {cid!r}: {key} must be a non-empty list of strings")
    return tuple(v)


def parse_claim(cid: str, t: Any) -> Claim:
    """Validate one [claims.ID] table; every problem names the claim and the key."""
    if not _ID.match(cid):
        raise WidthwiseError(f"claim id {cid!r}: use lowercase letters, digits, '_' or '-'")
    if not isinstance(t, dict):
        raise WidthwiseError(f"claim {cid!r}: must be a table")
    if "kind" not in t and t and all(isinstance(v, dict) for v in t.values()):
        raise WidthwiseError(
            f"claim {cid!r}: holds only sub-tables; TOML reads a '.' in [claims.a.b] as nesting, "
            "so claim ids must not contain '.'"
        )
    kind = t.get("kind")
    if kind not in KINDS:
        raise WidthwiseError(f"claim {cid!r}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    unknown = sorted(set(t) - _ALLOWED[kind])
    if unknown:
        raise WidthwiseError(
            f"claim {cid!r}: unknown key(s) {', '.join(unknown)} for kind {kind} "
            f"(allowed: {', '.join(sorted(_ALLOWED[kind]))})"
        )
    for req in ("statement", "metric", "models", "tiers"):
        if req not in t:
            raise WidthwiseError(f"claim {cid!r}: missing required key {req!r}")
    if not isinstance(t["statement"], str) or not t["statement"].strip():
        raise WidthwiseError(f"claim {cid!r}: statement must be a non-empty string")
    kw: dict[str, Any] = {"id": cid, "statement": t["statement"].strip(), "kind": kind}

    for key in ("metric", "metric_y"):
        if key in t:
            info = metric_info(t[key]) if isinstance(t[key], str) else None
            if info is None:
                raise WidthwiseError(f"claim {cid!r}: unknown {key} {t[key]!r}")
            if info.type == "energy" and kind not in RATIOS:
                raise WidthwiseError(
                    f"claim {cid!r}: {t[key]} is an energy metric; only ratios of energy figures are "
                    "valid (the paper's absolute J/token are scaled by carbon intensity), use a ratio kind"
                )
            kw[key] = t[key]
    kw["models"] = _strs(cid, "models", t["models"])
    kw["tiers"] = _strs(cid, "tiers", t["tiers"])
    bad = [x for x in kw["tiers"] if x not in TIERS]
    if bad:
        raise WidthwiseError(f"claim {cid!r}: unknown tier(s) {bad} (known: {', '.join(TIERS)})")
    if "methods" in t:
        kw["methods"] = tuple(_canon_method(m) for m in _strs(cid, "methods", t["methods"]))

    if "alpha" in t:
        kw["alpha"] = _num(cid, "alpha", t["alpha"])
        if not 0 < kw["alpha"] < 0.5:
            raise WidthwiseError(f"claim {cid!r}: alpha must be in (0, 0.5)")
    for key in ("margin", "tolerance"):
        if key in t:
            kw[key] = _num(cid, key, t[key])
            if kw[key] < 0:
                raise WidthwiseError(f"claim {cid!r}: {key} must be >= 0")
    if "why" in t:
        if not isinstance(t["why"], str):
            raise WidthwiseError(f"claim {cid!r}: why must be a string")
        kw["why"] = " ".join(t["why"].split())

    if kind in CONTROLS:
        if not isinstance(t.get("control"), str):
            raise WidthwiseError(f"claim {cid!r}: beats_control needs control = a pruning method name")
        kw["control"] = _canon_method(t["control"])
        if kw["control"] in kw.get("methods", ("ppm",)):
            raise WidthwiseError(f"claim {cid!r}: control {kw['control']!r} is also in methods")
    if kind in PAIRWISE or kind in RATIOS or kind in CONTROLS:
        given = [k for k in _SELECT if k in t]
        if len(given) != 1:
            raise WidthwiseError(f"claim {cid!r}: give exactly one of configs, pcts or ratios")
        if "configs" in t:
            if t["configs"] not in ("all_pruned", "most_pruned"):
                raise WidthwiseError(f"claim {cid!r}: configs must be 'all_pruned' or 'most_pruned'")
            kw["configs"] = t["configs"]
        for key in ("pcts", "ratios"):
            if key in t:
                if not isinstance(t[key], list) or not t[key]:
                    raise WidthwiseError(f"claim {cid!r}: {key} must be a non-empty list of numbers")
                kw[key] = tuple(_num(cid, key, x) for x in t[key])
    if kind == "non_inferior" and "margin" not in t:
        raise WidthwiseError(f"claim {cid!r}: non_inferior needs a stated margin")
    if "exclude_degenerate" in t:
        if not isinstance(t["exclude_degenerate"], bool):
            raise WidthwiseError(f"claim {cid!r}: exclude_degenerate must be true or false")
        if not kw["metric"].startswith("ifeval/"):
            raise WidthwiseError(f"claim {cid!r}: exclude_degenerate applies to ifeval metrics only")
        kw["exclude_degenerate"] = t["exclude_degenerate"]
    if kind in RATIOS:
        if "bound" not in t:
            raise WidthwiseError(f"claim {cid!r}: {kind} needs a bound")
        kw["bound"] = _num(cid, "bound", t["bound"])
        if kw["bound"] <= 0:
            raise WidthwiseError(f"claim {cid!r}: bound must be positive")
    if kind == "correlation":
        if "metric_y" not in t:
            raise WidthwiseError(f"claim {cid!r}: correlation needs metric_y")
        if "r_at_most" not in t and "r_at_least" not in t:
            raise WidthwiseError(f"claim {cid!r}: correlation needs r_at_most or r_at_least")
        for key in ("r_at_most", "r_at_least"):
            if key in t:
                kw[key] = _num(cid, key, t[key])
                if not -1 <= kw[key] <= 1:
                    raise WidthwiseError(f"claim {cid!r}: {key} must be in [-1, 1]")
    return Claim(**kw)


def parse_thresholds(data: Mapping[str, Any], where: str = "thresholds") -> list[Claim]:
    unknown = sorted(set(data) - {"version", "claims"})
    if unknown:
        raise WidthwiseError(f"{where}: unknown top-level key(s) {', '.join(unknown)} (expected [claims.ID])")
    if data.get("version", 1) != 1:
        raise WidthwiseError(f"{where}: unsupported version {data.get('version')!r}")
    claims = data.get("claims")
    if not isinstance(claims, dict) or not claims:
        raise WidthwiseError(f"{where}: no [claims.ID] tables")
    try:
        return [parse_claim(cid, t) for cid, t in claims.items()]
    except WidthwiseError as e:
        raise WidthwiseError(f"{where}: {e}") from None


def load_thresholds(path: Path) -> list[Claim]:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WidthwiseError(f"{path}: no such thresholds file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise WidthwiseError(f"{path}: not valid TOML ({e})") from None
    return parse_thresholds(data, str(path))


# ---- grouping Results into points ---------------------------------------------------------------------


def _canon_method(m: str) -> str:
    m = m.lower()
    return "ppm" if m == "maw" else m


def tier_of(result: Mapping[str, Any]) -> str:
    if (result.get("provenance") or {}).get("source") == "paper":
        return "paper"
    suite = result.get("suite")
    if suite == "cpu":
        return "cpu"
    if suite == "paper":
        return "gpu"
    # A bench Result (suite "bench") belongs to the tier of the device it ran on.
    settings = result.get("settings") or {}
    kind = settings.get("device_kind") or settings.get("device") or ""
    return "gpu" if re.search(r"cuda|nvidia|gpu", str(kind), re.I) else "cpu"


def model_key(name: str) -> str:
    """'meta-llama/Llama-3.2-1B' and a local '.../Llama-3.2-1B' folder are the same model."""
    return name.rstrip("/").rsplit("/", 1)[-1].lower()


@dataclass
class Point:
    tier: str
    model: str
    method: str | None  # None for the base model
    pct: float | None
    k: int | None
    ratio: float
    metrics: dict[str, tuple[dict, dict]] = field(default_factory=dict)  # key -> (entry, source Result)
    # The base model as measured in the same bench run (interleaved with this configuration): a ratio
    # is taken against it rather than against a base measured at another time.
    refs: dict[str, tuple[dict, dict]] = field(default_factory=dict)

    @property
    def is_base(self) -> bool:
        return self.method is None

    @property
    def label(self) -> str:
        if self.is_base:
            head = "base"
        elif self.pct is not None:
            head = f"pct {self.pct:g}" + ("" if self.method == "ppm" else f" {self.method}")
        else:
            head = f"k {self.k} {self.method}"
        return f"{head} ({self.ratio:.2f}x)"


@dataclass
class Group:
    tier: str
    model: str
    points: list[Point]  # base first, then by decreasing expansion ratio

    @property
    def base(self) -> Point | None:
        return self.points[0] if self.points and self.points[0].is_base else None


def bench_run(result: Mapping[str, Any]) -> tuple[str, str] | None:
    """(run id, role) of a Result that `widthwise bench` wrote beside its partner, else None.

    One bench run measures the base and one pruned model interleaved and writes both with the same
    bench.run_id; Results from before run_id existed share their device facts (with the run's wall
    time), which identify the run as well.
    """
    b = result.get("bench")
    if not isinstance(b, dict) or b.get("role") not in ("base", "pruned"):
        return None
    if b.get("run_id"):
        return str(b["run_id"]), b["role"]
    if "device" not in b:
        return None
    run = hashlib.sha256(json.dumps(b["device"], sort_keys=True, default=str).encode()).hexdigest()
    return run, b["role"]


def group_results(results: Iterable[Mapping[str, Any]]) -> list[Group]:
    """Merge Results per (tier, model, configuration); a metric given twice with two values is refused.

    A base Result that a bench run wrote beside a pruned one (a sweep writes one per configuration)
    becomes that configuration's reference instead of competing for the base model's point.
    """
    results = list(results)
    runs: dict[str, dict[str, Mapping[str, Any]]] = {}
    for r in results:
        br = bench_run(r)
        if br:
            runs.setdefault(br[0], {})[br[1]] = r
    partnered = {id(rs["base"]) for rs in runs.values() if "base" in rs and "pruned" in rs}
    pts: dict[tuple, Point] = {}
    names: dict[tuple, str] = {}
    for r in results:
        if id(r) in partnered:
            continue
        tier, mk = tier_of(r), model_key(r["model"]["name"])
        names.setdefault((tier, mk), r["model"]["name"])
        pr = r.get("pruning")
        method = _canon_method(pr["method"]) if pr else None
        k = pr.get("intermediate_size") if pr else None
        key = (tier, mk, method, k)
        if key not in pts:
            pct = pr.get("pct") if pr else None
            pts[key] = Point(tier, names[(tier, mk)], method, pct, k, float(r["expansion_ratio"]))
        p = pts[key]
        for mkey, entry in r["metrics"].items():
            if mkey in p.metrics and p.metrics[mkey][0].get("value") != entry.get("value"):
                other = p.metrics[mkey][1]
                raise WidthwiseError(
                    f"two Results give {mkey} for {p.model} {p.label} [{tier}]: "
                    f"{p.metrics[mkey][0].get('value')} (suite {other.get('suite')!r}) and "
                    f"{entry.get('value')} (suite {r.get('suite')!r}); pass one of them"
                )
            p.metrics[mkey] = (entry, r)
        br = bench_run(r)
        if br and br[1] == "pruned" and "base" in runs[br[0]]:
            partner = runs[br[0]]["base"]
            p.refs.update({k: (e, partner) for k, e in partner["metrics"].items()})
    groups: dict[tuple, list[Point]] = {}
    for (tier, mk, *_), p in pts.items():
        groups.setdefault((tier, mk), []).append(p)
    out = []
    for (tier, mk), ps in sorted(groups.items()):
        ps.sort(key=lambda p: (not p.is_base, -p.ratio))
        out.append(Group(tier, names[(tier, mk)], ps))
    return out


# ---- verdicts -----------------------------------------------------------------------------------------


@dataclass
class Verdict:
    claim: str
    statement: str
    kind: str
    metric: str
    tier: str
    model: str
    config: str
    verdict: str
    observed: str
    bound: str
    n: int | None
    mde: str
    method: str
    value: float | None = None  # the observed number (difference, ratio, r, worst step)
    threshold: float | None = None  # what it was compared with

    @property
    def message(self) -> str:
        return (
            f"{self.claim} {self.verdict.upper()}: {self.model} at {self.config} [{self.tier}], "
            f"{self.metric}: observed {self.observed}; bound {self.bound}"
            + (f"; {self.method}" if self.method else "")
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "message": self.message}


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "—"
    return "0" if x == 0 else f"{x:+.{digits}f}"


def _applies_model(claim: Claim, model: str) -> bool:
    return any(model_key(m) == model_key(model) for m in claim.models)


def _selected(claim: Claim, group: Group) -> list[Point]:
    pruned = [p for p in group.points if not p.is_base and p.method in claim.methods]
    if claim.configs == "all_pruned":
        return pruned
    if claim.configs == "most_pruned":
        return [min(pruned, key=lambda p: p.ratio)] if pruned else []
    if claim.pcts:
        return [p for p in pruned if p.pct is not None and any(abs(p.pct - x) < 1e-9 for x in claim.pcts)]
    return [p for p in pruned if any(abs(p.ratio - x) <= RATIO_MATCH for x in claim.ratios)]


def _value(point: Point | None, metric: str) -> tuple[dict | None, dict | None]:
    if point is None or metric not in point.metrics:
        return None, None
    return point.metrics[metric]


def _unmeasurable(*entries: dict) -> str | None:
    for e in entries:
        if e.get("value") is None:
            return str(e.get("not_measurable") or "no value")
    return None


def _verdict(claim: Claim, group: Group, config: str, **kw: Any) -> Verdict:
    return Verdict(
        claim=claim.id,
        statement=claim.statement,
        kind=claim.kind,
        metric=claim.metric if not claim.metric_y else f"{claim.metric} ~ {claim.metric_y}",
        tier=group.tier,
        model=group.model,
        config=config,
        **kw,
    )


def _no_numbers(claim: Claim, group: Group, config: str, verdict: str, observed: str) -> Verdict:
    """A verdict reached without a bound: missing, not measurable or skipped, with why."""
    return _verdict(
        claim, group, config, verdict=verdict, observed=observed, bound="—", n=None, mde="—", method=""
    )


def _missing(claim: Claim, group: Group, config: str, what: str) -> Verdict:
    return _no_numbers(claim, group, config, "missing", f"missing: {what}")


def _not_measurable(claim: Claim, group: Group, config: str, why: str) -> Verdict:
    return _no_numbers(claim, group, config, "not_measurable", f"not measurable: {why}")


def _bound_method(bound: stats.Bound) -> str:
    return bound.method + (f", p={bound.p_value:.3g}" if bound.p_value is not None else "")


def _samples(result: Mapping[str, Any], task: str) -> list[dict] | None:
    s = (result.get("samples") or {}).get(task)
    return s if isinstance(s, list) and s else None


def paired_records(base: Sequence[dict], pruned: Sequence[dict], where: str) -> list[tuple[dict, dict]]:
    """Pair per-sample records by doc_id; refuse when the documents or prompts are not the same."""
    a = {r["doc_id"]: r for r in base}
    b = {r["doc_id"]: r for r in pruned}
    if set(a) != set(b):
        raise WidthwiseError(
            f"{where}: per-sample records cover different documents ({len(set(a) ^ set(b))} doc_ids differ); "
            "pairing refused"
        )
    pairs = []
    for did in sorted(a, key=str):
        x, y = a[did], b[did]
        for h in ("doc_hash", "prompt_hash"):
            if h in x and h in y and x[h] != y[h]:
                raise WidthwiseError(
                    f"{where}: {h} differs for doc_id {did!r} ({x[h]} vs {y[h]}); the two runs did not see "
                    "the same inputs, pairing refused"
                )
        pairs.append((x, y))
    return pairs


def _paired_bound(claim: Claim, bres: dict, pres: dict, side: str, where: str) -> stats.Bound | str | None:
    """A paired bound from per-sample records, 'skip: why' when exclude_degenerate has none, else None."""
    task = claim.metric.split("/", 1)[0]
    bs, ps = _samples(bres, task), _samples(pres, task)
    headline = all((r.get("headline") or {}).get(task) == claim.metric for r in (bres, pres))
    if claim.exclude_degenerate:
        if not (bs and ps) or not all("degenerate" in r for r in (*bs, *ps)):
            return "skip: no per-response records with a 'degenerate' flag on both sides"
        if not headline:
            return f"skip: the per-response records are not scored by {claim.metric}"
    elif not (bs and ps and headline):
        return None
    pairs = paired_records(bs, ps, where)
    if all("correct" in x and "correct" in y for x, y in pairs):

        def ok(r: dict) -> bool:
            # A degenerate response that happens to satisfy the instructions counts as a failure.
            return bool(r["correct"]) and not (claim.exclude_degenerate and r.get("degenerate"))

        return stats.paired_binary_bound(
            [ok(x) for x, _ in pairs], [ok(y) for _, y in pairs], claim.alpha, side
        )
    if all("score" in x and "score" in y for x, y in pairs):
        return stats.paired_bootstrap_bound(
            [float(x["score"]) for x, _ in pairs], [float(y["score"]) for _, y in pairs], claim.alpha, side
        )
    return None


def _unpaired_bound(info: MetricInfo, b: dict, p: dict, alpha: float, side: str) -> stats.Bound:
    bv, pv = float(b["value"]), float(p["value"])
    bn, pn = b.get("n"), p.get("n")

    def se(e: dict, v: float, n: int | None) -> float | None:
        if e.get("stderr") is not None:
            return float(e["stderr"])
        if info.type in ("proportion", "score") and n:
            return math.sqrt(max(v * (1 - v), 0.0) / n)
        return None

    if b.get("stderr") is not None and p.get("stderr") is not None:
        return stats.normal_bound(pv, float(p["stderr"]), bv, float(b["stderr"]), alpha, side)
    if info.type in ("proportion", "score") and bn and pn:
        return stats.newcombe_bound(pv, int(pn), bv, int(bn), alpha, side)
    sb, sp = se(b, bv, bn), se(p, pv, pn)
    if sb is not None and sp is not None:
        return stats.normal_bound(pv, sp, bv, sb, alpha, side)
    return stats.Bound(pv - bv, pv - bv, side, "point estimate (no n or stderr)", None)


def _mde(bound: stats.Bound, alpha: float) -> str:
    return "—" if bound.se is None else f"{stats.mde_stderr(bound.se, alpha):.4f}"


def gate_pairwise(kind: str, higher_is_better: bool, lower: float, upper: float, margin: float) -> bool:
    """Does a one-sided bound on pruned - base satisfy the claim? (lower/upper are the two bounds.)"""
    if kind == "drop":
        return upper < -margin
    if kind == "improves":
        return lower > margin
    if kind == "non_inferior":
        return lower >= -margin if higher_is_better else upper <= margin
    raise ValueError(kind)


def _pairwise_side(kind: str, higher_is_better: bool) -> str:
    if kind == "drop" or (kind == "non_inferior" and not higher_is_better):
        return "upper"
    return "lower"


def _base_and_pruned(claim: Claim, group: Group, pp: Point) -> tuple[dict, dict, dict, dict] | Verdict:
    """The claim's metric at the base and at `pp` (entry, source Result each), or the verdict that says
    why there is nothing to compare (missing, not measurable). Refuses Results made under other settings."""
    cfg = pp.label
    b, bres = pp.refs.get(claim.metric) or _value(group.base, claim.metric)
    p, pres = _value(pp, claim.metric)
    if b is None:
        return _missing(claim, group, cfg, f"{claim.metric} of the base model")
    if p is None:
        return _missing(claim, group, cfg, f"{claim.metric} at this configuration")
    why = _unmeasurable(b, p)
    if why:
        return _not_measurable(claim, group, cfg, why)
    require_comparable(bres, pres)
    return b, bres, p, pres


def check_pairwise(claim: Claim, group: Group) -> list[Verdict]:
    info = metric_info(claim.metric)
    assert info is not None
    out = []
    side = _pairwise_side(claim.kind, info.higher_is_better)
    for pp in _selected(claim, group):
        cfg = pp.label
        pair = _base_and_pruned(claim, group, pp)
        if isinstance(pair, Verdict):
            out.append(pair)
            continue
        b, bres, p, pres = pair
        where = f"{claim.id}: {group.model} {cfg}"
        bd = _paired_bound(claim, bres, pres, side, where)
        if isinstance(bd, str):
            out.append(_no_numbers(claim, group, cfg, "skipped", bd.removeprefix("skip: ")))
            continue
        if bd is None:
            bd = _unpaired_bound(info, b, p, claim.alpha, side)
        if claim.kind == "drop":
            thr, op = -claim.margin, "<"
        elif claim.kind == "improves":
            thr, op = claim.margin, ">"
        else:
            thr, op = (-claim.margin, ">=") if side == "lower" else (claim.margin, "<=")
        lower = bd.bound if side == "lower" else -math.inf
        upper = bd.bound if side == "upper" else math.inf
        ok = gate_pairwise(claim.kind, info.higher_is_better, lower, upper, claim.margin)
        conf = f"{100 * (1 - claim.alpha):g}% {'UCB' if side == 'upper' else 'LCB'}"
        n = bd.n or p.get("n") or b.get("n")
        # Paired tests report the means over the paired documents (degenerate responses as failures
        # where the claim says so), which can differ from the stored metric.
        bv, pv = bd.means if bd.means else (float(b["value"]), float(p["value"]))
        paired = f", paired over {bd.n} docs" if bd.means else ""
        out.append(
            _verdict(
                claim,
                group,
                cfg,
                verdict="holds" if ok else "fails",
                observed=f"{_fmt(bd.delta)} ({pv:.4g} vs base {bv:.4g}{paired})",
                bound=f"{conf} {_fmt(bd.bound)} {op} {_fmt(thr)}",
                n=int(n) if n else None,
                mde=_mde(bd, claim.alpha),
                method=_bound_method(bd),
                value=bd.delta,
                threshold=thr,
            )
        )
    return out


def _series(claim: Claim, group: Group, metric: str) -> tuple[list[Point], list[float]] | Verdict:
    pts = [p for p in group.points if p.is_base or p.method in claim.methods]
    if group.base is None:
        return _missing(claim, group, "all configurations", "the base model")
    vals = []
    for p in pts:
        e, _ = _value(p, metric)
        if e is None:
            return _missing(claim, group, p.label, metric)
        why = _unmeasurable(e)
        if why:
            return _not_measurable(claim, group, p.label, why)
        vals.append(float(e["value"]))
    for a, b in zip(pts, pts[1:], strict=False):
        require_comparable(a.metrics[metric][1], b.metrics[metric][1])
    return pts, vals


def check_trend(claim: Claim, group: Group) -> list[Verdict]:
    s = _series(claim, group, claim.metric)
    if isinstance(s, Verdict):
        return [s]
    pts, vals = s
    inc = claim.kind == "monotone_increasing"
    cfg = f"all {len(pts)} configurations"
    if len(pts) < 2:
        return [_missing(claim, group, cfg, "a pruned configuration")]
    t = stats.trend(vals, inc)
    ok = stats.monotone_holds(t, inc, claim.tolerance)
    info = metric_info(claim.metric)
    assert info is not None
    ns = [pts[0].metrics[claim.metric][0].get("n")]
    mde = (
        f"{stats.mde_proportion(vals[0], int(ns[0]), claim.alpha):.4f}/step"
        if (info.type in ("proportion", "score") and ns[0])
        else "—"
    )
    step = f"{pts[t.worst_at].label} -> {pts[t.worst_at + 1].label}"
    signed = -t.worst_step if inc else t.worst_step  # the step closest to breaking the trend, in data units
    return [
        _verdict(
            claim,
            group,
            cfg,
            verdict="holds" if ok else "fails",
            observed=f"{'smallest' if inc else 'largest'} step {_fmt(signed)} at {step}; "
            f"end to end {_fmt(t.total)}",
            bound=f"every step {'>=' if inc else '<='} {_fmt(-claim.tolerance if inc else claim.tolerance)}; "
            f"end to end {'>' if inc else '<'} {_fmt(claim.tolerance if inc else -claim.tolerance)}",
            n=len(pts),
            mde=mde,
            method="monotone trend with tolerance",
            value=signed,
            threshold=-claim.tolerance if inc else claim.tolerance,
        )
    ]


def gate_correlation(
    r: float, p: float, alpha: float, r_at_most: float | None, r_at_least: float | None
) -> bool:
    if r_at_most is not None and not r <= r_at_most:
        return False
    if r_at_least is not None and not r >= r_at_least:
        return False
    return p < alpha


def check_correlation(claim: Claim, group: Group) -> list[Verdict]:
    assert claim.metric_y is not None
    sx = _series(claim, group, claim.metric)
    if isinstance(sx, Verdict):
        return [sx]
    sy = _series(claim, group, claim.metric_y)
    if isinstance(sy, Verdict):
        return [sy]
    pts, xs = sx
    _, ys = sy
    r, pv = stats.pearson(xs, ys)
    ok = gate_correlation(r, pv, claim.alpha, claim.r_at_most, claim.r_at_least)
    cond = []
    if claim.r_at_most is not None:
        cond.append(f"r <= {claim.r_at_most:+.3f}")
    if claim.r_at_least is not None:
        cond.append(f"r >= {claim.r_at_least:+.3f}")
    return [
        _verdict(
            claim,
            group,
            f"all {len(pts)} configurations",
            verdict="holds" if ok else "fails",
            observed=f"r = {r:+.4f} (p = {pv:.4f})",
            bound=", ".join(cond) + f", p < {claim.alpha:g}",
            n=len(pts),
            mde=f"|r| >= {stats.mde_correlation(len(pts), claim.alpha):.3f}",
            method="Pearson (scipy.stats.pearsonr, two-sided)",
            value=r,
            threshold=claim.r_at_most if claim.r_at_most is not None else claim.r_at_least,
        )
    ]


def gate_ratio(kind: str, bound_value: float, bound: float) -> bool:
    return bound_value <= bound if kind == "ratio_at_most" else bound_value >= bound


def check_ratio(claim: Claim, group: Group) -> list[Verdict]:
    out = []
    side = "upper" if claim.kind == "ratio_at_most" else "lower"
    assert claim.bound is not None
    for pp in _selected(claim, group):
        cfg = pp.label
        pair = _base_and_pruned(claim, group, pp)
        if isinstance(pair, Verdict):
            out.append(pair)
            continue
        b, bres, p, pres = pair
        bv, pv = float(b["value"]), float(p["value"])
        bse, pse = b.get("stderr"), p.get("stderr")
        n = min(int(b["n"]), int(p["n"])) if b.get("n") and p.get("n") else None
        df = n - 1 if n and n < 30 else None
        bd = stats.ratio_bound(pv, pse, bv, bse, claim.alpha, side, df)
        ok = gate_ratio(claim.kind, bd.bound, claim.bound)
        op = "<=" if claim.kind == "ratio_at_most" else ">="
        if bse is not None and pse is not None:
            rel = math.hypot(pse / pv, bse / bv)
            mde = f"{100 * stats.mde_stderr(rel, claim.alpha, df=df):.1f}% (relative)"
            conf = f"{100 * (1 - claim.alpha):g}% {'UCB' if side == 'upper' else 'LCB'} "
        else:
            mde, conf = "—", "point "
        out.append(
            _verdict(
                claim,
                group,
                cfg,
                verdict="holds" if ok else "fails",
                observed=f"ratio {bd.delta:.4f} ({pv:.4g} / base {bv:.4g})",
                bound=f"{conf}{bd.bound:.4f} {op} {claim.bound:g}",
                n=n,
                mde=mde,
                method=bd.method,
                value=bd.delta,
                threshold=claim.bound,
            )
        )
    return out


def _check_beats_control(claim: Claim, group: Group) -> list[Verdict]:
    from widthwise.controls import check_beats_control  # it builds on this module's helpers

    return check_beats_control(claim, group)


_CHECKS = {
    **{k: check_pairwise for k in PAIRWISE},
    **{k: check_trend for k in TRENDS},
    "correlation": check_correlation,
    **{k: check_ratio for k in RATIOS},
    "beats_control": _check_beats_control,
}


def applicable(claim: Claim, group: Group) -> bool:
    """The claim names this tier and model, and the Results carry its metric(s) somewhere in the group."""
    if group.tier not in claim.tiers or not _applies_model(claim, group.model):
        return False
    if claim.kind in CONTROLS and not any(p.method == claim.control for p in group.points):
        return False  # the sweep ran without --controls: nothing to compare with, not a failure
    return all(any(m in p.metrics for p in group.points) for m in claim.metrics)


def evaluate(claims: Sequence[Claim], results: Iterable[Mapping[str, Any]]) -> list[Verdict]:
    """Every applicable claim against every matching group, in thresholds order."""
    groups = group_results(results)
    out: list[Verdict] = []
    for c in claims:
        for g in groups:
            if applicable(c, g):
                out.extend(_CHECKS[c.kind](c, g))
    return out


def unchecked(claims: Sequence[Claim], verdicts: Sequence[Verdict]) -> list[str]:
    """Claims that matched no (tier, model, metric) in these Results: listed, so none vanishes silently."""
    seen = {v.claim for v in verdicts}
    return [c.id for c in claims if c.id not in seen]


def exit_code(verdicts: Sequence[Verdict]) -> int:
    """0 when every verdict holds, is not measurable or is skipped; 1 when any fails or is missing."""
    return 1 if any(v.verdict in FAILING for v in verdicts) else 0


def default_thresholds() -> Path:
    """./thresholds.toml, else the one at the root of the checkout this package was installed from."""
    here = Path("thresholds.toml")
    if here.is_file():
        return here
    return Path(__file__).resolve().parents[2] / "thresholds.toml"
