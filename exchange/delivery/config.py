"""How to talk to one buyer endpoint: plain data, stored as JSON on the campaign.

    BuyerEndpoints(ping=EndpointConfig(...) | None, post=EndpointConfig(...))

An `EndpointConfig` says where to send (url, method), how to shape the body (json or form, and a
field mapping), which headers and auth to add, how long to wait, and how to read the answer
(`ResponseRules`). It is tagged (``"kind": "http"``) so other delivery methods can join a union
later without a migration.

Secrets (auth tokens, passwords, secret constants, static header values) live in the config
because requests need them; `redacted()` is the only view that may be logged, and ``repr`` is
the redacted view, so an accidental ``log.info("%r", config)`` leaks nothing.

Every check runs in ``__post_init__``: msgspec calls it on decode (turning the ValueError into a
ValidationError) and on construction in code, so no invalid config exists either way.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from exchange.intake.messages import Consent
from exchange.logs import REDACTED

PING_TIMEOUT_MS_DEFAULT = 500  # a live auction waits on its slowest buyer
POST_TIMEOUT_MS_DEFAULT = 5_000  # posts are sequential and may do real work on the buyer side
TIMEOUT_MS_MIN = 10
TIMEOUT_MS_MAX = 30_000  # LeadExec's post default; nobody should wait longer
URL_MAX_CHARS = 2_048
MAPPINGS_MAX = 200
HEADERS_MAX = 50
PATH_MAX_CHARS = 256
REGEX_MAX_CHARS = 256  # buyer-written patterns run on every answer: keep them small

Kind = Literal["ping", "post"]
Method = Literal["POST", "PUT", "GET"]
BodyFormat = Literal["json", "form"]
Scalar = str | int | float | bool

# The lead's envelope, readable by a mapping's `source`; any other source names a lead field
# ("fields.<name>" reads a lead field whose name collides with one of these).
CONSENT_PREFIX = "consent."
FIELDS_PREFIX = "fields."
CONSENT_SOURCES = frozenset(CONSENT_PREFIX + f for f in Consent.__struct_fields__)
ENVELOPE_SOURCES = frozenset(
    {"kind", "lead_id", "ping_id", "delivery_id", "vertical", "source", "test"}
) | CONSENT_SOURCES

# Headers the exchange sets itself; a config may not override them (the signature would lie).
RESERVED_HEADERS = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection"}
)
RESERVED_HEADER_PREFIX = "x-exchange-"
URL_MASK = "redacted"  # REDACTED's brackets would read as an IPv6 host inside a URL
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 header field name
_BAD_VALUE = re.compile(r"[\r\n\x00]")  # header injection
_PATH = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")  # dotted path: non-empty segments, no spaces


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _check_path(name: str, path: str | None) -> None:
    if path is not None:
        _require(len(path) <= PATH_MAX_CHARS and bool(_PATH.match(path)), f"bad {name}: {path!r}")


def _check_regex(name: str, pattern: str | None, groups: int | None = None) -> None:
    if pattern is None:
        return
    _require(len(pattern) <= REGEX_MAX_CHARS, f"{name} is longer than {REGEX_MAX_CHARS} chars")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"bad {name}: {exc}") from None
    if groups is not None:
        _require(compiled.groups == groups, f"{name} needs exactly {groups} capture group")


def _check_header(name: str, value: str) -> None:
    _require(bool(_TOKEN.match(name)), f"bad header name {name!r}")
    lower = name.lower()
    reserved = lower in RESERVED_HEADERS or lower.startswith(RESERVED_HEADER_PREFIX)
    _require(not reserved, f"header {name!r} is set by the exchange")
    _require(not _BAD_VALUE.search(value), f"header {name!r} has a line break or NUL")


class _Data(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    pass


# --- auth ------------------------------------------------------------------------------------


class _Auth(_Data, tag_field="kind"):
    def redacted(self) -> _Auth:
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}(redacted)"


class NoAuth(_Auth, tag="none"):
    pass


class BearerAuth(_Auth, tag="bearer"):
    token: str

    def __post_init__(self) -> None:
        _require(bool(self.token) and not _BAD_VALUE.search(self.token), "bad bearer token")

    def redacted(self) -> BearerAuth:
        return BearerAuth(token=REDACTED)


class BasicAuth(_Auth, tag="basic"):
    username: str
    password: str

    def __post_init__(self) -> None:
        _require(":" not in self.username, "a basic-auth username cannot contain ':'")

    def redacted(self) -> BasicAuth:
        return BasicAuth(username=self.username, password=REDACTED)


class HeaderAuth(_Auth, tag="header"):
    """An API key in a header of the buyer's choosing (``X-Api-Key: ...``)."""

    name: str
    value: str

    def __post_init__(self) -> None:
        _check_header(self.name, self.value)
        _require(bool(self.value), "an auth header needs a value")

    def redacted(self) -> HeaderAuth:
        return HeaderAuth(name=self.name, value=REDACTED)


