"""Errors, retries, timeouts, credentials, ids, fates and the sync facade, against a fake."""

from __future__ import annotations

import asyncio
import re
import threading
from uuid import UUID

import httpx
import pytest

from engram_memory import (
    ConflictError,
    EngramError,
    EngramTimeoutError,
    FateStatus,
    ForbiddenError,
    GoneError,
    InvalidRequestError,
    NotCaughtUpError,
    NotConnectedError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    SyncMemoryClient,
    UnauthenticatedError,
    UnavailableError,
    WriteReceipt,
)
from engram_memory._ids import uuid7
from engram_memory.errors import error_from_response
from tests.unit.fake import Fake

SARA = "sara@omg.com"


@pytest.mark.parametrize(
    ("status", "cls", "builtin"),
    [
        (400, InvalidRequestError, ValueError),
        (413, InvalidRequestError, ValueError),
        (415, InvalidRequestError, ValueError),
        (401, UnauthenticatedError, EngramError),
        (403, ForbiddenError, PermissionError),
        (404, NotFoundError, LookupError),
        (409, ConflictError, EngramError),
        (410, GoneError, EngramError),
        (429, RateLimitedError, UnavailableError),
        (503, UnavailableError, EngramError),
        (507, UnavailableError, EngramError),
        (504, NotCaughtUpError, EngramError),
        (500, EngramError, Exception),
    ],
)
def test_every_problem_has_its_class(status: int, cls: type, builtin: type) -> None:
    e = error_from_response("add_preference", status, {"error": "why", "field": "category"}, {})
    assert type(e) is cls and isinstance(e, builtin)
    assert (e.status, e.field, e.message, e.op) == (status, "category", "why", "add_preference")
    assert str(e).startswith(f"engram add_preference: {status} ")


def test_problem_details() -> None:
    e = error_from_response(
        "get_preferences_for",
        504,
        {
            "error": "consistency token 12 not reached",
            "field": "consistency",
            "token": 12,
            "checkpoint": "projector-p3",
        },
        {},
    )
    assert isinstance(e, NotCaughtUpError) and (e.token, e.checkpoint) == (12, "projector-p3")
    u = error_from_response("x", 503, {"error": "down", "event_ids": ["a"]}, {"retry-after": "2"})
    assert isinstance(u, UnavailableError) and (u.retry_after, u.event_ids) == (2.0, ["a"])
    t = error_from_response("x", 502, "<html>bad gateway</html>", {})
    assert t.message == "<html>bad gateway</html>" and t.field is None
    i = error_from_response("x", 400, {"error": "category: is required", "field": "category"}, {})
    assert str(i) == "engram x: 400 Bad Request: category: is required"


async def test_unavailable_writes_are_retried_with_the_same_body() -> None:
    fake = Fake()
    async with fake.client() as c:
        n = len(fake.requests)
        fake.queue(503, {"error": "down"}, {"Retry-After": "0"})
        fake.answers.append(httpx.ConnectError("refused"))
        p = await c.long_term.add_preference("c", "p", user_identifier=SARA)
        bodies = [r.content for r in fake.requests[n:]]
        assert len(bodies) == 3 and len(set(bodies)) == 1  # same event id, same ids
        assert p.receipt is not None
        # Bad input is not retried; a 504 on a write neither.
        for status in (400, 504):
            n = len(fake.requests)
            fake.queue(status, {"error": "no"})
            with pytest.raises(EngramError):
                await c.long_term.add_preference("c", "p", user_identifier=SARA)
            assert len(fake.requests) - n == 1
        # A read retries a 504: waiting for the same token again is safe.
        n = len(fake.requests)
        fake.queue(504, {"error": "not yet", "token": 1, "checkpoint": "p"})
        fake.queue(200, {"preferences": []})
        assert await c.long_term.get_preferences_for(SARA) == []
        assert len(fake.requests) - n == 2
    async with fake.client(max_retries=0) as c:
        fake.queue(503, {"error": "down"})
        with pytest.raises(UnavailableError):
            await c.long_term.add_preference("c", "p", user_identifier=SARA)


