"""The time model's arithmetic on a toy table, the GPU job's plan (every shard below its timeout), and
calibration from real Results' profiles."""

from __future__ import annotations

import copy
import json
import math
import shlex
from pathlib import Path

import pytest

from widthwise import gpujob
from widthwise import timemodel as tmod
from widthwise.errors import WidthwiseError
from widthwise.results import read_result

ROOT = Path(__file__).resolve().parents[2]
CPU_BASE = ROOT / "baselines" / "measured" / "cpu" / "smollm2-135m-instruct_base_cpu.json"

TOY = {
    "safety_factor": 2.0,
    "setup_minutes": 10,
    "per_config_s": 20,
    "models": {"org/one": "s", "org/two": "l"},
    "devices": {"gpu": {"name": "Toy GPU", "match": ["Toy"]}, "cpu": {"match": ["Xeon"]}},
    "bench": {"min_window_s": 10, "idle_calibrations": 2, "prompt_tokens": {"w": 100}},
    "generation": {"gen": {"expected_fraction": 0.5}},
    "tasks": {
        "mc": {
            "kind": "loglikelihood",
            "docs": 100,
            "requests": 400,
            "context_tokens": 40000,
            "continuation_tokens": 400,
            "prefix_forwards": {"1": 200, "8": 40},
            "prefix_tokens": {"1": 12000, "8": 15000},
        },
        "gen": {"kind": "generate", "docs": 10, "requests": 10, "prompt_tokens": 2000, "max_gen_toks": 100},
    },
    "rates": {
        dev: {
            "hf": {
                "s": {"forward_s": 0.01, "tokens_per_s": 1000, "decode_tokens_per_s": 10, "load_s": 30},
                "l": {"forward_s": 0.02, "tokens_per_s": 500, "decode_tokens_per_s": 5, "load_s": 60},
            },
            "vllm": {
                "s": {"forward_s": 0.001, "tokens_per_s": 4000, "decode_tokens_per_s": 100, "startup_s": 50},
                "l": {"forward_s": 0.001, "tokens_per_s": 2000, "decode_tokens_per_s": 50, "startup_s": 70},
            },
        }
        for dev in ("gpu", "cpu")
    },
}


@pytest.fixture
def toy():
    return tmod.from_dict(copy.deepcopy(TOY))


def test_each_kind_of_task_on_each_backend(toy):
    mc, gen = toy.tasks["mc"], toy.tasks["gen"]
    # hf log-likelihood: the prefix path's 200 forwards at 10 ms and 12,000 tokens at 1,000/s
    assert tmod.task_seconds(toy, mc, "gpu", "hf", "s") == pytest.approx(200 * 0.01 + 12.0)
    # vllm log-likelihood: one prompt per request, context + continuation
    assert tmod.task_seconds(toy, mc, "gpu", "vllm", "s") == pytest.approx(400 * 0.001 + 40400 / 4000)
    # hf generation at batch 1: a prefill forward per request, then half the cap one token at a time
    assert tmod.task_seconds(toy, gen, "gpu", "hf", "s") == pytest.approx(10 * 0.01 + 2.0 + 500 / 10)
    # vllm generation: one continuous batch
    assert tmod.task_seconds(toy, gen, "gpu", "vllm", "s") == pytest.approx(2000 / 4000 + 500 / 100)
    # auto: log-likelihood on hf, generation on vllm
    assert tmod.task_seconds(toy, mc, "gpu", "auto", "s") == tmod.task_seconds(toy, mc, "gpu", "hf", "s")
    assert tmod.task_seconds(toy, gen, "gpu", "auto", "s") == tmod.task_seconds(toy, gen, "gpu", "vllm", "s")
    # the prefix path at the largest counted batch size not above the suite's (8 for 8 and 16, 1 for 4)
    assert tmod.task_seconds(toy, mc, "gpu", "hf", "s", batch_size=8) == pytest.approx(40 * 0.01 + 15.0)
    assert tmod.task_seconds(toy, mc, "gpu", "hf", "s", batch_size=16) == pytest.approx(40 * 0.01 + 15.0)
    assert tmod.task_seconds(toy, mc, "gpu", "hf", "s", batch_size=4) == pytest.approx(200 * 0.01 + 12.0)
    # a suite's n and its own cap
    assert tmod.task_seconds(toy, mc, "gpu", "hf", "s", share=0.25) == pytest.approx(14.0 / 4)
    assert tmod.task_seconds(toy, gen, "gpu", "vllm", "s", max_gen_toks=20) == pytest.approx(0.5 + 100 / 100)


