"""Dempster–Shafer fusion against combinations worked out by hand, the arithmetic in the comments.

A mass is written (at_risk, not_at_risk, either); K is the mass of the empty set.
"""

import itertools
import math

import pytest

from dropout_pipeline.analytics.evidence import (
    CONFLICT_LIMIT,
    Fusion,
    Mass,
    TotalConflict,
    category,
    combine_dempster,
    combine_yager,
    from_anomaly,
    from_probability,
    from_rule,
    fuse,
    vacuous,
)

M1 = Mass(0.6, 0.1, 0.3, "m1")
M2 = Mass(0.5, 0.2, 0.3, "m2")
M3 = Mass(0.2, 0.5, 0.3, "m3")
CERTAIN_RISK = Mass(1.0, 0.0, 0.0, "certain risk")
CERTAIN_SAFE = Mass(0.0, 1.0, 0.0, "certain safe")


def numbers(mass: Mass) -> tuple[float, float, float]:
    return mass.at_risk, mass.not_at_risk, mass.either


def summary(result: Fusion) -> tuple:
    return result.belief, result.plausibility, result.uncertainty, result.conflict, result.rule, result.category


def fused_numbers(sources: dict[str, Mass], **kwargs) -> tuple:
    return summary(fuse(sources, **kwargs))


# m1 ⊕ m2, conjunctively:
#   K      = 0.6*0.2 + 0.1*0.5             = 0.12 + 0.05        = 0.17
#   risk   = 0.6*0.5 + 0.6*0.3 + 0.3*0.5   = 0.30 + 0.18 + 0.15 = 0.63
#   safe   = 0.1*0.2 + 0.1*0.3 + 0.3*0.2   = 0.02 + 0.03 + 0.06 = 0.11
#   either = 0.3*0.3                                            = 0.09   (0.63 + 0.11 + 0.09 = 0.83 = 1 - K)


def test_dempster_removes_the_conflict_and_rescales_by_one_minus_k():
    combined, conflict = combine_dempster(M1, M2)
    assert conflict == pytest.approx(0.17)
    assert numbers(combined) == pytest.approx((0.63 / 0.83, 0.11 / 0.83, 0.09 / 0.83))  # 0.7590, 0.1325, 0.1084


def test_yager_keeps_the_conflict_as_uncertainty():
    combined, conflict = combine_yager(M1, M2)
    assert conflict == pytest.approx(0.17)
    assert numbers(combined) == pytest.approx((0.63, 0.11, 0.09 + 0.17))


@pytest.mark.parametrize("combine", [combine_dempster, combine_yager])
def test_the_vacuous_mass_changes_nothing(combine):
    for mass in (M1, CERTAIN_RISK):
        for combined, conflict in (combine(mass, vacuous()), combine(vacuous(), mass)):
            assert numbers(combined) == pytest.approx(numbers(mass))
            assert conflict == pytest.approx(0.0)


def test_total_conflict_is_refused_by_dempster_and_becomes_ignorance_in_yager_and_fuse():
    # K = 1*1 = 1: nothing is left to normalise
    with pytest.raises(TotalConflict, match="completely"):
        combine_dempster(CERTAIN_RISK, CERTAIN_SAFE)
    assert combine_yager(CERTAIN_RISK, CERTAIN_SAFE) == (Mass(0.0, 0.0, 1.0), 1.0)
    assert fused_numbers({"model": CERTAIN_RISK, "rule": CERTAIN_SAFE}) == (0.0, 1.0, 1.0, 1.0, "yager", "Low Risk")


def test_total_conflict_with_no_fallback_allowed_raises():
    with pytest.raises(TotalConflict):
        fuse({"model": CERTAIN_RISK, "rule": CERTAIN_SAFE}, conflict_limit=1.0)


# (0.5, 0.5, 0) ⊕ (1, 0, 0): K = 0.5*1 = 0.5 exactly; risk 0.5*1 = 0.5, safe 0, either 0.
# Dempster: (0.5 / 0.5, 0, 0) = (1, 0, 0). Yager: (0.5, 0, 0 + 0.5).
HALF_CONFLICT = {"model": Mass(0.5, 0.5, 0.0), "rule": CERTAIN_RISK}


