"""The running Engram stacks these tests talk to, given by the environment (the Go test
clients/python/python_test.go starts them and sets it). A missing variable fails the
test: nothing here is skipped for want of a server.

- ``ENGRAM_TEST_INGESTOR_URL``, ``ENGRAM_TEST_QUERY_URL``: a stack as in production:
  multi-tenant mode and authentication on (HS256 JWTs and API keys), and the hashing
  embedder (``EMBEDDER=hash:64``) on its services, so writes get vectors and a text is
  searched by vector.
- ``ENGRAM_TEST_ADMIN_TOKEN``: a JWT for every user with read, write and admin.
- ``ENGRAM_TEST_API_KEY``: an API key for every user with read and write;
  ``ENGRAM_TEST_READONLY_API_KEY``: one with read only.
- ``ENGRAM_TEST_AGENT_USER``, ``ENGRAM_TEST_AGENT_TOKEN``: a JWT for that one user only.
- ``ENGRAM_TEST_OPEN_INGESTOR_URL``, ``ENGRAM_TEST_OPEN_QUERY_URL``: a stack with
  multi-tenant mode and authentication off (the shared tenant), without an embedder.
- ``ENGRAM_TEST_USERS_FILE``: every identifier a test writes for is appended to it, so the
  Go test deletes their nodes from the shared Neo4j afterwards;
  ``ENGRAM_TEST_SHARED_FILE``: likewise the ids of the shared tenant's nodes (``id <id>``)
  and the names of the global tools (``tool <name>``) the tests write.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from engram_memory import EngramConfig, MemoryClient, MemoryConfig, MemorySettings


def env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        pytest.fail(f"{name} is not set: run these tests with `go test ./clients/python/`")
    return value


@pytest.fixture
def new_user() -> Callable[[str], str]:
    """Makes identifiers unique to this run and records them for the clean-up."""
    path = env("ENGRAM_TEST_USERS_FILE")

    def make(name: str) -> str:
        ident = f"{name}+{uuid.uuid4().hex[:12]}@py.test.engram"
        with open(path, "a", encoding="utf-8") as f:
            f.write(ident + "\n")
        return ident

    return make


def forget_later(kind: str, value: str) -> None:
    """Record a shared-tenant node id (``id``) or a global tool name (``tool``) for the
    clean-up."""
    with open(env("ENGRAM_TEST_SHARED_FILE"), "a", encoding="utf-8") as f:
        f.write(f"{kind} {value}\n")


def settings(
    *, credential: str = "admin", multi_tenant: bool = True, open_stack: bool = False, **engram: Any
) -> MemorySettings:
    """Settings for the production-like stack with one of its credentials, or for the
    open stack (no authentication, multi-tenant mode off)."""
    if open_stack:
        urls = {
            "ingestor_url": env("ENGRAM_TEST_OPEN_INGESTOR_URL"),
            "query_url": env("ENGRAM_TEST_OPEN_QUERY_URL"),
        }
        creds: dict[str, Any] = {"api_key": None, "bearer_token": None}
    else:
        urls = {
            "ingestor_url": env("ENGRAM_TEST_INGESTOR_URL"),
            "query_url": env("ENGRAM_TEST_QUERY_URL"),
        }
        names = {
            "admin": ("bearer_token", "ENGRAM_TEST_ADMIN_TOKEN"),
            "agent": ("bearer_token", "ENGRAM_TEST_AGENT_TOKEN"),
            "api_key": ("api_key", "ENGRAM_TEST_API_KEY"),
            "readonly": ("api_key", "ENGRAM_TEST_READONLY_API_KEY"),
        }
        creds = {"api_key": None, "bearer_token": None}
        if credential != "none":
            kind, var = names[credential]
            creds[kind] = env(var)
    return MemorySettings(
        engram=EngramConfig(**{**urls, **creds, **engram}),
        memory=MemoryConfig(multi_tenant=multi_tenant),
    )


@pytest.fixture
async def client() -> AsyncIterator[MemoryClient]:
    """A multi-tenant client of the production-like stack with the admin token."""
    async with MemoryClient(settings()) as c:
        yield c