def test_a_shard_adds_setup_load_tasks_startup_and_bench(toy):
    tasks = [tmod.SuiteTask("mc", n=50), tmod.SuiteTask("gen")]
    est = tmod.shard_seconds(toy, tasks, "gpu", "auto", "org/two", bench=300.0)
    mc = (200 * 0.02 + 12000 / 500) * 0.5
    gen = 2000 / 2000 + 500 / 50
    assert est.parts == pytest.approx(
        {"setup": 600, "load": 60 + 20, "mc": mc, "gen": gen, "startup": 70, "bench": 300.0}
    )
    assert est.seconds == pytest.approx(sum(est.parts.values()))
    assert est.calibrated == ()
    # hf alone starts no vLLM engine
    assert tmod.shard_seconds(toy, tasks, "gpu", "hf", "org/two").parts["startup"] == 0


def test_unknown_model_task_or_device_is_one_clear_error(toy):
    with pytest.raises(WidthwiseError, match="no rates for model 'org/three'"):
        tmod.shard_seconds(toy, [tmod.SuiteTask("mc")], "gpu", "hf", "org/three")
    with pytest.raises(WidthwiseError, match="no token counts for task"):
        tmod.eval_seconds(toy, [tmod.SuiteTask("nope")], "gpu", "hf", "s")
    with pytest.raises(WidthwiseError, match="no hf rates for s on 'tpu'"):
        tmod.eval_seconds(toy, [tmod.SuiteTask("mc")], "tpu", "hf", "s")
    with pytest.raises(WidthwiseError, match="malformed"):
        tmod.from_dict({**TOY, "rates": {"gpu": {"hf": {"s": {"forward_s": 1}}}}})


def test_bench_windows_last_at_least_the_floor(toy):
    assert tmod.bench_window_s(3.0, 10.0) == 12.0  # four passes of every batch
    assert tmod.bench_window_s(25.0, 10.0) == 25.0
    w = tmod.Workload("w", prompts=20, new_tokens=11, prompt_tokens=100)
    # batch 1: 20 batches x (10 ms + 100 tokens at 1,000/s + 10 steps at 10/s) = 22.2 s a pass
    natural_b1 = 20 * (0.01 + 0.1 + 1.0)
    # batch 8: 2 batches (the remainder is dropped) x (10 ms + 800 tokens + 10 steps) = 3.62 s, 3 passes
    natural_b8 = 2 * (0.01 + 0.8 + 1.0)
    got = tmod.bench_seconds(toy, [w], (1, 8), repeats=5, warmup=1, idle_s=10, device="gpu", cls="s")
    want = 2 * (natural_b1 + 5 * natural_b1) + 2 * (natural_b8 + 5 * 3 * natural_b8) + 2 * 10 + 30
    assert got == pytest.approx(want)


def test_makespan_longest_first():
    assert tmod.makespan([5, 1, 1, 1, 1, 1], 1) == 10
    assert tmod.makespan([5, 1, 1, 1, 1, 1], 2) == 5
    assert tmod.makespan([3, 3, 2, 2, 2], 2) == 7
    with pytest.raises(WidthwiseError):
        tmod.makespan([1], 0)


def test_timeouts_round_up():
    assert tmod.timeout_minutes(61, 2.0) == 3
    assert tmod.timeout_minutes(60, 2.0) == 2


# -- the real table and the real job -----------------------------------------------------------------


@pytest.fixture(scope="module")
def real():
    return tmod.load()


def job_shards(tm, ll_batch=None, **kw):
    """The GPU job's shards as the dry run plans them; `ll_batch` runs the suites' log-likelihoods at
    another batch size (what a suites.toml change would do)."""
    import dataclasses

    from widthwise.bench import BenchConfig

    job = gpujob.load_job()
    device = kw.pop("device", job.device)
    suites = {s.suite: gpujob.suite_tasks(s.suite) for s in job.sweeps}
    if ll_batch:
        suites = {k: [dataclasses.replace(t, batch_size=ll_batch) for t in v] for k, v in suites.items()}
    bench_s = gpujob.bench_estimates(tm, job, device, BenchConfig())
    return job, gpujob.plan(job, tm, suites=suites, bench_s=bench_s, device=device, **kw)


