"""Scoring: lm-eval's output -> Result metrics, headlines and per-document records (with IFEval's extras).

lm-eval's own metrics become "<builtin task>/<metric>" entries; its logged samples become one record per
document (doc hash, prompt hash, target hash, every per-sample metric, correct/score) for paired
statistics. IFEval records also keep per-instruction verdicts and the degenerate-text measure, and the
Result gets IFEval over non-degenerate responses and a breakdown by instruction type. Generation records
keep each filter's extracted answer and, from widthwise's HF model, the generated token ids with each
step's top-1 minus top-2 margin (the regression gate's near-tie evidence).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from widthwise import degeneracy
from widthwise.errors import WidthwiseError
from widthwise.evaluation.loading import LoadedTask, builtin_name
from widthwise.evaluation.suites import TaskSpec


def canonical_sha256(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _number(x: Any) -> float | None:
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, (int, float)) and math.isfinite(x):
        return float(x)
    return None


def metric_entries(
    lm_results: Mapping[str, Mapping[str, Any]], name: str, n: int
) -> dict[str, dict[str, Any]]:
    """lm-eval's "metric,filter" values of one task/group as {"<metric>[,filter]": {value, stderr, n}}."""
    out: dict[str, dict[str, Any]] = {}
    for k, v in lm_results.items():
        if "," not in k or "_stderr," in k:
            continue
        metric, _, filt = k.partition(",")
        key = metric if filt == "none" else f"{metric},{filt}"
        value = _number(v)
        entry: dict[str, Any] = {
            "value": value,
            "stderr": _number(lm_results.get(f"{metric}_stderr,{filt}")),
            "n": n,
        }
        if value is None:
            entry["not_measurable"] = f"lm-eval returned {v!r} for {name} {k}"
        out[key] = entry
    return out


def _stat(values: list[float], why_empty: str) -> dict[str, Any]:
    from lm_eval.api.metrics import mean_stderr

    if not values:
        return {"value": None, "stderr": None, "n": 0, "not_measurable": why_empty}
    value = sum(values) / len(values)
    return {"value": value, "stderr": mean_stderr(values) if len(values) > 1 else None, "n": len(values)}


BINARY = {"acc", "acc_norm", "exact_match", "prompt_level_strict_acc"}


# Per-document continuous scores kept for multiple-choice tasks (paired evidence that an accuracy flag,
# which moves only when the argmax does, cannot give at a few hundred documents).
CONTINUOUS = {
    "gold_logprob": "the gold choice's log-likelihood, normalised as the task's accuracy metric is "
    "(per character of the choice for acc_norm)",
    "margin": "gold_logprob minus the best wrong choice's (positive exactly when the document is correct)",
}
# (gsm8k_gold's records keep gold_logprob too, per token of its gold solution: PER_TOKEN below.)


def choice_record(task: Any, spec: TaskSpec, s: Mapping[str, Any]) -> dict[str, Any] | None:
    """Every choice's log-likelihood and greedy flag, its length in characters, and the gold index: what
    lm-eval's multiple-choice scoring decided from. None for other output types."""
    if getattr(task, "OUTPUT_TYPE", None) != "multiple_choice":
        return None
    choices = list(task.doc_to_choice(s["doc"]))
    resps = [
        r[0] if isinstance(r, (list, tuple)) and r and isinstance(r[0], (list, tuple)) else r
        for r in s["filtered_resps"]
    ]
    lls = [float(r[0]) for r in resps]
    greedy = [bool(r[1]) for r in resps]
    if len(lls) != len(choices):  # acc_mutual_info doubles the requests; widthwise runs no such task
        raise WidthwiseError(f"{spec.name}: {len(lls)} log-likelihoods for {len(choices)} choices")
    # As lm-eval's own scoring: with several inputs (WinoGrande's two filled-in contexts) the gold index
    # is what doc_to_text gives, else doc_to_target's.
    gold = task.doc_to_text(s["doc"]) if getattr(task, "multiple_input", 0) else s.get("target")
    if isinstance(gold, str):
        gold = choices.index(gold) if gold in choices else None
    return {"ll": lls, "greedy": greedy, "chars": [len(c) for c in choices], "gold": gold}


def continuous_scores(spec: TaskSpec, choices: Mapping[str, Any]) -> dict[str, float] | None:
    """gold_logprob and margin for a single-gold document, normalised as the task's headline accuracy."""
    if spec.name == "truthfulqa_mc2":  # several true answers; its mc2 score is already continuous
        return None
    gold = choices.get("gold")
    lls, chars = choices["ll"], choices["chars"]
    if not isinstance(gold, int) or isinstance(gold, bool) or not 0 <= gold < len(lls) or len(lls) < 2:
        return None
    norm = spec.headline.split(",")[0] == "acc_norm"
    x = [ll / max(c, 1) if norm else ll for ll, c in zip(lls, chars, strict=True)]
    wrong = max(v for j, v in enumerate(x) if j != gold)
    return {"gold_logprob": x[gold], "margin": x[gold] - wrong}