def test_the_fallback_is_taken_just_above_the_limit_and_not_at_it():
    assert CONFLICT_LIMIT == 0.5
    assert fused_numbers(HALF_CONFLICT) == (1.0, 1.0, 0.0, 0.5, "dempster", "Extreme Risk")
    assert fused_numbers(HALF_CONFLICT, conflict_limit=0.5) == (1.0, 1.0, 0.0, 0.5, "dempster", "Extreme Risk")
    below = math.nextafter(0.5, 0.0)
    assert fused_numbers(HALF_CONFLICT, conflict_limit=below) == (0.5, 1.0, 0.5, 0.5, "yager", "High Risk")


def test_the_default_limit_falls_back_above_one_half():
    # (0.6, 0.4, 0) ⊕ (0, 1, 0): K = 0.6*1 = 0.6 > 0.5; safe 0.4, either 0; Yager puts the 0.6 on either
    result = fuse({"model": Mass(0.6, 0.4, 0.0), "rule": CERTAIN_SAFE})
    assert (result.rule, result.conflict, result.belief, result.uncertainty) == ("yager", pytest.approx(0.6), 0.0, pytest.approx(0.6))


# m1 ⊕ m2 ⊕ m3, continuing the unnormalised (0.63, 0.11, 0.09) of m1 ⊕ m2 with m3 = (0.2, 0.5, 0.3):
#   risk   = 0.63*0.2 + 0.63*0.3 + 0.09*0.2 = 0.126 + 0.189 + 0.018 = 0.333
#   safe   = 0.11*0.5 + 0.11*0.3 + 0.09*0.5 = 0.055 + 0.033 + 0.045 = 0.133
#   either = 0.09*0.3                                               = 0.027
#   K      = 1 - 0.333 - 0.133 - 0.027                               = 0.507   (> 0.5: Yager)
# Yager:    belief 0.333, uncertainty 0.027 + 0.507 = 0.534, plausibility 0.333 + 0.534 = 0.867
# Dempster: belief 0.333 / 0.493 = 0.6755, uncertainty 0.027 / 0.493, plausibility 0.360 / 0.493
THREE = {"m1": M1, "m2": M2, "m3": M3}
THREE_YAGER = (0.333, 0.867, 0.534, 0.507, "yager", "Moderate Risk")
THREE_DEMPSTER = (0.333 / 0.493, 0.360 / 0.493, 0.027 / 0.493, 0.507, "dempster", "High Risk")


def test_three_sources_each_pair_tolerable_together_too_conflicting():
    assert fused_numbers(THREE) == pytest.approx(THREE_YAGER)
    assert fused_numbers(THREE, conflict_limit=0.6) == pytest.approx(THREE_DEMPSTER)


def test_the_conflict_of_the_whole_is_one_minus_the_product_of_the_sequential_normalisers():
    m12, k12 = combine_dempster(M1, M2)
    m123, k123 = combine_dempster(m12, M3)
    # k123 = 0.7590*0.5 + 0.1325*0.2 = 0.4060; 1 - 0.83 * (1 - 0.4060) = 0.507
    assert 1 - (1 - k12) * (1 - k123) == pytest.approx(0.507)
    result = fuse(THREE, conflict_limit=0.6)
    assert result.conflict == pytest.approx(1 - (1 - k12) * (1 - k123))
    assert (result.belief, result.uncertainty) == pytest.approx((m123.at_risk, m123.either))


@pytest.mark.parametrize("conflict_limit, expected", [(CONFLICT_LIMIT, THREE_YAGER), (0.6, THREE_DEMPSTER)])
def test_the_order_of_the_sources_does_not_matter(conflict_limit, expected):
    for order in itertools.permutations(THREE):
        assert fused_numbers({name: THREE[name] for name in order}, conflict_limit=conflict_limit) == pytest.approx(expected)


def test_no_sources_is_total_ignorance():
    assert fused_numbers({}) == (0.0, 1.0, 1.0, 0.0, "dempster", "Low Risk")