Auth = NoAuth | BearerAuth | BasicAuth | HeaderAuth


# --- mapping and response rules --------------------------------------------------------------


class FieldMap(_Data):
    """One output key: from a lead value (`source`) or a `constant`, optionally translated.

    `target` is a dotted path for JSON bodies (``applicant.phone`` nests) and a literal key for
    form bodies. A `value_map` translates values by their text (``true``/``false`` for
    booleans); a value it does not list is sent unchanged. A missing (or null) source is
    omitted, unless `required`, which makes `build_request` raise `MappingError`.
    """

    target: str
    source: str | None = None
    constant: Scalar | None = None
    value_map: dict[str, Scalar] | None = None
    required: bool = False
    secret: bool = False  # the constant is a credential (boberdoo-style "Key"): masked in logs

    def __post_init__(self) -> None:
        _check_path("target", self.target)
        _require((self.source is None) != (self.constant is None), "give a source or a constant")
        if self.source is not None:
            _check_path("source", self.source)
            if self.source.startswith(CONSENT_PREFIX):
                _require(self.source in CONSENT_SOURCES, f"unknown consent field {self.source!r}")
        _require(self.constant is None or self.value_map is None, "a constant needs no value_map")

    def redacted(self) -> FieldMap:
        if self.secret and self.constant is not None:
            return msgspec.structs.replace(self, constant=REDACTED)
        return self


class ResponseRules(_Data):
    """How to read a buyer's answer. With nothing set, any 2xx is a yes (a "status-only" buyer).

    Paths are dotted JSON paths (``result.bids.0.price``: list items by index). Setting any
    path means the body must be JSON. Regexes search the body as text instead; `price_regex`
    has one capture group holding the price.
    """

    success_path: str | None = None
    success_values: tuple[Scalar, ...] = ()  # compared as text, case-insensitively
    success_regex: str | None = None
    price_path: str | None = None  # decimal major units: 12.5, "12.50"
    price_regex: str | None = None
    reference_path: str | None = None  # the buyer's id for this ping/post
    reason_path: str | None = None  # why the buyer said no

    def __post_init__(self) -> None:
        for name in ("success_path", "price_path", "reference_path", "reason_path"):
            _check_path(name, getattr(self, name))
        _check_regex("success_regex", self.success_regex)
        _check_regex("price_regex", self.price_regex, groups=1)
        _require(
            self.success_path is None or self.success_regex is None,
            "give success_path or success_regex, not both",
        )
        _require(
            (self.success_path is None) == (not self.success_values),
            "success_path and success_values go together",
        )
        _require(
            self.price_path is None or self.price_regex is None,
            "give price_path or price_regex, not both",
        )

    @property
    def needs_json(self) -> bool:
        paths = (self.success_path, self.price_path, self.reference_path, self.reason_path)
        return any(p is not None for p in paths)

    @property
    def has_price(self) -> bool:
        return self.price_path is not None or self.price_regex is not None


# --- the endpoint ----------------------------------------------------------------------------


def _check_url(url: str) -> None:
    _require(len(url) <= URL_MAX_CHARS, f"url is longer than {URL_MAX_CHARS} chars")
    _require(url.isascii() and url.isprintable() and " " not in url, "url must be encoded ASCII")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ValueError(f"bad url: {exc}") from None
    _require(parts.scheme in {"http", "https"}, "url must be http or https")
    _require(bool(parts.hostname), "url needs a host")
    _require(not parts.fragment and "#" not in url, "url must not have a fragment")


