"""widthwise: PPM width pruning of GLU MLPs, and the claims of arXiv 2512.22671 as CI gates."""

from typing import Any

__version__ = "0.1.0"

# What a pruning plug-in imports (widthwise.pruners), loaded on first use: `import widthwise` stays
# free of torch for the commands that never prune.
_PLUGIN_API = ("pruner", "Layer")


def __getattr__(name: str) -> Any:
    if name in _PLUGIN_API:
        from widthwise import pruners

        return getattr(pruners, name)
    raise AttributeError(f"module 'widthwise' has no attribute {name!r}")
