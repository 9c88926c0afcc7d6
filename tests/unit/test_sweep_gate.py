"""The main job gates what it runs: `widthwise sweep` with no arguments plans base, PPM 40% and the
ppm-reverse control at 40%, and the check its finish runs gates at least five claims and compares each
configuration with its stored baseline. Pure: the stored Results of baselines/measured/cpu stand in for
the evaluations (the sweep's own stage loop copies them in), so no model is loaded."""

import copy
import json
import shutil
from pathlib import Path

import pytest

from widthwise import claims, sweep
from widthwise.cli import build_parser
from widthwise.commands.sweep import CPU_BENCH_ARGS, configs_of, regression_dir
from widthwise.plan import parse_plan
from widthwise.results import read_result, write_result

ROOT = Path(__file__).resolve().parents[2]
STORED = ROOT / "baselines" / "measured" / "cpu"
MODEL = "smollm2-135m-instruct"


def stored_file(label: str) -> Path:
    return STORED / f"{MODEL}_{label}_cpu.json"


def default_args(*argv: str):
    return build_parser().parse_args(["sweep", *argv])


def test_the_default_plan_is_the_base_ppm_40_and_ppm_reverse_40():
    assert [c.label for c in configs_of(default_args())] == ["base", "ppm-pct40", "ppm-reverse-pct40"]
    # Bare --controls keeps its meaning (both controls); an explicit --pcts runs no control unless asked.
    assert [c.label for c in configs_of(default_args("--controls"))] == [
        "base",
        "ppm-pct40",
        "random-pct40",
        "ppm-reverse-pct40",
    ]
    assert [c.label for c in configs_of(default_args("--pcts", "0,20"))] == ["base", "ppm-pct20"]
    assert [c.label for c in configs_of(default_args("--controls", "random,ppm-reverse", "--pcts", "0,20"))][
        2:
    ] == ["random-pct20", "ppm-reverse-pct20"]
    assert [c.label for c in configs_of(default_args("--controls", "none"))] == ["base", "ppm-pct40"]


def test_a_control_that_is_no_method_is_refused():
    from widthwise.errors import WidthwiseError

    with pytest.raises(WidthwiseError, match="--controls rnd"):
        configs_of(default_args("--controls", "rnd"))


def test_the_default_compares_with_the_suites_stored_baselines(tmp_path):
    assert regression_dir(default_args()).resolve() == STORED.resolve()
    assert regression_dir(default_args("--suite", "smoke")).resolve() == STORED.parent.resolve() / "smoke"
    assert regression_dir(default_args("--suite", "paper")) is None  # nothing stored for it
    assert regression_dir(default_args("--limit", "3")) is None  # a limited run matches no stored settings
    assert regression_dir(default_args("--regression", "none")) is None
    assert regression_dir(default_args("--regression", str(tmp_path))) == tmp_path


def test_the_bench_is_planned_for_the_method_not_its_control():
    from widthwise.bench import parse_config

    configs = configs_of(default_args())
    bench = parse_config(CPU_BENCH_ARGS.split())
    plan = parse_plan(sweep.plan_of(MODEL, configs, configs, "cpu", bench, None, None, ["ppm"]), "plan")
    assert plan.benches(40.0, "ppm") and not plan.benches(40.0, "ppm-reverse")
    # Shards of one sweep merge with the benched methods kept; a plan that names none benches every one.
    from widthwise.plan import merge

    shards = [
        parse_plan(sweep.plan_of(MODEL, configs, part, "cpu", bench, f"{i}/2", None, ["ppm"]), f"shard {i}")
        for i, part in ((1, configs[:2]), (2, configs[2:]))
    ]
    (merged,) = merge(shards)
    assert merged.bench_methods == ("ppm",) and not merged.benches(40.0, "ppm-reverse")
    every = parse_plan(sweep.plan_of(MODEL, configs, configs, "cpu", bench, None), "old")
    assert every.bench_methods is None and every.benches(40.0, "ppm-reverse")


def run_sweep(tmp_path: Path, stand_ins: dict[str, dict]) -> Path:
    """The default sweep's stage loop and plan, each evaluation replaced by a stored Result."""
    out = tmp_path / "sweep"

    def copy_in(model, config, path):
        write_result(stand_ins[config.label], path)

    configs = configs_of(default_args())
    sweep.run(MODEL, configs, out, suite="cpu", bench=None, eval_fn=copy_in, log=lambda msg: None)
    return out


