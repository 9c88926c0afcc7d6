"""Spreading a sweep's evaluations over workers (widthwise.schedule): pure functions of cost estimates."""

import itertools
from pathlib import Path

import pytest

from widthwise import schedule
from widthwise.schedule import Unit, estimate, longest_first, makespan, split

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = ["a", "b", "c", "d", "e", "f"]


def whole_makespan(costs, jobs, overhead=0.0):
    units = [Unit(label, tuple(c), sum(c.values()) + overhead) for label, c in costs.items()]
    return makespan(longest_first(units, jobs))


def assert_partition(units, costs):
    """Every configuration's families, each in exactly one of its units, in the suite's order."""
    for label, c in costs.items():
        mine = sorted((u for u in units if u.label == label), key=lambda u: u.part)
        assert [u.part for u in mine] == list(range(1, len(mine) + 1))
        assert all(u.parts == len(mine) for u in mine)
        flat = [f for u in mine for f in u.families]
        assert sorted(flat) == sorted(c) and len(flat) == len(c)
        for u in mine:
            assert list(u.families) == [f for f in c if f in u.families]


def test_longest_first_gives_each_unit_to_the_worker_that_frees_first():
    units = [Unit("x", ("a",), 3.0), Unit("y", ("a",), 5.0), Unit("z", ("a",), 4.0), Unit("w", ("a",), 2.0)]
    workers = longest_first(units, 2)
    assert [[u.label for u in w] for w in workers] == [["y", "w"], ["z", "x"]]
    assert makespan(workers) == 7.0
    with pytest.raises(ValueError):
        longest_first(units, 0)


def test_one_worker_runs_every_configuration_whole():
    costs = {"base": dict.fromkeys(FAMILIES, 10.0), "p40": dict.fromkeys(FAMILIES, 7.0)}
    units = split(costs, 1, overhead=5.0)
    assert [(u.label, u.parts) for u in units] == [("base", 1), ("p40", 1)]


def test_three_configurations_on_two_workers_are_cut_until_the_workers_balance():
    """The main job's shape: a base costlier than two equal pruned configurations. Whole, one worker
    runs two configurations while the other idles after the base."""
    base = {"a": 190.0, "b": 94.0, "c": 83.0, "d": 47.0, "e": 42.0, "f": 36.0}
    pruned = {f: s * 0.75 for f, s in base.items()}
    costs = {"base": base, "ppm-pct40": pruned, "ppm-reverse-pct40": dict(pruned)}
    total = sum(sum(c.values()) for c in costs.values())
    units = split(costs, 2, overhead=15.0)
    assert_partition(units, costs)
    span = makespan(longest_first(units, 2))
    assert whole_makespan(costs, 2, 15.0) > 1.2 * total / 2  # what whole configurations leave
    assert span <= (total + len(units) * 15.0) / 2 * (1 + schedule.SLACK)
    assert len(units) <= 5  # a cut costs a unit's start: no more than balancing needs
    assert units == sorted(units, key=lambda u: (-u.cost, u.label, u.part))  # handed out longest first


def test_a_cut_that_does_not_shorten_the_schedule_is_not_kept():
    costs = {"x": dict.fromkeys(FAMILIES, 10.0), "y": dict.fromkeys(FAMILIES, 10.0)}
    assert all(u.whole for u in split(costs, 2, overhead=0.0))  # already balanced
    # Cutting x leaves its costly family where it was: the makespan stays 11, so x stays whole.
    assert all(u.whole for u in split({"x": {"a": 10.0, "b": 1.0}, "y": {"a": 10.0}}, 2))
    # One configuration on two workers is cut in two, each half paying its start.
    one = {"x": dict.fromkeys(FAMILIES, 10.0)}
    assert [u.parts for u in split(one, 2)] == [2, 2]
    assert [u.cost for u in split(one, 2, overhead=100.0)] == [130.0, 130.0]


@pytest.mark.parametrize("jobs", [2, 3, 4])
def test_the_schedule_is_close_to_total_over_jobs_for_any_mix(jobs):
    for seed, n in itertools.product(range(5), (1, 2, 3, 5)):
        costs = {
            f"c{i}": {f: float(1 + (seed * 7 + i * 13 + k * 29) % 50) for k, f in enumerate(FAMILIES)}
            for i in range(n)
        }
        units = split(costs, jobs)
        assert_partition(units, costs)
        total = sum(sum(c.values()) for c in costs.values())
        biggest = max(max(c.values()) for c in costs.values())
        span = makespan(longest_first(units, jobs))
        assert span <= max(total / jobs * 1.34, biggest * 2), (seed, n, span, total / jobs)
        assert span <= whole_makespan(costs, jobs)
        assert split(costs, jobs) == units  # deterministic
        assert split(dict(reversed(costs.items())), jobs) == units  # whatever order they were given in


