"""Energy accounting for one bench run: idle before and after the cells, every window judged, and what the
Result's bench.energy says.

The stage asks three things of it: whether windows are metered (`window_meter`: the meter, or None when
energy is not measurable here), and, after the cells, `settle(cells)`: idle again, the idle power net
energy takes off (energy.idle_power: the mean of before and after, drift flagged), and every window given
that idle and its flag (timing.assess_energy). A meter that stops counting makes energy not measurable
with the reason; it never stops the stage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from widthwise.bench import timing
from widthwise.bench.config import MIN_REPEATS
from widthwise.bench.energy import EnergySanityError, Meter, Reading, calibrate_idle, idle_power

RULE = (
    "J/token gross = window joules / generated tokens; net = (joules - idle W x window seconds) / tokens, "
    "idle W = the mean of the idle before and after the cells. A window with energy <= 0 or average power "
    "below idle or above the power limit (each with 5% tolerance) is flagged and kept, and left out of the "
    f"energy figures; a figure with fewer than {MIN_REPEATS} unflagged windows is not measurable."
)


class EnergyAccount:
    def __init__(self, meter: Meter, idle_s: float, log: Callable[[str], None] = lambda msg: None) -> None:
        self.meter = meter
        self.idle_s = idle_s
        self.log = log
        self.reason: str | None = meter.unavailable  # why energy is not measurable (None: it is)
        self.before: Reading | None = None
        self.limit_w: float | None = None
        if self.reason is None:
            log(f"calibrating idle power over {idle_s:g}s before the cells ...")
            try:
                self.before = calibrate_idle(meter, idle_s)
            except EnergySanityError as e:
                self.reason = f"idle before the cells: {e}"
        if self.reason is None:
            assert self.before is not None
            self.limit_w = meter.power_limit_w()
            log(f"idle {self.before.watts:.1f} W ({self.before.method}); power limit {self.limit_w} W")
        else:
            log(f"energy: not measurable here ({self.reason})")

    @property
    def window_meter(self) -> Meter | None:
        return self.meter if self.reason is None else None

    def settle(self, cells: Sequence[timing.Cell]) -> dict[str, Any]:
        """Idle after the cells, then every window judged: the Result's bench.energy, whose not_measurable
        is None when energy figures can be reported."""
        out: dict[str, Any] = {
            "meter": self.meter.name,
            "method": self.before.method if self.before else None,
            # a fake meter says so in every Result it measured
            "fake": self.meter.facts().get("fake"),
            "not_measurable": self.reason,
            "rule": RULE,
            "idle": None,
            "power_limit_w": self.limit_w,
            "flagged_windows": 0,
        }
        if self.reason is not None:
            return out
        assert self.before is not None
        self.log(f"calibrating idle power over {self.idle_s:g}s after the cells ...")
        try:
            after = calibrate_idle(self.meter, self.idle_s)
        except EnergySanityError as e:
            # The counter stopped during the cells: none of their windows can be trusted.
            self.reason = f"idle after the cells: {e}"
            windows = [w for c in cells for ws in c.windows.values() for w in ws]
            for w in windows:
                w.flag = self.reason
            return {**out, "not_measurable": self.reason, "flagged_windows": len(windows)}
        idle = idle_power(self.before, after)
        flagged = timing.assess_energy(cells, idle["watts"], self.limit_w)
        self.log(
            f"idle {self.before.watts:.1f} W before, {after.watts:.1f} W after; net J/token takes off "
            f"{idle['watts']:.1f} W; {flagged} window(s) flagged"
        )
        if idle["drift_flag"]:
            self.log(f"warning: {idle['drift_flag']}")
        return {**out, "idle": idle, "flagged_windows": flagged}


def describe_energy(energy: dict[str, Any]) -> list[str]:
    """Lines for the printed tables: the idle on both sides, the flagged windows, a drift, a fake meter."""
    out = []
    idle = energy["idle"]
    if idle:
        flagged = energy["flagged_windows"]
        out += [
            "",
            f"idle {idle['before']['watts']:.1f} W before the cells, {idle['after']['watts']:.1f} W after: "
            f"net J/token takes off {idle['watts']:.1f} W; {flagged} window(s) flagged"
            + (" (the Result's bench.windows says why)" if flagged else ""),
        ]
        if idle["drift_flag"]:
            out.append(f"warning: {idle['drift_flag']}")
    if energy["fake"]:
        out.append(f"energy meter: {energy['fake']}")
    return out