def gating(chk, claim_list) -> dict[str, set[str]]:
    """Each gating claim (a thresholds.toml claim that is not reported only) -> its verdicts."""
    gate = {c.id for c in claim_list if not c.reported_only}
    out: dict[str, set[str]] = {}
    for v in chk.verdicts:
        if v.claim in gate:
            out.setdefault(v.claim, set()).add(v.verdict)
    return out


@pytest.fixture(scope="module")
def stored():
    labels = ("base", "ppm-pct40", "ppm-reverse-pct40", "random-pct40")
    return {label: read_result(stored_file(label)) for label in labels}


def test_the_main_job_gates_five_claims_and_compares_every_configuration(tmp_path, stored):
    out = run_sweep(tmp_path, {k: stored[k] for k in ("base", "ppm-pct40", "ppm-reverse-pct40")})
    plan = json.loads((out / "results" / "plans" / "all.plan.json").read_text())
    assert [(c["method"], c["pct"]) for c in plan["configs"]] == [
        ("base", 0),
        ("ppm", 40),
        ("ppm-reverse", 40),
    ]

    chk = sweep.check_sweep(out, regression=regression_dir(default_args()))
    claim_list = claims.load_thresholds(claims.default_thresholds())
    gates = gating(chk, claim_list)
    assert len(gates) >= 5, sorted(gates)
    assert all(v == {"holds"} for v in gates.values()), gates
    assert {"cpu-lambada-perplexity-rises", "cpu-ppm-beats-ppm-reverse-lambada"} <= set(gates)
    # Every configuration is compared with its stored baseline, document by document, task by task.
    regression = [v for v in chk.verdicts if v.claim == "regression"]
    assert {v.config for v in regression} == {"base (2.67x)", "pct 40 (1.60x)", "pct 40 ppm-reverse (1.60x)"}
    assert len(regression) == 3 * len(stored["base"]["samples"])
    assert {v.verdict for v in regression} == {"holds"}
    assert chk.exit_code == 0


def test_a_random_pruner_swapped_in_fails_the_main_job(tmp_path, stored):
    """The stored random-pruned Result at 40%, relabelled as PPM: what a pruner that ranks neurons no
    better than chance would produce."""
    swapped = copy.deepcopy(stored["random-pct40"])
    swapped["pruning"]["method"] = "ppm"
    out = run_sweep(
        tmp_path,
        {"base": stored["base"], "ppm-pct40": swapped, "ppm-reverse-pct40": stored["ppm-reverse-pct40"]},
    )
    chk = sweep.check_sweep(out, regression=regression_dir(default_args()))
    assert chk.exit_code == 1
    failed = {(v.claim, v.config) for v in chk.verdicts if v.verdict == "fails"}
    assert ("cpu-ppm-beats-ppm-reverse-arc_challenge-margin", "pct 40 (1.60x) vs ppm-reverse") in failed
    assert {c for claim, c in failed if claim == "regression"} == {"pct 40 (1.60x)"}  # only the swapped one
    # The claims alone catch it too, without the stored baselines.
    assert sweep.check_sweep(out, regression=None).exit_code == 1


def test_a_configuration_without_a_stored_baseline_is_checked_but_not_compared(tmp_path, stored):
    """The stored folder has no ppm-reverse at 40% here: the other two are compared, it is not."""
    folder = tmp_path / "stored"
    folder.mkdir()
    for label in ("base", "ppm-pct40"):
        shutil.copy(stored_file(label), folder)
    out = run_sweep(tmp_path, {k: stored[k] for k in ("base", "ppm-pct40", "ppm-reverse-pct40")})
    chk = sweep.check_sweep(out, regression=folder)
    regression = [v for v in chk.verdicts if v.claim == "regression"]
    assert len(regression) == 2 * len(stored["base"]["samples"]) and chk.exit_code == 0


def test_report_md_lists_the_regression_verdicts(tmp_path, stored):
    """The console sends the reader to report.md for details: the regression gate's verdicts are there."""
    out = run_sweep(tmp_path, {k: stored[k] for k in ("base", "ppm-pct40", "ppm-reverse-pct40")})
    sweep.finish(out, regression=regression_dir(default_args()))
    md = (out / "report" / "report.md").read_text(encoding="utf-8")
    rows = [line for line in md.splitlines() if line.startswith("| regression ")]
    per_config = len(stored["base"]["samples"])  # one verdict per task family
    assert len(rows) == 3 * per_config and all("holds" in r for r in rows), md[:2000]
