"""privsep: run Linux system services as small, privilege-separated processes.

The public API is what this facade exports; modules and packages whose names
start with an underscore are internal and may change without notice.
"""

from privsep._errors import LayoutError, MalformedPacket, PrivsepError

__all__ = ["LayoutError", "MalformedPacket", "PrivsepError", "__version__"]

__version__ = "0.1.0"
