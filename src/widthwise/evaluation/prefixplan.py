"""What the prefix path runs, decided from token ids alone (pure: no model, no torch).

    plan(inputs, first, max_groups)  the batches of (members, shared prefix length) groups, in order

widthwise.evaluation.hflm runs them; tests/unit/test_prefix_scoring.py tests both.
"""

from __future__ import annotations

from collections.abc import Sequence


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


MAX_ROWS = 64  # continuations scored in one suffix batch (TruthfulQA-MC2 documents have up to 13 choices)
HEADER_MIN = 32  # tokens neighbouring documents must share to be batched around a common header


def plan(inputs: list[list[int]], first: list[int], max_groups: int) -> list[list[tuple[list[int], int]]]:
    """The batches of (members, shared prefix length) groups the prefix path runs, in order.

    1. Requests sorted by tokens are cut into groups that share a prefix (`_groups`).
    2. A group worth a cache (two or more members, a prefix at least as long as its longest remaining
       row: BoolQ's passage, TruthfulQA's primer and question) is shared. Any other request (LAMBADA's
       single continuation, PIQA's short goal before two long solutions) runs as a whole row, prefix 0,
       as lm-eval would but with the LM head only where scored.
    3. Shared groups whose prefixes share HEADER_MIN tokens with their neighbours (a few-shot primer,
       one MMLU subject) are batched together around that header; the rest are batched by length, as
       are the whole rows, so that padding stays small."""
    order = sorted(range(len(inputs)), key=lambda i: tuple(inputs[i]))
    shared: list[tuple[list[int], int]] = []
    whole: list[tuple[list[int], int]] = []
    for members, p in _groups(order, inputs, first):
        if len(members) > 1 and p >= max(len(inputs[i]) - p for i in members):
            shared.append((members, p))
        else:
            whole += [([i], 0) for i in members]
    clusters: list[list[tuple[list[int], int]]] = []
    for g in shared:
        prev = clusters[-1][-1] if clusters else None
        if prev and common_prefix(inputs[prev[0][0]][: prev[1]], inputs[g[0][0]][: g[1]]) >= HEADER_MIN:
            clusters[-1].append(g)
        else:
            clusters.append([g])

    def longest(g: tuple[list[int], int]) -> tuple[int, int]:
        return g[1], max(len(inputs[i]) - g[1] for i in g[0])

    loose = [c[0] for c in clusters if len(c) == 1]
    out: list[list[tuple[list[int], int]]] = []
    for c in [*(c for c in clusters if len(c) > 1), loose]:
        out += _batches(sorted(c, key=longest, reverse=True), max_groups, MAX_ROWS)
    whole.sort(key=lambda g: len(inputs[g[0][0]]), reverse=True)
    out += [whole[j : j + max_groups] for j in range(0, len(whole), max_groups)]
    return [b for b in out if b]


def _groups(order: list[int], inputs: list[list[int]], first: list[int]) -> list[tuple[list[int], int]]:
    """Neighbours in token order that share most of a prefix, as (members, shared prefix length).

    A request joins the open group when it shares at least half of the group's prefix, so a document's
    choices group together and the next document, which shares only a few-shot header, starts a new
    group (the header is shared at the batch level). A prefix stops before the first scored position."""
    out: list[tuple[list[int], int]] = []
    for i in order:
        if out:
            members, p = out[-1]
            shared = min(p, first[i], common_prefix(inputs[members[0]], inputs[i]))
            if shared > 0 and 2 * shared >= p and len(members) < MAX_ROWS:
                members.append(i)
                out[-1] = (members, shared)
                continue
        out.append(([i], first[i]))
    return out


def _batches(
    groups: list[tuple[list[int], int]], max_groups: int, max_rows: int
) -> list[list[tuple[list[int], int]]]:
    """Consecutive groups, at most max_groups of them and max_rows members together. A group with no
    prefix (a one-token context) rides alone: its middle row would be all padding, a query with nothing
    to attend to (whole rows, all of prefix 0, are batched by `plan` itself)."""
    out: list[list[tuple[list[int], int]]] = []
    rows = 0
    for g in groups:
        alone = g[1] == 0 or (out and out[-1][-1][1] == 0)
        if not out or alone or len(out[-1]) >= max_groups or rows + len(g[0]) > max_rows:
            out.append([])
            rows = 0
        out[-1].append(g)
        rows += len(g[0])
    return out