@pytest.mark.parametrize(
    "belief, expected",
    [
        (0.0, "Low Risk"),
        (math.nextafter(0.3, 0.0), "Low Risk"),
        (0.3, "Moderate Risk"),
        (math.nextafter(0.5, 0.0), "Moderate Risk"),
        (0.5, "High Risk"),
        (math.nextafter(0.7, 0.0), "High Risk"),
        (0.7, "Extreme Risk"),
        (1.0, "Extreme Risk"),
    ],
)
def test_categories_at_their_boundaries(belief, expected):
    assert category(belief) == expected


def test_discounting_a_probability():
    # p = 0.8 trusted at 0.9: risk 0.8*0.9 = 0.72, safe 0.2*0.9 = 0.18, either 1 - 0.9 = 0.1
    assert numbers(from_probability(0.8, 0.9)) == pytest.approx((0.72, 0.18, 0.1))
    assert from_probability(0.8, 0.0) == vacuous()
    assert numbers(from_probability(0.8, 1.0)) == pytest.approx((0.8, 0.2, 0.0))


def test_an_anomaly_score_only_supports_risk():
    # score 0.5 trusted at 0.8: risk 0.5*0.8 = 0.4, the rest 0.6 undecided
    assert numbers(from_anomaly(0.5, 0.8)) == pytest.approx((0.4, 0.0, 0.6))
    assert from_anomaly(0.0, 1.0) == vacuous()
    assert from_anomaly(0.9, 0.0) == vacuous()


def test_a_rule_that_fired_supports_risk_and_one_that_did_not_or_had_no_data_says_nothing():
    assert numbers(from_rule(True, 0.7)) == pytest.approx((0.7, 0.0, 0.3))
    assert from_rule(False, 0.7) == vacuous()
    assert from_rule(None, 0.7) == vacuous()


def test_fusing_a_fired_rule_with_the_model():
    # model (0.4, 0.4, 0.2) ⊕ inactivity fired (0.7, 0, 0.3):
    #   K = 0.4*0.7 = 0.28; risk = 0.4*0.7 + 0.4*0.3 + 0.2*0.7 = 0.28 + 0.12 + 0.14 = 0.54
    #   safe = 0.4*0.3 = 0.12; either = 0.2*0.3 = 0.06; Dempster divides by 0.72
    result = fuse({"model": from_probability(0.5, 0.8), "inactivity": from_rule(True, 0.7), "grade": from_rule(None, 0.9)})
    assert summary(result) == pytest.approx((0.54 / 0.72, 0.60 / 0.72, 0.06 / 0.72, 0.28, "dempster", "Extreme Risk"))


@pytest.mark.parametrize(
    "values, shown",
    [
        ((0.5, 0.6, 0.1), "not_at_risk=0.6"),
        ((-0.1, 0.6, 0.5), "at_risk=-0.1"),
        ((0.5, 0.5, 1e-8), "either=1e-08"),
        ((math.nan, 0.5, 0.5), "at_risk=nan"),
    ],
)
def test_an_invalid_mass_is_refused_naming_its_source_and_values(values, shown):
    with pytest.raises(ValueError, match=r"^low grade rule: a mass must be non-negative and sum to 1") as refused:
        Mass(*values, source="low grade rule")
    assert shown in str(refused.value)


def test_rounding_within_the_tolerance_is_accepted():
    assert Mass(0.5, 0.5, 1e-10).either == 1e-10


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: from_probability(1.2, 0.9, source="model"), "model: probability must be between 0 and 1, got 1.2"),
        (lambda: from_probability(0.5, -0.1, source="model"), "model: reliability must be between 0 and 1, got -0.1"),
        (lambda: from_anomaly(math.inf, 0.5), "anomaly score: anomaly score must be between 0 and 1, got inf"),
        (lambda: from_rule(None, 1.5, source="missed deadlines"), "missed deadlines: strength must be between 0 and 1, got 1.5"),
        (lambda: fuse({}, conflict_limit=2.0), "fuse: conflict_limit must be between 0 and 1, got 2.0"),
    ],
)
def test_inputs_outside_zero_one_are_refused_naming_the_source(make, message):
    with pytest.raises(ValueError) as refused:
        make()
    assert str(refused.value) == message
