"""Install a real pruning plug-in for a test: a module and a `*.dist-info` with entry_points.txt in a
folder put on sys.path, which importlib.metadata finds as it finds any installed distribution."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from widthwise import pruners


def write_plugin(
    site: Path, package: str, version: str, module: str, source: str, methods: Mapping[str, str]
) -> Path:
    """A distribution `package` `version` with `module`.py holding `source`, registering `methods`
    ({method name: function name}) in the widthwise.pruners group. Returns `site`."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{package.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
    lines = [f"[{pruners.GROUP}]"] + [f"{name} = {module}:{fn}" for name, fn in methods.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return site


@contextmanager
def on_path(site: Path) -> Iterator[Path]:
    """`site` on sys.path, the plug-in registry reloaded on entry and on exit."""
    sys.path.insert(0, str(site))
    pruners.clear()
    try:
        yield site
    finally:
        sys.path.remove(str(site))
        for name in [
            m
            for m in sys.modules
            if getattr(sys.modules[m], "__file__", "") and str(site) in str(sys.modules[m].__file__)
        ]:
            del sys.modules[name]
        pruners.clear()
