"""Account ownership: who already works this person or company.

A lead's *accounts* are its phone, its email and its company's domain (the email's domain
unless it is a free-mail provider or a domain reserved for examples, or a ``company_domain`` /
``website`` field). Each is kept
only as a keyed hash (HMAC with the exchange's secret, as duplicate detection does), so the
table of owners holds no PII. When an agent takes a lead, its accounts point at that agent;
a later lead with any of the same accounts goes to that agent first (``account_owners``).

Intake has already normalised what it validated (E.164 phones, lower-case emails), so phones
and emails are recognised by their shape among the lead's values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from exchange.intake.service import dedupe_hash

PHONE, EMAIL, DOMAIN = "phone", "email", "domain"
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_EMAIL = re.compile(r"^[^@\s]+@([a-z0-9.-]+\.[a-z]{2,})$")
_HOST = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?(?:www\.)?([a-z0-9.-]+\.[a-z]{2,})(?:[:/?#].*)?$")
DOMAIN_FIELDS = ("company_domain", "website", "company_website")
KEYS_MAX = 6  # a lead's accounts kept: a few phones and emails at most

# Addresses at these domains say nothing about a company.
FREE_MAIL = frozenset({
    "aol.com", "gmail.com", "googlemail.com", "gmx.com", "gmx.net", "hotmail.com", "icloud.com",
    "live.com", "mac.com", "mail.com", "me.com", "msn.com", "outlook.com", "proton.me",
    "protonmail.com", "yahoo.com", "yandex.com", "ymail.com", "zoho.com", "comcast.net",
    "att.net", "verizon.net", "sbcglobal.net",
})  # fmt: skip


# Reserved for examples and tests (RFC 2606, RFC 6761): never a real company.
RESERVED_DOMAINS = frozenset({"example.com", "example.net", "example.org"})
RESERVED_SUFFIXES = (".example", ".test", ".invalid", ".localhost")


def is_company(domain: str) -> bool:
    return not (
        domain in FREE_MAIL
        or domain in RESERVED_DOMAINS
        or domain.endswith(RESERVED_SUFFIXES)
        or any(domain.endswith("." + d) for d in RESERVED_DOMAINS)
    )


def _domain_of(value: str) -> str | None:
    found = _HOST.match(value.strip().lower())
    return found.group(1) if found else None


def accounts(values: Iterable[tuple[str, Any]]) -> list[tuple[str, str]]:
    """(kind, normalised value) of every account among a lead's (field name, value) pairs,
    in a stable order, without repeats."""
    found: dict[tuple[str, str], None] = {}
    for name, value in values:
        if not isinstance(value, str):
            continue
        text = value.strip()
        if _E164.match(text):
            found[(PHONE, text)] = None
        elif email := _EMAIL.match(text.lower()):
            found[(EMAIL, text.lower())] = None
            if is_company(email.group(1)):
                found[(DOMAIN, email.group(1))] = None
        elif name in DOMAIN_FIELDS and (domain := _domain_of(text)) and is_company(domain):
            found[(DOMAIN, domain)] = None
    return list(found)[:KEYS_MAX]


def account_keys(
    secret: str, pii: Mapping[str, Any] | None, fields: Mapping[str, Any] | None
) -> list[tuple[str, str]]:
    """(kind, keyed hash) of the lead's accounts: what ``account_owners`` is keyed by."""
    values = [*(pii or {}).items(), *(fields or {}).items()]
    return [(kind, dedupe_hash(secret, f"account:{kind}", value)) for kind, value in accounts(values)]