def _check_targets(mapping: tuple[FieldMap, ...], nested: bool) -> None:
    targets = [m.target for m in mapping]
    _require(len(set(targets)) == len(targets), "two mappings write the same target")
    if nested:  # "a" and "a.b" cannot both exist in one JSON object
        parents = set()
        for target in targets:
            segments = target.split(".")
            parents.update(".".join(segments[:i]) for i in range(1, len(segments)))
        for clash in sorted(parents.intersection(targets)):
            raise ValueError(f"target {clash!r} is also the parent of another target")


def redact_url(url: str) -> str:
    # Buyers put keys in query strings and user-info; keep only what locates the endpoint.
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username or parts.password:
        netloc = f"{URL_MASK}@{netloc}"
    query = urlencode([(k, URL_MASK) for k, _ in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class EndpointConfig(_Data, tag_field="kind", tag="http"):
    url: str
    method: Method = "POST"
    body: BodyFormat = "json"  # GET sends the form in the query string
    mapping: tuple[FieldMap, ...] = ()  # empty: the exchange's native JSON body (see adapter)
    headers: dict[str, str] = {}
    auth: Auth = NoAuth()
    timeout_ms: int | None = None  # None: the default of the role (ping or post)
    response: ResponseRules = ResponseRules()

    def __post_init__(self) -> None:
        _check_url(self.url)
        _require(len(self.mapping) <= MAPPINGS_MAX, f"more than {MAPPINGS_MAX} mappings")
        _require(len(self.headers) <= HEADERS_MAX, f"more than {HEADERS_MAX} headers")
        for name, value in self.headers.items():
            _check_header(name, value)
        auth_header = None
        if isinstance(self.auth, HeaderAuth):
            auth_header = self.auth.name
        elif isinstance(self.auth, (BearerAuth, BasicAuth)):
            auth_header = "Authorization"
        if auth_header is not None:  # auth would silently overwrite a same-named static header
            names = {n.lower() for n in self.headers}
            _require(auth_header.lower() not in names, "the auth header is also a static header")
        _require(self.method != "GET" or self.body == "form", "a GET sends a form (query string)")
        _require(self.body == "json" or bool(self.mapping), "a form body needs a field mapping")
        _check_targets(self.mapping, nested=self.body == "json")
        if self.timeout_ms is not None:
            _require(
                TIMEOUT_MS_MIN <= self.timeout_ms <= TIMEOUT_MS_MAX,
                f"timeout_ms must be within {TIMEOUT_MS_MIN}..{TIMEOUT_MS_MAX}",
            )

    def timeout_for(self, kind: Kind) -> int:
        """The timeout to use in milliseconds: the configured one, or the role's default."""
        if self.timeout_ms is not None:
            return self.timeout_ms
        return PING_TIMEOUT_MS_DEFAULT if kind == "ping" else POST_TIMEOUT_MS_DEFAULT

    def redacted(self) -> EndpointConfig:
        """This config with every secret masked: the only form that may be logged or shown."""
        return msgspec.structs.replace(
            self,
            url=redact_url(self.url),
            headers={name: REDACTED for name in self.headers},
            auth=self.auth.redacted(),
            mapping=tuple(m.redacted() for m in self.mapping),
        )

    def __repr__(self) -> str:
        return _repr(self.redacted())


class BuyerEndpoints(_Data):
    """A campaign's endpoints. No ping endpoint: the campaign bids a fixed price, unasked."""

    post: EndpointConfig
    ping: EndpointConfig | None = None

    def redacted(self) -> BuyerEndpoints:
        ping = self.ping.redacted() if self.ping is not None else None
        return BuyerEndpoints(post=self.post.redacted(), ping=ping)

    def __repr__(self) -> str:
        return _repr(self.redacted())


def _repr(value: Any) -> str:
    # msgspec's own repr would print the secrets; this prints the redacted struct's fields.
    fields = ", ".join(f"{f}={getattr(value, f)!r}" for f in value.__struct_fields__)
    return f"{type(value).__name__}({fields})"