def test_every_task_of_the_gpu_suites_has_token_counts(real):
    for suite in ("paper", "paper-instruct"):
        for t in gpujob.suite_tasks(suite):
            tok = real.tasks[t.name]
            assert tok.requests >= tok.docs > 0, t.name
            if tok.kind == "generate":
                assert tok.prompt_tokens > 0 and tok.max_gen_toks > 0
            else:
                assert set(tok.prefix_forwards) == set(tok.prefix_tokens) == {1, 8}, t.name
                assert all(n > 0 for n in [*tok.prefix_forwards.values(), *tok.prefix_tokens.values()])
                # batching never adds forwards
                assert tok.prefix_forwards[8] <= tok.prefix_forwards[1], t.name
    # the hub-only tasks are estimates and say where their numbers come from
    for name in ("wikitext", "leaderboard_musr"):
        assert real.tasks[name].source.startswith("estimate:"), name


@pytest.mark.parametrize("device", ["h100", "l4"])
@pytest.mark.parametrize("backend", ["auto", "hf", "vllm"])
def test_the_job_has_every_shard_each_below_its_timeout(real, device, backend):
    job, shards = job_shards(real, device=device, backend=backend)
    by_model = {}
    for s in shards:
        by_model.setdefault(s.spec.model, []).append(s)
    assert {m: len(v) for m, v in by_model.items()} == {
        "meta-llama/Llama-3.2-1B": 7,
        "meta-llama/Llama-3.2-3B": 7,
        "meta-llama/Llama-3.2-1B-Instruct": 4,
    }
    assert [s.config for s in by_model["meta-llama/Llama-3.2-1B-Instruct"]] == [
        "base",
        "ppm-pct10",
        "ppm-pct40",
        "ppm-pct60",
    ]
    for s in shards:
        assert s.estimate.seconds > s.estimate.parts["setup"] > 0
        assert s.estimate.seconds / 60 < s.timeout_minutes, s.entry()
        assert (
            (s.estimate.seconds - s.estimate.parts["setup"]) / 60
            < s.sweep_timeout_minutes
            < s.timeout_minutes
        )
        assert s.spec.suite == ("paper-instruct" if "Instruct" in s.spec.model else "paper")
        # Benched where the efficiency claims read (the most-pruned width), as [tiers.gpu] asks.
        benched = s.config == "ppm-pct60" and "Instruct" not in s.spec.model
        assert (s.estimate.parts["bench"] > 0) == benched
        assert ("--no-bench" in s.command) == ("Instruct" in s.spec.model)
        if "Instruct" not in s.spec.model:
            assert s.command[s.command.index("--bench-pcts") + 1] == "60"


ONE_B = "meta-llama/Llama-3.2-1B"


def sweep_hours(shards, model: str = ONE_B, bench: bool = True) -> float:
    """One model's sweep on one GPU, without the GPU job's setup (install, data, doctor, pytest -m gpu)."""
    setup = next(s for s in shards if s.spec.model == model).estimate.parts["setup"] / 3600
    return gpujob.one_gpu_hours(shards, model, bench=bench) - setup


def goal_figures(tm) -> dict[str, str]:
    """The figures docs/gpu.md states, as the time model gives them (hours, one decimal)."""
    job, shards = job_shards(tm, backend="auto")
    _, b1 = job_shards(tm, ll_batch=1, backend="auto")
    _, hf = job_shards(tm, backend="hf")
    _, l4 = job_shards(tm, device="l4", backend="auto")
    sm, sm_l4 = gpujob.summary(job, shards), gpujob.summary(job, l4)
    one = gpujob.one_gpu_hours
    return {
        "1B paper sweep, H100, auto (evaluations and the bench)": f"{sweep_hours(shards):.1f} h",
        "1B evaluations, H100, auto": f"{sweep_hours(shards, bench=False):.1f} h",
        "1B bench at 60%, H100": f"{one(shards, ONE_B) - one(shards, ONE_B, bench=False):.1f} h",
        "1B evaluations, H100, auto, log-likelihoods at batch 1": f"{sweep_hours(b1, bench=False):.1f} h",
        "1B evaluations, H100, hf eager": f"{sweep_hours(hf, bench=False):.1f} h",
        "nightly GPU-hours, H100": f"{sm.gpu_hours:.1f} h",
        f"nightly on {job.runners} H100": f"{sm.night_hours:.1f} h",
        "nightly GPU-hours, L4": f"{sm_l4.gpu_hours:.1f} h",
    }


