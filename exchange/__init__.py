"""The lead exchange: ping-post auctions, delivery, ledger and internal teams."""

__version__ = "0.1.0"
