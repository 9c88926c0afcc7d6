"""How far two Results of the same model and configuration are apart, document by document: the spread
that the regression gate's tolerance (src/widthwise/claims/regression.toml) is derived from.

    python tools/regression_spread.py FRESH.json STORED.json            # the table, per task
    python tools/regression_spread.py FRESH.json STORED.json --rule     # and how the gate's rule fares

Run it on two Results made by the same code on two machines (or kernel levels: ATEN_CPU_CAPABILITY,
MKL_ENABLE_INSTRUCTIONS, MKL_CBWR) to measure float noise, or on a Result of a deliberately changed model
(a mutant) against the stored one to measure the smallest change the gate has to see. Per task:

  ll      every choice's log-likelihood (nats; LAMBADA's per-document log-likelihood, which it keeps as
          its score): the largest absolute and relative difference, and the largest in units of the
          gate's tolerance abs + rel * |ll| (over 1 means outside it)
  shift   the mean signed difference of the log-likelihoods per document, over its standard error: a
          systematic change moves every document the same way, float noise does not
  derived per-document numbers computed from those (score, margin, gold_logprob, mc2): largest abs
  text    generated responses that differ, and with generation evidence the first diverging token's
          stored margin
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def per_doc_lls(rec: dict) -> list[float]:
    """A record's log-likelihoods: every choice's, or LAMBADA's one (its score) when it keeps none."""
    from widthwise.claims.regression import log_likelihoods

    return log_likelihoods(rec)


def derived(rec: dict) -> dict[str, float]:
    from widthwise.claims.regression import numbers

    return numbers(rec)


def spread(fresh: dict, stored: dict, tasks: list[str] | None = None) -> list[dict]:
    """One row per task both Results have records for."""
    from widthwise.claims.evidence import paired_records
    from widthwise.claims.regression import TOLERANCE, first_divergence

    rows = []
    for task in sorted(set(fresh.get("samples") or {}) & set(stored.get("samples") or {})):
        if tasks and task not in tasks:
            continue
        pairs = paired_records(stored["samples"][task], fresh["samples"][task], task)
        d_abs = d_rel = units = 0.0
        n_ll = 0
        shifts = []
        d_derived = 0.0
        texts = 0
        tie_margins = []
        for s, f in pairs:
            ls, lf = per_doc_lls(s), per_doc_lls(f)
            if len(ls) == len(lf) and ls:
                diffs = [b - a for a, b in zip(ls, lf, strict=True)]
                n_ll += len(diffs)
                shifts.append(sum(diffs) / len(diffs))
                for a, d in zip(ls, diffs, strict=True):
                    d_abs = max(d_abs, abs(d))
                    d_rel = max(d_rel, abs(d) / max(abs(a), 1e-30))
                    units = max(units, abs(d) / TOLERANCE.ll(a))
            xs, xf = derived(s), derived(f)
            for k in set(xs) & set(xf):
                d_derived = max(d_derived, abs(xs[k] - xf[k]))
            if "response" in s and "response" in f and s["response"] != f["response"]:
                texts += 1
                i = first_divergence(s, f)
                if i is not None:
                    tie_margins.append(s["generation"]["margins"][i])
        n = len(shifts)
        mean = sum(shifts) / n if n else 0.0
        sd = math.sqrt(sum((x - mean) ** 2 for x in shifts) / (n - 1)) if n > 1 else 0.0
        rows.append(
            {
                "task": task,
                "docs": len(pairs),
                "lls": n_ll,
                "ll_max_abs": d_abs,
                "ll_max_rel": d_rel,
                "ll_max_units": units,
                "shift_mean": mean,
                "shift_z": mean / (sd / math.sqrt(n)) if n > 1 and sd > 0 else 0.0,
                "derived_max_abs": d_derived,
                "texts_differ": texts,
                "tie_margins": tie_margins,
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    head = ["task", "docs", "lls", "ll max|d|", "ll max rel", "ll /tol", "mean d", "z", "derived", "texts"]
    lines = [head]
    for r in rows:
        text = str(r["texts_differ"])
        if r["tie_margins"]:
            text += " (margins " + ", ".join(f"{m:.3g}" for m in r["tie_margins"]) + ")"
        lines.append(
            [
                r["task"],
                str(r["docs"]),
                str(r["lls"]),
                f"{r['ll_max_abs']:.2e}",
                f"{r['ll_max_rel']:.2e}",
                f"{r['ll_max_units']:.3f}",
                f"{r['shift_mean']:+.1e}",
                f"{r['shift_z']:+.1f}",
                f"{r['derived_max_abs']:.2e}",
                text,
            ]
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in lines)


def main(argv: list[str] | None = None) -> int:
    from widthwise.claims.regression import TOLERANCE
    from widthwise.results import read_result

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("fresh", type=Path)
    p.add_argument("stored", type=Path)
    p.add_argument("--tasks", help="comma-separated task families (default: every one both have)")
    p.add_argument("--rule", action="store_true", help="also print the gate's verdicts for the pair")
    args = p.parse_args(argv)
    fresh, stored = read_result(args.fresh), read_result(args.stored)
    versions = [(r.get("provenance") or {}).get("versions", {}) for r in (fresh, stored)]
    gemm = [((r.get("provenance") or {}).get("profile") or {}).get("gemm", {}) for r in (fresh, stored)]
    for name, v, g in zip(("fresh", "stored"), versions, gemm, strict=True):
        print(f"{name}: CPU capability {v.get('torch_cpu_capability')}, GEMM probe {g.get('gflops')} GFLOP/s")
    print(f"tolerance per log-likelihood: {TOLERANCE.describe()}")
    rows = spread(fresh, stored, args.tasks.split(",") if args.tasks else None)
    print(table(rows))
    if args.rule:
        from widthwise.claims.regression import compare, only_tasks

        tasks = set(args.tasks.split(",")) if args.tasks else set(fresh.get("samples") or {})
        for v in compare(only_tasks(fresh, tasks), only_tasks(stored, tasks)):
            print(f"{v.verdict:6} {v.metric}: {v.observed} [{v.method}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
