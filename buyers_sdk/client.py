"""HTTP clients for advertisers: ``ExchangeClient`` (sync) and ``AsyncExchangeClient``.

Both have the same methods; the async one's are coroutines::

    with ExchangeClient("https://exchange.example.com", api_key) as client:
        campaign = client.create_campaign(CampaignIn(name="Solar CA", vertical="solar",
                                                     fixed_price_minor=2500))
        client.pause_campaign(campaign.id)
        print(client.account().spendable_minor)

Every non-2xx answer raises an ``ApiError`` subclass (see ``buyers_sdk.errors``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Generic, NamedTuple, Self, TypeVar

import httpx
import msgspec

from buyers_sdk.errors import TransportError, error_from_response
from buyers_sdk.models import (
    AccountBalance,
    BuyerAccount,
    CallView,
    Campaign,
    CampaignIn,
    CrmConfig,
    CrmConnection,
    CrmConnectionIn,
    CrmConnectionPatch,
    CrmConnections,
    KeyIn,
    KeyInfo,
    LeadCrmSyncs,
    NewKey,
    Outcome,
    OutcomeIn,
    Outcomes,
    Page,
    Party,
    PostbackInfo,
    Purchase,
    PurchaseDetail,
    Return,
    ReturnIn,
    SigningSecret,
    TraceView,
    Vertical,
)

T = TypeVar("T")
DEFAULT_TIMEOUT_S = 10.0
USER_AGENT = "lead-exchange-buyers-sdk/0.1"
Id = uuid.UUID | str
CampaignBody = CampaignIn | Mapping[str, Any]
CrmConnectionBody = CrmConnectionIn | Mapping[str, Any]

_encode = msgspec.json.Encoder().encode


class Route(NamedTuple):
    """A client method's HTTP call: method, path (as the OpenAPI document writes it), the type
    of the answer (``str``: text, e.g. CSV) and of the JSON body sent, if any."""

    method: str
    path: str
    answer: Any
    body: Any = None


# Every client method and the route it calls (tests/sdk/test_contract.py checks each one against
# the exchange's OpenAPI document: the path, the method, the answer's and the body's schema).
ROUTES: dict[str, Route] = {
    "me": Route("GET", "/v1/me", Party),
    "list_keys": Route("GET", "/v1/keys", list[KeyInfo]),
    "issue_key": Route("POST", "/v1/keys", NewKey, KeyIn),
    "revoke_key": Route("DELETE", "/v1/keys/{key_id}", KeyInfo),
    "list_verticals": Route("GET", "/v1/verticals", list[Vertical]),
    "get_vertical": Route("GET", "/v1/verticals/{slug}", Vertical),
    "list_campaigns": Route("GET", "/v1/campaigns", Page[Campaign]),
    "get_campaign": Route("GET", "/v1/campaigns/{campaign_id}", Campaign),
    "create_campaign": Route("POST", "/v1/campaigns", Campaign, CampaignIn),
    "replace_campaign": Route("PUT", "/v1/campaigns/{campaign_id}", Campaign, CampaignIn),
    "pause_campaign": Route("POST", "/v1/campaigns/{campaign_id}/pause", Campaign),
    "resume_campaign": Route("POST", "/v1/campaigns/{campaign_id}/resume", Campaign),
    "account": Route("GET", "/v1/account", BuyerAccount),
    "signing_secret": Route("GET", "/v1/account/signing-secret", SigningSecret),
    "ledger_balance": Route("GET", "/v1/ledger/me/balance", list[AccountBalance]),
    "statement_csv": Route("GET", "/v1/ledger/me/statement.csv", str),
    "list_calls": Route("GET", "/v1/calls", Page[CallView]),
    "get_call": Route("GET", "/v1/calls/{call_id}", CallView),
    "list_purchases": Route("GET", "/v1/purchases", Page[Purchase]),
    "get_purchase": Route("GET", "/v1/purchases/{sale_id}", PurchaseDetail),
    "lead_trace": Route("GET", "/v1/leads/{lead_id}/trace", TraceView),
    "ping_trace": Route("GET", "/v1/pings/{ping_id}/trace", TraceView),
    "file_return": Route("POST", "/v1/returns", Return, ReturnIn),
    "list_returns": Route("GET", "/v1/returns", Page[Return]),
    "get_return": Route("GET", "/v1/returns/{return_id}", Return),
    "report_outcome": Route("POST", "/v1/leads/{lead_id}/outcomes", Outcome, OutcomeIn),
    "outcomes": Route("GET", "/v1/leads/{lead_id}/outcomes", Outcomes),
    "postback_info": Route("GET", "/v1/outcomes/postback", PostbackInfo),
    "create_crm_connection": Route("POST", "/v1/crm-connections", CrmConnection, CrmConnectionIn),
    "list_crm_connections": Route("GET", "/v1/crm-connections", CrmConnections),
    "get_crm_connection": Route("GET", "/v1/crm-connections/{connection_id}", CrmConnection),
    "update_crm_connection": Route(
        "PUT", "/v1/crm-connections/{connection_id}", CrmConnection, CrmConnectionPatch
    ),
    "deactivate_crm_connection": Route(
        "DELETE", "/v1/crm-connections/{connection_id}", CrmConnection
    ),
    "lead_crm": Route("GET", "/v1/leads/{lead_id}/crm", LeadCrmSyncs),
}


class _Call(msgspec.Struct, Generic[T], frozen=True):
    """One API call, independent of sync or async: what to send and how to read the answer."""

    method: str
    path: str
    type: Any  # the msgspec type of the answer; str: the text as is (CSV)
    params: dict[str, str] | None = None
    body: Any = None


def _call(
    name: str, *, params: dict[str, str] | None = None, body: Any = None, **path: Any
) -> _Call:
    route = ROUTES[name]
    url = route.path.format(**{k: str(v) for k, v in path.items()})
    return _Call(route.method, url, route.answer, params, body)


def _params(**values: Any) -> dict[str, str]:
    return {k: str(v) for k, v in values.items() if v is not None}


def _campaign_body(data: CampaignBody) -> Any:
    return data if isinstance(data, CampaignIn) else dict(data)


def _uuid(value: Id | None) -> uuid.UUID | None:
    return uuid.UUID(str(value)) if value is not None else None


class _Calls:
    """The API's calls for a buyer key, shared by both clients."""

    @staticmethod
    def me() -> _Call:
        return _call("me")

    @staticmethod
    def list_keys() -> _Call:
        return _call("list_keys")

    @staticmethod
    def issue_key(name: str | None) -> _Call:
        return _call("issue_key", body=KeyIn() if name is None else KeyIn(name=name))

    @staticmethod
    def revoke_key(key_id: Id) -> _Call:
        return _call("revoke_key", key_id=key_id)

    @staticmethod
    def list_verticals() -> _Call:
        return _call("list_verticals")

    @staticmethod
    def get_vertical(slug: str) -> _Call:
        return _call("get_vertical", slug=slug)

    @staticmethod
    def list_campaigns(vertical: str | None, limit: int | None, after: Id | None) -> _Call:
        params = _params(vertical=vertical, limit=limit, after=after)
        return _call("list_campaigns", params=params)

    @staticmethod
    def get_campaign(campaign_id: Id) -> _Call:
        return _call("get_campaign", campaign_id=campaign_id)

    @staticmethod
    def create_campaign(data: CampaignBody) -> _Call:
        return _call("create_campaign", body=_campaign_body(data))

    @staticmethod
    def replace_campaign(campaign_id: Id, data: CampaignBody) -> _Call:
        body = _campaign_body(data)
        return _call("replace_campaign", body=body, campaign_id=campaign_id)

    @staticmethod
    def set_active(campaign_id: Id, active: bool) -> _Call:
        name = "resume_campaign" if active else "pause_campaign"
        return _call(name, campaign_id=campaign_id)

    @staticmethod
    def account() -> _Call:
        return _call("account")

    @staticmethod
    def signing_secret() -> _Call:
        return _call("signing_secret")

    @staticmethod
    def ledger_balance(period: str | None) -> _Call:
        return _call("ledger_balance", params=_params(period=period))

    @staticmethod
    def statement_csv(period: str) -> _Call:
        return _call("statement_csv", params=_params(period=period))

    @staticmethod
    def list_calls(status: str | None, limit: int | None, after: Id | None) -> _Call:
        return _call("list_calls", params=_params(status=status, limit=limit, after=after))

    @staticmethod
    def get_call(call_id: Id) -> _Call:
        return _call("get_call", call_id=call_id)

    @staticmethod
    def list_purchases(limit: int | None, after: Id | None) -> _Call:
        params = _params(limit=limit, after=after)
        return _call("list_purchases", params=params)

    @staticmethod
    def get_purchase(sale_id: Id) -> _Call:
        return _call("get_purchase", sale_id=sale_id)

    @staticmethod
    def lead_trace(lead_id: Id) -> _Call:
        return _call("lead_trace", lead_id=lead_id)

    @staticmethod
    def ping_trace(ping_id: Id) -> _Call:
        return _call("ping_trace", ping_id=ping_id)

    @staticmethod
    def file_return(reason: str, sale_id: Id | None, lead_id: Id | None, note: str | None) -> _Call:
        body = ReturnIn(reason=reason, sale_id=_uuid(sale_id), lead_id=_uuid(lead_id), note=note)
        return _call("file_return", body=body)

    @staticmethod
    def list_returns(status: str | None, limit: int | None, after: Id | None) -> _Call:
        params = _params(status=status, limit=limit, after=after)
        return _call("list_returns", params=params)

    @staticmethod
    def get_return(return_id: Id) -> _Call:
        return _call("get_return", return_id=return_id)

    @staticmethod
    def report_outcome(
        lead_id: Id,
        kind: str,
        value_minor: int | None,
        currency: str | None,
        reason: str | None,
        occurred_at: dt.datetime | None,
    ) -> _Call:
        body = OutcomeIn(
            kind=kind, value_minor=value_minor, currency=currency, reason=reason,
            occurred_at=occurred_at,
        )  # fmt: skip
        return _call("report_outcome", body=body, lead_id=lead_id)

    @staticmethod
    def outcomes(lead_id: Id) -> _Call:
        return _call("outcomes", lead_id=lead_id)

    @staticmethod
    def postback_info() -> _Call:
        return _call("postback_info")

    @staticmethod
    def create_crm_connection(data: CrmConnectionBody) -> _Call:
        body = data if isinstance(data, CrmConnectionIn) else dict(data)
        return _call("create_crm_connection", body=body)

    @staticmethod
    def list_crm_connections() -> _Call:
        return _call("list_crm_connections")

    @staticmethod
    def get_crm_connection(connection_id: Id) -> _Call:
        return _call("get_crm_connection", connection_id=connection_id)

    @staticmethod
    def update_crm_connection(
        connection_id: Id,
        name: str | None,
        config: CrmConfig | None,
        secret: str | None,
        active: bool | None,
    ) -> _Call:
        body = CrmConnectionPatch(name=name, config=config, secret=secret, active=active)
        return _call("update_crm_connection", body=body, connection_id=connection_id)

    @staticmethod
    def deactivate_crm_connection(connection_id: Id) -> _Call:
        return _call("deactivate_crm_connection", connection_id=connection_id)

    @staticmethod
    def lead_crm(lead_id: Id) -> _Call:
        return _call("lead_crm", lead_id=lead_id)


