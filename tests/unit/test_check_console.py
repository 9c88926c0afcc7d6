"""What `widthwise check` prints fits a screen: the gating verdicts, one line per reported-only claim, one
line counting the claims that did not apply; and a failing gate says why on that screen.

The Check is the default sweep's: base, PPM 40% and ppm-reverse 40% of the stored CPU tier, under the
repository's thresholds, with the regression gate comparing them with themselves.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from widthwise import claims
from widthwise.plan import parse_plan, plan_dict
from widthwise.report import check_text
from widthwise.results import read_result

CPU = Path(__file__).resolve().parents[2] / "baselines" / "measured" / "cpu"
CONFIGS = (("base", None, 0.0), ("ppm-pct40", "ppm", 40.0), ("ppm-reverse-pct40", "ppm-reverse", 40.0))
# The stored base's task families and documents: what each configuration's folded regression line counts.
_BASE = read_result(CPU / "smollm2-135m-instruct_base_cpu.json")
SUITE_TASKS = len(_BASE["samples"])
SUITE_DOCS = sum(len(recs) for recs in _BASE["samples"].values())


@pytest.fixture(scope="module")
def stored():
    return [read_result(CPU / f"smollm2-135m-instruct_{name}_cpu.json") for name, _m, _p in CONFIGS]


def _plan(results):
    r = results[0]
    data = plan_dict(
        tier=r["tier"],
        suite=r["suite"],
        model=r["model"]["name"],
        tasks=sorted(r["samples"]),
        configs=[(m, p) for _n, m, p in CONFIGS],
        bench=None,
        shard=None,
        shard_configs=[],
    )
    return parse_plan(data, "the default sweep's plan")


def _check(fresh, stored):
    claim_list = claims.load_thresholds(claims.default_thresholds())
    plans = [_plan(fresh)]
    # stored=: the regression gate, as `check --regression` adds it (claims.regression.check).
    return claims.check(fresh, claim_list, plans=plans, stored=stored)


def test_the_default_sweep_fits_a_screen(stored):
    chk = _check(stored, stored)
    text = check_text(chk)
    lines = text.splitlines()
    assert len(lines) <= 60, text
    assert chk.exit_code == 0
    gating = {v.claim for v in chk.verdicts if v.verdict != "reported" and v.kind != "regression"}
    reported = {v.claim for v in chk.verdicts if v.verdict == "reported"}
    assert len(gating) >= 5 and len(reported) >= 10  # the realistic size, not a toy
    for cid in gating:
        assert any(line.startswith(cid + " ") for line in lines), cid
    for cid in reported:
        assert sum(line.startswith(f"{cid} [") for line in lines) == 1, cid
    # One regression verdict per task at 3 configurations, all holding: one line per configuration.
    tasks, docs = SUITE_TASKS, SUITE_DOCS
    assert sum(v.kind == "regression" for v in chk.verdicts) == 3 * tasks
    folded = [line for line in lines if line.startswith("regression ")]
    assert len(folded) == 3 and all(f"{tasks} tasks: 0 of {docs} documents changed" in x for x in folded)
    (na,) = [line for line in lines if "not applicable" in line]
    assert na.startswith(f"{len(chk.not_applicable)} claims not applicable to these Results")
    # The names are in report.md, not here (a whole id: "gsm8k-drops" is inside "cpu-gsm8k-drops").
    assert not [c for c in chk.not_applicable if re.search(rf"(?<![\w-]){re.escape(c)}(?![\w-])", text)]
    # Per-width details of a reported-only claim (its reason lists every stored width) stay out.
    assert "pct 2 (2.61x)" not in text
    assert lines[-1] == "exit 0: no gating check failed or lacked evidence"


def _task(result, task):
    return {k: v for k, v in result["metrics"].items() if k.split("/")[0] == task}


def test_a_failing_gate_says_why_on_the_screen(stored):
    fresh = copy.deepcopy(stored)
    base, ppm, reverse = fresh
    # PPM's HellaSwag answers swapped with the reversed ranking's: PPM no longer beats its control there,
    # and the regression gate sees HellaSwag change at both widths.
    for key in ("samples",):
        ppm[key]["hellaswag"], reverse[key]["hellaswag"] = reverse[key]["hellaswag"], ppm[key]["hellaswag"]
    ppm_hs, rev_hs = _task(ppm, "hellaswag"), _task(reverse, "hellaswag")
    ppm["metrics"].update(rev_hs)
    reverse["metrics"].update(ppm_hs)
    # LAMBADA's perplexity lost at 40%: the claims that need it are missing, not passed.
    del ppm["metrics"]["lambada_openai/perplexity"]
    chk = _check(fresh, stored)
    text = check_text(chk)
    lines = text.splitlines()
    assert chk.exit_code == 1
    assert len(lines) <= 60, text
    fails = [v for v in chk.verdicts if v.verdict == "fails"]
    missing = [v for v in chk.verdicts if v.verdict == "missing"]
    assert {v.claim for v in fails} >= {"cpu-ppm-beats-ppm-reverse-hellaswag-margin", "regression"}
    assert any(v.claim == "cpu-lambada-perplexity-rises" for v in missing)
    for v in fails + missing:
        assert v.message in lines  # the claim, where, what was observed (or what is missing), the bound
    # The regression rows of a configuration with a changed task: that task alone, the rest folded.
    row = r"^regression +smollm2-135m-instruct \[cpu\] +pct 40 \(1\.60x\) +"
    assert re.search(row + r"hellaswag: 80 of 80 documents changed .* FAILS$", text, re.M)
    rest = rf"{SUITE_TASKS - 1} other tasks: 0 of {SUITE_DOCS - 80} documents changed .* holds$"
    assert re.search(row + rest, text, re.M)
    assert "missing: lambada_openai/perplexity" in text
    assert lines[-len(fails) - len(missing) - 1].startswith(f"exit 1: {len(fails) + len(missing)} gating")


def test_a_stored_baseline_with_no_fresh_result_is_its_own_row(stored):
    extra = read_result(CPU / "smollm2-135m-instruct_ppm-pct20_cpu.json")
    chk = _check(stored, [*stored, extra])
    text = check_text(chk)
    assert chk.exit_code == 1
    rows = [line for line in text.splitlines() if line.startswith("regression ") and "pct 20" in line]
    assert len(rows) == 2  # its table row, then its message
    assert "missing: a stored baseline with no fresh Result" in rows[0] and rows[0].endswith("MISSING")
    assert rows[1].startswith("regression MISSING: smollm2-135m-instruct at pct 20 (2.13x) [cpu]")
