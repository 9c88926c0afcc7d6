"""Planned versus present: what a measured tier was meant to cover, and which of it has a Result.

What is expected of one (tier, model) is the union of its plans (widthwise.plan: every shard's plan names
the whole sweep) and its tier's rule ([tiers.NAME] in thresholds.toml: models and widths any check of the
tier needs). Each expected configuration needs every task its plan names (without a plan: every task its
own Results' settings name, or that the model's other configurations ran) and, where a bench was planned
or is required, a bench figure for each planned cell. A rule may ask some models for widths and a bench of
their own (`requires`: the Instruct model at the paper's Instruct widths, without a bench). Whatever is
absent is a `missing` verdict.

An expected configuration with no Result at all joins its group as an empty Point, so every claim that
selects it (a width, `most_pruned`, a curve) finds it and reports it missing instead of quietly judging
the configurations that are there: `most_pruned` is the narrowest configuration planned, not present.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from widthwise.claims.spec import TierRule, benched
from widthwise.claims.verdict import Verdict
from widthwise.names import config_label, model_key
from widthwise.plan import Plan, Planned
from widthwise.points import Group, Point
from widthwise.widths import width_from_pct

STATEMENT = "every planned or required configuration, task and bench cell has a Result"


@dataclass(frozen=True)
class Row:
    """One expected (configuration, item) of a (tier, model): item is a task name or 'bench <cell>'."""

    tier: str
    model: str
    config: str
    item: str
    present: bool
    source: str  # why it is expected: the plan file(s) or the tier rule


def _matches(p: Point, c: Planned) -> bool:
    return c.names(p.method, p.pct)


def _sizes(group: Group) -> tuple[int, int] | None:
    """(hidden, intermediate before pruning) of the group's model, from whichever Result says it: the
    base's model, a pruned Result's provenance, or else the unique width that every pruned (pct, k) pair
    implies (k = I - floor(pct * I / 100) pins I down exactly)."""
    hidden, candidates = None, None
    for p in group.points:
        for _entry, res in p.metrics.values():
            m = res.get("model") or {}
            hidden = hidden or m.get("hidden_size")
            if p.is_base and m.get("intermediate_size") and m.get("hidden_size"):
                return int(m["hidden_size"]), int(m["intermediate_size"])
            before = ((res.get("provenance") or {}).get("pruning") or {}).get("intermediate_size_before")
            if before and m.get("hidden_size"):
                return int(m["hidden_size"]), int(before)
        if not p.is_base and p.pct is not None and p.k:
            guess = round(p.k / (1 - p.pct / 100))
            fits = {i for i in range(max(p.k, guess - 3), guess + 4) if width_from_pct(i, p.pct) == p.k}
            candidates = fits if candidates is None else candidates & fits
    if hidden and candidates and len(candidates) == 1:
        return int(hidden), candidates.pop()
    return None


def _placeholder(group: Group, c: Planned, sizes: tuple[int, int] | None) -> Point:
    if c.is_base:
        ratio = sizes[1] / sizes[0] if sizes else float("inf")
        return Point(
            group.tier, group.model, None, None, sizes[1] if sizes else None, ratio, config_label(None, ratio)
        )
    k = width_from_pct(sizes[1], c.pct) if sizes else None
    ratio = k / sizes[0] if (sizes and k) else float("nan")
    label = config_label({"method": c.method, "pct": c.pct}, ratio) if sizes else f"pct {c.pct:g} {c.method}"
    return Point(group.tier, group.model, c.method, c.pct, k, ratio, label)


def _tasks_of(point: Point) -> set[str]:
    """The tasks the point's eval Results were configured to run (their settings' task list; the task
    families their metrics name where a Result has no such list)."""
    out: set[str] = set()
    for key, (_entry, res) in point.metrics.items():
        if key.startswith("bench:"):
            continue
        listed = (res.get("settings") or {}).get("tasks")
        out.update(listed if isinstance(listed, dict) and listed else [key.split("/", 1)[0]])
    return out


def _has_task(point: Point, task: str) -> bool:
    return any(k.startswith(f"{task}/") for k in point.metrics)


def _has_bench(point: Point, cell: str | None) -> bool:
    if cell is None:
        return any(k.startswith("bench:") for k in point.metrics)
    return any(k.startswith(f"bench:{cell}/") for k in point.metrics)


def _missing(tier: str, model: str, config: str, item: str, source: str) -> Verdict:
    return Verdict(
        claim="plan",
        statement=STATEMENT,
        kind="coverage",
        metric=item,
        tier=tier,
        model=model,
        config=config,
        verdict="missing",
        observed=f"missing: no Result for {item} (expected by {source})",
        bound="—",
        n=None,
        mde="—",
        method="",
    )


def complete(
    groups: list[Group], plans: Sequence[Plan], rules: Mapping[str, TierRule], measured: Sequence[str]
) -> tuple[list[Row], list[Verdict]]:
    """Add every expected configuration that has no Result to its group as an empty Point (in place); return
    the planned-versus-present rows and a missing verdict for each absent item."""
    rows: list[Row] = []
    verdicts: list[Verdict] = []
    by_key = {(g.tier, model_key(g.model)): g for g in groups}
    plans_by = {p.key: p for p in plans}
    keys = {k for k in by_key if k[0] in measured} | {k for k in plans_by if k[0] in measured}
    for tier in measured:
        rule = rules.get(tier)
        present_models = {k[1] for k in keys if k[0] == tier}
        if rule is not None and present_models:  # checking this tier at all (Results or plans)
            for m in rule.required_models():  # a required model with no Result and no plan at all
                if (tier, model_key(m)) not in keys:
                    asked = rule.for_model(m)
                    src = asked[2] if asked else f"tiers.{tier} in thresholds.toml"
                    rows.append(Row(tier, m, "every configuration", "every task", False, src))
                    verdicts.append(_missing(tier, m, "every configuration", f"any Result of {m}", src))
    for key in sorted(keys):
        tier, mk = key
        plan = plans_by.get(key)
        # What the tier's rule asks of this model, when it covers it (a rule without models covers every
        # model it does not name with widths of its own).
        rule = rules.get(tier)
        asked = rule.for_model(mk) if rule is not None else None
        group = by_key.get(key)
        if group is None:
            group = Group(tier, plan.model if plan else mk, [])
            groups.append(group)
            by_key[key] = group
        expect: dict[Planned, list[str]] = {}
        if plan is not None:
            for c in plan.configs:
                expect.setdefault(c, []).append(f"plan {plan.source}")
        if asked is not None:
            pcts, bench, where = asked
            for c in (Planned(None, 0.0), *(Planned("ppm", p) for p in pcts)):
                expect.setdefault(c, []).append(where)
        if not expect:
            continue
        sizes = _sizes(group)
        ran = set().union(*(_tasks_of(p) for p in group.points))
        for c, why in expect.items():
            source = "; ".join(why)
            point = next((p for p in group.points if _matches(p, c)), None)
            if point is None:
                point = _placeholder(group, c, sizes)
                group.points.append(point)
            tasks = set(plan.tasks) if plan is not None else (_tasks_of(point) or ran)
            items = [(t, _has_task(point, t)) for t in sorted(tasks)]
            if not c.is_base:
                if plan is not None and plan.benches(c.pct, c.method):
                    items += [(f"bench {cell}", _has_bench(point, cell)) for cell in plan.bench_cells]
                elif asked is not None and benched(asked[1], c.pct):
                    items.append(("bench", _has_bench(point, None)))
            if not items:
                items = [("any Result", bool(point.metrics))]
            for item, ok in items:
                rows.append(Row(tier, group.model, point.label, item, ok, source))
                if not ok:
                    verdicts.append(_missing(tier, group.model, point.label, item, source))
        group.points.sort(key=lambda p: (not p.is_base, -p.ratio if p.ratio == p.ratio else float("inf")))
    return rows, verdicts
