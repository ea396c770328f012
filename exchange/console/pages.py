"""The console's pages: sign-in, sign-out and one page per kind of party.

Signing in posts an API key once; the answer sets the session cookie (``exchange.auth.sessions``)
and sends the browser to the page of the key's kind. The pages are HTML shells; their scripts
call the JSON API (``/v1/...``) with the cookie and the page's CSRF token. These routes are
outside the API-key middleware: each page resolves the cookie itself and answers a missing or
stale session with a redirect to the sign-in form, not a JSON 401.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect

from exchange.api.common import db_of, settings_of
from exchange.auth import sessions
from exchange.auth.keys import KEY_MAX_CHARS
from exchange.auth.middleware import session_principal
from exchange.auth.parties import PartyKind, Principal, authenticate
from exchange.console.render import page
from exchange.errors import ApiError

LOGIN = "/console/login"
FormBody = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
NOTICES = {
    "expired": "Your session ended. Sign in again.",
    "signed_out": "You are signed out.",
}
BAD_KEY = "That key is unknown, revoked or inactive."
# What each kind of party sees now; the kinds without a page of their own get a landing page.
PAGES = {
    PartyKind.AGENT: "agent.html",
    PartyKind.BUYER: "buyer.html",
    PartyKind.FINANCE: "finance.html",
    PartyKind.OPERATOR: "operator.html",
    PartyKind.SUPPLIER: "supplier.html",
}


def home_of(kind: PartyKind) -> str:
    return f"/console/{kind.value}"


def _session_cookie(request: Request, value: str, max_age: int) -> Cookie:
    return Cookie(
        key=sessions.COOKIE_NAME,
        value=value,
        max_age=max_age,
        path="/",  # the pages' scripts call /v1 with it
        httponly=True,  # no script reads it, the console's own included
        samesite="strict",  # never sent on a request another site starts
        secure=request.url.scheme == "https",
    )


def _check_origin(request: Request) -> None:
    """A form post from another site (login CSRF: signing a victim into the attacker's key)
    carries that site's Origin; browsers send one on every POST."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise ApiError(403, "forbidden", "a console form may only be posted from the console")


async def _signed_in(request: Request) -> tuple[Principal, str] | None:
    token = request.cookies.get(sessions.COOKIE_NAME)
    if not token:
        return None
    principal = await session_principal(request, token)
    return (principal, token) if principal is not None else None


class ConsoleController(Controller):
    path = "/console"
    include_in_schema = False

    @get("/")
    async def index(self, request: Request) -> Response:
        session = await _signed_in(request)
        return Redirect(home_of(session[0].kind) if session else LOGIN, status_code=303)

    @get("/login")
    async def login_form(self, request: Request) -> Response:
        session = await _signed_in(request)
        if session is not None:
            return Redirect(home_of(session[0].kind), status_code=303)
        notice = next(
            (text for flag, text in NOTICES.items() if flag in request.query_params), None
        )
        return page("login.html", notice=notice, error=None)

    @post("/login", status_code=303)
    async def login(self, request: Request, data: FormBody) -> Response:
        _check_origin(request)
        raw = (data.get("key") or "").strip()
        principal = None
        if raw and len(raw) <= KEY_MAX_CHARS:
            async with db_of(request).read() as conn:
                principal = await authenticate(conn, raw)
        if principal is None:
            return page("login.html", status_code=401, notice=None, error=BAD_KEY)
        token, max_age = sessions.issue(settings_of(request).secret_key, principal.key_id)
        return Redirect(
            home_of(principal.kind),
            status_code=303,
            cookies=[_session_cookie(request, token, max_age)],
            headers={"Cache-Control": "no-store"},
        )

    @post("/logout", status_code=303)
    async def logout(self, request: Request, data: FormBody) -> Response:
        _check_origin(request)
        session = await _signed_in(request)
        if session is not None and not sessions.csrf_ok(
            settings_of(request).secret_key, session[1], data.get("csrf")
        ):
            raise ApiError(403, "csrf_failed", "sign out from the console's own button")
        return Redirect(
            f"{LOGIN}?signed_out=1",
            status_code=303,
            cookies=[_session_cookie(request, "", 0)],  # Max-Age=0: the browser drops it
        )

    @get("/{kind:str}")
    async def role_page(self, request: Request, kind: FromPath[str]) -> Response:
        session = await _signed_in(request)
        if session is None:
            stale = sessions.COOKIE_NAME in request.cookies
            return Redirect(f"{LOGIN}?expired=1" if stale else LOGIN, status_code=303)
        principal, token = session
        if kind != principal.kind.value:  # each key sees its own kind's page
            return Redirect(home_of(principal.kind), status_code=303)
        return page(
            PAGES.get(principal.kind, "landing.html"),
            principal=principal,
            kind=principal.kind.value,
            csrf=sessions.csrf_token(settings_of(request).secret_key, token),
        )
