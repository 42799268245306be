"""An httpx transport that renames user identifiers on the way to Engram and back.

The seed page writes for ``sara@omg.com`` and ``liam@omg.com``; the stacks of the tests
share one Neo4j with every other test, so the page's code runs unchanged against unique
identifiers: this transport, given in the settings (the part of the seed's code a user
changes anyway), swaps them in path segments, query values and JSON strings, and back in
the answers. It also counts requests, so a test can tell that nothing was sent."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, unquote

import httpx


class Renaming(httpx.AsyncBaseTransport):
    def __init__(self, names: dict[str, str]) -> None:
        self.names = dict(names)
        self.back = {v: k for k, v in names.items()}
        self.inner = httpx.AsyncHTTPTransport()
        self.sent = 0

    @staticmethod
    def _swap(value: Any, table: dict[str, str]) -> Any:
        if isinstance(value, str):
            return table.get(value, value)
        if isinstance(value, list):
            return [Renaming._swap(v, table) for v in value]
        if isinstance(value, dict):
            return {k: Renaming._swap(v, table) for k, v in value.items()}
        return value

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        url = request.url
        path = "/".join(
            quote(self.names.get(unquote(s), unquote(s)), safe="")
            for s in url.raw_path.decode().split("?", 1)[0].split("/")
        )
        params = [(k, self.names.get(v, v)) for k, v in url.params.multi_items()]
        content = request.content
        if content:
            content = json.dumps(self._swap(json.loads(content), self.names)).encode()
        headers = [
            (k, v) for k, v in request.headers.multi_items() if k.lower() != "content-length"
        ]
        out = httpx.Request(
            request.method,
            httpx.URL(f"{url.scheme}://{url.netloc.decode()}{path}", params=params),
            headers=headers,
            content=content,
        )
        resp = await self.inner.handle_async_request(out)
        raw = await resp.aread()
        await resp.aclose()
        if raw and resp.headers.get("content-type", "").startswith("application/json"):
            raw = json.dumps(self._swap(json.loads(raw), self.back)).encode()
        drop = {"content-length", "content-encoding", "transfer-encoding"}
        return httpx.Response(
            resp.status_code,
            headers=[(k, v) for k, v in resp.headers.multi_items() if k.lower() not in drop],
            content=raw,
            request=request,
        )

    async def aclose(self) -> None:
        """Kept open across the clients of one test (each closes its transport)."""

    async def close(self) -> None:
        await self.inner.aclose()
