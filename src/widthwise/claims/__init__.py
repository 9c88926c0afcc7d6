"""Claims as data, gates as pure functions: thresholds.toml -> Claim -> Verdict.

metrics     the catalogue of metric names, types and directions (eval and bench)
spec        Claim and the thresholds parser (the keys every claim shares)
registry    claim kinds, registered by decorator with their own keys and validation
kinds/      one module per family: pairwise (drop, improves, non_inferior), trend (monotone,
            correlation), ratio, control (beats_control)
evidence    what a kind reads from grouped Results: selected configurations, entries, paired records
verdict     Verdict and the few ways one is made
engine      every claim against every group it applies to; the exit code
regression  the per-document regression gate against stored baselines
check       the stage: Results (and stored baselines) -> Check
"""

from widthwise.claims.check import Check, check
from widthwise.claims.engine import applicable, evaluate, exit_code, unchecked
from widthwise.claims.metrics import MetricInfo, metric_info
from widthwise.claims.spec import Claim, default_thresholds, load_thresholds, parse_thresholds
from widthwise.claims.verdict import FAILING, VERDICTS, Verdict

__all__ = [
    "FAILING",
    "VERDICTS",
    "Check",
    "Claim",
    "MetricInfo",
    "Verdict",
    "applicable",
    "check",
    "default_thresholds",
    "evaluate",
    "exit_code",
    "load_thresholds",
    "metric_info",
    "parse_thresholds",
    "unchecked",
]
