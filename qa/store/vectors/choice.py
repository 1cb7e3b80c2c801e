"""Which vector index to build for a given number of chunks (pure logic, no faiss).

Exact search is used while it is fast enough; past a size threshold an inverted-file index
with 8-bit scalar-quantised codes (``ivf-sq8``) takes over, and its candidates are re-scored
exactly from a float16 copy of the vectors. The numbers come from the scale study measured
on a 2-core machine (README, "Speed"): exact search costs about 0.08 ms per 1,000 vectors,
so it stays under 4 ms up to 50k vectors and misses a 10 ms budget by 100k.
"""

from __future__ import annotations

from dataclasses import dataclass

FLAT = "flat"
IVF_SQ8 = "ivf-sq8"
AUTO = "auto"
#: What ``build_index(vector_index=...)`` and ``qa index --vector-index`` accept.
CHOICES = (AUTO, FLAT, IVF_SQ8)
# faiss's k-means wants at least this many training points per list.
_MIN_POINTS_PER_LIST = 39


@dataclass(frozen=True)
class IvfBand:
    """Lists and probes for indexes of fewer than ``below`` vectors."""

    below: int
    nlist: int
    nprobe: int


@dataclass(frozen=True)
class IndexPolicy:
    """The size thresholds; injectable so tests can cross them with a few vectors."""

    #: Switch from exact to approximate search at this many vectors...
    exact_below: int = 50_000
    #: ...and back to exact only below this many (hysteresis: a corpus near the line does
    #: not flip type, and retrain, at every rebuild).
    exact_again_below: int = 40_000
    #: nprobe = nlist / 64 in every band: the same 1.6 % of the data is scanned. IVF1024 up
    #: to 400k, IVF2048 above (measured to 2M; IVF4096 trained 4x longer for +0.1 recall).
    bands: tuple[IvfBand, ...] = (IvfBand(400_000, 1024, 16), IvfBand(2**63 - 1, 2048, 32))
    #: Candidates re-scored exactly from the float16 vectors (recall@10 +1 to 1.5 points).
    rerank: int = 50
    #: Small indexes have few lists, and one probe would cover a single topic.
    min_nprobe: int = 4
    #: Retrain when the index has grown past this multiple of what its centroids saw...
    retrain_growth: float = 4.0
    #: ...or when its lists are this much more unbalanced than right after training (new
    #: topics piling into a few lists: measured 1.32x, with recall@10 down 5 points).
    retrain_imbalance: float = 1.2


DEFAULT_POLICY = IndexPolicy()


@dataclass(frozen=True)
class IndexSpec:
    """The index to build: its type and, for ``ivf-sq8``, lists, probes and re-rank depth."""

    kind: str
    nlist: int = 0
    nprobe: int = 0
    rerank: int = 0


def check_choice(requested: str) -> str:
    """``requested`` if it names a known index type, else ValueError listing the choices."""
    if requested not in CHOICES:
        raise ValueError(f"vector index must be one of {', '.join(CHOICES)}; got {requested!r}")
    return requested


def choose_spec(n: int, requested: str = AUTO, previous_kind: str | None = None,
                policy: IndexPolicy | None = None) -> IndexSpec:
    """The index for ``n`` vectors: ``requested`` unless it is ``auto``, else by size.

    ``previous_kind`` is the type of the index being replaced, for the hysteresis.
    """
    policy = policy or DEFAULT_POLICY
    check_choice(requested)
    if n == 0 or requested == FLAT:
        return IndexSpec(FLAT)
    if requested == AUTO:
        threshold = policy.exact_again_below if previous_kind == IVF_SQ8 else policy.exact_below
        if n < threshold:
            return IndexSpec(FLAT)
    band = next(b for b in policy.bands if n < b.below)
    nlist = max(1, min(band.nlist, n // _MIN_POINTS_PER_LIST))
    nprobe = min(nlist, max(policy.min_nprobe, band.nprobe * nlist // band.nlist))
    return IndexSpec(IVF_SQ8, nlist=nlist, nprobe=nprobe, rerank=policy.rerank)


def needs_retrain(spec: IndexSpec, n: int, trained: dict | None, policy: IndexPolicy | None = None) -> bool:
    """Whether an ``ivf-sq8`` index for ``n`` vectors needs new centroids before adding.

    ``trained`` is the previous index's manifest entry (its ``nlist`` and ``trained_n``).
    The list-balance check happens after adding (see :func:`unbalanced`).
    """
    policy = policy or DEFAULT_POLICY
    if trained is None or trained.get("type") != IVF_SQ8 or trained.get("nlist") != spec.nlist:
        return True
    return n > policy.retrain_growth * int(trained["trained_n"])


def unbalanced(imbalance: float, trained: dict, policy: IndexPolicy | None = None) -> bool:
    """Whether lists filled with reused centroids are too uneven compared with training time."""
    policy = policy or DEFAULT_POLICY
    return imbalance > policy.retrain_imbalance * float(trained["trained_imbalance"])
