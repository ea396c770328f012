"""An example buyer: an aiohttp server that verifies the exchange's signature and bids.

    BUYER_SIGNING_SECRET=... python -m buyers_sdk.examples.buyer_server --port 8080 --bid 12.50

Point a campaign at it with ``buyers_sdk.receiver.endpoints("http://host:8080/post",
"http://host:8080/ping")``. It bids ``--bid`` on every ping whose state is not in ``--skip-state``,
accepts every post it has not seen (de-duplicating on the delivery id) and answers 401 to
anything not signed with the secret. Requires ``aiohttp`` (not a dependency of the SDK itself).
"""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import Collection
from decimal import Decimal

from aiohttp import web

from buyers_sdk import receiver

JSON = "application/json"


def make_app(
    secret: str,
    *,
    bid: Decimal | str | int = "12.50",
    skip_states: Collection[str] = (),
    seen: list[receiver.Ping | receiver.Post] | None = None,
) -> web.Application:
    """The buyer's app. ``seen`` (optional) collects every verified ping and post, for tests."""
    accepted: dict[str, str] = {}  # delivery id -> our reference: a retry gets the same answer

    def answer(body: bytes, status: int = 200) -> web.Response:
        return web.Response(body=body, status=status, content_type=JSON)

    async def ping(request: web.Request) -> web.Response:
        body = await request.read()
        if not receiver.verify(secret, request.headers, body):
            return answer(receiver.reject("bad signature"), status=401)
        try:
            message = receiver.decode_ping(body)
        except receiver.InvalidBody as exc:
            return answer(receiver.no_bid(str(exc)[:100]), status=400)
        if seen is not None:
            seen.append(message)
        if message.fields.get("state") in skip_states:
            return answer(receiver.no_bid(f"we do not buy in {message.fields['state']}"))
        return answer(receiver.bid(bid))

    async def post(request: web.Request) -> web.Response:
        body = await request.read()
        if not receiver.verify(secret, request.headers, body):
            return answer(receiver.reject("bad signature"), status=401)
        try:
            message = receiver.decode_post(body)
        except receiver.InvalidBody as exc:
            return answer(receiver.reject(str(exc)[:100]), status=400)
        if seen is not None:
            seen.append(message)
        key = receiver.delivery_id(request.headers) or message.delivery_id or str(uuid.uuid4())
        # Store the lead in your CRM here; on a retry of one delivery answer as before.
        reference = accepted.setdefault(key, f"crm-{uuid.uuid4().hex[:12]}")
        return answer(receiver.accept(reference))

    app = web.Application()
    app.router.add_post("/ping", ping)
    app.router.add_post("/post", post)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--bid", default="12.50", help="bid in major units, e.g. 12.50")
    parser.add_argument(
        "--skip-state", action="append", default=[], help="pass on leads in this state"
    )
    args = parser.parse_args(argv)
    secret = os.environ.get("BUYER_SIGNING_SECRET")
    if not secret:
        parser.error("set BUYER_SIGNING_SECRET to your signing secret")
    web.run_app(
        make_app(secret, bid=args.bid, skip_states=args.skip_state), host=args.host, port=args.port
    )


if __name__ == "__main__":
    main()
