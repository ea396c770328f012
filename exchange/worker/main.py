"""Entry module for ``dramatiq`` worker processes (``exchange worker`` runs it)."""

from __future__ import annotations

from exchange.logs import configure_logging
from exchange.settings import load_settings
from exchange.worker.broker import setup_broker

_settings = load_settings()
configure_logging(_settings)
broker = setup_broker(_settings)
