"""Where campaigns live, behind one interface: the embedded default in this process, or a
server over HTTP. The CLI and `connect()` both talk to a `Backend` and never ask which one
it is, as an httpx client does with its transport.

backend = open_backend()          # HTTP when ORCHESTRATOR_URL is set, else embedded
campaign_id = backend.submit(document, import_paths)
"""

from orchestrator.backends.base import Backend, open_backend
from orchestrator.backends.embedded import EmbeddedBackend
from orchestrator.backends.http import HTTPBackend

__all__ = ["Backend", "EmbeddedBackend", "HTTPBackend", "open_backend"]
