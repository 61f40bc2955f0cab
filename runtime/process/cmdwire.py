"""Moved to runtime/zygote/cmdwire.py (the zygote's own sub-package, above container/); this name
still works and is the very same module."""

import sys

from runtime.zygote import cmdwire as _moved

sys.modules[__name__] = _moved
