"""The agents' live stream resumes after a reconnect (``Last-Event-ID``), in process and through
a real Redis: events published while the agent was away are replayed in order, then the live
ones, without a duplicate or a gap; an id that cannot be resumed exactly (too old, trimmed
away, unknown) replays what is kept after a ``replay_incomplete`` event."""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from exchange.notifications import stream
from tests.integration.test_teams import Team

WAIT_S = 5.0  # at most this long for an expected event (they come in milliseconds)
HEARTBEAT_S = 0.05


@pytest.fixture(params=["memory", "redis"])
def url(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("redis_url") if request.param == "redis" else None


async def publish(url: str | None, agent: str, n: int) -> None:
    """Event ``n`` for ``agent``, kept (and in Redis) when this returns."""
    if url is None:
        stream.publish(None, agent, "offered", {"lead_id": f"L{n}"})
    else:  # no running loop in the thread: the synchronous call, done when it returns
        await asyncio.to_thread(stream.publish, url, agent, "offered", {"lead_id": f"L{n}"})


def connect(url: str | None, agent: str, last_event_id: str | None = None) -> AsyncIterator[Any]:
    return stream.events(url, agent, last_event_id=last_event_id, max_s=60, heartbeat_s=HEARTBEAT_S)


async def take(conn: AsyncIterator[Any], n: int) -> list[Any]:
    """The next ``n`` events of a connection (heartbeats skipped)."""

    async def main() -> list[Any]:
        got: list[Any] = []
        while len(got) < n:
            message = await anext(conn)
            if message.comment is None:
                got.append(message)
        return got

    return await asyncio.wait_for(main(), WAIT_S)


async def quiet(conn: AsyncIterator[Any]) -> None:
    """Nothing but heartbeats for a few beats: no duplicate came after what was taken."""
    for _ in range(4):
        message = await asyncio.wait_for(anext(conn), WAIT_S)
        assert message.comment == "heartbeat", message


def leads(messages: list[Any]) -> list[str]:
    return [msgspec.json.decode(m.data)["lead_id"] for m in messages]


def ids(messages: list[Any]) -> list[tuple[int, int]]:
    parsed = [stream.parse_id(m.id) for m in messages]
    assert None not in parsed
    return parsed  # type: ignore[return-value]


def fresh_agent() -> str:
    stream._live.clear()  # publishers read afresh who is (or lately was) connected
    return str(uuid.uuid4())


def test_a_reconnect_gets_exactly_what_it_missed_then_the_live_ones(url):
    async def main() -> None:
        agent = fresh_agent()
        first = connect(url, agent)
        [ready] = await take(first, 1)
        assert ready.event == "ready" and stream.parse_id(ready.id) is not None
        await publish(url, agent, 1)
        await publish(url, agent, 2)
        seen = await take(first, 2)
        assert leads(seen) == ["L1", "L2"] and [m.event for m in seen] == ["offered", "offered"]
        await first.aclose()  # disconnected

        await publish(url, agent, 3)
        await publish(url, agent, 4)
        second = connect(url, agent, last_event_id=seen[-1].id)
        [ready, *replayed] = await take(second, 3)
        assert ready.event == "ready" and ready.id == seen[-1].id
        assert leads(replayed) == ["L3", "L4"]  # no replay_incomplete: nothing was lost
        await publish(url, agent, 5)
        [live] = await take(second, 1)
        assert leads([live]) == ["L5"]
        await quiet(second)
        await second.aclose()
        every = ids([*seen, *replayed, live])
        assert every == sorted(set(every))  # increasing, no id twice

        # A client that saw only ``ready`` resumes from its id too.
        third = connect(url, agent)
        [ready] = await take(third, 1)
        await third.aclose()
        await publish(url, agent, 6)
        fourth = connect(url, agent, last_event_id=ready.id)
        assert leads((await take(fourth, 2))[1:]) == ["L6"]
        await fourth.aclose()

    asyncio.run(main())


def test_a_too_old_or_unknown_id_replays_what_is_kept_and_says_so(url):
    async def main() -> None:
        agent = fresh_agent()
        first = connect(url, agent)
        await take(first, 1)
        await publish(url, agent, 1)
        await publish(url, agent, 2)
        await take(first, 2)
        await first.aclose()

        too_old = f"{int(time.time() * 1000) - (stream.RETAIN_S + 60) * 1000}-0"
        for last, reason in (
            (too_old, "too_old"),
            ("not-an-id", "unknown"),
            ("99999999999999-0", "unknown"),
        ):
            again = connect(url, agent, last_event_id=last)
            ready, incomplete, *replayed = await take(again, 4)
            assert ready.event == "ready"
            assert incomplete.event == stream.REPLAY_INCOMPLETE and incomplete.id is None
            assert msgspec.json.decode(incomplete.data)["reason"] == reason
            assert leads(replayed) == ["L1", "L2"]  # everything kept, in order
            await quiet(again)
            await again.aclose()

    asyncio.run(main())


def test_events_trimmed_away_make_the_replay_incomplete(url, monkeypatch):
    monkeypatch.setattr(stream, "RETAIN_EVENTS_MAX", 3)

    async def main() -> None:
        agent = fresh_agent()
        first = connect(url, agent)
        await take(first, 1)
        await publish(url, agent, 1)
        [one] = await take(first, 1)
        await first.aclose()
        for n in range(2, 7):  # five more while away: only the last three are kept
            await publish(url, agent, n)
        again = connect(url, agent, last_event_id=one.id)
        ready, incomplete, *replayed = await take(again, 5)
        assert incomplete.event == stream.REPLAY_INCOMPLETE
        assert msgspec.json.decode(incomplete.data)["reason"] == "too_old"
        assert leads(replayed) == ["L4", "L5", "L6"]
        await again.aclose()
        # The last one kept before them is resumable exactly: the three, no warning.
        exact = connect(url, agent, last_event_id=replayed[0].id)
        assert [m.event for m in await take(exact, 3)] == ["ready", "offered", "offered"]
        await exact.aclose()

    asyncio.run(main())


def test_the_http_stream_honours_last_event_id(exchange):
    """In process, through the API: ids on the wire, the header read on reconnect."""
    team = Team(exchange)
    agent = team.agent()
    agent_id = str(agent.id)

    def publish_once_subscribed() -> None:
        deadline = time.monotonic() + WAIT_S
        while not stream.BROADCASTER.subscribers(agent_id) and time.monotonic() < deadline:
            time.sleep(0.01)
        stream.publish(None, agent_id, "assigned", {"lead_id": "L1"})

    publisher = threading.Thread(target=publish_once_subscribed)
    publisher.start()
    r = team.client.get("/v1/agents/me/stream", params={"seconds": 1}, headers=agent.headers)
    publisher.join()
    assert r.status_code == 200, r.text
    [first_id] = re.findall(r"id: (\S+)\r\nevent: assigned", r.text)

    for n in (2, 3):  # while the agent is away
        stream.publish(None, agent_id, "assigned", {"lead_id": f"L{n}"})
    r = team.client.get("/v1/agents/me/stream", params={"seconds": 1},
                        headers={**agent.headers, "Last-Event-ID": first_id})  # fmt: skip
    assert r.status_code == 200, r.text
    assert re.findall(r"event: (\w+)", r.text) == ["ready", "assigned", "assigned"], r.text
    assert re.findall(r'"lead_id":"(L\d)"', r.text) == ["L2", "L3"]
    assert "replay_incomplete" not in r.text
