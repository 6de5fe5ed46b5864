"""The sidecar's HTTP servers: the data port (OpenAI / Anthropic compatible) and the admin port.

``create_data_app(sidecar)`` and ``create_admin_app(sidecar)`` build the two aiohttp
applications; :class:`Sidecar` holds their state and runs them on their ports.
"""

from .admin import status_document
from .app import create_admin_app, create_data_app
from .keys import SIDECAR
from .metrics import Metrics
from .runtime import Sidecar
from .settings import ServerSettings

__all__ = ["SIDECAR", "Metrics", "ServerSettings", "Sidecar", "create_admin_app",
           "create_data_app", "status_document"]
