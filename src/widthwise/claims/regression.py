"""The regression gate: a fresh Result compared document by document with its stored baseline.

Claims in thresholds.toml ask whether the paper's findings hold; this gate asks a narrower question a
maintainer of pruning code needs answered on every change: does the pruner still produce the model it
produced when the baseline was stored? A changed kept-neuron set shows up here even when the aggregate
accuracy happens to land on the same value.

Per document, by kind of record (what both records have; records stored before a field existed are
compared on the rest, and the verdict says which fields the stored ones lack):

  log-likelihoods  every choice's (LAMBADA's one, its score) within `abs + rel * |ll|` nats, the
                   tolerance regression.toml derives from the spread measured across CPU kernel levels;
                   numbers derived from them (margin, gold_logprob, mc2, score) by no more than twice
                   the largest change of a choice. An argmax flag (acc, acc_norm) may differ only when
                   every choice agrees: a near tie that fell the other way, reported as excused.
  generated text   the response, its generated token ids, per-instruction verdicts, prompt-level flags,
                   degenerate flags and extracted answers, exactly. A response that differs is excused
                   (and reported) only with stored evidence of a near tie on both sides: the token ids
                   agree up to the first differing one, and there both top-1 minus top-2 margins are
                   below regression.toml's bound; its verdict and flag differences go with it.

Per task, the documents' log-likelihood differences must also look like kernel noise as a whole: their
root mean square, in units of the tolerance, stays under `rms` (a change too small to move any one
document past the tolerance moves all of them). Any changed document is counted and shown with its
doc_ids, and fails unless `--max-changed` allows that many.

Refused when the two ran under other settings, thread count, torch, transformers or lm-eval: documents
would differ for that reason alone. Another CPU kernel level (AVX2, AVX-512) is within the tolerance,
and the verdict names both.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from widthwise.claims.evidence import paired_records
from widthwise.claims.verdict import Verdict
from widthwise.errors import WidthwiseError
from widthwise.names import config_label
from widthwise.points import identity
from widthwise.results import settings_mismatch

TOML = Path(__file__).with_name("regression.toml")


@dataclass(frozen=True)
class Tolerance:
    """How far two runs of the same code may be apart (regression.toml)."""

    abs: float  # nats, per log-likelihood
    rel: float  # of |log-likelihood|
    rms: float  # the largest root mean square of a task's differences, in units of the tolerance
    near_tie: float  # nats: the largest top-1 minus top-2 margin whose token a kernel difference can flip

    def ll(self, x: float) -> float:
        """The tolerance for a log-likelihood of value x (nats)."""
        return self.abs + self.rel * abs(x)

    def describe(self) -> str:
        return (
            f"{self.abs:g} nats + {self.rel:g} x |ll|, task RMS <= {self.rms:g}, near tie < {self.near_tie:g}"
        )


def load_tolerance(path: Path = TOML) -> Tolerance:
    try:
        data = tomllib.loads(path.read_text())
        ll, gen = data["loglikelihood"], data["generation"]
        tol = Tolerance(float(ll["abs"]), float(ll["rel"]), float(ll["rms"]), float(gen["near_tie"]))
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as e:
        raise WidthwiseError(f"{path}: not a regression tolerance file ({e})") from None
    if not all(math.isfinite(x) and x >= 0 for x in (tol.abs, tol.rel, tol.rms, tol.near_tie)):
        raise WidthwiseError(f"{path}: tolerances must be finite and non-negative")
    return tol


TOLERANCE = load_tolerance()


def _key(result: Mapping[str, Any]) -> tuple:
    """What a Result measures: model, configuration and suite (not when or where it ran)."""
    return (*identity(result), result.get("suite"))


def _label(result: Mapping[str, Any]) -> str:
    return config_label(result.get("pruning"), result["expansion_ratio"])


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def numbers(rec: Mapping[str, Any]) -> dict[str, float]:
    """Every score a record stores: `score`, the continuous scores and each per-document metric."""
    out = {k: rec.get(k) for k in ("score", "margin", "gold_logprob")}
    out |= {f"metrics.{k}": v for k, v in (rec.get("metrics") or {}).items()}
    return {k: float(v) for k, v in out.items() if _is_number(v)}


def log_likelihoods(rec: Mapping[str, Any]) -> list[float]:
    """A record's log-likelihoods: every choice's, or a perplexity task's per-document one (its score)."""
    choices = rec.get("choices")
    if isinstance(choices, dict):
        return [float(x) for x in choices.get("ll") or []]
    per_doc = (rec.get("metrics") or {}).get("perplexity")
    return [float(per_doc)] if _is_number(per_doc) else []


# Per-document metrics that are argmax outcomes of the choices' log-likelihoods.
FLAGS = {"acc", "acc_norm", "acc_bytes", "exact_match"}
# What generation records carry besides the response: outcomes of it, compared exactly.
GENERATED = ("correct", "prompt_level_loose", "instructions", "degenerate", "answers")


