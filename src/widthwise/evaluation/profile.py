"""Where an evaluation's time goes: each task's requests, tokens and seconds beside what the machine can do.

    by_family(costs, family_of) lm-eval's per-task costs summed per suite family
    build(tasks, probe, model) the provenance "profile" entry of one evaluation, beside the attainable
                               matmul rate the device measured (widthwise.device: Device.gemm_probe,
                               fp32 1024^3 at the eval's threads on a CPU, bf16 4096^3 on a GPU)
    table(result)              `widthwise eval --profile`: task, kind, requests, tokens, seconds, tokens/s,
                               and the model FLOP rate each task reached as a share of the probe

Model FLOPs are counted as 2 x (non-embedding parameters x tokens run + LM-head parameters x positions
where the head ran): attention over the context is left out, which on these short prompts is a few
percent, so the share is a floor, not an exact utilisation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def model_flop_counts(model: Any) -> dict[str, int]:
    """Parameters a token runs through in the body, and in the LM head (tied or not, it is a matmul)."""
    head = model.get_output_embeddings()
    embed = model.get_input_embeddings()
    head_params = head.weight.numel() if head is not None else 0
    seen = {id(embed.weight)} | ({id(head.weight)} if head is not None else set())
    body = sum(p.numel() for p in model.parameters() if id(p) not in seen)
    return {"body_params": body, "head_params": head_params}


def by_family(costs: Mapping[str, Mapping[str, Any]], family_of: Mapping[str, str]) -> dict[str, Any]:
    """lm-eval's task costs summed per suite family (MMLU's 57 subjects are one row); a task the suite
    does not know keeps its own name."""
    out: dict[str, dict[str, Any]] = {}
    for task, c in costs.items():
        f = out.setdefault(family_of.get(task, task), {"kind": c["kind"], **dict.fromkeys(SUMMED, 0)})
        for k in SUMMED:
            f[k] += c[k]
    for f in out.values():
        f["seconds"] = round(f["seconds"], 3)
    return dict(sorted(out.items()))


SUMMED = ("requests", "seconds", "tokens", "head_positions")


def build(tasks: Mapping[str, Mapping[str, Any]], probe: Mapping[str, Any], model: Any) -> dict[str, Any]:
    """`probe` is the device's own measurement (never None: every device has one, the fake included)."""
    return {"tasks": dict(tasks), "gemm": dict(probe), **model_flop_counts(model)}


def rows(profile: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per task and a total; `share` is the model FLOP rate over the probe's rate."""
    gflops = (profile.get("gemm") or {}).get("gflops")
    body, head = profile.get("body_params") or 0, profile.get("head_params") or 0
    out = []
    items = sorted((profile.get("tasks") or {}).items())
    total = {"kind": "", "requests": 0, "tokens": 0, "head_positions": 0, "seconds": 0.0}
    for name, t in [*items, ("total", total)]:
        if name != "total":
            for k in ("requests", "tokens", "head_positions", "seconds"):
                total[k] += t.get(k) or 0
        secs = t.get("seconds") or 0.0
        flops = 2 * (body * (t.get("tokens") or 0) + head * (t.get("head_positions") or 0))
        rate = flops / secs / 1e9 if secs > 0 else None
        out.append(
            {
                "task": name,
                "kind": t.get("kind", ""),
                "requests": t.get("requests"),
                "tokens": t.get("tokens"),
                "seconds": round(secs, 1),
                "tokens/s": round((t.get("tokens") or 0) / secs, 1) if secs > 0 else None,
                "model GFLOP/s": round(rate, 1) if rate is not None else None,
                "of GEMM": f"{rate / gflops:.0%}" if rate is not None and gflops else None,
            }
        )
    return out


def table(result: Mapping[str, Any]) -> str:
    """The profile of one Result as a text table, or the reason there is none."""
    from tabulate import tabulate

    prov = result.get("provenance") or {}
    profile = prov.get("profile")
    if not profile:
        return "no profile: this Result was made before widthwise recorded one, or by a backend that does not"
    gemm = profile.get("gemm") or {}
    head = (
        f"scoring {prov.get('scoring')}, {prov.get('threads')} thread(s); attainable fp32 GEMM "
        f"{gemm.get('n')}^3 at {gemm.get('threads')} thread(s): {gemm.get('gflops')} GFLOP/s"
    )
    return head + "\n" + tabulate(rows(profile), headers="keys", tablefmt="github")
