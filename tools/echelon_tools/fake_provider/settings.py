"""`FakeSettings`: how a fake provider behaves when no fault is in force."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field, fields
from typing import Any

from .faults import Fault

__all__ = ["DEFAULT_MODELS", "FakeSettings"]

DEFAULT_MODELS: tuple[str, ...] = (
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4",
    "claude-sonnet-4-5",
    "claude-3-opus-20240229",
    "gemini-2.5-flash",
    "gemini-pro",
)

# Fields that `POST /_fake/settings` may change at runtime.
RUNTIME_FIELDS = (
    "api_key",
    "latency_ms",
    "stream_chunks",
    "chunk_delay_ms",
    "reply",
    "echo_words",
    "record_requests",
)


@dataclass
class FakeSettings:
    """Behaviour of the fake upstreams; everything but host/port can change at runtime.

    host, port       where to listen (port 0: the OS picks one)
    api_key          when set, requests must carry it (OpenAI `Authorization: Bearer`,
                     Anthropic `x-api-key`, Gemini `x-goog-api-key` or `?key=`)
    latency_ms       added before every generation answer
    stream_chunks    content chunks per streamed reply (>= 1)
    chunk_delay_ms   pause between streamed chunks (0: the whole stream is written at once)
    reply            fixed reply text instead of the echo of the last user text
    echo_words       how many words of the last user text the reply echoes
    record_requests  request bodies/headers kept per model (0: none)
    arrivals_kept    request arrival timestamps kept (globally and per model)
    seed             seed of the RNG behind `rate:P` faults
    faults           initial fault rules, model (or `*`) -> Fault
    models           ids listed by `GET /v1/models`
    tls_cert, tls_key  serve HTTPS with this certificate chain and key (PEM files; both or
                     neither; read at start)
    embedding_dimensions  vector length per embedding model (`/v1/embeddings`, Gemini
                     `embedContent`); other models: their real default when the fake knows
                     it (text-embedding-3-small 1536, gemini-embedding-001 3072, ...), else
                     default_embedding_dimensions
    """

    host: str = "127.0.0.1"
    port: int = 0
    api_key: str | None = None
    latency_ms: float = 0.0
    stream_chunks: int = 5
    chunk_delay_ms: float = 0.0
    reply: str | None = None
    echo_words: int = 24
    record_requests: int = 50
    arrivals_kept: int = 10_000
    seed: int | None = None
    faults: dict[str, Fault] = field(default_factory=dict)
    models: tuple[str, ...] = DEFAULT_MODELS
    embedding_dimensions: dict[str, int] = field(default_factory=dict)
    default_embedding_dimensions: int = 256
    tls_cert: str | None = None
    tls_key: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both or neither")
        if self.stream_chunks < 1:
            raise ValueError(f"stream_chunks must be >= 1, got {self.stream_chunks}")
        if self.latency_ms < 0 or self.chunk_delay_ms < 0:
            raise ValueError("latency_ms and chunk_delay_ms must be >= 0")
        if self.echo_words < 1:
            raise ValueError(f"echo_words must be >= 1, got {self.echo_words}")
        if self.record_requests < 0 or self.arrivals_kept < 0:
            raise ValueError("record_requests and arrivals_kept must be >= 0")
        for model, dims in {**self.embedding_dimensions,
                            "(default)": self.default_embedding_dimensions}.items():
            if not 1 <= dims <= 65536:
                raise ValueError(f"embedding dimensions of {model} must be 1-65536, got {dims}")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server's TLS context when ``tls_cert``/``tls_key`` are set, else None."""
        if self.tls_cert is None or self.tls_key is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.tls_cert, self.tls_key)
        return ctx

    def update(self, changes: dict[str, Any]) -> None:
        """Apply runtime changes (the JSON of `POST /_fake/settings`); all or nothing."""
        unknown = sorted(set(changes) - set(RUNTIME_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown or read-only setting(s) {', '.join(unknown)}; "
                f"settable at runtime: {', '.join(RUNTIME_FIELDS)}"
            )
        types = {f.name: f.type for f in fields(self)}
        old = {name: getattr(self, name) for name in changes}
        try:
            for name, value in changes.items():
                if value is not None and "float" in str(types[name]):
                    value = float(value)
                elif value is not None and "int" in str(types[name]):
                    value = int(value)
                elif value is not None:
                    value = str(value)
                setattr(self, name, value)
            self.validate()
        except (TypeError, ValueError):
            for name, value in old.items():
                setattr(self, name, value)
            raise

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "api_key_set": self.api_key is not None,
            "latency_ms": self.latency_ms,
            "stream_chunks": self.stream_chunks,
            "chunk_delay_ms": self.chunk_delay_ms,
            "reply": self.reply,
            "echo_words": self.echo_words,
            "record_requests": self.record_requests,
            "arrivals_kept": self.arrivals_kept,
            "seed": self.seed,
            "models": list(self.models),
            "embedding_dimensions": dict(self.embedding_dimensions),
            "default_embedding_dimensions": self.default_embedding_dimensions,
        }
