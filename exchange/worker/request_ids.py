"""Carry the request id into Dramatiq messages and back onto the worker's log lines.

``before_enqueue`` writes the current request id into ``message.options["request_id"]``: the
id of the HTTP request that enqueued it, or of the message being processed when an actor
enqueues another (a sweep's re-sent deliveries share the sweep's id). A message enqueued
outside both (the API's maintenance timers) gets an id of its own. Retries keep the id: Dramatiq
re-enqueues the same message with its options.

``before_process_message`` sets the logging context (``request_id``, ``message_id``, ``actor``)
for the worker thread; async actors run on the AsyncIO middleware's loop through
``run_coroutine_threadsafe``, which copies the thread's context into the task. The after hooks
put the previous values back.
"""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from exchange import logs
from exchange.request_ids import accepted, new_request_id

OPTION = "request_id"


class RequestIds(Middleware):
    def __init__(self) -> None:
        self._local = threading.local()

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message, delay: Any) -> None:
        if accepted(message.options.get(OPTION)) is None:
            message.options[OPTION] = logs.request_id.get() or new_request_id()

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        rid = accepted(message.options.get(OPTION)) or new_request_id()
        tokens = [
            logs.request_id.set(rid),
            logs.message_id.set(message.message_id),
            logs.actor.set(message.actor_name),
        ]
        stack = getattr(self._local, "tokens", None)
        if stack is None:
            stack = self._local.tokens = []
        stack.append(tokens)

    def after_process_message(
        self, broker: dramatiq.Broker, message: dramatiq.Message, *, result: Any = None, exception: Any = None
    ) -> None:
        self._reset()

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        self._reset()

    def _reset(self) -> None:
        stack = getattr(self._local, "tokens", None)
        if not stack:
            return
        request_token, message_token, actor_token = stack.pop()
        logs.actor.reset(actor_token)
        logs.message_id.reset(message_token)
        logs.request_id.reset(request_token)
