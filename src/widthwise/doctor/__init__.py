"""`widthwise doctor`: what a GPU runner has, and whether a sweep can run on it, before hours are spent.

    compat.py    which torch CUDA build a driver runs, and the wheel index to install (standard library
                 only: tools/torch_index.py runs it before widthwise is installed)
    facts.py     gather(needs) -> Facts: the one function that touches torch, NVML, a vLLM subprocess,
                 the data folders and the environment
    diagnose.py  diagnose(facts, needs) -> [Problem]: pure; each Problem is one line with its fix

Nothing is imported here, so that compat.py stays importable without torch.
"""
