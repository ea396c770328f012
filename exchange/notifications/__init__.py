"""Notifications: agents and managers told at once when a lead is offered or assigned.

- ``outbox``: the hooks routing calls inside its transaction; they write ``notifications`` rows
  (the outbox, keyed for idempotency) and, after commit, push the live stream and enqueue the
  ``send_notifications`` actor.
- ``sender``: email through SMTP and a signed generic webhook (SMS and WhatsApp relays), with
  exponential backoff, then ``failed`` (visible through the API and a Prometheus counter).
- ``stream``: the agents' Server-Sent Events (in-process, or a Redis Stream per agent across
  processes), each event with an id, the recent ones replayed after a reconnect (Last-Event-ID).
- ``unowned``: the sweep that tells managers of leads nobody owns ``unowned_minutes`` after routing.
- ``templates``: per-team text over a fixed set of non-PII placeholders.

See docs/notifications.md.
"""
