"""Exceptions: one class per kind of answer Engram gives, all under :class:`EngramError`.

The classes also derive from the built-in exception a Python caller would reach for:
bad input is a ``ValueError`` (so the library's ``except ValueError`` around the
multi-tenant guardrail keeps working), a refused user a ``PermissionError``, an absent
thing a ``LookupError``, a timeout a ``TimeoutError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

__all__ = [
    "ConflictError",
    "EngramError",
    "EngramTimeoutError",
    "ForbiddenError",
    "GoneError",
    "InvalidRequestError",
    "NotCaughtUpError",
    "NotConnectedError",
    "NotFoundError",
    "RateLimitedError",
    "RejectedError",
    "UnauthenticatedError",
    "UnavailableError",
    "UserRequiredError",
    "error_from_response",
]


class EngramError(Exception):
    """An Engram call that failed.

    ``op`` names the call (``add_preference``), ``status`` the HTTP status (``None`` when the
    request never got an answer), ``message`` the server's text, ``field`` the field,
    parameter or header at fault when the server named one, ``body`` the problem document.
    """

    def __init__(
        self,
        message: str,
        *,
        op: str = "",
        status: int | None = None,
        field: str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        self.message = message
        self.op = op
        self.status = status
        self.field = field
        self.body: dict[str, Any] = dict(body or {})
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [f"engram {self.op}" if self.op else "engram"]
        if self.status is not None:
            try:
                parts.append(f"{self.status} {HTTPStatus(self.status).phrase}")
            except ValueError:
                parts.append(str(self.status))
        if self.field and not self.message.startswith(self.field + ":"):
            parts.append(self.field)
        if self.message:
            parts.append(self.message)
        return ": ".join(parts)


class NotConnectedError(EngramError):
    """The client was used before ``connect()`` (or ``async with``) or after ``close()``."""


class InvalidRequestError(EngramError, ValueError):
    """Bad input (HTTP 400, 413, 415, 422, 431, or refused before sending); see ``field``."""


class UserRequiredError(InvalidRequestError):
    """Multi-tenant mode is on and the call names no user: raised before anything is sent."""


class UnauthenticatedError(EngramError):
    """No credential, or one the service does not accept (HTTP 401)."""


class ForbiddenError(EngramError, PermissionError):
    """The credential lacks the scope, or may not act for the user named (HTTP 403)."""


class NotFoundError(EngramError, LookupError):
    """The user, trace or event does not exist, or is another user's (HTTP 404)."""


class ConflictError(EngramError):
    """HTTP 409: e.g. re-creating a user who was never erased."""


class GoneError(EngramError):
    """The user was erased and not re-created since (HTTP 410), or a stored write was
    dropped by the projector for that reason (a fate ``refused``, reason ``user_erased``)."""

    def __init__(
        self,
        message: str,
        *,
        event_id: str | None = None,
        sequence: int | None = None,
        kind: str | None = None,
        reason: str | None = None,
        **kw: Any,
    ) -> None:
        self.event_id = event_id
        self.sequence = sequence
        self.kind = kind
        self.reason = reason
        super().__init__(message, **kw)


class UnavailableError(EngramError):
    """Engram could not be reached or could not serve the call (network error, HTTP 502,
    503, 507); retry later. ``retry_after`` is the server's hint in seconds, ``event_ids``
    the events a write may or may not have stored (retrying with the same ids is safe)."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        event_ids: list[str] | None = None,
        **kw: Any,
    ) -> None:
        self.retry_after = retry_after
        self.event_ids = list(event_ids or [])
        super().__init__(message, **kw)


class EngramTimeoutError(UnavailableError, TimeoutError):
    """A request took longer than the configured timeout."""


class RateLimitedError(UnavailableError):
    """HTTP 429: too many requests at once; retry after ``retry_after`` seconds."""


class NotCaughtUpError(EngramError):
    """HTTP 504: a read-your-writes read waited for the projector longer than the service
    allows. ``token`` is the consistency token, ``checkpoint`` the checkpoint watched."""

    def __init__(
        self,
        message: str,
        *,
        token: int | None = None,
        checkpoint: str | None = None,
        **kw: Any,
    ) -> None:
        self.token = token
        self.checkpoint = checkpoint
        super().__init__(message, **kw)


class RejectedError(EngramError):
    """The log stored the write but the projector refused it (dead-lettered): ``reason`` is
    machine-readable (``conflict``, ``missing_reference``, ``foreign_reference``, ...),
    ``error`` the projector's message. Retrying the same write gets the same answer."""

    def __init__(
        self,
        message: str,
        *,
        event_id: str,
        sequence: int,
        kind: str,
        reason: str | None,
        error: str | None,
        **kw: Any,
    ) -> None:
        self.event_id = event_id
        self.sequence = sequence
        self.kind = kind
        self.reason = reason
        self.error = error
        super().__init__(message, **kw)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def error_from_response(
    op: str, status: int, body: Any, headers: Mapping[str, str] | None = None
) -> EngramError:
    """The exception for an HTTP error answer: ``body`` is the decoded problem document
    (``{"error": ..., "field": ...}``) or the raw text when it was not JSON."""
    problem: dict[str, Any] = body if isinstance(body, dict) else {}
    message = str(problem.get("error") or (body if isinstance(body, str) else "")).strip()
    field = problem.get("field") if isinstance(problem.get("field"), str) else None
    kw: dict[str, Any] = {"op": op, "status": status, "field": field, "body": problem}
    retry_after = _retry_after((headers or {}).get("retry-after"))
    if status in (400, 413, 415, 422, 431):
        return InvalidRequestError(message, **kw)
    if status == 401:
        return UnauthenticatedError(message, **kw)
    if status == 403:
        return ForbiddenError(message, **kw)
    if status == 404:
        return NotFoundError(message, **kw)
    if status == 409:
        return ConflictError(message, **kw)
    if status == 410:
        return GoneError(message, **kw)
    if status == 429:
        return RateLimitedError(message, retry_after=retry_after, **kw)
    if status in (502, 503, 507):
        ids = problem.get("event_ids")
        event_ids = [str(i) for i in ids] if isinstance(ids, list) else None
        return UnavailableError(message, retry_after=retry_after, event_ids=event_ids, **kw)
    if status == 504:
        token = problem.get("token")
        checkpoint = problem.get("checkpoint")
        return NotCaughtUpError(
            message,
            token=token if isinstance(token, int) else None,
            checkpoint=checkpoint if isinstance(checkpoint, str) else None,
            **kw,
        )
    return EngramError(message, **kw)
