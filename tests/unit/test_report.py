"""widthwise.report: verdict tables, the appended step summary, metric tables, and what the plots draw."""

from __future__ import annotations

import copy
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from widthwise.claims import evaluate, parse_thresholds  # noqa: E402
from widthwise.points import group_results  # noqa: E402
from widthwise.report import (  # noqa: E402
    append_step_summary,
    metric_table,
    own_tiers,
    summary_line,
    verdict_markdown,
    verdict_table,
    write_report,
)
from widthwise.report.plots import _series, draw_dichotomy, draw_metric, methods_of  # noqa: E402
from widthwise.results import collect_results, new_provenance, read_result  # noqa: E402

PAPER = Path(__file__).resolve().parents[2] / "baselines" / "paper"
CLAIMS = {
    "mmlu-drops": {
        "statement": "s",
        "metric": "mmlu/acc",
        "kind": "drop",
        "models": ["meta-llama/Llama-3.2-3B"],
        "tiers": ["paper"],
        "configs": "all_pruned",
    },
    "mmlu-improves": {
        "statement": "s",
        "metric": "mmlu/acc",
        "kind": "improves",
        "models": ["meta-llama/Llama-3.2-3B"],
        "tiers": ["paper"],
        "pcts": [10],
    },
}


def _three_b():
    return [r for r in collect_results([PAPER]) if r["model"]["name"] == "meta-llama/Llama-3.2-3B"]


def test_tables_carry_every_column_and_name_failures():
    verdicts = evaluate(parse_thresholds({"claims": CLAIMS}), _three_b())
    assert [v.verdict for v in verdicts] == ["holds"] * 6 + ["fails"]
    table = verdict_table(verdicts)
    assert table.splitlines()[0].split() == [
        "claim",
        "model",
        "configuration",
        "observed",
        "bound",
        "n",
        "MDE",
        "verdict",
    ]
    md = verdict_markdown(verdicts)
    assert md.startswith("### widthwise check\n\n7 checks of 2 claims: 6 holds, 1 fails\n")
    assert "| mmlu-improves" in md and "| FAILS" in md
    assert "- mmlu-improves FAILS: meta-llama/Llama-3.2-3B at pct 10 (2.40x) [paper]" in md


def test_step_summary_is_appended_never_overwritten(tmp_path):
    assert append_step_summary("x", env={}) is None
    p = tmp_path / "s.md"
    p.write_text("before\n")
    append_step_summary("first", env={"GITHUB_STEP_SUMMARY": str(p)})
    append_step_summary("second", env={"GITHUB_STEP_SUMMARY": str(p)})
    assert p.read_text() == "before\nfirst\nsecond\n"


def test_metric_table_has_one_column_per_configuration():
    (g,) = group_results(_three_b())
    lines = metric_table(g).splitlines()
    assert lines[0].split("|")[2].strip() == "base (2.67x)"
    assert len(lines[0].split("|")) == 2 + 1 + 7  # borders, the metric column, seven configurations
    assert any(line.startswith("| mmlu/acc") and "0.5605" in line for line in lines)


def _draw(draw, *args):
    fig, ax = plt.subplots()
    try:
        return draw(ax, *args, ["C0", "C1", "C2"]), ax
    finally:
        plt.close(fig)


def test_plots_draw_paper_beside_measured(tmp_path):
    paper = [r for r in _three_b() if r["pruning"] is None or r["pruning"]["pct"] in (10, 60)]
    measured = copy.deepcopy(paper)
    for r in paper + measured:
        r["metrics"] = {k: v for k, v in r["metrics"].items() if k in ("mmlu/acc", "bench:avg/j_per_token")}
    for r in measured:
        r["stage"], r["tier"], r["provenance"] = "eval", "gpu", new_provenance(stage="eval")
        r["metrics"]["mmlu/acc"]["value"] -= 0.01
    curves, ax = _draw(draw_metric, group_results(paper + measured), "mmlu/acc")
    by_label = {c.label: c for c in curves}
    assert set(by_label) == {"Llama-3.2-3B (paper)", "Llama-3.2-3B (gpu, measured)"}
    paper_curve, ours = by_label["Llama-3.2-3B (paper)"], by_label["Llama-3.2-3B (gpu, measured)"]
    assert paper_curve.xs == ours.xs == pytest.approx((2.6667, 2.4001, 1.0667), abs=1e-4)
    assert paper_curve.ys == pytest.approx((0.5605, 0.4333, 0.2589))
    assert ours.ys == pytest.approx(tuple(y - 0.01 for y in paper_curve.ys))
    assert [line.get_linestyle() for line in ax.get_lines()[:1]] == ["-"]  # measured solid (gpu sorts first)
    # Energy is drawn relative to each model's base: the paper's absolute J/token are not joules.
    curves, ax = _draw(draw_metric, group_results(paper), "bench:avg/j_per_token")
    ((label, xs, ys),) = [(c.label, c.xs, c.ys) for c in curves]
    assert ys[0] == 1.0 and ys[-1] == pytest.approx(0.2903 / 0.3616, abs=1e-3)
    assert "relative to base" in ax.get_ylabel() and "only ratios" in ax.get_title()
    paths = write_report(paper + measured, tmp_path)
    assert sorted(p.name for p in paths) == ["bench-avg__j_per_token.png", "mmlu__acc.png", "report.md"]
    md = (tmp_path / "report.md").read_text()
    assert "### meta-llama/Llama-3.2-3B [gpu]" in md and "### meta-llama/Llama-3.2-3B [paper]" in md


