"""Client-chosen ids: UUIDv7 (RFC 9562), time-ordered and monotonic within this process.

Every write carries ids minted here (its event id and the id of what it creates), so a
retried request is the same event and the log stores it once. Entity ids are not minted
but derived, as the ingestor derives them (``entity_id``).
"""

from __future__ import annotations

import os
import threading
import time
from uuid import UUID, uuid5

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> str:
    """A new UUIDv7 in canonical lower-case form. Within one millisecond the 12-bit
    counter (``rand_a``) increases, so ids of one process sort in the order minted."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave room to count
        else:
            _counter += 1
            if _counter > 0xFFF:  # 4096 ids in one millisecond: borrow the next one
                _last_ms += 1
                _counter = 0
        ms, counter = _last_ms, _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    return str(UUID(int=value))


# The namespace of events.EntityID: Engram derives an entity's id from its user, name and
# type (a UUIDv5), so that a reference by name and type needs no look-up.
_ENTITY_NAMESPACE = UUID("5b0c3f2e-7a51-4c4e-9d0e-6a1f0f1c7e03")


def entity_id(user: str | None, name: str, entity_type: str | None) -> str:
    """The id Engram derives for the entity of ``name`` and ``entity_type`` of ``user``
    (``None``: the shared tenant), as ``events.EntityID`` does."""
    key = "\x00".join((user or "", name, entity_type or ""))
    return str(uuid5(_ENTITY_NAMESPACE, key))
