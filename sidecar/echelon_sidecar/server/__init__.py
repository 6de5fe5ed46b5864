"""The sidecar's HTTP servers: the data port (OpenAI / Anthropic compatible) and the admin port."""

from .admin import status_document
from .metrics import Metrics
from .runtime import Sidecar
from .settings import ServerSettings

__all__ = ["Metrics", "ServerSettings", "Sidecar", "status_document"]
