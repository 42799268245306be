"""HTTP to the ingestor and the query service: credentials, retries, timeouts, the error
mapping, and read-your-writes (the highest consistency token per user)."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import httpx

from .errors import (
    EngramError,
    EngramTimeoutError,
    InvalidRequestError,
    NotCaughtUpError,
    NotConnectedError,
    UnavailableError,
    error_from_response,
)
from .settings import EngramConfig

# Write answers worth retrying with the same ids: the service was unavailable.
_RETRY_WRITE: Final = frozenset({429, 502, 503})
# Reads may also retry a 504: waiting again for the same consistency token is safe.
_RETRY_READ: Final = _RETRY_WRITE | {504}

SHARED: Final = ""  # the token key of the shared tenant (writes without a user)


def user_path(identifier: str | None) -> str:
    """The query service's root for reads about a user; ``None`` is the shared tenant."""
    if identifier is None:
        return "/v1/shared"
    return "/v1/users/" + segment(identifier)


def segment(value: str) -> str:
    """One percent-encoded path segment (``/`` is ``%2F``)."""
    return quote(value, safe="")


class Transport:
    """One connection pool to both services. Safe for concurrent use within one loop."""

    def __init__(self, cfg: EngramConfig) -> None:
        self.cfg = cfg
        self._http: httpx.AsyncClient | None = None
        self._tokens: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._http is not None

    async def open(self) -> None:
        if self._http is not None:
            return
        headers = {"Accept": "application/json", "User-Agent": "engram-memory-python"}
        headers.update(self.cfg.headers)
        self._http = httpx.AsyncClient(
            transport=self.cfg.http_transport,
            timeout=httpx.Timeout(self.cfg.timeout, connect=self.cfg.connect_timeout),
            headers=headers,
            follow_redirects=False,
        )

    async def close(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    # --- read-your-writes ---------------------------------------------------------------

    def note_token(self, user: str | None, sequence: int) -> None:
        key = SHARED if user is None else user
        with self._lock:
            if sequence > self._tokens.get(key, 0):
                self._tokens[key] = sequence

    def token_for(self, user: str | None) -> int:
        if not self.cfg.read_your_writes:
            return 0
        with self._lock:
            return self._tokens.get(SHARED if user is None else user, 0)

    # --- requests -----------------------------------------------------------------------

    async def write(
        self, op: str, user: str | None, method: str, path: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Send a command to the ingestor; answers the receipt (the 202 body). The body
        carries the client-chosen ids, so a retry is the same event."""
        resp = await self._send(
            op,
            method,
            self.cfg.ingestor_url + path,
            content=_payload(op, body),
            params=None,
            retry=_RETRY_WRITE,
        )
        accepted = self._json(op, resp)
        if not isinstance(accepted, dict) or not isinstance(accepted.get("sequence"), int):
            raise EngramError(f"unexpected answer {accepted!r}", op=op, status=resp.status_code)
        self.note_token(user, accepted["sequence"])
        return accepted

    async def read(
        self,
        op: str,
        user: str | None,
        path: str,
        params: Mapping[str, str | list[str]] | None = None,
        *,
        consistent: bool = True,
        at_least: int = 0,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """GET a query-service path about ``user`` (``None``: the shared tenant), carrying
        the highest token this client holds for that user unless ``consistent`` is false.
        A list value repeats its parameter. With ``body``, POST it instead (a vector
        search: its parameters in the body, the token in the query)."""
        q = dict(params or {})
        token = max(self.token_for(user) if consistent else 0, at_least)
        if token > 0:
            q["consistency"] = str(token)
        method, payload = "GET", None
        if body is not None:
            method, payload = "POST", _payload(op, body)
        resp = await self._send(
            op, method, self.cfg.query_url + path, content=payload, params=q, retry=_RETRY_READ
        )
        return self._json(op, resp)

    async def probe(self, url: str) -> None:
        """Fail unless ``url`` answers 2xx (used on /healthz by connect)."""
        await self._send("connect", "GET", url, content=None, params=None, retry=_RETRY_READ)

    def _auth(self) -> str | None:
        cfg = self.cfg
        if cfg.token_provider is not None:
            return cfg.token_provider()
        secret = cfg.api_key or cfg.bearer_token
        return secret.get_secret_value() if secret is not None else None

    async def _send(
        self,
        op: str,
        method: str,
        url: str,
        *,
        content: bytes | None,
        params: Mapping[str, str | list[str]] | None,
        retry: frozenset[int],
    ) -> httpx.Response:
        http = self._http
        if http is None:
            raise NotConnectedError("the client is not connected", op=op)
        attempt = 0
        while True:
            headers: dict[str, str] = {}
            if content is not None:
                headers["Content-Type"] = "application/json"
            credential = self._auth()
            if credential:
                headers["Authorization"] = "Bearer " + credential
            err: EngramError
            try:
                resp = await http.request(
                    method, url, content=content, params=params, headers=headers
                )
            except httpx.TimeoutException as e:
                err = EngramTimeoutError(f"{type(e).__name__}: {e}", op=op)
            except httpx.TransportError as e:
                err = UnavailableError(f"{type(e).__name__}: {e}", op=op)
            else:
                if resp.status_code < 300:
                    return resp
                err = error_from_response(op, resp.status_code, _body(resp), resp.headers)
                if resp.status_code not in retry:
                    raise err
            if attempt >= self.cfg.max_retries:
                raise err
            await asyncio.sleep(self._pause(attempt, err))
            attempt += 1

    def _pause(self, attempt: int, err: EngramError) -> float:
        cfg = self.cfg
        pause: float = min(cfg.max_backoff_seconds, cfg.retry_backoff_seconds * 2.0**attempt)
        pause *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret
        if isinstance(err, UnavailableError) and err.retry_after is not None:
            pause = max(pause, min(err.retry_after, cfg.max_backoff_seconds))
        if isinstance(err, NotCaughtUpError):
            pause = min(pause, 0.05)  # the service already waited
        return pause

    @staticmethod
    def _json(op: str, resp: httpx.Response) -> Any:
        try:
            return resp.json()
        except ValueError as e:
            raise EngramError(
                f"answer is not JSON: {resp.text[:200]!r}", op=op, status=resp.status_code
            ) from e


def _payload(op: str, body: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as e:
        raise InvalidRequestError(f"not JSON: {e}", op=op, field="body") from e


def _body(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text


class Owners:
    """Which user owns the preferences, traces and steps this client created, so that the
    library's calls that name no user (``supersede_preference(old.id, new.id)``,
    ``add_step(trace.id)``, ``get_trace(trace.id)``) reach the right tenant. Bounded: the
    oldest entries are forgotten first."""

    MISSING: Final = object()

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._m: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._m[key] = value
            self._m.move_to_end(key)
            while len(self._m) > self._limit:
                self._m.popitem(last=False)

    def get(self, key: str) -> Any:
        with self._lock:
            return self._m.get(key, Owners.MISSING)
