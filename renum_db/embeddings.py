"""Embeddings: a small provider interface, an OpenAI provider, an offline one, and a Postgres cache.

- `EmbeddingProvider` is what the rest of the code needs: `model`, `dimensions` and
  `embed(texts)`, returning one vector per text in input order.
- `OpenAIEmbeddings` calls the OpenAI embeddings API (or any OpenAI-compatible server through
  `base_url` / OPENAI_BASE_URL) in batches, with its own retry loop (exponential backoff with
  jitter, honouring `Retry-After`) and errors mapped onto `renum_db.errors`. The API key never
  appears in a repr, a log line or an exception.
- `LexicalHashingEmbeddings` needs no key and no network: lexical feature hashing, deterministic
  and good enough for tests and demos, but not semantic.
- `CachedEmbeddings` puts any provider behind `public.embedding_cache`, per tenant, so a text
  already embedded with the same model and dimensions is never sent to the provider again. Only
  the backend writes the cache; a user's connection reads it and computes misses without storing
  them, so no vector a user could choose ever reaches another user's search.
- `embedding_provider_from_env()` picks OpenAI when OPENAI_API_KEY is set, the lexical provider
  otherwise.

Vectors are tuples of floats. pgvector stores float4, so `CachedEmbeddings` returns every vector
rounded to float4 precision: a cache hit and the miss that stored it are exactly equal.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import struct
import threading
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import openai
import psycopg
from psycopg import Connection
from psycopg.adapt import PyFormat

from renum_db.errors import (
    ConfigurationError,
    InvalidInput,
    RenumDBError,
    RetryableError,
    wrap_errors,
)
from renum_db.vector import Vector, VectorLike, as_vector, register_vector

__all__ = [
    "CachedEmbeddings",
    "EmbeddingError",
    "EmbeddingProvider",
    "EmbeddingServiceUnavailable",
    "LexicalHashingEmbeddings",
    "OpenAIEmbeddings",
    "cache_model_key",
    "cached_vectors",
    "embedding_provider_from_env",
    "store_vectors",
]

log = logging.getLogger(__name__)

MAX_DIMENSIONS: Final = 16000  # pgvector's limit for `vector`

Embedding = tuple[float, ...]


class EmbeddingError(RenumDBError):
    """The embedding provider failed in a way that is neither retryable nor a configuration
    problem (a malformed response, an unexpected HTTP status)."""


class EmbeddingServiceUnavailable(RetryableError):
    """The embedding API kept failing with rate limits, server errors or connection errors
    until the retries were used up; the whole operation may be retried later."""


@runtime_checkable
class EmbeddingProvider(Protocol):
    """Turns texts into vectors of `dimensions` floats with `model`.

    `embed` returns one vector per text, in input order (an empty input gives []).
    """

    model: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> list[Embedding]: ...


def _check_dimensions(dimensions: int) -> int:
    if isinstance(dimensions, bool) or not isinstance(dimensions, int):
        raise ConfigurationError(f"dimensions must be an integer, got {dimensions!r}")
    if not 1 <= dimensions <= MAX_DIMENSIONS:
        raise ConfigurationError(f"dimensions must be between 1 and {MAX_DIMENSIONS}")
    return dimensions


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise InvalidInput("embed() takes a sequence of texts, not a single string")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise InvalidInput(f"text at position {i} is {type(text).__name__}, not str")
    return out


# --------------------------------------------------------------------------------------------
# OpenAI
# --------------------------------------------------------------------------------------------

_RETRY_STATUSES: Final = frozenset({408, 409, 429})  # and 5xx: what the SDK retries


def _redact_url(url: str) -> str:
    """`url` without user:password, so it can be shown."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