async def test_timeouts() -> None:
    fake = Fake()
    async with fake.client(max_retries=1) as c:
        fake.answers += [httpx.ReadTimeout("slow"), httpx.ReadTimeout("slow")]
        with pytest.raises(EngramTimeoutError) as e:
            await c.users.upsert_user(identifier=SARA)
        assert isinstance(e.value, TimeoutError) and isinstance(e.value, UnavailableError)

    # The configured timeout applies to every attempt, against a real socket that never
    # answers.
    release = asyncio.Event()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await release.wait()
        finally:
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(stall, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    fake = Fake()
    s = fake.settings(
        http_transport=None,
        ingestor_url=f"http://127.0.0.1:{port}",
        timeout=0.2,
        max_retries=0,
        validate_on_connect=False,
    )
    async with server:
        from engram_memory import MemoryClient

        async with MemoryClient(s) as c:
            loop = asyncio.get_running_loop()
            start = loop.time()
            with pytest.raises(EngramTimeoutError):
                await c.users.upsert_user(identifier=SARA)
            assert loop.time() - start < 3
        release.set()
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("engram", "want"),
    [
        ({"api_key": "engram_abc"}, "Bearer engram_abc"),
        ({"bearer_token": "h.p.s"}, "Bearer h.p.s"),
        ({"token_provider": lambda: "rotated"}, "Bearer rotated"),
        ({}, None),
    ],
)
async def test_credentials_are_bearer(engram: dict[str, object], want: str | None) -> None:
    fake = Fake()
    async with fake.client(headers={"X-Trace": "t1"}, **engram) as c:
        fake.queue(404, {"error": "user not found"})
        await c.users.get_user(SARA)
        r = fake.requests[-1]
        assert r.headers.get("authorization") == want
        assert r.headers["x-trace"] == "t1"


async def test_an_answer_of_the_wrong_shape_is_an_engram_error() -> None:
    fake = Fake()
    async with fake.client() as c:
        fake.queue(200, {"preferences": [{"id": "not-a-uuid"}]})
        with pytest.raises(EngramError, match="unexpected answer"):
            await c.long_term.get_preferences_for(SARA)
        fake.answers.append(httpx.Response(202, text="accepted"))
        with pytest.raises(EngramError, match="not JSON"):
            await c.users.upsert_user(identifier=SARA)


def test_uuid7_is_time_ordered_and_well_formed() -> None:
    ids = [uuid7() for _ in range(5000)]
    pattern = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    assert all(pattern.match(i) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(UUID(i).version == 7 for i in ids[:10])


def fate(status: str, **kw: object) -> dict[str, object]:
    return {
        "event_id": "e1",
        "sequence": 9,
        "kind": "preference_superseded",
        "stored_at": "2026-05-01T09:00:00Z",
        "status": status,
        "reason": None,
        "error": None,
        "dead_lettered_at": None,
        **kw,
    }


async def test_wait_applied() -> None:
    fake = Fake()
    receipt = WriteReceipt(event_id="e1", user_identifier=SARA, sequence=9)
    async with fake.client() as c:
        fake.queue(200, fate("stored"))
        fake.queue(200, fate("applied"))
        got = await c.wait_applied(receipt)
        assert got.status is FateStatus.APPLIED
        r = fake.requests[-1]
        assert r.url.raw_path.startswith(b"/v1/users/sara%40omg.com/events/e1?")
        assert dict(r.url.params) == {"sequence": "9", "consistency": "9"}
        fake.queue(200, fate("dead_lettered", reason="conflict", error="already superseded"))
        with pytest.raises(RejectedError) as e:
            await c.wait_applied(receipt)
        assert (e.value.reason, e.value.error, e.value.sequence) == (
            "conflict",
            "already superseded",
            9,
        )
        fake.queue(200, fate("refused", reason="user_erased", error="erased"))
        with pytest.raises(GoneError) as g:
            await c.wait_applied(receipt)
        assert g.value.reason == "user_erased"
        fake.queue(200, fate("stored"))
        f = await c.fate(receipt)
        assert f.status is FateStatus.STORED and "consistency" not in fake.requests[-1].url.params
        fake.answers += [httpx.Response(200, json=fate("stored")) for _ in range(100)]
        with pytest.raises(TimeoutError):
            await c.wait_applied(receipt, timeout=0.2)


def test_sync_facade_from_threads() -> None:
    fake = Fake()
    with SyncMemoryClient(fake.settings(multi_tenant=True)) as c:
        got: list[UUID] = []

        def work() -> None:
            got.append(c.long_term.add_preference("c", "p", user_identifier=SARA).id)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(got)) == 4
        with pytest.raises(ValueError, match="user_identifier"):
            c.long_term.add_preference("c", "p")
        assert c.consistency_token(SARA) == 4
    with pytest.raises(NotConnectedError):
        _ = c.users


async def test_sync_facade_inside_a_running_loop() -> None:
    fake = Fake()
    with SyncMemoryClient(fake.settings()) as c:
        u = c.users.upsert_user(identifier=SARA, attributes={"a": 1})
        assert u.attributes == {"a": 1}
