"""lm-eval task YAML templates over local data, and the loaders they call (see loaders.py)."""
