"""Dempster–Shafer fusion of the evidence about one learner on the frame {AT_RISK, NOT_AT_RISK}.

A probability alone cannot say "I do not know": a model that has seen two weeks of a
learner and one that has seen ten both answer a number. A mass function can, by
putting weight on the whole frame (`either`), so every source states its own
uncertainty explicitly and the fused result keeps it apart from the risk itself:
belief is the mass that supports risk, plausibility what does not contradict it.

The binary frame has three focal sets besides the empty one, so everything here is
closed-form arithmetic on three numbers; no DS library is needed or used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

MASS_TOLERANCE: Final = 1e-9
"""How far from 1 a mass may sum: loose enough for the rounding of products and quotients, tight enough to catch a wrong mass."""

CONFLICT_LIMIT: Final = 0.5
"""Above this conflict K Dempster's rule is not trusted. Its normalisation divides by 1 - K, so with
K > 0.5 the little agreement left is more than doubled and two sources that mostly contradict each
other come out sounding sure (Zadeh's paradox); Yager's rule instead keeps the conflict as ignorance."""

MODERATE_FROM: Final = 0.3
HIGH_FROM: Final = 0.5
EXTREME_FROM: Final = 0.7
CATEGORIES: Final = ("Low Risk", "Moderate Risk", "High Risk", "Extreme Risk")

Rule = Literal["dempster", "yager"]


class TotalConflict(ValueError):
    """The sources contradict each other completely (K = 1): Dempster's rule has nothing left to normalise."""


@dataclass(frozen=True, slots=True)
class Mass:
    """A mass function on the binary frame; `either` is the mass on the whole frame, the source's uncertainty.

    `source` names where the mass came from, only so that an invalid one says whose it is;
    two masses with the same numbers are equal whatever their sources.
    """

    at_risk: float
    not_at_risk: float
    either: float
    source: str = field(default="mass", compare=False)

    def __post_init__(self) -> None:
        values = (self.at_risk, self.not_at_risk, self.either)
        if all(math.isfinite(v) and v >= 0 for v in values) and abs(sum(values) - 1) <= MASS_TOLERANCE:
            return
        raise ValueError(
            f"{self.source}: a mass must be non-negative and sum to 1, got at_risk={self.at_risk!r}, "
            f"not_at_risk={self.not_at_risk!r}, either={self.either!r} (sum {sum(values)!r})"
        )


def vacuous(source: str = "vacuous") -> Mass:
    """Total ignorance: the neutral element of every combination here, for a source with nothing to say."""
    return Mass(0.0, 0.0, 1.0, source)


def from_probability(p: float, reliability: float, *, source: str = "model probability") -> Mass:
    """Shafer's discounting of a calibrated probability: trust `reliability` of it, leave the rest undecided.

    A calibrated probability is already a Bayesian mass (p, 1 - p, 0); discounting is the
    standard way to say how far that model is to be believed for this learner.
    """
    _check_unit(source, "probability", p)
    _check_unit(source, "reliability", reliability)
    return Mass(p * reliability, (1 - p) * reliability, 1 - reliability, source)


def reliability_from_auc(roc_auc: float | None) -> float:
    """How far to trust a score as evidence, from its ROC AUC on courses it was not fitted on:
    the Gini coefficient 2 * AUC - 1, so a score that ranks no better than chance (or worse)
    is not trusted at all and one that ranks perfectly fully; no AUC (one outcome only), not at all."""
    if roc_auc is None or not math.isfinite(roc_auc):
        return 0.0
    _check_unit("reliability_from_auc", "ROC AUC", roc_auc)
    return max(0.0, 2 * roc_auc - 1)


def from_anomaly(score: float, reliability: float, *, source: str = "anomaly score") -> Mass:
    """An anomaly score supports risk only: an unusual learner may be in trouble, but a usual one
    is not thereby safe (most learners who drop out look ordinary until they do), so the
    complement goes to `either`, not to NOT_AT_RISK."""
    _check_unit(source, "anomaly score", score)
    _check_unit(source, "reliability", reliability)
    return Mass(score * reliability, 0.0, 1 - score * reliability, source)


def from_rule(fired: bool | None, strength: float, *, source: str = "rule") -> Mass:
    """An expert rule (low grade, inactivity, missed deadlines) that fired puts `strength` on risk.

    A rule that did not fire says nothing, like one without data (None): these rules are
    warning signs, sufficient but far from necessary. Reading "not inactive" as evidence of
    safety would let the quiet rules of an early week (none fired yet) outvote the model
    and, against its risk, manufacture conflict, exactly when the early warning matters.
    """
    _check_unit(source, "strength", strength)
    if fired:
        return Mass(strength, 0.0, 1 - strength, source)
    return vacuous(source)


def combine_dempster(a: Mass, b: Mass) -> tuple[Mass, float]:
    """Dempster's rule: the conjunctive combination with its conflict K removed and the rest rescaled by 1 / (1 - K).

    Raises TotalConflict when 1 - K is within MASS_TOLERANCE of 0: the rescaling would
    divide by (almost) nothing and turn rounding noise into certainty.
    """
    at_risk, not_at_risk, either, conflict = _conjunctive((a, b))
    return _normalised(at_risk, not_at_risk, either, conflict), conflict


def combine_yager(a: Mass, b: Mass) -> tuple[Mass, float]:
    """Yager's rule: the conjunctive combination with its conflict K added to `either`, so that
    contradiction reads as ignorance instead of being rescaled away."""
    at_risk, not_at_risk, either, conflict = _conjunctive((a, b))
    return _yager(at_risk, not_at_risk, either, conflict), conflict


@dataclass(frozen=True, slots=True)
class Fusion:
    """What is stored per learner: belief and plausibility of AT_RISK, the uncertainty between them,
    the conflict K of all the sources together, the rule that combined them, and the category."""

    belief: float
    plausibility: float
    uncertainty: float
    conflict: float
    rule: Rule
    category: str


def fuse(sources: Mapping[str, Mass], conflict_limit: float = CONFLICT_LIMIT) -> Fusion:
    """Combine all the sources at once, by Dempster's rule unless their conflict exceeds `conflict_limit`.

    K is the mass the unnormalised conjunctive combination of all the sources together puts
    on the empty set. Computed at once it does not depend on the order of the sources (the
    conjunctive rule is commutative and associative), and it equals 1 - the product of the
    normalisers (1 - K_i) of a sequential Dempster combination. It is also why Yager's rule is
    applied here to the whole combination and not pairwise: pairwise Yager is not associative.

    With K > conflict_limit the result is Yager's (`rule="yager"`); at or below it, Dempster's.
    No sources at all is total ignorance.
    """
    _check_unit("fuse", "conflict_limit", conflict_limit)
    at_risk, not_at_risk, either, conflict = _conjunctive(tuple(sources.values()))
    rule: Rule = "yager" if conflict > conflict_limit else "dempster"
    combine = _yager if rule == "yager" else _normalised
    mass = combine(at_risk, not_at_risk, either, conflict)
    return Fusion(
        belief=mass.at_risk,
        plausibility=mass.at_risk + mass.either,
        uncertainty=mass.either,
        conflict=conflict,
        rule=rule,
        category=category(mass.at_risk),
    )


def category(belief: float) -> str:
    """The category by belief in risk, each threshold belonging to the higher category."""
    return CATEGORIES[sum(belief >= start for start in (MODERATE_FROM, HIGH_FROM, EXTREME_FROM))]


def _conjunctive(masses: tuple[Mass, ...]) -> tuple[float, float, float, float]:
    """The unnormalised conjunctive combination (at_risk, not_at_risk, either, empty set) of any number of masses.

    The conjunctive rule multiplies commonalities (q(A) = the mass on A and its supersets),
    so on this frame it is three products, one pass and independent of the order:
    q(either) = prod(either), q(at_risk) = prod(at_risk + either), q(not_at_risk) likewise;
    the masses follow by Möbius inversion, and the empty set takes what is left.
    """
    either = math.prod(m.either for m in masses)
    at_risk = math.prod(m.at_risk + m.either for m in masses) - either
    not_at_risk = math.prod(m.not_at_risk + m.either for m in masses) - either
    return at_risk, not_at_risk, either, max(0.0, 1 - at_risk - not_at_risk - either)


def _normalised(at_risk: float, not_at_risk: float, either: float, conflict: float) -> Mass:
    agreement = at_risk + not_at_risk + either  # 1 - K, without the rounding of the subtraction
    if agreement <= MASS_TOLERANCE:
        raise TotalConflict(f"the sources contradict each other completely (K = {conflict!r}): Dempster's rule is undefined")
    return Mass(at_risk / agreement, not_at_risk / agreement, either / agreement, "dempster combination")


def _yager(at_risk: float, not_at_risk: float, either: float, conflict: float) -> Mass:
    return Mass(at_risk, not_at_risk, either + conflict, "yager combination")


def _check_unit(source: str, name: str, value: float) -> None:
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise ValueError(f"{source}: {name} must be between 0 and 1, got {value!r}")
