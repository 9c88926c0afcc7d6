"""widthwise's lm-eval model: lm-eval's HFLM that scores a shared context once and times every task.

Registered the lm-eval way (`@register_model("widthwise-hf")`), so it is also `--model widthwise-hf` to
lm-eval itself. Two scoring paths for log-likelihood requests:

  prefix  (default) what widthwise.evaluation.prefixplan decides: a multiple-choice document's context
          runs once for all its choices (a prefix KV cache; a few-shot primer once for a run of
          documents), requests that share nothing run as whole rows batched by length, and the LM head
          and log-softmax run only where a continuation token is scored (the 49k-vocabulary head is
          about a fifth of SmolLM2's FLOPs and lm-eval computes it at every position).
  plain   lm-eval's own HFLM._loglikelihood_tokens, unchanged (the reference the prefix path is tested
          against: log-likelihoods within 1e-4 and the same greedy flags per request).

Both give the numbers lm-eval would up to float summation order, so the scoring path is provenance and a
cache-key input, like the thread count, not a comparison setting. Generation is lm-eval's own (batched
by the suite's generate_batch_size, else its batch size, grouped by generation kwargs).

Every generated response carries its evidence (`Generated`, a str with `.evidence`): the generated
token ids and, per step, the top-1 minus top-2 margin of the scores greedy decoding took the argmax of
(the model's raw logits unless a generation kwarg adds a logits processor; a difference of log-softmax
values is a difference of logits). The regression gate excuses a changed response only where the first
differing token was a near tie. Recording it adds a top-2 per decoding step and changes no token.

Every request type is run task by task (Instance.task_name), so `profile` holds each task's requests,
wall seconds and the tokens the model actually ran. Generation batches are unchanged by the split
whenever tasks' generation kwargs differ (lm-eval batches by them); log-likelihood batches of the plain
path are formed within a task rather than across tasks.
"""

from __future__ import annotations

import inspect
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm

from widthwise.errors import WidthwiseError
from widthwise.evaluation.backends import DEFAULT_SCORING, SCORING
from widthwise.evaluation.prefixplan import common_prefix, plan


@dataclass
class TaskProfile:
    """What one task cost: requests answered, wall seconds, tokens the model ran (padding included, as
    it is computed) and positions where the LM head ran."""

    kind: str
    requests: int = 0
    seconds: float = 0.0
    tokens: int = 0
    head_positions: int = 0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seconds"] = round(self.seconds, 3)
        return d


class Generated(str):
    """A generated response (the text lm-eval scores) with the evidence of how it was decoded:
    {"tokens": generated ids, "margins": top-1 minus top-2 score per step, 4 significant digits}."""

    evidence: dict[str, list] | None = None


def _generated(text: str, evidence: dict[str, list] | None) -> str:
    if evidence is None:
        return text
    out = Generated(text)
    out.evidence = evidence
    return out


class MarginRecorder:
    """A logits processor (last in generate's list, so it sees the scores greedy takes the argmax of)
    that keeps each step's top-1 minus top-2 score per row, on the device until generation ends."""

    def __init__(self) -> None:
        self.steps: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        top = scores.topk(2, dim=-1).values
        self.steps.append(top[:, 0] - top[:, 1])
        return scores


def _row_evidence(tokens: list[int], margins: list[float], ends: set[int]) -> dict[str, list]:
    """A row's ids and margins up to its end: the first end-of-sequence token, inclusive (a finished row
    is filled with the pad token, SmolLM2's end-of-sequence token, for the rest of the batch's steps)."""
    n = next((i + 1 for i, t in enumerate(tokens) if t in ends), len(tokens))
    return {"tokens": tokens[:n], "margins": [float(f"{m:.4g}") for m in margins[:n]]}


class _EvidenceHook:
    """lm-eval's cache hook, wrapped: lm-eval's generate_until calls add_partial once per row, in the
    order of the rows `_model_generate` just decoded, with the request that row answers; each call
    takes that row's evidence."""

    def __init__(self, inner: Any, pending: list[dict[str, list]], out: dict[tuple, dict]) -> None:
        self.inner, self.pending, self.out = inner, pending, out

    def add_partial(self, attr: str, req: Any, res: Any) -> None:
        if attr == "generate_until" and self.pending:
            self.out[_request_key(req)] = self.pending.pop(0)
        self.inner.add_partial(attr, req, res)


