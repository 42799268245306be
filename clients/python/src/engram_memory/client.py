"""``MemoryClient``: the seed page's entry point, an async context manager."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

from ._transport import Owners, Transport, segment, user_path
from .errors import GoneError, NotConnectedError, RejectedError
from .memory import LongTermMemory, ReasoningMemory, ShortTermMemory, UserMemory
from .models import Fate, FateStatus, WriteReceipt, fate_from
from .settings import MemorySettings

__all__ = ["MemoryClient"]


class MemoryClient:
    """A client of one Engram deployment, with the library's API::

        async with MemoryClient(settings) as client:
            await client.users.upsert_user(identifier="sara@omg.com")

    Writes go to the ingestor and return once the log stored them; reads go to the query
    service and, by default, wait until this client's writes for that user are projected
    (read-your-writes). Safe for concurrent use by the tasks of one event loop.
    """

    def __init__(self, settings: MemorySettings | None = None) -> None:
        self._settings = settings or MemorySettings()
        self._transport = Transport(self._settings.engram)
        owners = Owners()
        mt = self._settings.memory.multi_tenant
        self._users = UserMemory(self._transport, owners, mt)
        self._short_term = ShortTermMemory(self._transport, owners, mt)
        self._long_term = LongTermMemory(self._transport, owners, mt)
        self._reasoning = ReasoningMemory(self._transport, owners, mt)

    @property
    def settings(self) -> MemorySettings:
        return self._settings

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the connection pool; with ``engram.validate_on_connect`` (the default),
        check that both services answer, raising ``UnavailableError`` if not."""
        await self._transport.open()
        cfg = self._settings.engram
        if cfg.validate_on_connect:
            try:
                await asyncio.gather(
                    self._transport.probe(cfg.ingestor_url + "/healthz"),
                    self._transport.probe(cfg.query_url + "/healthz"),
                )
            except BaseException:
                await self._transport.close()
                raise

    async def close(self) -> None:
        """Close the connection pool. Every write already returned is stored."""
        await self._transport.close()

    @property
    def is_connected(self) -> bool:
        return self._transport.is_open

    def _connected(self) -> None:
        if not self._transport.is_open:
            raise NotConnectedError("use `async with MemoryClient(settings)` or call connect()")

    @property
    def users(self) -> UserMemory:
        self._connected()
        return self._users

    @property
    def short_term(self) -> ShortTermMemory:
        self._connected()
        return self._short_term

    @property
    def long_term(self) -> LongTermMemory:
        self._connected()
        return self._long_term

    @property
    def reasoning(self) -> ReasoningMemory:
        self._connected()
        return self._reasoning

    def consistency_token(self, user_identifier: str | None) -> int:
        """The highest consistency token this client holds for the user (0: none)."""
        return self._transport.token_for(user_identifier)

    async def fate(self, receipt: WriteReceipt) -> Fate:
        """What became of a write, as it stands now: stored, applied, dead-lettered or
        refused. ``NotFoundError`` when the log does not hold it (erased since)."""
        self._connected()
        return await self._fate(receipt, wait=False)

    async def wait_applied(self, receipt: WriteReceipt, *, timeout: float | None = 60.0) -> Fate:
        """Wait until the projector decided about a write: the fate once applied;
        ``RejectedError`` when it was dead-lettered, ``GoneError`` when it was dropped for
        its user's erasure; ``TimeoutError`` after ``timeout`` seconds (``None``: no limit)."""
        self._connected()
        async with asyncio.timeout(timeout):
            while True:
                fate = await self._fate(receipt, wait=True)
                if fate.status is FateStatus.APPLIED:
                    return fate
                if fate.status is FateStatus.DEAD_LETTERED:
                    raise RejectedError(
                        f"{fate.kind} event {fate.event_id} (sequence {fate.sequence}) rejected "
                        f"by the projector: {fate.reason}: {fate.error}",
                        op="wait_applied",
                        event_id=fate.event_id,
                        sequence=fate.sequence,
                        kind=fate.kind,
                        reason=fate.reason,
                        error=fate.error,
                    )
                if fate.status is FateStatus.REFUSED:
                    raise GoneError(
                        f"{fate.kind} event {fate.event_id} (sequence {fate.sequence}) refused: "
                        f"{fate.reason}: {fate.error}",
                        op="wait_applied",
                        event_id=fate.event_id,
                        sequence=fate.sequence,
                        kind=fate.kind,
                        reason=fate.reason,
                    )
                await asyncio.sleep(0.05)

    async def _fate(self, receipt: WriteReceipt, *, wait: bool) -> Fate:
        user = receipt.user_identifier
        path = f"{user_path(user)}/events/{segment(receipt.event_id)}"
        params = {"sequence": str(receipt.sequence)}
        at_least = receipt.sequence if wait else 0
        out = await self._transport.read(
            "fate", user, path, params, consistent=False, at_least=at_least
        )
        return fate_from(out)
