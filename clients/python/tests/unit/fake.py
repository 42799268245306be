"""A fake Engram behind httpx.MockTransport: records requests, answers writes with
receipts and reads with what a test queued."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from engram_memory import EngramConfig, MemoryClient, MemoryConfig, MemorySettings
from engram_memory._ids import entity_id

Handler = Callable[[httpx.Request], httpx.Response]
RELATIONSHIP_ID = "7c9e6679-7425-50de-944b-e07fc1f90ae7"


class Fake:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.seq = 0
        self.answers: list[httpx.Response | Exception] = []  # queued, any request

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.answers:
            a = self.answers.pop(0)
            if isinstance(a, Exception):
                raise a
            return a
        if request.url.path == "/healthz":
            return httpx.Response(200, text="ok")
        if request.method == "GET":
            return httpx.Response(200, json={})
        self.seq += 1
        body = json.loads(request.content) if request.content else {}
        acc: dict[str, Any] = {"event_id": body.get("event_id"), "sequence": self.seq}
        for k in ("message_id", "preference_id", "trace_id", "step_id", "tool_call_id", "fact_id"):
            if k in body:
                acc[k] = body[k]
        acc["user_id"] = "6f1d0c5e-8a0e-5b9f-9a51-1f4c2d3e4b5a"
        if request.url.path == "/v1/messages":
            acc["conversation_id"] = "2a9e7c1b-3d4f-5e6a-8b7c-9d0e1f2a3b4c"
        if request.url.path == "/v1/entities":
            acc["entity_id"] = entity_id(body.get("user_identifier"), body["name"], body["type"])
        if request.url.path == "/v1/entities/merge":
            acc["entity_id"] = body["target_id"]
        if request.url.path == "/v1/relationships":
            acc["relationship_id"] = RELATIONSHIP_ID
        return httpx.Response(202, json=acc)

    def body(self, i: int = -1) -> dict[str, Any]:
        return dict(json.loads(self.requests[i].content))

    def queue(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        self.answers.append(httpx.Response(status, json=body, headers=headers))

    def settings(self, *, multi_tenant: bool = False, **engram: Any) -> MemorySettings:
        cfg = {
            "ingestor_url": "http://ingestor.test",
            "query_url": "http://query.test",
            "api_key": None,
            "bearer_token": None,
            "retry_backoff_seconds": 0.001,
            "http_transport": httpx.MockTransport(self.handle),
            **engram,
        }
        return MemorySettings(
            engram=EngramConfig(**cfg), memory=MemoryConfig(multi_tenant=multi_tenant)
        )

    def client(self, **kw: Any) -> MemoryClient:
        return MemoryClient(self.settings(**kw))
