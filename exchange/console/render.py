"""Server-rendered pages: Jinja2 templates shipped in the package, escaped by default."""

from __future__ import annotations

import functools
from typing import Any

import jinja2
from litestar import MediaType, Response

from exchange import __version__, reasons
from exchange.console import assets
from exchange.teams import reasons as team_reasons

# The console's pages load scripts, styles and data from this origin only: an injected
# <script> or an inline handler does not run, and no other site may frame the page.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",  # pages carry the session's CSRF token and a party's data
}


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("exchange.console", "templates"),
        autoescape=True,  # every value is HTML-escaped unless a template says otherwise
        undefined=jinja2.StrictUndefined,  # a typo in a template fails its test, not silently
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(static=assets.url, version=__version__, reason_codes=reason_codes)
    return env


def reason_codes() -> dict[str, str]:
    """Every reason code's one-line meaning (the auction's and the teams'; ``<...>`` templates),
    for pages that explain a trace or a routing decision."""
    return {**reasons.REASONS, **team_reasons.REASONS}


def page(template: str, status_code: int = 200, **context: Any) -> Response:
    html = _environment().get_template(template).render(**context)
    return Response(html, status_code=status_code, media_type=MediaType.HTML, headers=PAGE_HEADERS)
