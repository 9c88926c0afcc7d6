"""Print the PyTorch wheel index URL for this machine's NVIDIA driver, before widthwise is installed.

    python tools/torch_index.py [--driver 550.54.15]
    pip install torch==X --index-url "$(python tools/torch_index.py)"

The driver comes from `nvidia-smi --query-gpu=driver_version --format=csv,noheader`. The code, and the
sources of its driver floors, are src/widthwise/doctor/compat.py (standard library only); `widthwise
doctor` uses the same functions to name the fix when torch's CUDA build does not match the driver.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from widthwise.doctor.compat import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