def profile(label_pct, seconds, model="smollm2-135m-instruct"):
    method, pct = label_pct
    return {
        "model": {"name": model},
        "pruning": None if method is None else {"method": method, "pct": pct},
        "provenance": {"profile": {"tasks": {f: {"seconds": s} for f, s in seconds.items()}}},
    }


def test_costs_come_from_the_same_configuration_else_the_nearest_width():
    stored = [
        profile((None, 0), {"a": 100.0, "b": 50.0}),
        profile(("ppm", 40), {"a": 80.0, "b": 40.0}),
        profile(("random", 40), {"a": 81.0, "b": 41.0}),
        profile(("ppm", 60), {"a": 60.0, "b": 30.0}),
        profile((None, 0), {"a": 1.0, "b": 1.0}, model="other"),
    ]
    configs = [("base", None, 0.0), ("ppm-pct40", "ppm", 40.0), ("random-pct40", "random", 40.0),
               ("ppm-pct50", "ppm", 50.0), ("ppm-reverse-pct55", "ppm-reverse", 55.0)]  # fmt: skip
    costs, measured = estimate(configs, ["a", "b", "c"], "smollm2-135m-instruct", stored)
    assert measured
    assert costs["base"] == {"a": 100.0, "b": 50.0, "c": 75.0}  # a family not profiled: the profile's mean
    assert costs["ppm-pct40"]["a"] == 80.0 and costs["random-pct40"]["a"] == 81.0
    assert costs["ppm-pct50"]["a"] == 80.0  # equally near 40 and 60: the narrower-model estimate is 40's
    assert costs["ppm-reverse-pct55"]["a"] == 60.0
    assert list(costs["base"]) == ["a", "b", "c"]


def test_without_a_profile_every_family_weighs_the_same():
    costs, measured = estimate([("base", None, 0.0)], ["a", "b"], "smollm2-135m-instruct", [])
    assert costs == {"base": {"a": 1.0, "b": 1.0}} and not measured
    other = [profile((None, 0), {"a": 5.0, "b": 1.0}, model="someone/else")]
    assert estimate([("base", None, 0.0)], ["a", "b"], "smollm2-135m-instruct", other)[1] is False


def test_the_default_sweep_balances_on_the_stored_cpu_profiles():
    """The main job (base, PPM 40%, ppm-reverse 40%) on two workers, costed from baselines/measured/cpu:
    the longest-first makespan is within SLACK of total/2 with every unit's start counted."""
    from widthwise.evaluation import get_suite
    from widthwise.results import collect_results

    stored = collect_results([ROOT / "baselines" / "measured" / "cpu"])
    families = [t.name for t in get_suite("cpu").tasks]
    configs = [("base", None, 0.0), ("ppm-pct40", "ppm", 40.0), ("ppm-reverse-pct40", "ppm-reverse", 40.0)]
    costs, measured = estimate(configs, families, "smollm2-135m-instruct", stored)
    assert measured and set(costs["base"]) == set(families)
    units = split(costs, 2, schedule.UNIT_OVERHEAD_S)
    total = sum(sum(c.values()) for c in costs.values())
    span = makespan(longest_first(units, 2))
    assert span <= (total + len(units) * schedule.UNIT_OVERHEAD_S) / 2 * (1 + schedule.SLACK)
    assert span < 0.9 * whole_makespan(costs, 2, schedule.UNIT_OVERHEAD_S)
    print(f"default sweep: {len(units)} units, makespan {span:.0f} s, total/2 {total / 2:.0f} s")


def test_units_of_a_sweep_keep_the_configuration_whole_for_its_assembly(tmp_path):
    from widthwise import sweep

    configs = sweep.plan([0, 40], "ppm")
    evals = [sweep.Stage(c, "eval", sweep.result_path(tmp_path, "eval", c)) for c in configs]
    cut, measured = sweep.units_of(evals, "smollm2-135m-instruct", "smoke", jobs=4)
    assert not measured  # no stored profile passed: one per family
    assert sorted(w.config.label for w, _ in cut) == ["base", "ppm-pct40"]
    for whole, parts in cut:
        assert whole.families is None and whole.path == sweep.result_path(tmp_path, "eval", whole.config)
        assert len(parts) >= 2  # two configurations of equal weight on four workers: each cut
        assert all(p.path == whole.path and p.families for p in parts)
        assert sorted(p.part for p in parts) == [f"part {i}/{len(parts)}" for i in range(1, len(parts) + 1)]
        assert whole.weight == 0.0  # no profile, so no start cost: assembling runs no family
