"""The gating set of a measured tier as committed data: baselines/measured/TIER/gating.toml.

    frozen = ["claim-id", ...]          # the claims that gate, fixed before the data they judge
    [[demoted]]                         # appended by `widthwise baseline update --demote`, never removed
    claim = "claim-id"; reason = "..."; date = "YYYY-MM-DD"; update = "which baseline update"

Gating = frozen - demoted. Whether a claim gates is read from this file, never from whether it holds on the
stored Results: a change that breaks a gating claim fails `widthwise claims check` (and `baseline update`
refuses it) until a person demotes the claim with a reason, which every report then lists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from widthwise.errors import WidthwiseError
from widthwise.results import read_toml

FILE = "gating.toml"
DEMOTION_KEYS = ("claim", "reason", "date", "update")


@dataclass(frozen=True)
class Demotion:
    claim: str
    reason: str
    date: str
    update: str  # the baseline update that made the claim fail (its command and the files it wrote)
    tier: str = ""

    def line(self) -> str:
        return f"{self.claim} ({self.tier}, {self.date}): {self.reason}"


@dataclass(frozen=True)
class Gating:
    tier: str
    path: Path
    frozen: tuple[str, ...]
    demoted: tuple[Demotion, ...] = ()

    @property
    def gating(self) -> tuple[str, ...]:
        """frozen - demoted, in frozen order."""
        out = {d.claim for d in self.demoted}
        return tuple(c for c in self.frozen if c not in out)

    def demotion(self, claim: str) -> Demotion | None:
        return next((d for d in self.demoted if d.claim == claim), None)


def _text(where: str, key: str, v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise WidthwiseError(f"{where}: {key} must be a non-empty string")
    return " ".join(v.split())


def parse(data: Any, tier: str, path: Path) -> Gating:
    """A gating file's tables, validated: every problem names the file and the key."""
    where = str(path)
    unknown = sorted(set(data) - {"frozen", "demoted"})
    if unknown:
        raise WidthwiseError(f"{where}: unknown key(s) {', '.join(unknown)} (expected frozen, [[demoted]])")
    frozen = data.get("frozen")
    if not isinstance(frozen, list) or not all(isinstance(c, str) and c for c in frozen):
        raise WidthwiseError(f"{where}: frozen must be a list of claim ids")
    twice = sorted({c for c in frozen if frozen.count(c) > 1})
    if twice:
        raise WidthwiseError(f"{where}: frozen names {', '.join(twice)} twice")
    demoted = []
    for i, d in enumerate(data.get("demoted", [])):
        at = f"{where}: demoted[{i}]"
        if not isinstance(d, dict) or set(d) != set(DEMOTION_KEYS):
            raise WidthwiseError(f"{at}: needs exactly the keys {', '.join(DEMOTION_KEYS)}")
        dem = Demotion(**{k: _text(at, k, d[k]) for k in DEMOTION_KEYS}, tier=tier)
        if dem.claim not in frozen:
            raise WidthwiseError(f"{at}: {dem.claim} is not in frozen; only a frozen claim can be demoted")
        if any(x.claim == dem.claim for x in demoted):
            raise WidthwiseError(f"{at}: {dem.claim} is demoted twice")
        demoted.append(dem)
    return Gating(tier, path, tuple(frozen), tuple(demoted))


def read(path: Path, tier: str) -> Gating:
    path = Path(path)
    return parse(read_toml(path, f"no gating file for tier {tier} (its frozen gating set)"), tier, path)


def _quoted(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def appended(text: str, new: Iterable[Demotion]) -> str:
    """The gating file's text with `new` appended as [[demoted]] tables: the header, the frozen list and
    earlier demotions stay byte for byte, so the file's history reads as a log."""
    out = text.rstrip("\n") + "\n"
    for d in new:
        out += "\n[[demoted]]\n" + "".join(f"{k} = {_quoted(getattr(d, k))}\n" for k in DEMOTION_KEYS)
    return out


def demotions_beside(thresholds: Path) -> list[Demotion]:
    """Every demotion in the gating files of the checkout holding `thresholds` (baselines/measured/*/),
    for the reports; none where there is no such folder."""
    measured = Path(thresholds).resolve().parent / "baselines" / "measured"
    out: list[Demotion] = []
    for f in sorted(measured.glob(f"*/{FILE}")):
        out.extend(read(f, f.parent.name).demoted)
    return out