# Families scored as one gold continuation's log-likelihood per token (GSM8K's worked solutions, forced):
# the record keeps the summed log-likelihood (`ll`), the continuation's length in the model's own tokens
# (`tokens`) and their ratio `gold_logprob`, the per-document score paired by score_shift and beats_control.
PER_TOKEN = frozenset({"gsm8k_gold"})


def count_tokens(lm: Any, loaded: list[LoadedTask], lm_out: Mapping[str, Any]) -> None:
    """Add to each logged sample of a PER_TOKEN family `continuation_tokens`: per request, the tokens the
    model scored, split as lm-eval's scorer splits them (TemplateLM._encode_pair: the continuation's ids
    after the context's, a trailing space of the context moved onto the continuation)."""
    for item in loaded:
        if item.spec.name not in PER_TOKEN:
            continue
        for leaf in item.leaves:
            for s in (lm_out.get("samples") or {}).get(leaf, []):
                pairs = s["arguments"]
                s["continuation_tokens"] = [len(lm._encode_pair(ctx, cont)[1]) for ctx, cont in pairs]


def per_token_record(spec: TaskSpec, s: Mapping[str, Any]) -> dict[str, Any]:
    """ll, tokens and gold_logprob (ll / tokens) of a one-request log-likelihood document."""
    counts = s.get("continuation_tokens")
    if not counts or len(counts) != 1 or len(s["filtered_resps"]) != 1:
        raise WidthwiseError(
            f"{spec.name}: doc {s['doc_id']}: expected one scored request and its token count"
        )
    resp = s["filtered_resps"][0]
    ll = float(resp[0] if isinstance(resp, (list, tuple)) else resp)
    n = int(counts[0])
    if n < 1:
        raise WidthwiseError(f"{spec.name}: doc {s['doc_id']}: an empty gold continuation")
    return {"ll": ll, "tokens": n, "gold_logprob": ll / n}


def sample_records(
    spec: TaskSpec, leaf: str, logged: list[dict[str, Any]], task: Any = None
) -> list[dict[str, Any]]:
    """One record per document: ids and hashes for pairing, every per-sample metric, correct/score, and
    for multiple-choice tasks every choice's log-likelihood and the continuous scores."""
    by_doc: dict[int, dict[str, Any]] = {}
    docs: dict[int, Any] = {}
    for s in logged:
        rec = by_doc.get(s["doc_id"])
        if rec is None:
            docs[s["doc_id"]] = s["doc"]
            doc_id: Any = s["doc_id"]
            if builtin_name(leaf) != spec.name:  # ids restart in every subject (MMLU) or split (MuSR)
                doc_id = f"{builtin_name(leaf).removeprefix(spec.name + '_')}/{s['doc_id']}"
            rec = by_doc[s["doc_id"]] = {
                "doc_id": doc_id,
                "doc_hash": canonical_sha256(s["doc"]),
                "prompt_hash": s["prompt_hash"],
                "target_hash": s["target_hash"],
                "metrics": {},
            }
            if spec.kind == "generate":
                _generation_record(rec, spec, s)
            if spec.name in PER_TOKEN:
                rec.update(per_token_record(spec, s))
            choices = choice_record(task, spec, s) if task is not None else None
            if choices is not None:
                rec["choices"] = choices
                scores = continuous_scores(spec, choices)
                if scores is not None:
                    rec.update(scores)
        filt = s["filter"]
        if spec.kind == "generate" and spec.name != "ifeval":
            rec.setdefault("answers", {})[filt] = str(s["filtered_resps"][0])
        for m in s["metrics"]:
            rec["metrics"][m if filt == "none" else f"{m},{filt}"] = s[m]
    for raw_id, rec in by_doc.items():
        head = rec["metrics"].get(spec.headline)
        if spec.name in PER_TOKEN:
            rec["score"] = rec["gold_logprob"]
        elif spec.name in ("lambada_openai", "wikitext"):
            # Perplexities aggregate per-document log-likelihoods; "acc" is the per-document verdict.
            rec["score"] = _number(head) if not isinstance(head, (list, tuple)) else _number(head[0])
            if "acc" in rec["metrics"]:
                rec["correct"] = bool(rec["metrics"]["acc"])
        elif spec.headline.split(",")[0] in BINARY and spec.name != "truthfulqa_mc2":
            rec["score"] = _number(head)
            rec["correct"] = bool(head)
        else:
            rec["score"] = _number(head)
        if spec.name == "ifeval":
            _ifeval_record(rec, docs[raw_id])
    return [by_doc[k] for k in sorted(by_doc)]