def test_the_goals_in_the_time_model(real):
    """The 1B paper sweep (7 widths, the bench at 60%) fits 2 h on one H100 with vLLM generation and
    log-likelihoods at the suite's batch 8, and the nightly fits the night on the runners gpujob.toml
    names."""
    job, shards = job_shards(real, backend="auto")
    assert gpujob.summary(job, shards).fits, gpujob.summary(job, shards)
    assert sweep_hours(shards) <= 2.0
    # the anchor: HF eager takes about 20 h for the 1B sweep's evaluations (issue 24)
    _, hf = job_shards(real, ll_batch=1, backend="hf")
    assert 18 <= sweep_hours(hf, bench=False) <= 24


def test_docs_state_the_time_models_figures(real):
    text = (ROOT / "docs" / "gpu.md").read_text()
    for what, figure in goal_figures(real).items():
        assert f"{what}: {figure}" in " ".join(text.split()), (what, figure)


def test_one_gpu_hours_counts_the_setup_once(real):
    job, shards = job_shards(real, backend="auto")
    mine = [s for s in shards if s.spec.model == ONE_B]
    total = sum(s.estimate.hours for s in mine)
    setup = mine[0].estimate.parts["setup"] / 3600
    bench = sum(s.estimate.parts["bench"] for s in mine) / 3600
    assert gpujob.one_gpu_hours(shards, ONE_B) == pytest.approx(total - 6 * setup)
    assert gpujob.one_gpu_hours(shards, ONE_B, bench=False) == pytest.approx(total - 6 * setup - bench)