def test_dichotomy_sets_knowledge_against_instruction_following():
    curves, ax = _draw(draw_dichotomy, group_results(_three_b())[0])
    by_label = {c.label: c for c in curves}
    assert set(by_label) == {
        "mmlu/acc",
        "gsm8k/exact_match",
        "hellaswag/acc_norm",
        "arc_challenge/acc_norm",
        "ifeval/prompt_level_strict_acc",
        "truthfulqa_mc2/acc",
        "leaderboard_musr/acc_norm",
    }
    assert by_label["mmlu/acc"].ys[0] == 0 and by_label["mmlu/acc"].ys[1] == pytest.approx(-22.69, abs=0.01)
    assert by_label["ifeval/prompt_level_strict_acc"].ys[1] == pytest.approx(39.13, abs=0.01)
    styles = {
        line.get_label(): line.get_linestyle() for line in ax.get_lines() if line.get_label() in by_label
    }
    assert styles["mmlu/acc"] == "-" and styles["ifeval/prompt_level_strict_acc"] == "--"


def test_bench_plot_is_relative_to_each_runs_own_base(tmp_path):
    results = []
    for run, pct, base_j, pruned_j in ((1, 10, 0.5, 0.45), (2, 60, 0.4, 0.3)):
        for r in _three_b():
            if r["pruning"] is not None and r["pruning"]["pct"] != pct:
                continue
            r = copy.deepcopy(r)
            r["stage"], r["tier"], r["suite"] = "bench", "gpu", "bench"
            r["provenance"], r["settings"] = new_provenance(stage="bench"), {"device_kind": "cuda"}
            # No run_id: Results from before it existed pair by their device facts.
            r["bench"] = {"role": "pruned" if r["pruning"] else "base", "device": {"wall": run}}
            r["metrics"] = {"bench:avg/j_per_token": {"value": pruned_j if r["pruning"] else base_j}}
            results.append(r)
    (g,) = group_results(results)
    xs, ys, _ = _series(g, "bench:avg/j_per_token", relative=True)
    assert [round(x, 2) for x in xs] == [2.67, 2.4, 1.07]
    assert ys == [1.0, 0.9, 0.75]
    curves, _ = _draw(draw_metric, [g], "bench:avg/j_per_token")
    assert [(c.xs, c.ys) for c in curves] == [((xs[0], xs[1], xs[2]), (1.0, 0.9, 0.75))]


def test_controls_get_their_own_line_not_a_point_on_ppms():
    cpu = Path(__file__).resolve().parents[2] / "baselines" / "measured" / "cpu"
    (group,) = group_results(collect_results([cpu]))
    assert methods_of(group)[0] == "ppm" and {"random", "ppm-reverse"} <= set(methods_of(group))
    metric = "lambada_openai/perplexity"
    ppm_x, ppm_y, _ = _series(group, metric, False, "ppm")
    random_x, random_y, _ = _series(group, metric, False, "random")
    assert len(ppm_x) == len(set(ppm_x))  # one value per width: no control stacked on PPM's line
    # The base, then the control at widths PPM also has (20% and 40%), each a point of its own.
    assert len(random_x) == 3 and random_x[0] == ppm_x[0] and random_y[0] == ppm_y[0]
    assert set(random_x[1:]) <= set(ppm_x)
    assert [random_y[i] != ppm_y[ppm_x.index(x)] for i, x in enumerate(random_x)] == [False, True, True]


