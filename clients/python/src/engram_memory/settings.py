"""Settings: where Engram runs, how to authenticate, and the library's ``memory`` options.

``MemorySettings`` keeps the shape of ``neo4j_agent_memory.MemorySettings`` where the two
mean the same thing (``memory.multi_tenant``) and replaces the Neo4j connection by
``engram``: the ingestor's and the query service's URLs and a credential.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = ["EngramConfig", "MemoryConfig", "MemorySettings"]

DEFAULT_INGESTOR_URL = "http://127.0.0.1:8080"
DEFAULT_QUERY_URL = "http://127.0.0.1:8081"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_secret(name: str) -> SecretStr | None:
    value = os.environ.get(name, "").strip()
    return SecretStr(value) if value else None


class EngramConfig(BaseModel):
    """How to reach one Engram deployment.

    Unset URLs and credentials are read from the environment when the settings are made
    (``ENGRAM_INGESTOR_URL``, ``ENGRAM_QUERY_URL``, ``ENGRAM_API_KEY``,
    ``ENGRAM_BEARER_TOKEN``), as the library reads its ``NAM_`` variables; explicit values win.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, validate_default=True)

    ingestor_url: str = Field(
        default_factory=lambda: _env("ENGRAM_INGESTOR_URL", DEFAULT_INGESTOR_URL),
        description="Base URL of the ingestor (the write API), e.g. http://127.0.0.1:8080.",
    )
    query_url: str = Field(
        default_factory=lambda: _env("ENGRAM_QUERY_URL", DEFAULT_QUERY_URL),
        description="Base URL of the query service (the read API), e.g. http://127.0.0.1:8081.",
    )
    api_key: SecretStr | None = Field(
        default_factory=lambda: _env_secret("ENGRAM_API_KEY"),
        description="An API key (memctl apikey); sent as Authorization: Bearer <key>.",
    )
    bearer_token: SecretStr | None = Field(
        default_factory=lambda: _env_secret("ENGRAM_BEARER_TOKEN"),
        description="A JWT (HS256, RS256 or EdDSA); sent as Authorization: Bearer <token>.",
    )
    token_provider: Callable[[], str] | None = Field(
        default=None,
        exclude=True,
        description="Called before every request for the bearer credential (rotating JWTs).",
    )
    timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds one HTTP attempt may take. A read with a consistency token can "
        "wait up to the service's CONSISTENCY_WAIT + READ_TIMEOUT (10 s by default).",
    )
    connect_timeout: float = Field(default=5.0, gt=0, description="Seconds to connect.")
    max_retries: int = Field(
        default=3,
        ge=0,
        description="Retries of a request that failed for want of the service (network error, "
        "timeout, 502, 503, 429; for reads also 504). Writes are retried with the same event "
        "and object ids, so the log stores them once.",
    )
    retry_backoff_seconds: float = Field(
        default=0.2, gt=0, description="First pause between retries; doubles each time."
    )
    max_backoff_seconds: float = Field(default=5.0, gt=0, description="Longest pause.")
    read_your_writes: bool = Field(
        default=True,
        description="Reads about a user wait until this client's writes for that user are "
        "projected (the highest consistency token per user is sent with the read).",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra headers on every request (tracing, say)."
    )
    validate_on_connect: bool = Field(
        default=True,
        description="connect() checks that both services answer /healthz, so a wrong URL "
        "fails at start-up rather than at the first write.",
    )
    http_transport: httpx.AsyncBaseTransport | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description="An httpx transport to send requests through (proxies, mTLS, tests).",
    )

    @field_validator("ingestor_url", "query_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError(f"{value!r}: a base URL has no query or fragment")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_credential(self) -> EngramConfig:
        given = [
            name
            for name, v in (
                ("api_key", self.api_key),
                ("bearer_token", self.bearer_token),
                ("token_provider", self.token_provider),
            )
            if v is not None
        ]
        if len(given) > 1:
            raise ValueError(f"give one credential, not {' and '.join(given)}")
        return self


class MemoryConfig(BaseModel):
    """The library's ``memory`` options that Engram has."""

    model_config = ConfigDict(extra="forbid")

    multi_tenant: bool = Field(
        default=False,
        description="When True, every write must name its user (user_identifier=); one that "
        "does not raises ValueError before anything is sent, as the library does.",
    )


# Settings of the library that have no meaning against Engram, with what to do instead.
_LIBRARY_ONLY = {
    "neo4j": "Engram is a service: give engram=EngramConfig(ingestor_url=..., query_url=...)",
    "backend": "there is one backend, the Engram service",
    "nams": "give engram=EngramConfig(...) instead",
    "embedding": "the embedder is the services' EMBEDDER setting (docs/query.md, Vector "
    "search); pass embedding= to the writes and searches to give your own vectors",
    "llm": "Engram calls no LLM",
    "extraction": "Engram extracts no entities; it stores what the agent writes",
    "resolution": "Engram extracts no entities, so there is nothing to resolve",
    "schema_config": "Engram's graph schema is fixed (docs/graph.md)",
    "search": "search settings are the query service's",
    "geocoding": "Engram does no geocoding",
    "enrichment": "Engram does no enrichment",
}


class MemorySettings(BaseModel):
    """Settings of a :class:`~engram_memory.MemoryClient`.

    ``MemorySettings(memory={"multi_tenant": True})`` works as in the library; the library's
    ``neo4j=`` becomes ``engram=EngramConfig(...)``.
    """

    model_config = ConfigDict(extra="forbid")

    engram: EngramConfig = Field(default_factory=EngramConfig)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)

    @model_validator(mode="before")
    @classmethod
    def _refuse_library_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            found = [k for k in data if k in _LIBRARY_ONLY]
            if found:
                raise ValueError(
                    "; ".join(f"{k}: not an Engram setting: {_LIBRARY_ONLY[k]}" for k in found)
                )
        return data