class OpenAIEmbeddings:
    """Embeddings from the OpenAI API or any OpenAI-compatible server.

    The API key comes from `api_key` or OPENAI_API_KEY, the server from `base_url` or
    OPENAI_BASE_URL (OpenAI itself when neither is set). Texts are sent `batch_size` at a time;
    `dimensions` is requested from text-embedding-3 models and checked on every returned vector.

    Retries and timeouts are the OpenAI SDK's own (`max_retries`, `timeout`): rate limits (429),
    408/409, server errors (5xx), timeouts and connection errors are retried, waiting what
    `Retry-After` / `retry-after-ms` ask for (up to the SDK's limit), else its exponential
    backoff with jitter. What is left when the SDK gives up is mapped to renum_db errors:
    `EmbeddingServiceUnavailable` (a `RetryableError`) for those transient failures, a rejected
    key (401) or forbidden model (403, 404) `ConfigurationError`, a rejected input (400, 413,
    422) `InvalidInput`. The key is never shown: not in repr, logs or exceptions.

    Pass `client` to use a prepared `openai.OpenAI` (its own max_retries and timeout apply);
    `api_key`, `base_url`, `max_retries` and `timeout` are then ignored.
    """

    model: str
    dimensions: int

    def __init__(
        self,
        api_key: str | None = None,
        *,
        model: str = "text-embedding-3-small",
        dimensions: int = 1536,
        base_url: str | None = None,
        batch_size: int = 256,
        max_retries: int = 5,
        timeout: float = 60.0,
        client: openai.OpenAI | None = None,
    ) -> None:
        if not model or not model.strip():
            raise ConfigurationError("an embedding model name is required")
        self.model = model
        self.dimensions = _check_dimensions(dimensions)
        if not 1 <= batch_size <= 2048:
            raise ConfigurationError("batch_size must be between 1 and 2048 (the API's limit)")
        if max_retries < 0:
            raise ConfigurationError("max_retries must be >= 0")
        if not timeout > 0:
            raise ConfigurationError("timeout must be > 0 seconds")
        self.batch_size = batch_size
        if client is None:
            key = (api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")).strip()
            if not key:
                raise ConfigurationError(
                    "no OpenAI API key: pass api_key or set OPENAI_API_KEY"
                    " (or use LexicalHashingEmbeddings offline)"
                )
            url = (base_url or os.environ.get("OPENAI_BASE_URL", "")).strip() or None
            client = openai.OpenAI(
                api_key=key, base_url=url, max_retries=max_retries, timeout=timeout
            )
        self._client = client
        self.max_retries = int(client.max_retries)
        secret = getattr(client, "api_key", None)
        self._secret = secret if isinstance(secret, str) and len(secret) >= 4 else None
        self.base_url = _redact_url(str(client.base_url))

    def __repr__(self) -> str:
        return (
            f"OpenAIEmbeddings(model={self.model!r}, dimensions={self.dimensions},"
            f" base_url={self.base_url!r})"
        )

    def embed(self, texts: Sequence[str]) -> list[Embedding]:
        items = self._checked(texts)
        out: list[Embedding] = []
        for start in range(0, len(items), self.batch_size):
            batch = items[start : start + self.batch_size]
            try:
                response = self._client.embeddings.create(**self._request(batch))
            except openai.OpenAIError as exc:
                raise self._error(exc) from None
            out.extend(self._vectors(response, len(batch)))
        return out

    # -- internals (shared with renum_db.aio.AsyncOpenAIEmbeddings) ------------------------------

    def _checked(self, texts: Sequence[str]) -> list[str]:
        items = _check_texts(texts)
        for i, text in enumerate(items):
            if not text:
                raise InvalidInput(
                    f"text at position {i} is empty:"
                    " the OpenAI embeddings API rejects empty strings"
                )
        return items

    def _request(self, batch: list[str]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"input": batch, "model": self.model, "encoding_format": "float"}
        if self.model.startswith("text-embedding-3"):
            kwargs["dimensions"] = self.dimensions
        return kwargs

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "[redacted]") if self._secret else text

    def _error(self, exc: openai.OpenAIError) -> RenumDBError:
        """What is left after the SDK's retries, as a renum_db error (never the key)."""
        attempts = self.max_retries + 1
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if status in _RETRY_STATUSES or status >= 500:
                return EmbeddingServiceUnavailable(
                    f"the embedding API at {self.base_url} still failed (HTTP {status}) after"
                    f" {attempts} attempts; try again later"
                )
            return self._status_error(exc)
        if isinstance(exc, openai.APIConnectionError):
            reason = "timed out" if isinstance(exc, openai.APITimeoutError) else "connection failed"
            return EmbeddingServiceUnavailable(
                f"the embedding API at {self.base_url} still failed ({reason}) after"
                f" {attempts} attempts; try again later"
            )
        return EmbeddingError(
            f"embedding request failed: {type(exc).__name__}: {self._redact(str(exc))}"
        )

    def _status_error(self, exc: openai.APIStatusError) -> RenumDBError:
        status = exc.status_code
        if status == 401:
            # Never the server's message: OpenAI echoes part of the rejected key in it.
            return ConfigurationError(
                f"the embedding API at {self.base_url} rejected the API key (HTTP 401):"
                " check OPENAI_API_KEY"
            )
        detail = self._redact(_server_message(exc))
        if status in (403, 404):
            return ConfigurationError(
                f"the embedding API at {self.base_url} refused model {self.model!r}"
                f" (HTTP {status}): {detail}"
            )
        if status in (400, 413, 422):
            return InvalidInput(f"the embedding API rejected the input (HTTP {status}): {detail}")
        return EmbeddingError(f"the embedding API answered HTTP {status}: {detail}")

    def _vectors(self, response: Any, expected: int) -> list[Embedding]:
        data = list(getattr(response, "data", None) or [])
        if len(data) != expected:
            raise EmbeddingError(
                f"the embedding API returned {len(data)} embeddings for {expected} texts"
            )
        by_index: dict[int, Embedding] = {}
        for item in data:
            index = item.index
            values = item.embedding
            if not isinstance(values, list):
                raise EmbeddingError("the embedding API returned a non-float embedding")
            if len(values) != self.dimensions:
                raise ConfigurationError(
                    f"the embedding API returned {len(values)}-dimensional vectors for model"
                    f" {self.model!r}, but dimensions={self.dimensions} is configured: set"
                    " dimensions to what the model produces"
                )
            vector = tuple(float(v) for v in values)
            if not all(math.isfinite(v) for v in vector):
                raise EmbeddingError("the embedding API returned a non-finite value")
            by_index[index] = vector
        if sorted(by_index) != list(range(expected)):
            raise EmbeddingError("the embedding API returned embeddings with wrong indexes")
        return [by_index[i] for i in range(expected)]


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:500]
    return exc.message[:500]


