"""The data set: reproducible clustered 1536-d unit vectors, generated per tenant on demand (the
full scale never holds the whole table in memory), with text, metadata and collections laid out
for the filter variants and the hybrid texts.

Each vector is a cluster centre plus a deviation inside the cluster's own random low-dimensional
subspace plus isotropic noise, normalised: clustered like real embeddings, so HNSW graphs form
islands and filtered walks can fail the way they do on real data. Each class tenant draws from a
few clusters (a tenant's documents share topics); the big tenant draws from all of them.

Per chunk, deterministic from its tenant row number r:
- metadata {"bucket": r % 10}: the filter {"bucket": 3} keeps ~10% of a tenant;
- collection "narrow" for r % 5 == 0 (~20%), "main" otherwise;
- text: a sentence of topic words; BROAD_WORD in every 8th chunk (~12%), and a token unique to
  the chunk (`t<tenant>r<row>x`, narrow_token) that narrow hybrid texts name.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from bench.config import Scale

__all__ = [
    "BROAD_WORD",
    "DIMS",
    "F32",
    "Space",
    "TenantPlan",
    "chunk_collection",
    "chunk_metadata",
    "chunk_text",
    "narrow_token",
    "plan_tenants",
    "query_vectors",
    "tenant_vectors",
]

F32 = npt.NDArray[np.float32]

DIMS: Final = 1536  # document_chunks.embedding is vector(1536)
INTRINSIC_DIMS: Final = 24
STRUCTURED_NORM: Final = 0.60
ISOTROPIC_NORM: Final = 0.25
SEED: Final = 20261129
BROAD_WORD: Final = "contrato"
WORDS: Final = (
    "fornecedor", "pagamento", "fatura", "cliente", "produto", "entrega", "prazo", "relatório",
    "orçamento", "projeto", "equipe", "reunião", "proposta", "pedido", "estoque", "auditoria",
    "licitação", "empresa", "banco", "conta", "imposto", "garantia", "suporte", "sistema",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Space:
    """Cluster centres and subspace bases shared by every tenant."""

    centres: F32
    bases: tuple[F32, ...]

    @classmethod
    def create(cls, clusters: int) -> Space:
        rng = np.random.default_rng(SEED)
        centres = _unit(rng.standard_normal((clusters, DIMS), dtype=np.float32))
        bases = []
        for _ in range(clusters):
            q, _ = np.linalg.qr(rng.standard_normal((DIMS, INTRINSIC_DIMS)))
            bases.append(q.astype(np.float32))
        return cls(centres, tuple(bases))


@dataclass(frozen=True, slots=True)
class TenantPlan:
    number: int  # 0 is the big tenant
    label: str  # "big" or the class size, e.g. "4000"
    rows: int
    clusters: tuple[int, ...]


def _unit(m: F32) -> F32:
    out: F32 = (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)
    return out


def plan_tenants(scale: Scale) -> list[TenantPlan]:
    """The class tenants and one big tenant holding the rest of the table."""
    r = random.Random(SEED)
    big_rows = scale.table_rows - sum(scale.class_sizes)
    if big_rows < max(scale.class_sizes):
        raise ValueError(f"scale {scale.name}: the big tenant must be the largest")
    plans = [TenantPlan(0, "big", big_rows, tuple(range(scale.clusters)))]
    for i, size in enumerate(scale.class_sizes, start=1):
        picked = tuple(sorted(r.sample(range(scale.clusters), scale.clusters_per_tenant)))
        plans.append(TenantPlan(i, str(size), size, picked))
    return plans


def _sample(space: Space, rng: np.random.Generator, clusters: tuple[int, ...], n: int) -> F32:
    which = rng.choice(np.array(clusters), size=n)
    z = rng.standard_normal((n, INTRINSIC_DIMS), dtype=np.float32)
    z *= np.float32(STRUCTURED_NORM / np.sqrt(INTRINSIC_DIMS))
    iso = rng.standard_normal((n, DIMS), dtype=np.float32)
    iso *= np.float32(ISOTROPIC_NORM / np.sqrt(DIMS))
    points = space.centres[which] + iso
    for k in np.unique(which):
        sel = which == k
        points[sel] += z[sel] @ space.bases[int(k)].T
    return _unit(points)


def tenant_vectors(space: Space, plan: TenantPlan, start: int, n: int) -> F32:
    """Rows start..start+n of a tenant (deterministic per (tenant, start): batches reproduce)."""
    rng = np.random.default_rng([SEED, plan.number, start])
    return _sample(space, rng, plan.clusters, n)


def query_vectors(space: Space, plan: TenantPlan, n: int, salt: int = 0) -> F32:
    """n fresh points of the tenant's clusters: queries that look like its data."""
    rng = np.random.default_rng([SEED, plan.number, 10**9 + salt])
    return _sample(space, rng, plan.clusters, n)


def chunk_metadata(row: int) -> str:
    return f'{{"bucket": {row % 10}}}'


def chunk_collection(row: int) -> str:
    return "narrow" if row % 5 == 0 else "main"


def chunk_text(plan: TenantPlan, row: int) -> str:
    r = random.Random(plan.number * 1_000_003 + row)
    words = [r.choice(WORDS) for _ in range(8)]
    if row % 8 == 0:
        words.insert(r.randrange(len(words) + 1), BROAD_WORD)
    return " ".join(words) + " " + narrow_token(plan, row)


def narrow_token(plan: TenantPlan, row: int) -> str:
    """A word found in exactly one chunk of the table."""
    return f"t{plan.number}r{row}x"