def _request_kwargs(call: _Call) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"params": call.params}
    if call.body is not None:
        kwargs["content"] = _encode(call.body)
        kwargs["headers"] = {"Content-Type": "application/json"}
    return kwargs


def _read(call: _Call[T], response: httpx.Response) -> T:
    if response.status_code >= 400:
        headers = {k.lower(): v for k, v in response.headers.items()}
        raise error_from_response(response.status_code, headers, response.content)
    if call.type is str:
        return response.text  # type: ignore[return-value]
    return msgspec.json.decode(response.content, type=call.type)


def _headers(api_key: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {api_key}",
        "User-Agent": USER_AGENT,
        "Accept": "application/json",
    }


class ExchangeClient:
    """A buyer's (or team's) client for the exchange API, over one connection pool.

    ``base_url`` is the exchange's root (``https://exchange.example.com``); ``api_key`` your
    buyer key. Use it as a context manager, or call ``close()``. ``transport`` is for tests.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=_headers(api_key),
            timeout=timeout_s,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _do(self, call: _Call[T]) -> T:
        try:
            response = self._http.request(call.method, call.path, **_request_kwargs(call))
        except httpx.TransportError as exc:
            raise TransportError(f"{call.method} {call.path}: {exc}") from exc
        return _read(call, response)

    # --- who I am, keys, verticals -------------------------------------------------------------

    def me(self) -> Party:
        """The party this key belongs to."""
        return self._do(_Calls.me())

    def list_keys(self) -> list[KeyInfo]:
        """Your API keys (prefixes only)."""
        return self._do(_Calls.list_keys())

    def issue_key(self, name: str | None = None) -> NewKey:
        """A new key for your party; ``NewKey.key`` is the secret, shown this once.

        Rotate: issue a new key, switch to it, then ``revoke_key`` the old one."""
        return self._do(_Calls.issue_key(name))

    def revoke_key(self, key_id: Id) -> KeyInfo:
        return self._do(_Calls.revoke_key(key_id))

    def list_verticals(self) -> list[Vertical]:
        """Every vertical and its fields (what filters may test)."""
        return self._do(_Calls.list_verticals())

    def get_vertical(self, slug: str) -> Vertical:
        return self._do(_Calls.get_vertical(slug))

    # --- campaigns -----------------------------------------------------------------------------

    def list_campaigns(
        self, *, vertical: str | None = None, limit: int | None = None, after: Id | None = None
    ) -> Page[Campaign]:
        """One page of your campaigns, oldest first."""
        return self._do(_Calls.list_campaigns(vertical, limit, after))

    def iter_campaigns(
        self, *, vertical: str | None = None, page_size: int | None = None
    ) -> Iterator[Campaign]:
        """Every campaign, fetching page after page."""
        after: uuid.UUID | None = None
        while True:
            page = self.list_campaigns(vertical=vertical, limit=page_size, after=after)
            yield from page.items
            if page.next_after is None:
                return
            after = page.next_after

    def get_campaign(self, campaign_id: Id) -> Campaign:
        return self._do(_Calls.get_campaign(campaign_id))

    def create_campaign(self, data: CampaignBody) -> Campaign:
        """Create a campaign (``CampaignIn`` or the JSON of docs/campaigns.md as a dict)."""
        return self._do(_Calls.create_campaign(data))

    def replace_campaign(self, campaign_id: Id, data: CampaignBody) -> Campaign:
        """Replace the whole definition; ``version`` goes up by one. See ``Campaign.to_input``."""
        return self._do(_Calls.replace_campaign(campaign_id, data))

    def pause_campaign(self, campaign_id: Id) -> Campaign:
        return self._do(_Calls.set_active(campaign_id, False))

    def resume_campaign(self, campaign_id: Id) -> Campaign:
        return self._do(_Calls.set_active(campaign_id, True))

    # --- money ---------------------------------------------------------------------------------

    def account(self) -> BuyerAccount:
        """Your balance, credit limit, spendable money, margin override and bid penalty."""
        return self._do(_Calls.account())

    def signing_secret(self) -> SigningSecret:
        """The secret that signs the exchange's pings and posts to you (``receiver.verify``)."""
        return self._do(_Calls.signing_secret())

    def ledger_balance(self, period: str | None = None) -> list[AccountBalance]:
        """Your ledger account over a UTC month (``"2026-11"``), or all time."""
        return self._do(_Calls.ledger_balance(period))

    def statement_csv(self, period: str) -> str:
        """Your ledger statement for a UTC month (``"2026-11"``), as CSV text."""
        return self._do(_Calls.statement_csv(period))

    # --- calls ----------------------------------------------------------------------------------

    def list_calls(
        self, *, status: str | None = None, limit: int | None = None, after: Id | None = None
    ) -> Page[CallView]:
        """Calls your call campaigns bought or were offered, oldest first (docs/calls.md)."""
        return self._do(_Calls.list_calls(status, limit, after))

    def get_call(self, call_id: Id) -> CallView:
        """One of your calls: its status, duration and ``sale_id`` once billed."""
        return self._do(_Calls.get_call(call_id))

    # --- purchases, traces, returns ------------------------------------------------------------

    def list_purchases(
        self, *, limit: int | None = None, after: Id | None = None
    ) -> Page[Purchase]:
        """Leads you bought and were charged for, oldest first, with their return if any."""
        return self._do(_Calls.list_purchases(limit, after))

    def iter_purchases(self, *, page_size: int | None = None) -> Iterator[Purchase]:
        after: uuid.UUID | None = None
        while True:
            page = self.list_purchases(limit=page_size, after=after)
            yield from page.items
            if page.next_after is None:
                return
            after = page.next_after

    def get_purchase(self, sale_id: Id) -> PurchaseDetail:
        """A lead you bought, with all its fields, PII included (``pii_purged`` once erased).

        ``NotFound`` for a sale that is not yours; ``Conflict`` (``not_delivered``) for one
        still being delivered, or rejected or failed.
        """
        return self._do(_Calls.get_purchase(sale_id))

    def lead_trace(self, lead_id: Id) -> TraceView:
        """Why a lead did or did not come to your campaigns (your campaigns' entries only)."""
        return self._do(_Calls.lead_trace(lead_id))

    def ping_trace(self, ping_id: Id) -> TraceView:
        return self._do(_Calls.ping_trace(ping_id))

    def file_return(
        self,
        reason: str,
        *,
        sale_id: Id | None = None,
        lead_id: Id | None = None,
        note: str | None = None,
    ) -> Return:
        """Return a lead you bought, by ``sale_id`` or ``lead_id``, with one of the campaign's reasons."""
        return self._do(_Calls.file_return(reason, sale_id, lead_id, note))

    def list_returns(
        self, *, status: str | None = None, limit: int | None = None, after: Id | None = None
    ) -> Page[Return]:
        return self._do(_Calls.list_returns(status, limit, after))

    def get_return(self, return_id: Id) -> Return:
        return self._do(_Calls.get_return(return_id))

    # --- outcomes --------------------------------------------------------------------------------

    def report_outcome(
        self,
        lead_id: Id,
        kind: str,
        value_minor: int | None = None,
        currency: str | None = None,
        reason: str | None = None,
        occurred_at: dt.datetime | None = None,
    ) -> Outcome:
        """Report what happened to a lead you bought (``OUTCOME_KINDS``): ``won`` with its
        ``value_minor``, ``lost`` or ``bad_lead`` with a ``reason``. Idempotent per kind: a
        repeat answers the first report. ``NotFound`` for a lead you did not buy."""
        call = _Calls.report_outcome(lead_id, kind, value_minor, currency, reason, occurred_at)
        return self._do(call)

    def outcomes(self, lead_id: Id) -> Outcomes:
        """Your reports on a lead and your first response time (sale to first contact)."""
        return self._do(_Calls.outcomes(lead_id))

    def postback_info(self) -> PostbackInfo:
        """Your postback secret and URL template (``buyers_sdk.postback_url`` signs URLs)."""
        return self._do(_Calls.postback_info())

    # --- CRM sync (docs/crm.md) ----------------------------------------------------------------

    def create_crm_connection(self, data: CrmConnectionBody) -> CrmConnection:
        """Push the leads you buy, and their outcomes, to your CRM (``CrmConnectionIn`` or the
        JSON of docs/crm.md as a dict). ``ValidationFailed`` names the field (``body.secret``,
        ``body.config.url``...); the secret is never shown back (``has_secret``)."""
        return self._do(_Calls.create_crm_connection(data))

    def list_crm_connections(self) -> CrmConnections:
        """Your CRM connections, deactivated ones included."""
        return self._do(_Calls.list_crm_connections())

    def get_crm_connection(self, connection_id: Id) -> CrmConnection:
        return self._do(_Calls.get_crm_connection(connection_id))

    def update_crm_connection(
        self,
        connection_id: Id,
        *,
        name: str | None = None,
        config: CrmConfig | None = None,
        secret: str | None = None,
        active: bool | None = None,
    ) -> CrmConnection:
        """Change a connection: what is left None stays; a ``secret`` given replaces the old."""
        return self._do(_Calls.update_crm_connection(connection_id, name, config, secret, active))

    def deactivate_crm_connection(self, connection_id: Id) -> CrmConnection:
        """No new pushes; pending ones end ``failed``; the history stays."""
        return self._do(_Calls.deactivate_crm_connection(connection_id))

    def lead_crm(self, lead_id: Id) -> LeadCrmSyncs:
        """A lead's pushes to your CRM connections: status, attempts, error, CRM record id."""
        return self._do(_Calls.lead_crm(lead_id))