# --------------------------------------------------------------------------------------------
# Lexical hashing (offline)
# --------------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+")
_WORD_WEIGHT: Final = 1.0
_GRAM_WEIGHT: Final = 0.5
_HASH_PERSON: Final = b"renum-lexhash-v1"  # blake2b personalisation (16 bytes)
_EMPTY_FEATURE: Final = "\x00no-tokens"


def _fold(text: str) -> str:
    """Case-folded, accents removed (NFKD, combining marks dropped)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class LexicalHashingEmbeddings:
    """Offline, deterministic embeddings by lexical feature hashing. NOT semantic.

    Each text is case-folded and accent-folded ("Ação" and "acao" are the same), split into word
    tokens (`\\w+`), and every word plus every character 3-gram of `#word#` is hashed with blake2b
    into one of `dimensions` buckets with a sign taken from the hash; the bucket sums are
    L2-normalised. The same text gives the same vector in every process and on every machine,
    and texts sharing words or word pieces are more similar than unrelated texts, but synonyms
    and translations are not: use it for tests, demos and machines without an API key, never
    as a stand-in for a real model's quality.

    A text with no word characters (the empty string, whitespace, punctuation only) gets one
    fixed unit vector (the hash of a reserved feature), so it can still be stored and compared.
    """

    model: str
    dimensions: int

    def __init__(self, dimensions: int = 1536, model_name: str = "renum-lexical-hash-v1") -> None:
        if not model_name or not model_name.strip():
            raise ConfigurationError("a model name is required")
        self.dimensions = _check_dimensions(dimensions)
        self.model = model_name

    def __repr__(self) -> str:
        return f"LexicalHashingEmbeddings(dimensions={self.dimensions}, model={self.model!r})"

    def embed(self, texts: Sequence[str]) -> list[Embedding]:
        return [self._embed_one(text) for text in _check_texts(texts)]

    def _add(self, buckets: list[float], feature: str, weight: float) -> None:
        digest = hashlib.blake2b(
            feature.encode("utf-8", "surrogatepass"), digest_size=8, person=_HASH_PERSON
        ).digest()
        h = int.from_bytes(digest, "little")
        buckets[h % self.dimensions] += weight if h >> 63 else -weight

    def _embed_one(self, text: str) -> Embedding:
        buckets = [0.0] * self.dimensions
        for word in _WORD.findall(_fold(text)):
            self._add(buckets, "w:" + word, _WORD_WEIGHT)
            padded = f"#{word}#"
            for i in range(len(padded) - 2):
                self._add(buckets, "c:" + padded[i : i + 3], _GRAM_WEIGHT)
        norm = math.sqrt(math.fsum(v * v for v in buckets))
        if norm == 0.0:
            buckets = [0.0] * self.dimensions
            self._add(buckets, _EMPTY_FEATURE, 1.0)
            norm = 1.0
        return tuple(v / norm for v in buckets)


# --------------------------------------------------------------------------------------------
# Cache in Postgres
# --------------------------------------------------------------------------------------------

_RESOLVE_CLIENT: Final = "select private.request_client_id(%s::uuid), private.request_is_backend()"

_SELECT_CACHED: Final = """
select content_hash, embedding
  from public.embedding_cache
 where client_id = %s
   and model = %s
   and content_hash = any(%s::bytea[])