def _generation_record(rec: dict[str, Any], spec: TaskSpec, s: Mapping[str, Any]) -> None:
    """The response as scored, and where widthwise's HF model recorded it, how it was decoded: the
    generated token ids and each step's top-1 minus top-2 margin (hflm.Generated). Each filter's
    extracted answer (GSM8K's strict-match and flexible-extract) is added per filter by the caller."""
    raw = s["resps"][0][0]
    rec["response"] = str(s["filtered_resps"][0] if spec.name == "ifeval" else raw)
    evidence = getattr(raw, "evidence", None)
    if evidence is not None:
        rec["generation"] = evidence


def _ifeval_record(rec: dict[str, Any], doc: Mapping[str, Any]) -> None:
    m = rec.pop("metrics")
    ids = list(doc["instruction_id_list"])
    rec["key"] = doc.get("key")
    rec["correct"] = bool(m["prompt_level_strict_acc"])
    rec["prompt_level_loose"] = bool(m["prompt_level_loose_acc"])
    rec["instructions"] = [
        {"id": i, "strict": bool(s), "loose": bool(lo)}
        for i, s, lo in zip(ids, m["inst_level_strict_acc"], m["inst_level_loose_acc"], strict=True)
    ]
    d = degeneracy.measure(rec["response"])
    rec["degenerate"] = d.degenerate
    rec["degeneracy"] = d.as_dict()


def ifeval_extras(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """IFEval as scored, split by degenerate/non-degenerate responses, and by instruction type."""
    out: dict[str, dict[str, Any]] = {}
    ok = [r for r in records if not r["degenerate"]]
    bad = [r for r in records if r["degenerate"]]
    out["degenerate_share"] = _stat([float(r["degenerate"]) for r in records], "no IFEval responses")
    out["prompt_level_strict_acc_nondegenerate"] = _stat(
        [float(r["correct"]) for r in ok], "every response is degenerate"
    )
    out["inst_level_strict_acc_nondegenerate"] = _stat(
        [float(i["strict"]) for r in ok for i in r["instructions"]], "every response is degenerate"
    )
    out["prompt_level_strict_acc_degenerate"] = _stat(
        [float(r["correct"]) for r in bad], "no response is degenerate"
    )
    by_type: dict[str, list[float]] = defaultdict(list)
    for r in records:
        for i in r["instructions"]:
            by_type[i["id"]].append(float(i["strict"]))
    for inst, vals in sorted(by_type.items()):
        out[f"strict_acc@{inst}"] = _stat(vals, "no instruction of this type")
    return out


def to_result_parts(loaded: list[LoadedTask], lm_out: Mapping[str, Any]) -> tuple[dict, dict, dict]:
    from lm_eval.api.group import Group

    metrics: dict[str, dict[str, Any]] = {}
    headline: dict[str, str] = {}
    samples: dict[str, list[dict[str, Any]]] = {}
    for item in loaded:
        spec = item.spec
        top_name = item.top.name if isinstance(item.top, Group) else item.top.task_name
        counts = {leaf: lm_out["n-samples"][leaf]["effective"] for leaf in item.leaves}
        records: list[dict[str, Any]] = []
        for leaf in sorted(item.leaves):
            records += sample_records(spec, leaf, lm_out["samples"][leaf], item.leaves[leaf])
            if len(item.leaves) > 1:  # MMLU subjects, under their built-in names
                for k, e in metric_entries(lm_out["results"][leaf], leaf, counts[leaf]).items():
                    metrics[f"{builtin_name(leaf)}/{k}"] = e
        for k, e in metric_entries(lm_out["results"][top_name], top_name, sum(counts.values())).items():
            metrics[f"{spec.name}/{k}"] = e
        if spec.name == "ifeval":
            n_inst = sum(len(r["instructions"]) for r in records)
            for k in ("inst_level_strict_acc", "inst_level_loose_acc"):
                metrics[f"ifeval/{k}"]["n"] = n_inst
            for k, e in ifeval_extras(records).items():
                metrics[f"ifeval/{k}"] = e
        for name in CONTINUOUS:
            values = [r[name] for r in records if name in r]
            if values:
                metrics[f"{spec.name}/{name}"] = _stat(values, "no single-gold multiple-choice records")
        key = f"{spec.name}/{spec.headline}"
        if key not in metrics:
            raise WidthwiseError(f"lm-eval produced no {spec.headline!r} for {spec.name}")
        headline[spec.name] = key
        samples[spec.name] = records
    return metrics, headline, samples
