"""ASGI entry point for uvicorn and other servers: ``exchange.asgi:app``."""

from exchange.app import create_app
from exchange.logs import configure_logging
from exchange.settings import load_settings

_settings = load_settings()
configure_logging(_settings)
app = create_app(_settings)
