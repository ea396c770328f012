"""Choosing the Dramatiq broker from settings.

With ``EXCHANGE_REDIS_URL`` the Redis broker carries messages between any number of API and
``exchange worker`` processes. Without it, an in-memory broker and a worker thread inside the
API process do the same work: nothing is lost on restart because everything that must happen
is recorded in the database first (outbox) and re-sent by a sweeper.
"""

from __future__ import annotations

import threading

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware
from dramatiq.middleware.asyncio import AsyncIO

from exchange.settings import Settings
from exchange.worker.request_ids import RequestIds

REDIS_NAMESPACE = "exchange"
_lock = threading.Lock()
_configured: dramatiq.Broker | None = None
_configured_url: str | None = None


def setup_broker(settings: Settings) -> dramatiq.Broker:
    """Create the broker, make it global, and declare the actors on it.

    Once per process in production; tests switch between an in-memory and a Redis broker, so
    a different Redis URL builds a new broker. The actors' runtime always takes ``settings``.
    """
    global _configured, _configured_url
    from exchange.worker import actors, runtime

    with _lock:
        runtime.configure(settings)
        if _configured is not None and _configured_url == settings.redis_url:
            return _configured
        broker: dramatiq.Broker
        if settings.redis_url:
            # A worker that died (or was killed past its grace period) leaves its unacked
            # messages to be re-queued by the others once its heartbeat is this old.
            broker = RedisBroker(
                url=settings.redis_url,
                namespace=REDIS_NAMESPACE,
                heartbeat_timeout=settings.worker_heartbeat_timeout_s * 1000,
            )
        else:
            broker = StubBroker()
            broker.emit_after("process_boot")
        broker.add_middleware(RequestIds())
        broker.add_middleware(AsyncIO())
        # After AsyncIO: "after" hooks run in reverse order, so ours runs while its loop lives.
        broker.add_middleware(CloseRuntime())
        dramatiq.set_broker(broker)
        actors.declare(broker)
        _configured, _configured_url = broker, settings.redis_url
        return broker


class CloseRuntime(Middleware):
    """Close the actors' HTTP session and database pool on their event loop when a worker shuts
    down (``runtime.close``)."""

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from dramatiq.asyncio import get_event_loop_thread

        from exchange.worker import runtime

        thread = get_event_loop_thread()
        if thread is not None:
            try:
                thread.run_coroutine(runtime.close())
            except Exception:  # shutting down: never let cleanup stop the rest of it
                pass


def reset_broker() -> None:
    """Forget the configured broker (tests switch between brokers)."""
    global _configured, _configured_url
    with _lock:
        _configured, _configured_url = None, None


def check_broker(broker: dramatiq.Broker) -> None:
    """Raise if the broker cannot be reached."""
    if isinstance(broker, RedisBroker):
        broker.client.ping()
