"""Fetch and verify the offline benchmark data before widthwise is installed (CI's first step).

    python tools/fetch_data.py --dest DIR

The code is src/widthwise/fetch.py (standard library only); `widthwise fetch-data` is the same thing.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from widthwise.fetch import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