"""

# %b: the vectors go in pgvector's binary format (6 KB per 1536-d vector, no float printing or
# parsing); as text they cost ~1.7 ms per vector in Python alone (docs/ingestion.md).
_INSERT_CACHED: Final = """
insert into public.embedding_cache (client_id, model, content_hash, embedding)
select %s, %s, t.content_hash, t.embedding
  from unnest(%b::bytea[], %b::extensions.vector[]) as t (content_hash, embedding)
    on conflict (client_id, model, content_hash) do nothing
"""


def cache_model_key(provider: EmbeddingProvider) -> str:
    """The embedding_cache.model of a provider: `<model>:<dimensions>`."""
    return f"{provider.model}:{provider.dimensions}"


def cached_vectors(
    conn: Connection[Any], *, client_id: UUID, cache_model: str, texts: Sequence[str]
) -> dict[str, Embedding]:
    """The cached vectors of those `texts` that the tenant's cache holds (one query)."""
    hashes = {text: _sha256(text, i) for i, text in enumerate(texts)}
    if not hashes:
        return {}
    with wrap_errors(), conn.cursor(binary=True) as cur:
        _ensure_vector_adapters(conn)
        cur.execute(_SELECT_CACHED, (client_id, cache_model, list(hashes.values())))
        found = {bytes(h): tuple(e) for h, e in cur.fetchall()}
    hits = {text: found[digest] for text, digest in hashes.items() if digest in found}
    CachedEmbeddings._count(len(hits), len(hashes) - len(hits))
    return hits


def store_vectors(
    conn: Connection[Any],
    *,
    client_id: UUID,
    cache_model: str,
    vectors: Mapping[str, VectorLike],
) -> None:
    """Add vectors to the tenant's cache (a row stored meanwhile by another request is kept),
    in one statement with the vectors sent in binary."""
    if not vectors:
        return
    texts = list(vectors)
    with wrap_errors():
        _ensure_vector_adapters(conn)
        conn.execute(
            _INSERT_CACHED,
            (
                client_id,
                cache_model,
                [_sha256(t, i) for i, t in enumerate(texts)],
                [as_vector(vectors[t]) for t in texts],
            ),
        )


_FLOAT4_CACHE: dict[int, struct.Struct] = {}


def _as_float4(vector: Sequence[float]) -> Embedding:
    """`vector` rounded to float4, as pgvector stores it."""
    n = len(vector)
    fmt = _FLOAT4_CACHE.get(n)
    if fmt is None:
        fmt = _FLOAT4_CACHE[n] = struct.Struct(f"<{n}f")
    return fmt.unpack(fmt.pack(*vector))


def _sha256(text: str, position: int) -> bytes:
    try:
        return hashlib.sha256(text.encode("utf-8")).digest()
    except UnicodeEncodeError:
        raise InvalidInput(f"text at position {position} is not valid Unicode") from None


