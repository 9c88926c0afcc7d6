"""A local stand-in for the upstream hosts of the data widthwise fetches, served on 127.0.0.1.

It serves, at the same paths under the host as upstream (widthwise.fetch.DOWNLOADS, PUNKT_ZIP), files
built from a real data folder: IFEval's input_data.jsonl and TruthfulQA's mc_task.json as they are, and
a punkt_tab.zip packed from nltk_data/tokenizers/punkt_tab. The fetch code under test is the real one
(urllib over HTTP); only the host differs. `corrupt` changes one byte of one served file.
"""

from __future__ import annotations

import io
import threading
import zipfile
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from widthwise import fetch


def build_tree(data: Path, root: Path, corrupt: str | None = None) -> Path:
    for name, path in fetch.DOWNLOADS.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        blob = (data / name).read_bytes()
        if name == corrupt:
            blob = blob[:100] + bytes([blob[100] ^ 1]) + blob[101:]
        (root / path).write_bytes(blob)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        tokenizers = data / "nltk_data" / "tokenizers"
        for f in sorted((tokenizers / "punkt_tab").rglob("*")):
            if f.is_file():
                z.write(f, f.relative_to(tokenizers).as_posix())
    (root / fetch.PUNKT_ZIP).parent.mkdir(parents=True, exist_ok=True)
    (root / fetch.PUNKT_ZIP).write_bytes(buf.getvalue())
    return root


class _Quiet(SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()


@contextmanager
def serve(root: Path):
    """Serve `root` on a free port: yields (base URL, list of request paths seen)."""
    seen: list[str] = []
    handler = type("Handler", (_Quiet,), {"requests": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was bound once and released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
