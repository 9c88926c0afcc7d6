"""Transcribe the paper's results files into Results: `python -m widthwise.paper SRC_DIR OUT_DIR [--force]`.

SRC_DIR holds copies of the authors' `results/` and `architectures/` files (peremartra/llama-glu-expansion-
pruning at snapshot 97f9190); OUT_DIR receives one Result per model x configuration (baselines/paper).
Values are copied, never recomputed, except three documented aggregates and standard errors; the
transcription is deterministic, so a test can regenerate baselines/paper and compare it with the committed
files (which predate schema version 2 and are compared as read, upgraded).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from widthwise.errors import WidthwiseError
from widthwise.results import new_result, write_result

PAPER = (
    "Pere Martra, 'Fragile Knowledge, Robust Instruction-Following: The Width Pruning Dichotomy in "
    "Llama-3.2', arXiv 2512.22671"
)
DATA = (
    "github.com/peremartra/llama-glu-expansion-pruning results/ and architectures/ at snapshot 97f9190 (MIT)"
)
ENERGY_FLAW = (
    "The paper's energy figures are scaled by carbon intensity: its code reads CodeCarbon's tracker.stop() "
    "(kg CO2-eq) as kWh, so stored energy = 0.3492 x the true kWh in every run. Absolute J/token (and the "
    "'31.55 W' idle) are therefore not joules; only ratios between configurations of one model are valid, "
    "and widthwise only ever claims ratios of them."
)

# Test-split sizes of each lm-eval task (the results files do not record n); used for Wilson bounds.
TASK_N = {
    "mmlu": 14042,
    "gsm8k": 1319,
    "arc_challenge": 1172,
    "hellaswag": 10042,
    "boolq": 3270,
    "piqa": 1838,
    "winogrande": 1267,
    "truthfulqa_mc1": 817,
    "truthfulqa_mc2": 817,
    "ifeval": 541,  # prompts; the inst_level metrics are over its 834 instructions
    "leaderboard_musr": 756,
    "wikitext": 62,
    "lambada_openai": 5153,
}
IFEVAL_INSTRUCTIONS = 834
HEADLINE = {
    "mmlu": "mmlu/acc",
    "gsm8k": "gsm8k/exact_match,flexible-extract",
    "arc_challenge": "arc_challenge/acc_norm",
    "hellaswag": "hellaswag/acc_norm",
    "boolq": "boolq/acc",
    "piqa": "piqa/acc",
    "winogrande": "winogrande/acc",
    "wikitext": "wikitext/word_perplexity",
    "lambada_openai": "lambada_openai/perplexity",
    "truthfulqa_mc1": "truthfulqa_mc1/acc",
    "truthfulqa_mc2": "truthfulqa_mc2/acc",
    "ifeval": "ifeval/prompt_level_strict_acc",
    "leaderboard_musr": "leaderboard_musr/acc_norm",
}

MODELS = {
    # name: (accuracy file, efficiency file or None, hidden, layers, intermediate size, params)
    "meta-llama/Llama-3.2-1B": (
        "llama_1b_complete_results_latest.json",
        "llama_1b_carbon_complete_results_latest.json",
        2048,
        16,
        8192,
        1235814400,
    ),
    "meta-llama/Llama-3.2-3B": (
        "llama_3b_complete_results_latest.json",
        "llama_3b_carbon_complete_results_latest.json",
        3072,
        28,
        8192,
        3212749824,
    ),
    "meta-llama/Llama-3.2-1B-Instruct": (
        "llama_1b_I_complete_results_latest.json",
        None,
        2048,
        16,
        8192,
        1235814400,
    ),
}
WORKLOADS = ("hellaswag", "mmlu", "ifeval")


def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WidthwiseError(f"{path}: missing from the paper's results folder") from None
    except json.JSONDecodeError as e:
        raise WidthwiseError(f"{path}: not valid JSON ({e})") from None


def _entry(value: float, *, stderr: float | None = None, n: int | None = None, **extra: Any) -> dict:
    e: dict[str, Any] = {"value": float(value), "stderr": None if stderr is None else float(stderr), "n": n}
    e.update(extra)
    return e


def accuracy_metrics(task: str, raw: dict[str, Any]) -> dict[str, dict]:
    """One task's block of the accuracy JSON -> our metric entries ("accuracy" is lm-eval's acc)."""
    out: dict[str, dict] = {}
    values: dict[str, float] = {}
    errs: dict[str, float] = {}
    for key, v in raw.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue  # "N/A": the task has no such metric
        name, _, filt = key.partition(",")
        name = "acc" if name == "accuracy" else name
        if task == "lambada_openai" and name in ("word_perplexity", "bits_per_byte"):
            continue  # the notebook wrote 0.0 placeholders for metrics lm-eval does not give this task
        if name.endswith("_stderr"):
            errs[name.removesuffix("_stderr") + ("," + filt if filt and filt != "none" else "")] = v
        else:
            values[name + ("," + filt if filt and filt != "none" else "")] = v
    for name, v in values.items():
        n = IFEVAL_INSTRUCTIONS if task == "ifeval" and name.startswith("inst_level") else TASK_N.get(task)
        out[f"{task}/{name}"] = _entry(v, stderr=errs.get(name), n=n)
    return out


def _se(std: float | None, runs: int) -> float | None:
    return float(std) / math.sqrt(runs) if std is not None and runs > 1 else None


def efficiency_metrics(model: dict[str, Any], summary: dict[str, Any]) -> dict[str, dict]:
    """The carbon JSON of one configuration -> bench:* entries (batch-1 'latency' is TTLT, not TTFT)."""
    note = "scaled by carbon intensity (paper's unit bug): compare as ratios only"
    res = model["results"]
    out: dict[str, dict] = {}
    jpt, thr = {}, {}
    for w in WORKLOADS:
        for b, name in ((1, f"{w}_latency_b1"), (8, f"{w}_throughput_b8")):
            r = res[name]
            runs = int(r["num_runs_aggregated"])
            key = f"bench:{w}_b{b}"
            jpt[key] = _entry(r["joules_per_token_mean"], stderr=_se(r["joules_per_token_std"], runs), n=runs,
                              note=note)  # fmt: skip
            thr[key] = _entry(r["throughput_mean"], stderr=_se(r["throughput_std"], runs), n=runs)
            out[f"{key}/j_per_token"] = jpt[key]
            out[f"{key}/throughput_tok_s"] = thr[key]
            if b == 1:
                out[f"{key}/ttlt_ms"] = _entry(r["ttlt_mean"], stderr=_se(r["ttlt_std"], runs), n=runs)

    def agg(entries: list[dict], value: float) -> dict:
        ses = [e["stderr"] for e in entries]
        se = math.sqrt(sum(s * s for s in ses)) / len(ses) if all(s is not None for s in ses) else None
        return _entry(value, stderr=se, n=min(e["n"] for e in entries))

    six = list(jpt.values())
    mean6 = sum(e["value"] for e in six) / 6
    if not math.isclose(mean6, summary["avg_joules_per_token"], rel_tol=1e-9):
        raise WidthwiseError(
            f"avg J/token {summary['avg_joules_per_token']} is not the mean of the workloads"
        )
    out["bench:avg/j_per_token"] = {**agg(six, summary["avg_joules_per_token"]), "note": note}
    out["bench:avg/throughput_tok_s"] = agg(list(thr.values()), summary["avg_throughput_tok_s"])
    b8 = [thr[f"bench:{w}_b8"] for w in WORKLOADS]
    out["bench:b8/throughput_tok_s"] = agg(b8, sum(e["value"] for e in b8) / 3)
    b1 = [out[f"bench:{w}_b1/ttlt_ms"] for w in WORKLOADS]
    out["bench:b1/ttlt_ms"] = agg(b1, summary["avg_ttlt_ms"])
    return out


def _settings(acc: dict[str, Any], eff: dict[str, Any] | None) -> dict[str, Any]:
    hw = acc["experiment_metadata"]["hardware"]["device"]
    s: dict[str, Any] = {
        "harness": "lm-evaluation-harness, unpinned (runs Oct-Nov 2025, probably 0.4.9.x)",
        "num_fewshot": {b["name"]: b["num_fewshot"] for b in acc["benchmarks"]},
        "batch_size": 1,
        "dtype": "bfloat16",
        "device": hw,
        "chat_template": False,
        "limit": None,
    }
    if eff:
        meta = eff["experiment_metadata"]["hardware_details"]
        s["bench"] = {
            "workloads": {
                b["name"]: {"prompts": b["num_prompts"], "max_new_tokens": b["max_new_tokens"]}
                for b in eff["benchmarks"]
            },
            "generation": "HF generate, greedy, stops at EOS (output length chosen by the model)",
            "runs": "3 (seeds 42/123/456), outliers above the J/token filter dropped",
            "energy_meter": "CodeCarbon 3.0.8 EmissionsTracker, kg CO2-eq read as kWh (see provenance)",
            "idle_w_as_stored": meta["idle_power_watts"],
            "device": meta["gpu_model"],
            "torch": meta["torch_version"],
        }
    return s


def _config_key(pct: int) -> str:
    return "baseline" if pct == 0 else f"pruned_{pct}pct"


def transcribe(src: Path) -> dict[str, dict[str, Any]]:
    """filename -> Result for every model x configuration the paper reports."""
    from widthwise.baselines import filename_for

    src = Path(src)
    arch = {(m["base_model"], m["pruning_pct"]): m for m in _load(src / "expansion_rates.json")["models"]}
    out: dict[str, dict[str, Any]] = {}
    for name, (acc_file, eff_file, hidden, layers, inter, params0) in MODELS.items():
        acc = _load(src / acc_file)
        eff = _load(src / eff_file) if eff_file else None
        settings = _settings(acc, eff)
        eff_summary = {}
        if eff:
            s = eff["summary_statistics"]
            eff_summary = {s["baseline"]["pruning_pct"]: s["baseline"]}
            eff_summary.update({m["pruning_pct"]: m for m in s["pruned_models"]})
        for entry in acc["models_evaluated"].values():
            pct = int(entry["pruning_pct"])
            k = inter - min(math.floor(pct * inter / 100), inter - 1)
            params = params0 - 3 * hidden * layers * (inter - k)
            if pct:
                a = arch[(name, pct)]["pruned_architecture"]
                if (a["intermediate_size"], a["total_parameters"]) != (k, params):
                    raise WidthwiseError(
                        f"{name} {pct}%: expansion_rates.json disagrees with k={k}, {params}"
                    )
            model = {
                "name": name,
                "weights_sha256": None,
                "hidden_size": hidden,
                "intermediate_size": k,
                "num_layers": layers,
                "params": params,
            }
            pruning = {"method": "ppm", "pct": pct, "intermediate_size": k, "seed": 0} if pct else None
            files = [acc_file]
            notes = [
                "MMLU is the group acc over 14042 questions; n per task is the lm-eval test-split size "
                "(not in the results files); stderr only where the files give it.",
                "PIQA: acc (the readme mixes acc and acc_norm); GSM8K headline is flexible-extract.",
                "Each task was run once with lm-eval's default seeds (no repeats over seeds).",
            ]
            ref: dict[str, Any] = {
                "paper": PAPER,
                "data": DATA,
                "hf_repo_as_stored": entry["hf_repo"],
                "transcribed_with": "widthwise.paper",
            }
            metrics: dict[str, dict] = {}
            headline: dict[str, str] = {}
            for task, raw in sorted(entry["results"].items()):
                metrics.update(accuracy_metrics(task, raw))
                if task in HEADLINE:
                    headline[task] = HEADLINE[task]
            if eff:
                ekey = "baseline" if pct == 0 else f"{pct}pct"
                metrics.update(efficiency_metrics(eff["models_evaluated"][ekey], eff_summary[pct]))
                files.append(eff_file)
                ref["energy_unit_flaw"] = ENERGY_FLAW
                notes += [
                    "Batch-1 'latency' is TTLT (whole generate() wall time, model-chosen output length), "
                    "stored as bench:*_b1/ttlt_ms, never as TTFT; batch-8 throughput counts padded "
                    "positions.",
                    "Efficiency: mean of up to 3 runs after the outlier filter; stderr = std/sqrt(runs), "
                    "absent where one run survived (1B ifeval-b1 at 0/10/20%).",
                    "The 1B carbon JSON labels some hf_repo values '-Instruct'/'-I-'; the notebook loads "
                    "the base model (NOTES §5), so these figures are filed under the base model.",
                ]
            ref["files"] = files
            ref["notes"] = notes
            r = new_result(
                stage="paper",
                tier="paper",
                model=model,
                pruning=pruning,
                suite="paper",
                settings=settings,
                provenance={"reference": ref},
            )
            r["metrics"], r["headline"] = metrics, headline
            out[filename_for(r)] = r
    return out


def write_baselines(src: Path, out: Path, *, force: bool = False) -> list[Path]:
    results = transcribe(src)
    out = Path(out)
    if out.exists() and any(out.glob("*.json")) and not force:
        raise WidthwiseError(f"{out} already holds Results; pass --force to rewrite them")
    return [write_result(r, out / fn, overwrite=force) for fn, r in sorted(results.items())]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m widthwise.paper", description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path, help="the paper's results folder (reference/paper in this repository)")
    ap.add_argument("out", type=Path, help="where to write the Results (e.g. baselines/paper)")
    ap.add_argument("--force", action="store_true", help="rewrite existing Results")
    args = ap.parse_args(argv)
    try:
        paths = write_baselines(args.src, args.out, force=args.force)
    except WidthwiseError as e:
        print(f"widthwise.paper: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(paths)} Results to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
