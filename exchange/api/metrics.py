"""Prometheus scrapes /metrics: text exposition format, no API key, not in the API schema."""

from __future__ import annotations

from litestar import Request, Response, get

from exchange import metrics


@get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request) -> Response[bytes]:
    state = request.app.state
    body = await metrics.render_api(state.db, state.broker, state.settings.redis_url)
    return Response(body, media_type=metrics.CONTENT_TYPE)
