"""Parties, API keys, authentication and scoping."""
