"""The GPU memory kept free beside a plan, sized by the estimate's own error, not the card's size.

Measured against NVML (benchmarks/results/h100*.md, split.md, plans.md) the memory estimate is
within about -2.6% .. +2% of what the engine takes (-0.72% .. -0.02% on the H200 shapes of
plans.md), so the margin is a fixed part (the CUDA
runtime's allocations that come and go, other processes' growth between plan and load) plus a
fraction of the planned bytes (the estimate's relative error). On an H200 the old 5%-of-the-card
margin kept 7 GiB idle where llama.cpp's own ``--fit`` keeps 1 GiB (issue 13).

One function serves the planner, the box registry's admission and Ray placement, so all three
agree on what fits.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..units import MiB

#: Defaults: 64 MiB + 1% of the planned bytes. On an H200 (benchmarks/results/plans.md, runs 2-3)
#: the estimate was -0.72% .. -0.02% of NVML on three shapes it was not fitted to (always under,
#: the side that ends in out-of-memory): 1% covers the worst of them with room, and the fixed part
#: covers small plans and what the runtime allocates beside the estimate. The worst error seen
#: anywhere, -2.56% (~100 MiB) on a two-card partial split at 32768 tokens, is inside 64 MiB + 1%
#: of that ~4 GiB share. 256 MiB kept each busy cell one placement step short of the best hand
#: plan, which ran with 141-217 MiB of the card left.
DEFAULT_MARGIN_MIB = 64
DEFAULT_MARGIN_FRACTION = 0.01


@dataclass(frozen=True)
class Margin:
    """``fixed`` bytes plus ``fraction`` of the planned bytes."""

    fixed: int = DEFAULT_MARGIN_MIB * MiB
    fraction: float = DEFAULT_MARGIN_FRACTION

    @classmethod
    def of(cls, margin_mib: float | None = None, fraction: float | None = None) -> Margin:
        """From config values; None means the default. Negative values are clamped to 0."""
        mib = DEFAULT_MARGIN_MIB if margin_mib is None else max(0.0, float(margin_mib))
        frac = DEFAULT_MARGIN_FRACTION if fraction is None else max(0.0, float(fraction))
        return cls(int(mib * MiB), frac)

    def for_bytes(self, planned: int) -> int:
        """The margin kept beside a plan of ``planned`` bytes."""
        return self.fixed + int(max(0, planned) * self.fraction)

    def budget(self, free: int) -> int:
        """The most a plan may take out of ``free`` bytes: the largest P with
        P + margin(P) <= free."""
        return max(0, int((free - self.fixed) / (1.0 + self.fraction)))

    def fits(self, planned: int, free: int) -> bool:
        return planned + self.for_bytes(planned) <= free

    def describe(self) -> str:
        return f"{self.fixed // MiB} MiB + {self.fraction * 100:g}% of the plan"