def test_report_leads_with_the_runs_own_tier_and_keeps_the_papers_as_reference(tmp_path):
    cpu_dir = Path(__file__).resolve().parents[2] / "baselines" / "measured" / "cpu"
    cpu = [read_result(cpu_dir / f"smollm2-135m-instruct_{c}_cpu.json") for c in ("base", "ppm-pct40")]
    paper = [r for r in _three_b() if r["pruning"] is None or r["pruning"]["pct"] == 10]
    for r in cpu + paper:
        r["metrics"] = {k: v for k, v in r["metrics"].items() if k == "mmlu/acc"}
    mine = {
        "statement": "s",
        "metric": "mmlu/acc",
        "kind": "drop",
        "models": ["smollm2-135m-instruct"],
        "tiers": ["cpu"],
        "configs": "all_pruned",
    }
    verdicts = evaluate(parse_thresholds({"claims": {**CLAIMS, "cpu-mmlu-drops": mine}}), paper + cpu)
    assert {v.tier for v in verdicts} == {"cpu", "paper"}
    write_report(paper + cpu, tmp_path, verdicts, not_applicable=["some-gpu-claim"])
    md = (tmp_path / "report.md").read_text()
    order = [
        "### Claims: cpu (this run)",
        "| cpu-mmlu-drops",
        "Not applicable to these Results (1: ",
        "## Results",
        "### smollm2-135m-instruct [cpu]",
        "## Plots",
        "## The paper's tables (reference)",
        "### Claims: paper",
        "| mmlu-drops",
        "### meta-llama/Llama-3.2-3B [paper]",
    ]
    at = [md.index(x) for x in order]
    assert at == sorted(at), md
    run = md[: md.index("## Plots")]
    assert "[paper]" not in run and "mmlu-improves" not in run  # nothing of the paper's before its section
    assert summary_line([v for v in verdicts if v.tier == "cpu"]) in run.splitlines()
    # A report of the paper's Results alone is the paper's: no reference section after itself.
    assert own_tiers(paper) == {"paper"} and own_tiers(paper + cpu) == {"cpu"}
    write_report(paper, tmp_path / "paper", verdicts)
    md = (tmp_path / "paper" / "report.md").read_text()
    assert md.index("### Claims: paper") < md.index("## Results") and "(reference)" not in md


def _cpu_group():
    cpu = Path(__file__).resolve().parents[2] / "baselines" / "measured" / "cpu"
    (group,) = group_results(collect_results([cpu]))
    return group


def _paired_half(group, metric, point):
    """The 95% half-width of the paired mean difference pruned - base, from the records themselves."""
    task = metric.split("/")[0]
    base = {r["doc_id"]: r["score"] for r in group.base.metrics[metric][1]["samples"][task]}
    diffs = np.array([r["score"] - base[r["doc_id"]] for r in point.metrics[metric][1]["samples"][task]])
    return 1.959964 * diffs.std(ddof=1) / np.sqrt(diffs.size)


def test_plots_carry_95_percent_intervals_paired_where_records_allow():
    group = _cpu_group()
    metric = "mmlu/acc"
    curves, ax = _draw(draw_metric, [group], metric)
    ppm = next(c for c in curves if "control" not in c.label)
    ppm_points = [group.base] + [p for p in group.points if p.method == "ppm"]
    assert len(ppm.lower) == len(ppm.upper) == len(ppm.xs) == len(ppm_points)
    # The base: its own interval. Each pruned width: the paired interval of its change from the base.
    base = group.base.metrics[metric][0]
    assert ppm.upper[0] - ppm.ys[0] == pytest.approx(1.959964 * base["stderr"], rel=1e-5)
    for i, point in enumerate(ppm_points[1:], 1):
        half = _paired_half(group, metric, point)
        assert ppm.ys[i] - ppm.lower[i] == pytest.approx(half, rel=1e-5)
        assert ppm.upper[i] - ppm.ys[i] == pytest.approx(half, rel=1e-5)
    # What matplotlib drew: the error bar of each point spans the same interval.
    bars = ax.containers[0].lines[2][0].get_segments()
    assert np.array([(s[0][1], s[1][1]) for s in bars]) == pytest.approx(np.array([ppm.lower, ppm.upper]).T)
    assert "95% interval" in ax.get_title()
    # MMLU at 114 documents: the +21% at 20% pruning is no gain, its interval reaches well below zero.
    curves, ax = _draw(draw_dichotomy, group)
    mmlu = next(c for c in curves if c.label == metric)
    i = mmlu.xs.index(next(p.ratio for p in ppm_points if p.pct == 20))
    assert mmlu.ys[i] == pytest.approx(20.8, abs=0.1) and mmlu.lower[i] < 0 < mmlu.ys[i]
    assert mmlu.upper[i] - mmlu.ys[i] == pytest.approx(
        100 * _paired_half(group, metric, ppm_points[i]) / base["value"], rel=1e-5
    )
    assert mmlu.lower[0] is None  # the base is the reference: 0 by definition
    assert len(ax.collections) >= len(curves) and "95% interval" in ax.get_title()


def test_unpaired_intervals_join_both_sides_errors():
    (g,) = group_results([r for r in _three_b() if r["pruning"] is None or r["pruning"]["pct"] == 10])
    metric = "mmlu/acc"
    (curve,), _ = _draw(draw_metric, [g], metric)
    (b, _), (p, _) = g.points[0].metrics[metric], g.points[1].metrics[metric]

    def se(e):  # the paper gives n, no stderr: the binomial standard error
        return np.sqrt(e["value"] * (1 - e["value"]) / e["n"])

    assert curve.upper[0] - curve.ys[0] == pytest.approx(1.959964 * se(b), rel=1e-5)
    assert curve.upper[1] - curve.ys[1] == pytest.approx(1.959964 * np.hypot(se(p), se(b)), rel=1e-5)
