"""Sweep planning: configurations, shards and argument checks are pure functions."""

import pytest

from widthwise.errors import WidthwiseError
from widthwise.sweep import Config, parse_pcts, parse_shard, plan, shard


def test_plan_puts_the_base_first_then_the_method_then_the_controls():
    configs = plan([0, 10, 20], "maw", controls=True, control_pcts=[20])
    assert [c.label for c in configs] == [
        "base",
        "ppm-pct10",
        "ppm-pct20",
        "random-pct20",
        "ppm-reverse-pct20",
    ]
    assert plan([10], "ppm")[0] == Config("base", 0.0)  # the base is always measured: claims compare with it


def test_shards_partition_the_plan():
    configs = plan([0, 5, 10, 20, 30, 40, 50, 60], "ppm", controls=True, control_pcts=[40])
    for n in (1, 2, 3, 7, 12):
        parts = [shard(configs, (i, n)) for i in range(1, n + 1)]
        flat = [c for part in parts for c in part]
        assert sorted(flat, key=configs.index) == configs and len(flat) == len(configs)
    assert shard(configs, None) == configs


@pytest.mark.parametrize("text", ["", "a,b", "10,10", "100", "-5"])
def test_bad_pcts(text):
    with pytest.raises(WidthwiseError, match="--pct"):
        parse_pcts(text)


@pytest.mark.parametrize("text", ["3", "0/2", "3/2", "a/b", "1/0"])
def test_bad_shards(text):
    with pytest.raises(WidthwiseError, match="--shard"):
        parse_shard(text)


def test_good_arguments():
    assert parse_pcts("20, 0,10") == [0.0, 10.0, 20.0]
    assert parse_shard("2/7") == (2, 7)


def test_progress_estimates_from_real_work_only(monkeypatch, tmp_path):
    """A cached base returning in seconds must not make a sweep look nearly done."""
    from widthwise import sweep as sw

    clock = iter([0.0, 0.0, 5.0, 5.0, 1005.0, 1005.0, 2005.0, 2005.0, 2305.0])
    monkeypatch.setattr(sw.time, "perf_counter", lambda: next(clock))
    configs = plan([0, 10, 20], "ppm")
    todo = [sw.Stage(c, "eval", tmp_path / f"{c.label}.json") for c in configs]
    todo += [sw.Stage(configs[2], "bench", tmp_path / "b.json")]
    lines: list[str] = []
    p = sw._Progress(todo, lines.append, jobs=1)
    for st in todo:
        p.start(st)
        p.done(st)
    done = [line for line in lines if "done in" in line]
    assert done[0].endswith("time left unknown until one eval stage runs uncached")  # base: 5 s, cached
    assert done[1].endswith("time left unknown until one bench stage runs uncached")
    assert "done in 16m40s" in done[1]
    assert done[2].endswith("time left unknown until one bench stage runs uncached")
    assert done[3].endswith("nothing left") and "[4/4]" in done[3]


def test_progress_divides_parallel_evaluations_by_the_workers(monkeypatch, tmp_path):
    from widthwise import sweep as sw

    clock = iter([0.0, 0.0, 5.0, 5.0, 1005.0])
    monkeypatch.setattr(sw.time, "perf_counter", lambda: next(clock))
    configs = plan([0, 10, 20, 30], "ppm")
    todo = [sw.Stage(c, "eval", tmp_path / f"{c.label}.json") for c in configs]
    lines: list[str] = []
    p = sw._Progress(todo, lines.append, jobs=2)
    for st in todo[:2]:
        p.start(st)
        p.done(st)
    assert lines[-1].endswith("elapsed 16m45s, about 16m40s to go")  # two left, two at a time, 1000 s each


def test_a_parallel_stage_reports_its_run_time_not_its_time_in_the_queue(monkeypatch, tmp_path):
    """Pooled evaluations are all submitted at once; the third waits a whole evaluation for a worker. Its
    "done in" and the estimate must be the run time the worker measured, not queue plus run."""
    from widthwise import sweep as sw

    clock = iter([0.0, 1000.0, 1000.0, 2000.0])
    monkeypatch.setattr(sw.time, "perf_counter", lambda: next(clock))
    configs = plan([0, 10, 20, 30], "ppm")
    todo = [sw.Stage(c, "eval", tmp_path / f"{c.label}.json") for c in configs]
    lines: list[str] = []
    p = sw._Progress(todo, lines.append, jobs=2)
    p.done(todo[0], took=1000.0)
    p.done(todo[1], took=1000.0)
    p.done(todo[2], took=1000.0)  # submitted at 0, ran from 1000 to 2000
    assert "done in 16m40s; elapsed 33m20s" in lines[-1]
    assert lines[-1].endswith("about 16m40s to go")


def test_the_last_line_gives_the_time_beside_the_probe_and_the_load():
    from widthwise.sweep import timing_line

    probe = {"n": 1024, "dtype": "float32", "threads": 1, "gflops": 215.04}
    assert timing_line(792.4, probe, [1.93, 2.0, 1.71]) == (
        "sweep: 13m12s end to end; GEMM probe 215.04 GFLOP/s (1 thread); load 1.9 2.0 1.7"
    )
    gpu = {"n": 8192, "dtype": "bfloat16", "threads": 1, "device": "NVIDIA H100", "gflops": 7.1e5}
    assert timing_line(61, gpu, None) == (
        "sweep: 1m01s end to end; GEMM probe 710000 GFLOP/s (1 thread, bfloat16) on NVIDIA H100; load unknown"
    )


def test_controls_are_chosen_by_name():
    from widthwise.sweep import parse_controls

    assert parse_controls("ppm-reverse") == ("ppm-reverse",)
    assert parse_controls("random, ppm-reverse,random") == ("random", "ppm-reverse")
    assert parse_controls("none") == ()
    assert [c.label for c in plan([0, 40], "ppm", ("ppm-reverse",))] == [
        "base",
        "ppm-pct40",
        "ppm-reverse-pct40",
    ]
    for bad in ("", "nope"):
        with pytest.raises(WidthwiseError, match="--controls"):
            parse_controls(bad)


def test_each_method_gets_its_own_reverse_and_ppm_runs_beside_another_method():
    from widthwise.sweep import parse_controls, parse_methods

    assert parse_controls("reverse") == ("ppm-reverse",)
    assert parse_controls("random,reverse", ("vow", "l2")) == ("random", "vow-reverse", "l2-reverse")
    assert [c.label for c in plan([0, 40], "vow,l2", True)] == [
        "base",
        "ppm-pct40",  # the reference the report sets the others beside
        "vow-pct40",
        "l2-pct40",
        "random-pct40",
        "vow-reverse-pct40",
        "l2-reverse-pct40",
    ]
    assert parse_methods("maw, vow") == ("ppm", "vow")
    with pytest.raises(WidthwiseError, match="random has no reverse"):
        parse_controls("reverse", ("random",))
    with pytest.raises(WidthwiseError, match="--method wanda: unknown method 'wanda'"):
        parse_methods("wanda")
