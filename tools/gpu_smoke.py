"""The GPU smoke: one short, prepared run that proves a GPU runner measures what the GPU tier needs.

    python tools/gpu_smoke.py [--offline] [--out DIR]          (nox -s gpu-smoke; <= 8 min on one GPU)

1. `widthwise doctor` (refuses a broken driver, torch build, vLLM, NVML counter: one line each).
2. The bench on `random:llama-3.2-1b-shape:16` (Llama-3.2-1B's shapes, all 16 layers, random weights, no
   download) at pct 0 against 40 (batch 1 and 8) and 0 against 60 (batch 8), NVML energy, windows >= 10 s.
3. The eval path on a tiny random Llama saved with the embedded default's tokenizer, pruned 40%:
   offline, the `smoke` suite; online (the default), the `paper` suite with hub access and --limit 2, which
   also fetches WikiText, MuSR and GSM8K at their pinned revisions. Both with `--backend auto`.
4. `widthwise check` over every Result: it must decide (exit 0 or 1); exit 2 is bad input.

Then it asserts, printing each figure: device cuda, bf16, width 4916 and ratio 2.40 at 40%; every energy
window >= 10 s and > 0 J; 0 < net J/token < gross; TTFT < latency; base batch-8 throughput > batch 1;
check's exit code in {0, 1}. Exit 0 only when every assertion holds.

On CPU it rehearses with the fake device (WIDTHWISE_FAKE_CUDA=1) given a smaller model and shorter windows
(--layers 1 --new-tokens 4 --min-window-s 0.3 --idle-s 0.3 --backend hf); nox -s gpu-rehearsal runs that.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SHAPE = "random:llama-3.2-1b-shape"
WIDTH_AT_40 = 4916  # 8192 - floor(0.40 * 8192), the same k in every layer
RATIO_AT_40 = "2.40"  # 4916 / 2048


def judge(
    benches: Mapping[str, Mapping[str, Any]],
    check_code: int,
    min_window_s: float,
    evaluation: Mapping[str, Any] | None = None,
) -> list[tuple[str, bool, str]]:
    """(assertion, holds, what was measured) for the smoke's Results. `benches`: {"40": pruned Result,
    "40.base": its base, "60": ..., "60.base": ...}. Pure, so a test can feed it hand-made Results."""
    out: list[tuple[str, bool, str]] = []

    def claim(name: str, ok: bool, seen: Any) -> None:
        out.append((name, bool(ok), str(seen)))

    p40 = benches["40"]
    claim("device cuda", p40["settings"]["device_kind"] == "cuda", p40["settings"]["device_kind"])
    claim("bf16", p40["settings"]["dtype"] == "bfloat16", p40["settings"]["dtype"])
    claim(
        "width 4916 at 40%",
        p40["model"]["intermediate_size"] == WIDTH_AT_40,
        p40["model"]["intermediate_size"],
    )
    ratio = f"{p40['expansion_ratio']:.2f}"
    claim("ratio 2.40 at 40%", ratio == RATIO_AT_40, ratio)
    for label, r in sorted(benches.items()):
        windows = [w for ws in r["bench"]["windows"].values() for w in ws]
        shortest = min(w["seconds"] for w in windows)
        claim(
            f"{label}: every window >= {min_window_s:g} s",
            shortest >= min_window_s,
            f"shortest {shortest:.2f} s",
        )
        joules = [w["joules"] for w in windows]
        least = min((j for j in joules if j is not None), default=None)
        claim(f"{label}: every window > 0 J", None not in joules and least > 0, f"least {least} J")
        for key, m in sorted(r["metrics"].items()):
            if not key.endswith("/j_per_token") or key + "_gross" not in r["metrics"]:
                continue  # an aggregate (bench:avg) has no gross figure of its own
            gross = r["metrics"][key + "_gross"]["value"]
            net = m["value"]
            claim(
                f"{label}: 0 < net < gross J/token ({key})",
                net is not None and 0 < net < gross,
                f"{net} < {gross}",
            )
        for key, m in sorted(r["metrics"].items()):
            if key.endswith("/ttft_ms"):
                lat = r["metrics"][key.removesuffix("ttft_ms") + "latency_ms"]["value"]
                claim(
                    f"{label}: TTFT < latency ({key})", m["value"] < lat, f"{m['value']:.1f} < {lat:.1f} ms"
                )
    base = benches["40.base"]["metrics"]
    b1 = next(v["value"] for k, v in base.items() if k.endswith("_b1/throughput_tok_s"))
    b8 = next(v["value"] for k, v in base.items() if k.endswith("_b8/throughput_tok_s"))
    claim("base batch-8 throughput > batch 1", b8 > b1, f"{b8:.1f} > {b1:.1f} tok/s")
    if evaluation is not None:
        claim(
            "eval on cuda",
            evaluation["provenance"]["device"].startswith("cuda"),
            evaluation["provenance"]["device"],
        )
        claim(
            "eval has a GEMM probe",
            bool((evaluation["provenance"]["profile"] or {}).get("gemm")),
            "profile.gemm",
        )
    claim("check decides (exit 0 or 1, never 2)", check_code in (0, 1), f"exit {check_code}")
    return out


def _run(argv: Sequence[str], log: Path) -> int:
    """`widthwise ARGV`, its output shown and kept."""
    print(f"$ widthwise {' '.join(argv)}", flush=True)
    t0 = time.perf_counter()
    with log.open("a") as f:
        proc = subprocess.run([sys.executable, "-m", "widthwise", *argv], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)  # fmt: skip
        f.write(proc.stdout)
    print(proc.stdout[-4000:], flush=True)
    print(f"  -> exit {proc.returncode} in {time.perf_counter() - t0:.0f} s", flush=True)
    return proc.returncode


def tiny_model(folder: Path, layers: int = 2) -> Path:
    """A random Llama with the embedded default's tokenizer, bf16, saved as a plain folder (no download)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from widthwise.models import DEFAULT_MODEL, resolve

    tok = AutoTokenizer.from_pretrained(resolve(DEFAULT_MODEL))
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=128, intermediate_size=512, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--offline", action="store_true", help="download nothing: the smoke suite, no hub tasks")
    p.add_argument("--out", type=Path, default=Path("runs/gpu-smoke"))
    p.add_argument("--layers", type=int, default=16, help="decoder layers of the 1B-shape bench model")
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--min-window-s", type=float, default=10.0)
    p.add_argument("--idle-s", type=float, default=5.0)
    p.add_argument("--backend", default="auto")
    args = p.parse_args(argv)

    out = args.out
    if out.exists() and any(out.iterdir()):
        print(f"gpu-smoke: {out} is not empty; give another --out", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    log = out / "smoke.log"
    suite = "smoke" if args.offline else "paper"
    if _run(
        ["doctor", "--suite", suite, "--backend", args.backend, *([] if args.offline else ["--allow-hub"])],
        log,
    ):
        print("gpu-smoke: doctor refused (above); fix that first", file=sys.stderr)
        return 1
    model = f"{SHAPE}:{args.layers}"
    common = [
        *("--workloads", "mmlu", "--prompts", "8", "--new-tokens", str(args.new_tokens), "--repeats", "5"),
        *("--min-window-s", str(args.min_window_s), "--idle-s", str(args.idle_s), "--meter", "nvml"),
    ]
    bench = out / "results" / "bench"
    for pct, sizes in (("40", "1,8"), ("60", "8")):
        if _run(
            [
                "bench",
                model,
                "--pct",
                pct,
                "--batch-sizes",
                sizes,
                *common,
                "--out",
                str(bench / f"pct{pct}.json"),
            ],
            log,
        ):
            print(f"gpu-smoke: the bench at {pct}% failed (above)", file=sys.stderr)
            return 1
    tiny = tiny_model(out / "tiny-llama")
    evaluated = out / "results" / "eval" / "tiny-pct40.json"
    eval_args = ["eval", str(tiny), "--suite", suite, "--pct", "40", "--backend", args.backend, "--no-cache"]
    eval_args += ["--limit", "2", "--allow-hub"] if not args.offline else []
    if _run([*eval_args, "--out", str(evaluated)], log):
        print("gpu-smoke: the evaluation failed (above)", file=sys.stderr)
        return 1
    code = _run(["check", str(out / "results")], log)

    from widthwise.bench import base_result_path
    from widthwise.results import read_result

    benches = {}
    for pct in ("40", "60"):
        benches[pct] = read_result(bench / f"pct{pct}.json")
        benches[f"{pct}.base"] = read_result(base_result_path(bench / f"pct{pct}.json"))
    verdicts = judge(benches, code, args.min_window_s, read_result(evaluated))
    width = max(len(name) for name, _, _ in verdicts)
    for name, ok, seen in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {name:{width}}  {seen}")
    failed = [name for name, ok, _ in verdicts if not ok]
    (out / "smoke.json").write_text(
        json.dumps([{"assertion": n, "holds": o, "seen": s} for n, o, s in verdicts], indent=1)
    )
    print(
        f"gpu-smoke: {len(verdicts) - len(failed)} of {len(verdicts)} assertions hold"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