class AsyncExchangeClient:
    """``ExchangeClient`` for asyncio: the same methods, as coroutines."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=_headers(api_key),
            timeout=timeout_s,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _do(self, call: _Call[T]) -> T:
        try:
            response = await self._http.request(call.method, call.path, **_request_kwargs(call))
        except httpx.TransportError as exc:
            raise TransportError(f"{call.method} {call.path}: {exc}") from exc
        return _read(call, response)

    async def me(self) -> Party:
        return await self._do(_Calls.me())

    async def list_keys(self) -> list[KeyInfo]:
        return await self._do(_Calls.list_keys())

    async def issue_key(self, name: str | None = None) -> NewKey:
        return await self._do(_Calls.issue_key(name))

    async def revoke_key(self, key_id: Id) -> KeyInfo:
        return await self._do(_Calls.revoke_key(key_id))

    async def list_verticals(self) -> list[Vertical]:
        return await self._do(_Calls.list_verticals())

    async def get_vertical(self, slug: str) -> Vertical:
        return await self._do(_Calls.get_vertical(slug))

    async def list_campaigns(
        self, *, vertical: str | None = None, limit: int | None = None, after: Id | None = None
    ) -> Page[Campaign]:
        return await self._do(_Calls.list_campaigns(vertical, limit, after))

    async def iter_campaigns(
        self, *, vertical: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[Campaign]:
        after: uuid.UUID | None = None
        while True:
            page = await self.list_campaigns(vertical=vertical, limit=page_size, after=after)
            for item in page.items:
                yield item
            if page.next_after is None:
                return
            after = page.next_after

    async def get_campaign(self, campaign_id: Id) -> Campaign:
        return await self._do(_Calls.get_campaign(campaign_id))

    async def create_campaign(self, data: CampaignBody) -> Campaign:
        return await self._do(_Calls.create_campaign(data))

    async def replace_campaign(self, campaign_id: Id, data: CampaignBody) -> Campaign:
        return await self._do(_Calls.replace_campaign(campaign_id, data))

    async def pause_campaign(self, campaign_id: Id) -> Campaign:
        return await self._do(_Calls.set_active(campaign_id, False))

    async def resume_campaign(self, campaign_id: Id) -> Campaign:
        return await self._do(_Calls.set_active(campaign_id, True))

    async def account(self) -> BuyerAccount:
        return await self._do(_Calls.account())

    async def signing_secret(self) -> SigningSecret:
        return await self._do(_Calls.signing_secret())

    async def ledger_balance(self, period: str | None = None) -> list[AccountBalance]:
        return await self._do(_Calls.ledger_balance(period))

    async def statement_csv(self, period: str) -> str:
        return await self._do(_Calls.statement_csv(period))

    async def list_calls(
        self, *, status: str | None = None, limit: int | None = None, after: Id | None = None
    ) -> Page[CallView]:
        return await self._do(_Calls.list_calls(status, limit, after))

    async def get_call(self, call_id: Id) -> CallView:
        return await self._do(_Calls.get_call(call_id))

    async def list_purchases(
        self, *, limit: int | None = None, after: Id | None = None
    ) -> Page[Purchase]:
        return await self._do(_Calls.list_purchases(limit, after))

    async def iter_purchases(self, *, page_size: int | None = None) -> AsyncIterator[Purchase]:
        after: uuid.UUID | None = None
        while True:
            page = await self.list_purchases(limit=page_size, after=after)
            for item in page.items:
                yield item
            if page.next_after is None:
                return
            after = page.next_after

    async def get_purchase(self, sale_id: Id) -> PurchaseDetail:
        return await self._do(_Calls.get_purchase(sale_id))

    async def lead_trace(self, lead_id: Id) -> TraceView:
        return await self._do(_Calls.lead_trace(lead_id))

    async def ping_trace(self, ping_id: Id) -> TraceView:
        return await self._do(_Calls.ping_trace(ping_id))

    async def file_return(
        self,
        reason: str,
        *,
        sale_id: Id | None = None,
        lead_id: Id | None = None,
        note: str | None = None,
    ) -> Return:
        return await self._do(_Calls.file_return(reason, sale_id, lead_id, note))

    async def list_returns(
        self, *, status: str | None = None, limit: int | None = None, after: Id | None = None
    ) -> Page[Return]:
        return await self._do(_Calls.list_returns(status, limit, after))

    async def get_return(self, return_id: Id) -> Return:
        return await self._do(_Calls.get_return(return_id))

    async def report_outcome(
        self,
        lead_id: Id,
        kind: str,
        value_minor: int | None = None,
        currency: str | None = None,
        reason: str | None = None,
        occurred_at: dt.datetime | None = None,
    ) -> Outcome:
        call = _Calls.report_outcome(lead_id, kind, value_minor, currency, reason, occurred_at)
        return await self._do(call)

    async def outcomes(self, lead_id: Id) -> Outcomes:
        return await self._do(_Calls.outcomes(lead_id))

    async def postback_info(self) -> PostbackInfo:
        return await self._do(_Calls.postback_info())

    async def create_crm_connection(self, data: CrmConnectionBody) -> CrmConnection:
        return await self._do(_Calls.create_crm_connection(data))

    async def list_crm_connections(self) -> CrmConnections:
        return await self._do(_Calls.list_crm_connections())

    async def get_crm_connection(self, connection_id: Id) -> CrmConnection:
        return await self._do(_Calls.get_crm_connection(connection_id))

    async def update_crm_connection(
        self,
        connection_id: Id,
        *,
        name: str | None = None,
        config: CrmConfig | None = None,
        secret: str | None = None,
        active: bool | None = None,
    ) -> CrmConnection:
        call = _Calls.update_crm_connection(connection_id, name, config, secret, active)
        return await self._do(call)

    async def deactivate_crm_connection(self, connection_id: Id) -> CrmConnection:
        return await self._do(_Calls.deactivate_crm_connection(connection_id))

    async def lead_crm(self, lead_id: Id) -> LeadCrmSyncs:
        return await self._do(_Calls.lead_crm(lead_id))