def first_divergence(a: Mapping[str, Any], b: Mapping[str, Any]) -> int | None:
    """The index of the first generated token that differs, when both records carry generation evidence
    (None without it, or when one token list is a prefix of the other: no greedy choice differed)."""
    ga, gb = a.get("generation"), b.get("generation")
    if not (isinstance(ga, dict) and isinstance(gb, dict)):
        return None
    ta, tb = ga.get("tokens") or [], gb.get("tokens") or []
    for i, (x, y) in enumerate(zip(ta, tb, strict=False)):
        if x != y:
            ma, mb = ga.get("margins") or [], gb.get("margins") or []
            return i if i < len(ma) and i < len(mb) else None
    return None


@dataclass
class DocComparison:
    status: str  # "same", "tie" (a near tie, excused) or "changed"
    units: list[float]  # each log-likelihood's difference, in units of its tolerance
    lacking: set[str]  # fields the fresh record has and the stored one lacks


def _close(u: float, v: float, tol: float) -> bool:
    return abs(u - v) <= tol


def _compare_lls(a: Mapping[str, Any], b: Mapping[str, Any], tol: Tolerance) -> DocComparison:
    ca, cb = a.get("choices"), b.get("choices")
    both_choices = isinstance(ca, dict) and isinstance(cb, dict)
    x, y = numbers(a), numbers(b)
    # A field the stored record lacks (written before it existed) is not compared; one the fresh record
    # lacks is a change in what the code records.
    lacking = set(y) - set(x) | ({"choices"} if isinstance(cb, dict) and not isinstance(ca, dict) else set())
    if set(x) - set(y) or (isinstance(ca, dict) and not isinstance(cb, dict)):
        return DocComparison("changed", [], lacking)
    # Against a stored record without choices, the fresh one's choices have nothing to meet.
    one_sided = isinstance(cb, dict) and not both_choices
    la, lb = ([], []) if one_sided else (log_likelihoods(a), log_likelihoods(b))
    if len(la) != len(lb):
        return DocComparison("changed", [], lacking)
    units = [abs(v - u) / tol.ll(u) for u, v in zip(la, lb, strict=True)]
    if any(d > 1 for d in units):
        return DocComparison("changed", units, lacking)
    if not both_choices:
        # Without every choice's log-likelihood a flag flip cannot be told from a change: every number
        # (log-likelihoods, 0/1 flags, mc2) is held to the log-likelihood tolerance.
        same = all(_close(x[k], y[k], tol.ll(x[k])) for k in x)
        same = same and (a.get("correct") == b.get("correct") or "correct" not in a)
        return DocComparison("same" if same else "changed", units, lacking)
    if ca.get("gold") != cb.get("gold") or ca.get("chars") != cb.get("chars"):
        return DocComparison("changed", units, lacking)
    # Numbers derived from the choices (margin, gold_logprob, mc2, acc_norm's per-character scores) move
    # by at most twice the largest change of a choice (a margin is a difference of two; mc2 moves less),
    # up to float rounding: a change in how they are derived cannot hide in the choices' tolerance.
    moved = 2 * max((abs(v - u) for u, v in zip(la, lb, strict=True)), default=0.0)
    # A task with a binary headline (a `correct` flag) scores argmax flags; TruthfulQA MC2's "acc" is
    # its continuous mc2 and no flag.
    flags = {k for k in x if k.startswith("metrics.") and k[8:].split(",")[0] in FLAGS} | {"score"}
    flags = flags if "correct" in a else set()
    if not all(_close(x[k], y[k], moved + 1e-6 * (1 + abs(x[k]))) for k in x if k not in flags):
        return DocComparison("changed", units, lacking)
    flipped = any(x[k] != y[k] for k in flags if k in x) or a.get("correct") != b.get("correct")
    # Every log-likelihood agrees, so a flipped flag is an argmax that fell the other way on a near tie.
    return DocComparison("tie" if flipped else "same", units, lacking)


def _compare_text(a: Mapping[str, Any], b: Mapping[str, Any], tol: Tolerance) -> DocComparison:
    lacking = {k for k in (*GENERATED, "generation") if k in b and k not in a}
    lacking |= {"metrics"} if "metrics" in b and "metrics" not in a else set()
    ga, gb = a.get("generation"), b.get("generation")
    tokens_differ = isinstance(ga, dict) and isinstance(gb, dict) and ga.get("tokens") != gb.get("tokens")
    if a["response"] == b["response"] and not tokens_differ:
        x, y = numbers(a), numbers(b)
        same = all(a[k] == b[k] for k in GENERATED if k in a and k in b)
        same = same and not set(x) - set(y) and all(x[k] == y[k] for k in x)
        return DocComparison("same" if same else "changed", [], lacking)
    i = first_divergence(a, b)
    if i is not None and max(ga["margins"][i], gb["margins"][i]) < tol.near_tie:
        return DocComparison("tie", [], lacking)
    return DocComparison("changed", [], lacking)


