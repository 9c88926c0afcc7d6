"""The one exception type the CLI turns into a single line and exit code 2."""


class WidthwiseError(Exception):
    """Bad input or an unusable environment: the user can fix it, nothing was written."""