def _request_key(args: Any) -> tuple:
    context, gen_kwargs = args
    return context, json.dumps(gen_kwargs, sort_keys=True, default=str)


@register_model("widthwise-hf")
class WidthwiseHFLM(HFLM):
    def __init__(
        self,
        *args: Any,
        scoring: str = DEFAULT_SCORING,
        generate_batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        if scoring not in SCORING:
            raise WidthwiseError(f"unknown scoring {scoring!r}; choose from {', '.join(SCORING)}")
        super().__init__(*args, **kwargs)
        self.scoring = scoring
        self.generate_batch_size = generate_batch_size
        self.profile: dict[str, TaskProfile] = {}
        self._current: TaskProfile | None = None
        self._pending: list[dict[str, list]] | None = None  # evidence of the rows just generated
        params = inspect.signature(self.model.forward).parameters
        self._takes_logits_to_keep = "logits_to_keep" in params
        # transformers renamed past_key_values to cache (the old name warns, and goes in 5.40)
        self._cache_arg = "cache" if "cache" in params else "past_key_values"

    # -- per-task dispatch and timing ------------------------------------------------------------------

    def _per_task(self, kind: str, requests: list[Any], run: Callable[[list[Any]], list[Any]]) -> list[Any]:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, r in enumerate(requests):
            groups[str(r.task_name)].append(i)
        out: list[Any] = [None] * len(requests)
        try:
            for task, idx in groups.items():
                prof = self.profile.setdefault(task, TaskProfile(kind))
                self._current = prof
                t0 = time.perf_counter()
                res = run([requests[i] for i in idx])
                prof.seconds += time.perf_counter() - t0
                prof.requests += len(idx)
                for i, r in zip(idx, res, strict=True):
                    out[i] = r
        finally:
            self._current = None
        return out

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        return self._per_task(
            "loglikelihood", requests, lambda rs: super(WidthwiseHFLM, self).loglikelihood(rs, disable_tqdm)
        )

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        return self._per_task(
            "loglikelihood_rolling",
            requests,
            lambda rs: super(WidthwiseHFLM, self).loglikelihood_rolling(rs, disable_tqdm),
        )

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        def run(rs: list[Any]) -> list[str]:
            old, hook = self.batch_size_per_gpu, self.cache_hook
            self.batch_size_per_gpu = self.generate_batch_size or old
            evidence: dict[tuple, dict] = {}
            self._pending = []
            self.cache_hook = _EvidenceHook(hook, self._pending, evidence)
            try:
                texts = super(WidthwiseHFLM, self).generate_until(rs, disable_tqdm)
            finally:
                self.batch_size_per_gpu, self.cache_hook, self._pending = old, hook, None
            return [_generated(t, evidence.get(_request_key(r.args))) for t, r in zip(texts, rs, strict=True)]

        return self._per_task("generate_until", requests, run)

    def _count(self, tokens: int, head_positions: int) -> None:
        if self._current is not None:
            self._current.tokens += tokens
            self._current.head_positions += head_positions

    # -- the model calls lm-eval makes, counted -------------------------------------------------------

    def _model_call(self, inps: torch.Tensor, attn_mask: Any = None, labels: Any = None) -> torch.Tensor:
        self._count(inps.numel(), inps.numel())
        return super()._model_call(inps, attn_mask=attn_mask, labels=labels)

    def _model_generate(self, context: torch.Tensor, max_length: int, stop: list[str], **kw: Any) -> Any:
        from transformers import LogitsProcessorList

        recorder = MarginRecorder()
        kw["logits_processor"] = LogitsProcessorList([*kw.get("logits_processor", []), recorder])
        out = super()._model_generate(context, max_length, stop, **kw)
        if getattr(self, "_pending", None) is not None and recorder.steps:
            ends = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id, self.eot_token_id} - {None}
            margins = torch.stack(recorder.steps, dim=1).tolist()
            for row, m in zip(out[:, context.shape[1] :].tolist(), margins, strict=True):
                self._pending.append(_row_evidence(row, m, ends))
        # Every row runs every decoding step, finished or not; the head runs once per step and row.
        steps = out.shape[1] - context.shape[1]
        self._count(context.numel() + steps * context.shape[0], (steps + 1) * context.shape[0])
        return out

    # -- log-likelihood scoring ------------------------------------------------------------------------

    def _loglikelihood_tokens(
        self,
        requests: list[tuple[tuple[str, str] | None, list[int], list[int]]],
        disable_tqdm: bool = False,
        override_bs: int | None = None,
    ) -> list[tuple[float, bool]]:
        if self.scoring == "plain" or self.backend != "causal" or not self._prefix_safe(requests):
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        return self._prefix_scores(requests, disable_tqdm)

    def _prefix_safe(self, requests: list[tuple[Any, list[int], list[int]]]) -> bool:
        """A sliding-window mask counts cache slots, and the prefix path's padding shifts those against
        positions; where a row (plus at most as much padding) could reach the window, score plainly."""
        cfg = self.model.config
        window = getattr(cfg, "sliding_window", None)
        if not window or getattr(cfg, "use_sliding_window", True) is False:
            return True
        longest = max((len(ctx) + len(cont) for _, ctx, cont in requests), default=0)
        return 2 * min(longest, self.max_length + 1) < window

    def _prefix_scores(
        self, requests: list[tuple[Any, list[int], list[int]]], disable_tqdm: bool
    ) -> list[tuple[float, bool]]:
        """Requests cut into groups that share a prefix (a multiple-choice document's choices) and those
        that share nothing worth a cache (see `plan`), batched a few groups at a time. Per batch:

          header  the prefix every group of the batch shares (a few-shot primer), on top of what the
                  previous batch's header shares with it (one row, kept between batches)
          middle  each group's own rest of its prefix (a document's context), one row per group
          suffix  each distinct continuation row, one per member; the LM head runs only on the positions
                  some member scores

        Where every group has one distinct suffix row (one-token continuations, unshared requests) the
        middle and suffix run as one forward. Rows are right-padded; padding between a row's context and
        its continuation is hidden by the attention mask and skipped by the position ids."""
        from transformers import DynamicCache

        # The window lm-eval scores: context + continuation, truncated from the left, last token dropped;
        # the logits from position first[i] on predict the continuation.
        inputs = [(ctx + cont)[-(self.max_length + 1) :][:-1] for _, ctx, cont in requests]
        first = [len(inp) - len(cont) for inp, (_, _, cont) in zip(inputs, requests, strict=True)]
        max_groups = self.batch_size if isinstance(self.batch_size, int) else 8
        res: list[tuple[float, bool] | None] = [None] * len(requests)
        header: Any = DynamicCache()
        cached: list[int] = []
        pbar = tqdm(
            total=len(requests),
            disable=(disable_tqdm or self.rank != 0),
            desc="Running loglikelihood requests (prefix cache)",
        )
        with torch.inference_mode():
            for batch in plan(inputs, first, max_groups):
                prefixes = [inputs[members[0]][:p] for members, p in batch]
                h = min(common_prefix(prefixes[0], q) for q in prefixes)
                keep = common_prefix(cached, prefixes[0][:h])
                if keep == 0:
                    header = DynamicCache()  # an emptied layer keeps its batch size; start afresh
                elif header.get_seq_length() > keep:
                    header.crop(keep - header.get_seq_length())  # a negative count removes that many
                if h > keep:
                    self._run([prefixes[0][keep:h]], header, [[1] * h], [keep], 1)
                cached = prefixes[0][:h]
                members = [(i, inputs[i][p:], requests[i][2]) for ms, p in batch for i in ms]
                for i, answer in self._score_batch(batch, prefixes, h, members, header):
                    res[i] = answer
                    if requests[i][0] is not None:
                        # loglikelihood_rolling passes None and caches per document itself
                        self.cache_hook.add_partial("loglikelihood", requests[i][0], answer)
                pbar.update(len(members))
        pbar.close()
        assert all(r is not None for r in res)
        return res  # type: ignore[return-value]

    def _score_batch(
        self,
        batch: list[tuple[list[int], int]],
        prefixes: list[list[int]],
        h: int,
        members: list[tuple[int, list[int], list[int]]],
        header: Any,
    ) -> list[tuple[int, tuple[float, bool]]]:
        """The middle and suffix levels of one batch on a copy of the header cache."""
        import copy

        from transformers import DynamicCache

        cache = copy.deepcopy(header) if h else DynamicCache()
        cache.batch_repeat_interleave(len(batch))
        middles = [q[h:] for q in prefixes]
        owner = [g for g, (ms, _) in enumerate(batch) for _ in ms]
        # Distinct suffix rows: the choices of a one-token-continuation document share theirs.
        distinct: dict[tuple[int, tuple[int, ...]], int] = {}
        row_of = [
            distinct.setdefault((g, tuple(r)), len(distinct))
            for g, (_, r, _) in zip(owner, members, strict=True)
        ]
        rows = [list(r) for _, r in distinct]
        row_group = [g for g, _ in distinct]
        if len(rows) == len(batch):
            # one row per group: middle and suffix in one forward
            full = [middles[g] + r for g, r in zip(row_group, rows, strict=True)]
            width = max(map(len, full))
            masks = [[1] * h + [1] * len(f) + [0] * (width - len(f)) for f in full]
            ends = [len(f) for f in full]
            need = width - min(ends[row_of[k]] - len(c) for k, (_, _, c) in enumerate(members))
            logits = self._run(full, cache, masks, [h] * len(full), need)
        else:
            width_m = max(map(len, middles))
            if width_m:
                mask = [[1] * (h + len(m)) + [0] * (width_m - len(m)) for m in middles]
                self._run(middles, cache, mask, [h] * len(batch), 1)
            if row_group != list(range(len(batch))):
                cache.batch_select_indices(torch.tensor(row_group, device=self.device))
            width = max(map(len, rows))
            ends = [len(r) for r in rows]
            need = width - min(ends[row_of[k]] - len(c) for k, (_, _, c) in enumerate(members))
            masks = [
                [1] * batch[g][1] + [0] * (width_m - len(middles[g])) + [1] * len(r) + [0] * (width - len(r))
                for g, r in zip(row_group, rows, strict=True)
            ]
            logits = self._run(rows, cache, masks, [batch[g][1] for g in row_group], need)
        out = []
        for k, (i, _, cont) in enumerate(members):
            row = row_of[k]
            end = need - (width - ends[row])  # the row's last real position, counted in the kept positions
            logp = F.log_softmax(
                logits[row, end - len(cont) : end], dim=-1, dtype=self.softmax_dtype or torch.float32
            )
            target = torch.tensor(cont, dtype=torch.long, device=logp.device)
            out.append(
                (i, (float(logp.gather(1, target[:, None]).sum()), bool((logp.argmax(-1) == target).all())))
            )
        return out

    def _run(
        self, rows: list[list[int]], cache: Any, mask: list[list[int]], starts: list[int], keep_last: int
    ) -> torch.Tensor:
        """Right-padded rows on top of `cache`: `mask` covers cache and rows (0 hides a padded position),
        a row's position ids count on from `starts`; the logits of the last `keep_last` positions."""
        width = max(map(len, rows))
        pad = self.tokenizer.pad_token_id or 0
        x = torch.tensor([r + [pad] * (width - len(r)) for r in rows], dtype=torch.long, device=self.device)
        positions = torch.tensor([[s + j for j in range(width)] for s in starts], device=self.device)
        kwargs: dict[str, Any] = {
            self._cache_arg: cache,
            "use_cache": True,
            "attention_mask": torch.tensor(mask, dtype=torch.long, device=self.device),
            "position_ids": positions,
        }
        if self._takes_logits_to_keep:
            kwargs["logits_to_keep"] = keep_last
        logits = self.model(input_ids=x, **kwargs).logits[:, -keep_last:]
        self._count(x.numel(), keep_last * len(rows) if self._takes_logits_to_keep else x.numel())
        return logits


def make(
    model: Any, tokenizer: Any, *, batch_size: int, device: str, scoring: str, generate_batch_size: int | None
) -> WidthwiseHFLM:
    """The in-process model for one evaluation: HFLM over an in-memory (pruned) model."""
    return WidthwiseHFLM(
        pretrained=model,
        tokenizer=tokenizer,
        batch_size=batch_size,
        device=device,
        scoring=scoring,
        generate_batch_size=generate_batch_size,
    )


def profile_of(lm: Any) -> dict[str, dict[str, Any]]:
    """Each task's cost as recorded by a WidthwiseHFLM; empty for a model that does not record one."""
    return {task: p.as_dict() for task, p in sorted(getattr(lm, "profile", {}).items())}