def compare_doc(a: Mapping[str, Any], b: Mapping[str, Any], tol: Tolerance = TOLERANCE) -> DocComparison:
    """Stored record `a` against fresh record `b` of the same document."""
    if "response" in a and "response" in b:
        return _compare_text(a, b, tol)
    if ("response" in a) != ("response" in b):
        return DocComparison("changed", [], set())
    return _compare_lls(a, b, tol)


# What decides the floating-point path beyond the kernel level: scores reproduce within the tolerance
# only where these match. A key that one side did not record is not compared.
ENVIRONMENT = (
    ("torch_threads", ("torch_threads",)),
    ("torch", ("versions", "torch")),
    ("transformers", ("versions", "transformers")),
    ("lm_eval", ("versions", "lm_eval")),
)
CAPABILITY = ("versions", "torch_cpu_capability")


def _provenance(r: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    x: Any = r.get("provenance") or {}
    for k in path:
        x = x.get(k) if isinstance(x, dict) else None
    return x


def environment_mismatch(fresh: Mapping[str, Any], stored: Mapping[str, Any]) -> list[str]:
    out = []
    for name, path in ENVIRONMENT:
        a, b = _provenance(fresh, path), _provenance(stored, path)
        if a is not None and b is not None and a != b:
            out.append(f"{name} {a} (fresh) vs {b} (stored)")
    return out


def _capability(r: Mapping[str, Any], task: str) -> Any:
    """The kernel level a task family ran at: a family re-stored by `baseline update --tasks` says its own."""
    restored = _provenance(r, ("tasks_restored", task)) or {}
    return restored.get("torch_cpu_capability") or _provenance(r, CAPABILITY)


def _method(
    fresh: Mapping[str, Any], stored: Mapping[str, Any], task: str, tol: Tolerance, lacking: set[str]
) -> str:
    a, b = _capability(fresh, task), _capability(stored, task)
    levels = f"{a} vs {b}: " if a and b and a != b else ""
    out = f"paired by doc_id, doc and prompt hashes must match; {levels}tolerance {tol.describe()}"
    if lacking:
        out += f"; stored records lack {', '.join(sorted(lacking))}: compared on what both have"
    return out


def _ids(ids: list[Any]) -> str:
    return f"doc_ids {', '.join(map(str, ids[:5]))}{', ...' if len(ids) > 5 else ''}"


def compare(
    fresh: Mapping[str, Any],
    stored: Mapping[str, Any],
    *,
    max_changed: int = 0,
    tolerance: Tolerance = TOLERANCE,
) -> list[Verdict]:
    """One verdict per task: how many documents changed since the baseline was stored.

    Refused (WidthwiseError) when the two were made under other settings, or under another thread count,
    torch, transformers or lm-eval: documents would differ for that reason alone, and a flaky red build
    teaches people to ignore the gate."""
    diff = settings_mismatch(fresh, stored)
    if diff:
        raise WidthwiseError(
            f"regression: {fresh['model']['name']} {_label(fresh)} was made under other settings than its "
            f"baseline: {'; '.join(diff)}"
        )
    env = environment_mismatch(fresh, stored)
    if env:
        raise WidthwiseError(
            f"regression: {fresh['model']['name']} {_label(fresh)} ran in another environment than its "
            f"baseline ({'; '.join(env)}); per-document scores reproduce only in the same one: install with "
            "`-c constraints/cpu.txt` (the nox sessions do), or re-store the baseline with "
            "`widthwise baseline update` and say why"
        )
    verdicts = []
    for task in sorted(stored.get("samples") or {}):
        where = f"regression {fresh['model']['name']} {_label(fresh)} {task}"
        if task not in (fresh.get("samples") or {}):
            raise WidthwiseError(f"{where}: the fresh Result has no per-sample records for {task}")
        pairs = paired_records(stored["samples"][task], fresh["samples"][task], where)
        docs = [(a.get("doc_id"), compare_doc(a, b, tolerance)) for a, b in pairs]
        changed = [d for d, c in docs if c.status == "changed"]
        ties = [d for d, c in docs if c.status == "tie"]
        units = [u for _, c in docs for u in c.units]
        rms = math.sqrt(sum(u * u for u in units) / len(units)) if units else 0.0
        shifted = rms > tolerance.rms
        lacking = set().union(*(c.lacking for _, c in docs)) if docs else set()
        observed = f"{len(changed)} of {len(pairs)} documents changed"
        observed += f" ({_ids(changed)})" if changed else ""
        if ties:
            observed += f"; {len(ties)} near tie{'s' if len(ties) > 1 else ''} excused ({_ids(ties)})"
        if units:
            observed += f"; log-likelihood RMS {rms:.2g} of tolerance" + (
                f" (above {tolerance.rms:g}: every document moved)" if shifted else ""
            )
        metric = (stored.get("headline") or {}).get(task, f"{task}/samples")
        verdicts.append(
            Verdict(
                claim="regression",
                statement="per-sample outcomes equal the stored baseline's",
                kind="regression",
                metric=metric,
                tier=stored["tier"],
                model=fresh["model"]["name"],
                config=_label(fresh),
                verdict="holds" if len(changed) <= max_changed and not shifted else "fails",
                observed=observed,
                bound=f"<= {max_changed} changed, log-likelihood RMS <= {tolerance.rms:g} of tolerance",
                n=len(pairs),
                mde="—",
                method=_method(fresh, stored, task, tolerance, lacking),
                value=float(len(changed)),
                threshold=float(max_changed),
            )
        )
    return verdicts


def check(
    fresh: Iterable[Mapping[str, Any]],
    stored: Sequence[Mapping[str, Any]],
    *,
    max_changed: int = 0,
    tolerance: Tolerance = TOLERANCE,
) -> list[Verdict]:
    """Compare every fresh eval Result (one with per-sample records) with the stored one of its identity."""
    if max_changed < 0:
        raise WidthwiseError("--max-changed must be 0 or more")
    by_id: dict[tuple, Mapping[str, Any]] = {}
    for s in stored:
        if s.get("samples"):
            if _key(s) in by_id:
                raise WidthwiseError(f"two stored baselines for {s['model']['name']} {_label(s)}")
            by_id[_key(s)] = s
    verdicts = []
    seen = set()
    for f in fresh:
        if not f.get("samples"):
            continue  # bench Results carry no per-sample records
        base = by_id.get(_key(f))
        if base is None:
            raise WidthwiseError(f"regression: no stored baseline for {f['model']['name']} {_label(f)}")
        seen.add(_key(f))
        verdicts += compare(f, base, max_changed=max_changed, tolerance=tolerance)
    if not verdicts:
        raise WidthwiseError("regression: none of the fresh Results has per-sample records to compare")
    # A stored baseline nobody re-measured is a gap in the evidence (a lost shard), not a pass.
    for key, s in sorted(by_id.items(), key=lambda kv: str(kv[0])):
        if key not in seen:
            verdicts.append(_missing(s))
    return verdicts


def only_tasks(result: Mapping[str, Any], tasks: Iterable[str]) -> dict[str, Any]:
    """A copy of a Result holding only `tasks` (records, settings, headlines): what a run of a subset of
    its families is compared with."""
    import copy

    keep = set(tasks)
    out = copy.deepcopy(dict(result))
    out["samples"] = {t: r for t, r in (out.get("samples") or {}).items() if t in keep}
    out["headline"] = {t: h for t, h in (out.get("headline") or {}).items() if t in keep}
    settings = out.get("settings") or {}
    if isinstance(settings.get("tasks"), dict):
        settings["tasks"] = {t: s for t, s in settings["tasks"].items() if t in keep}
    if settings.get("substitutes"):
        settings["substitutes"] = {}  # what stands in for the suite's missing tasks: a subset is no suite
    return out


def planned_baselines(stored: Sequence[Mapping[str, Any]], plans: Sequence[Any]) -> list[Mapping[str, Any]]:
    """The stored baselines whose model and configuration some plan names (a subset run, such as the pull
    request path's three configurations): the rest are not this run's to re-measure. Refused without a
    plan, which is what says what the run set out to cover, so a lost shard is still missing."""
    from widthwise.names import canonical_method, model_key

    if not plans:
        raise WidthwiseError("regression limited to the planned configurations, but the Results have no plan")

    def planned(s: Mapping[str, Any]) -> bool:
        pr = s.get("pruning")
        method, pct = (canonical_method(pr["method"]), pr.get("pct")) if pr else (None, None)
        where = (s["tier"], model_key(s["model"]["name"]))
        return any(p.key == where and any(c.names(method, pct) for c in p.configs) for p in plans)

    return [s for s in stored if planned(s)]


def _missing(stored: Mapping[str, Any]) -> Verdict:
    return Verdict(
        claim="regression",
        statement="per-sample outcomes equal the stored baseline's",
        kind="regression",
        metric=f"{stored.get('suite')}/samples",
        tier=stored["tier"],
        model=stored["model"]["name"],
        config=_label(stored),
        verdict="missing",
        observed="missing: a stored baseline with no fresh Result (was a shard lost?)",
        bound="a fresh Result for every stored baseline",
        n=None,
        mde="—",
        method="paired by doc_id, doc and prompt hashes must match",
        value=None,
        threshold=None,
    )
