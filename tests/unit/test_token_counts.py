"""tools/token_counts.py on real tasks over the offline data: what it counts, and that the block it writes
is what the time model reads."""

import importlib.util
import sys
import tomllib
from pathlib import Path

from widthwise import timemodel

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("token_counts", ROOT / "tools" / "token_counts.py")
tc = importlib.util.module_from_spec(spec)
sys.modules["token_counts"] = tc
spec.loader.exec_module(tc)


def test_counts_of_real_tasks_and_the_block_the_time_model_reads():
    tok, what = tc.tokenizer_of(None)
    counts = tc.count("paper", tok, ["winogrande", "ifeval"], (1, 8), log=lambda s: None)
    wg, ife = counts["winogrande"], counts["ifeval"]
    # WinoGrande's 1,267 validation documents, two options each; IFEval's 541 prompts, lm-eval's cap
    assert (wg["kind"], wg["docs"], wg["requests"]) == ("loglikelihood", 1267, 2534)
    assert (ife["kind"], ife["docs"], ife["requests"], ife["max_gen_toks"]) == ("generate", 541, 541, 1280)
    # the prefix path never runs more than context + continuation (a one-request group runs it whole), and
    # batching runs fewer forwards
    assert wg["prefix_tokens"][1] <= wg["context_tokens"] + wg["continuation_tokens"]
    assert wg["prefix_forwards"][8] < wg["prefix_forwards"][1] <= wg["requests"]
    block = tc.block(counts, "paper", what)
    assert block.startswith(tc.BEGIN) and block.endswith(tc.END)
    doc = tomllib.loads(block)
    read = timemodel.from_dict({**tomllib.loads((ROOT / "src/widthwise/timemodel.toml").read_text()), **doc})
    assert read.tasks["winogrande"].prefix_forwards == {
        1: wg["prefix_forwards"][1],
        8: wg["prefix_forwards"][8],
    }
    assert read.tasks["ifeval"].prompt_tokens == ife["prompt_tokens"] > 541


def test_encode_pairs_moves_a_trailing_space_to_the_continuation():
    tok, _ = tc.tokenizer_of(None)
    ctx, cont = tc.encode_pairs(tok, [("The cat sat on the ", "mat"), ("The cat sat on the", " mat")])
    assert ctx[0] == ctx[1] and cont[0] == cont[1]
    whole = tok.encode("The cat sat on the mat", add_special_tokens=False).ids
    assert ctx[0] + cont[0] == whole
