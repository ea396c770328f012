"""Cap counters in the database: read usage, and reserve / release capacity atomically.

The decisions (which window, is it breached) are pure and live in ``exchange.matching.caps``;
this package only moves the counters.
"""

from exchange.caps.store import Hold, read_usage, release, reserve

__all__ = ["Hold", "read_usage", "release", "reserve"]
