"""widthwise: PPM width pruning of GLU MLPs, and the claims of arXiv 2512.22671 as CI gates."""

__version__ = "0.1.0"