def test_the_matrix_commands_are_sweeps_the_cli_accepts(real, capsys):
    from widthwise.cli import build_parser, main

    assert main(["sweep", "--dry-run", "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one line, for $GITHUB_OUTPUT
    include = json.loads(out)["include"]
    assert len(include) == 18
    parser = build_parser()
    for e in include:
        words = shlex.split(e["command"])
        assert words[:2] == ["widthwise", "sweep"]
        args = parser.parse_args(words[1:])  # every option exists
        assert args.model == e["model"] and args.shard == e["shard"] and args.suite == e["suite"]
        assert str(args.out) == e["out"] == f"shards/{e['slug']}"
        assert e["estimated_hours"] * 60 < e["timeout_minutes"]
        assert e["artifact"] == f"shard-{e['slug']}-{e['shard'].replace('/', '-of-')}"
    assert len({e["artifact"] for e in include}) == 18
    # the text form names the same commands
    assert main(["sweep", "--dry-run", "--models", "meta-llama/Llama-3.2-1B-Instruct"]) == 0
    text = capsys.readouterr().out
    assert text.count("widthwise sweep meta-llama/Llama-3.2-1B-Instruct") == 4
    assert "Llama-3.2-3B" not in text


def test_dry_run_refusals(capsys):
    from widthwise.cli import main

    assert main(["sweep", "--dry-run", "--gpu", "tpu"]) == 2
    assert "tpu" in capsys.readouterr().err
    assert main(["sweep", "--dry-run", "--models", "org/none"]) == 2
    assert "org/none" in capsys.readouterr().err


# -- calibration ---------------------------------------------------------------------------------


def cpu_model_of(result):
    return {**copy.deepcopy(TOY), "models": {result["model"]["name"]: "s"}}


def test_calibration_takes_a_results_profile_per_task():
    base = read_result(CPU_BASE)
    doc = cpu_model_of(base)
    profile = base["provenance"]["profile"]["tasks"]
    mmlu = profile["mmlu"]
    doc["tasks"] = {
        "mmlu": {
            "kind": "loglikelihood",
            "docs": 100,
            "requests": 4 * mmlu["requests"],
            "prefix_tokens": 1,
            "prefix_forwards": 1,
        },
        "ifeval": {
            "kind": "generate",
            "docs": 32,
            "requests": profile["ifeval"]["requests"],
            "prompt_tokens": 1,
            "max_gen_toks": 256,
        },
    }
    tm = tmod.from_dict(doc)
    before = tmod.eval_seconds(tm, [tmod.SuiteTask("mmlu"), tmod.SuiteTask("ifeval")], "cpu", "hf", "s")
    calibrated, notes = tmod.calibrate(tm, [base], "cpu")
    assert notes == []
    after = tmod.eval_seconds(
        calibrated, [tmod.SuiteTask("mmlu"), tmod.SuiteTask("ifeval")], "cpu", "hf", "s"
    )
    # the measured seconds, scaled from the requests the Result ran to the table's (4x for mmlu)
    assert after["mmlu"] == pytest.approx(4 * mmlu["seconds"]) != before["mmlu"]
    assert after["ifeval"] == pytest.approx(profile["ifeval"]["seconds"])
    est = tmod.shard_seconds(
        calibrated, [tmod.SuiteTask("mmlu"), tmod.SuiteTask("ifeval")], "cpu", "hf", base["model"]["name"]
    )
    assert est.calibrated == ("mmlu", "ifeval")
    # another device, or a backend that did not run the task, keeps the table's rates
    assert tmod.eval_seconds(calibrated, [tmod.SuiteTask("mmlu")], "gpu", "hf", "s")["mmlu"] == before["mmlu"]
    assert (
        tmod.eval_seconds(calibrated, [tmod.SuiteTask("ifeval")], "cpu", "vllm", "s")["ifeval"]
        != after["ifeval"]
    )


def test_calibration_keeps_the_slowest_and_says_what_it_skipped():
    base = read_result(CPU_BASE)
    doc = cpu_model_of(base)
    req = base["provenance"]["profile"]["tasks"]["boolq"]["requests"]
    doc["tasks"] = {
        "boolq": {
            "kind": "loglikelihood",
            "docs": 1,
            "requests": req,
            "prefix_tokens": 1,
            "prefix_forwards": 1,
        }
    }
    tm = tmod.from_dict(doc)
    slower = copy.deepcopy(base)
    slower["provenance"]["profile"]["tasks"]["boolq"]["seconds"] *= 3
    elsewhere = copy.deepcopy(base)
    elsewhere["provenance"]["machine"] = {"gpu_name": "NVIDIA L4", "cpu_model": "Xeon"}
    bare = copy.deepcopy(base)
    del bare["provenance"]["profile"]
    cal, notes = tmod.calibrate(tm, [base, slower, elsewhere, bare], "cpu")
    assert cal.measured[("cpu", "s", "boolq", "hf")] == pytest.approx(
        3 * base["provenance"]["profile"]["tasks"]["boolq"]["seconds"]
    )
    assert len(notes) == 2 and "an unknown device" in notes[0] and "no profile" in notes[1]


def test_a_tasks_backend_is_its_own_under_auto():
    base = read_result(CPU_BASE)
    assert tmod.backend_of_task(base, "ifeval") == "hf"  # a schema-3 Result: the run's one backend
    auto = copy.deepcopy(base)
    auto["settings"]["backend"] = "auto"
    auto["settings"]["tasks"]["ifeval"]["backend"] = "vllm"
    auto["provenance"]["profile"]["tasks"]["ifeval"].pop("backend", None)  # the settings' record then
    auto["provenance"]["profile"]["tasks"]["mmlu"]["backend"] = "hf"
    assert tmod.backend_of_task(auto, "ifeval") == "vllm" and tmod.backend_of_task(auto, "mmlu") == "hf"


def test_dry_run_calibrates_from_a_results_folder(tmp_path, capsys):
    """--calibrate reads Results; a CPU Result calibrates nothing on h100 and says so."""
    from widthwise.cli import main

    assert main(["sweep", "--dry-run", "--calibrate", str(CPU_BASE)]) == 0
    captured = capsys.readouterr()
    assert "calibrate: skipped" in captured.err and "not h100" in captured.err


# -- the prefix path's cost is what hflm runs --------------------------------------------------------


def test_prefix_path_cost_is_what_the_hf_prefix_path_runs():
    import torch
    from test_prefix_scoring import requests

    from support import tiny_model, word_tokenizer
    from widthwise.evaluation.hflm import TaskProfile, WidthwiseHFLM

    def counting(lm, calls):
        run = lm._run

        def counted(*a, **k):
            calls.append(1)
            return run(*a, **k)

        return counted

    model = tiny_model("LlamaForCausalLM", seed=1)
    torch.set_num_threads(1)
    for batch_size in (1, 4):
        lm = WidthwiseHFLM(
            pretrained=model,
            tokenizer=word_tokenizer(),
            batch_size=batch_size,
            device="cpu",
            scoring="prefix",
        )
        reqs = requests(seed=3, long=1)
        calls: list[int] = []
        lm._run = counting(lm, calls)
        lm._current = TaskProfile("loglikelihood")
        lm._loglikelihood_tokens(reqs, disable_tqdm=True)
        inputs = [(ctx + cont)[-(lm.max_length + 1) :][:-1] for _, ctx, cont in reqs]
        first = [len(i) - len(c) for i, (_, _, c) in zip(inputs, reqs, strict=True)]
        assert tmod.prefix_path_cost(inputs, first, batch_size) == (len(calls), lm._current.tokens)
        assert math.isfinite(lm._current.tokens) and lm._current.tokens > 0
