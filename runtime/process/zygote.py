"""Moved to runtime/zygote/ (server.py: serve, start_detached; client.py: connect, request_create),
the zygote's own sub-package, above container/; this name still works and is the very same module
as runtime.zygote.server, which re-exports the client side."""

import sys

from runtime.zygote import server as _moved

sys.modules[__name__] = _moved