class CachedEmbeddings:
    """`provider` behind `public.embedding_cache`: each distinct text of a tenant is embedded once.

    `conn` is the connection of a block from `Database.as_user(...)`, `as_service_role()` or
    `act_as(...)`; use the cache inside that block. The tenant is resolved once, here, by
    `private.request_client_id`: a user's own active client (passing another client_id is
    refused with PermissionDenied), or, for the backend (a role that bypasses RLS), the
    `client_id` it must pass.

    Only the backend writes the cache (`writes` is True there). On a user's connection the cache
    is read (every row in it was written by the backend) and misses are computed by the provider
    and returned without being stored: the database cannot check that a vector belongs to its
    text, so a user-written vector would steer other users' searches for that text.

    Rows are keyed by (client, f"{provider.model}:{provider.dimensions}", sha256 of the exact
    UTF-8 text), so changing the model or its dimensions never reuses old vectors. `embed`
    dedupes its input, reads all cached vectors in one query, asks the provider once for the
    misses and stores them in one insert (a row another request stored meanwhile is kept). It
    never commits: the rows are saved when the caller's block commits. Vectors come back at
    float4 precision, as pgvector stores them.
    """

    model: str
    dimensions: int
    _stats_lock: ClassVar[threading.Lock] = threading.Lock()
    _hits: ClassVar[int] = 0
    _misses: ClassVar[int] = 0

    @classmethod
    def statistics(cls) -> dict[str, float]:
        """Distinct texts served from the cache (hits) or the provider (misses) by every
        CachedEmbeddings of this process, and the hit rate (0 before any lookup)."""
        with cls._stats_lock:
            hits, misses = cls._hits, cls._misses
        total = hits + misses
        return {
            "cache_hits": hits,
            "cache_misses": misses,
            "cache_hit_rate": hits / total if total else 0.0,
        }

    @classmethod
    def _count(cls, hits: int, misses: int) -> None:
        with cls._stats_lock:
            cls._hits += hits
            cls._misses += misses

    def __init__(
        self,
        provider: EmbeddingProvider,
        conn: Connection[Any],
        *,
        client_id: UUID | str | None = None,
    ) -> None:
        self.provider = provider
        self.model = provider.model
        self.dimensions = _check_dimensions(provider.dimensions)
        self.cache_model = f"{provider.model}:{provider.dimensions}"
        if not 1 <= len(self.cache_model) <= 200:
            raise ConfigurationError("the cache model key must be 1 to 200 characters long")
        self._conn = conn
        requested = UUID(str(client_id)) if client_id is not None else None
        try:
            with wrap_errors(), conn.transaction():
                row = conn.execute(_RESOLVE_CLIENT, (requested,)).fetchone()
                _ensure_vector_adapters(conn)
        except InvalidInput as exc:
            if exc.sqlstate == "22004":
                raise InvalidInput(
                    f"CachedEmbeddings needs client_id=... on a connection that is not a"
                    f" signed-in user's (here: {exc}): the backend has no tenant of its own",
                    sqlstate=exc.sqlstate,
                    hint=exc.hint,
                ) from exc
            raise
        assert row is not None
        self.client_id: UUID = row[0]
        self.writes: bool = bool(row[1])

    def __repr__(self) -> str:
        return (
            f"CachedEmbeddings(provider={self.provider!r}, client_id={self.client_id},"
            f" cache_model={self.cache_model!r}, writes={self.writes})"
        )

    def embed(self, texts: Sequence[str]) -> list[Embedding]:
        items = _check_texts(texts)
        if not items:
            return []
        hashes: dict[str, bytes] = {}
        for i, text in enumerate(items):
            if text not in hashes:
                hashes[text] = _sha256(text, i)
        with wrap_errors(), self._conn.cursor(binary=True) as cur:
            cur.execute(_SELECT_CACHED, (self.client_id, self.cache_model, list(hashes.values())))
            found: dict[bytes, Embedding] = {bytes(h): tuple(e) for h, e in cur.fetchall()}
        vectors: dict[str, Embedding] = {}
        misses: list[str] = []
        for text, digest in hashes.items():
            cached = found.get(digest)
            if cached is not None and len(cached) == self.dimensions:
                vectors[text] = cached
            else:
                misses.append(text)
        CachedEmbeddings._count(len(hashes) - len(misses), len(misses))
        if misses:
            fresh = self.provider.embed(misses)
            if len(fresh) != len(misses):
                raise EmbeddingError(
                    f"the provider returned {len(fresh)} vectors for {len(misses)} texts"
                )
            for text, vector in zip(misses, fresh, strict=True):
                if len(vector) != self.dimensions:
                    raise EmbeddingError(
                        f"the provider returned a {len(vector)}-dimensional vector,"
                        f" expected {self.dimensions}"
                    )
                vectors[text] = _as_float4(vector)
            if not self.writes:
                return [vectors[text] for text in items]
            with wrap_errors():
                self._conn.execute(
                    _INSERT_CACHED,
                    (
                        self.client_id,
                        self.cache_model,
                        [hashes[t] for t in misses],
                        [Vector(vectors[t]) for t in misses],
                    ),
                )
        return [vectors[text] for text in items]


def _ensure_vector_adapters(conn: Connection[Any]) -> None:
    """register_vector once per connection (the adapters stay with a pooled connection)."""
    try:
        conn.adapters.get_dumper(Vector, PyFormat.BINARY)
    except psycopg.ProgrammingError:
        register_vector(conn)


# --------------------------------------------------------------------------------------------
# Choosing a provider
# --------------------------------------------------------------------------------------------

_lexical_warning_logged = False


def embedding_provider_from_env() -> EmbeddingProvider:
    """OpenAIEmbeddings when OPENAI_API_KEY is set (OPENAI_BASE_URL honoured), otherwise
    LexicalHashingEmbeddings, with a warning (logged once per process) that results are lexical,
    not semantic."""
    global _lexical_warning_logged
    if os.environ.get("OPENAI_API_KEY", "").strip():
        return OpenAIEmbeddings()
    if not _lexical_warning_logged:
        _lexical_warning_logged = True
        log.warning(
            "OPENAI_API_KEY is not set: using LexicalHashingEmbeddings, whose results are"
            " lexical (shared words), not semantic"
        )
    return LexicalHashingEmbeddings()
