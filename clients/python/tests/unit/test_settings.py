from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from engram_memory import EngramConfig, MemoryConfig, MemorySettings


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("ENGRAM_INGESTOR_URL", "ENGRAM_QUERY_URL", "ENGRAM_API_KEY", "ENGRAM_BEARER_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    s = MemorySettings()
    assert (s.engram.ingestor_url, s.engram.query_url) == (
        "http://127.0.0.1:8080",
        "http://127.0.0.1:8081",
    )
    assert s.memory.multi_tenant is False and s.engram.api_key is None
    assert s.engram.read_your_writes is True
    monkeypatch.setenv("ENGRAM_INGESTOR_URL", "https://in.example.test/")
    monkeypatch.setenv("ENGRAM_API_KEY", "engram_k")
    s = MemorySettings(memory={"multi_tenant": True})  # type: ignore[arg-type,unused-ignore]
    assert s.engram.ingestor_url == "https://in.example.test"  # trailing / dropped
    assert s.engram.api_key == SecretStr("engram_k")
    assert s.memory.multi_tenant is True
    # Explicit values win over the environment.
    assert EngramConfig(ingestor_url="http://x.test").ingestor_url == "http://x.test"
    assert "engram_k" not in repr(s)  # secrets stay secret


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ingestor_url": "ftp://x"}, "not an http"),
        ({"query_url": "localhost:8081"}, "not an http"),
        ({"query_url": "http://x/?a=1"}, "no query"),
        ({"api_key": "a", "bearer_token": "b"}, "one credential"),
        ({"timeout": 0}, "greater than 0"),
        ({"max_retries": -1}, "greater than or equal to 0"),
        ({"neo4j_uri": "bolt://x"}, "Extra inputs"),
    ],
)
def test_bad_engram_config(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        EngramConfig(**kwargs)  # type: ignore[arg-type,unused-ignore]


def test_library_only_settings_say_what_to_do() -> None:
    with pytest.raises(ValidationError, match=r"neo4j: not an Engram setting.*EngramConfig"):
        MemorySettings(neo4j={"uri": "bolt://localhost:7687"})  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="embedding: not an Engram setting"):
        MemorySettings(embedding="openai/text-embedding-3-small")  # type: ignore[call-arg,unused-ignore]
    with pytest.raises(ValidationError, match="Extra inputs"):
        MemoryConfig(message_embedding_enabled=False)  # type: ignore[call-arg]
