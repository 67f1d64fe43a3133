"""When a candidate model replaces the champion.

A candidate is promoted when its primary metric is not worse than the champion's by more
than ``tolerance`` (absolute, in the metric's units). Every decision carries a reason that
names both values, so the registry explains itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import Field

from components.errors import ConfigError
from pipelines.core.config import StrictModel


class PromotionPolicy(StrictModel):
    """The rule of :func:`decide_promotion`."""

    metric: str = Field("ndcg@10", description="key in the version's metrics used to compare")
    higher_is_better: bool = True
    tolerance: float = Field(0.005, ge=0, description="allowed drop (absolute) vs. the champion")


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide_promotion(candidate: dict[str, float], champion: dict[str, float] | None,
                     policy: PromotionPolicy) -> Decision:
    """Compare a candidate's metrics with the champion's under ``policy``.

    No champion: promote. A candidate without the metric, or with a NaN, is never promoted.
    """
    m = policy.metric
    if m not in candidate:
        raise ConfigError(f"promotion metric '{m}' is not among the candidate's metrics "
                          f"({', '.join(sorted(candidate)) or 'none'}) — set retrain.policy.metric "
                          "to one of them")
    c = float(candidate[m])
    if math.isnan(c):
        return Decision(False, f"candidate {m} is NaN")
    if champion is None:
        return Decision(True, f"no champion yet; candidate {m}={c:.4f}")
    if m not in champion or math.isnan(float(champion[m])):
        return Decision(True, f"champion has no usable {m}; candidate {m}={c:.4f}")
    h = float(champion[m])
    delta = (c - h) if policy.higher_is_better else (h - c)
    verdict = f"candidate {m}={c:.4f} vs champion {h:.4f} (change {delta:+.4f}, tolerance {policy.tolerance})"
    if delta >= -policy.tolerance:
        return Decision(True, f"not worse beyond tolerance: {verdict}")
    return Decision(False, f"worse than champion beyond tolerance: {verdict}")
