"""The simulator's hidden state (simulator.world.hidden_state): the very draws the world made
its learners from, which benchmarks/train.py's oracle reads each learner's chances from."""

from datetime import date

import numpy as np
import pytest

from dropout_pipeline.simulator.world import H5P_PER_WEEK, _completion_days, build_catalog, generate_learners, hidden_state, profile_settings


@pytest.mark.parametrize("profile", ["default", "realistic"])
def test_the_hidden_state_is_what_the_world_made_its_learners_from(profile):
    for spec in build_catalog(profile_settings(profile, seed=42, today=date(2026, 12, 4)))[:2]:
        behaviour, traits = hidden_state(spec)
        learners = generate_learners(spec)
        # The H5P items each learner finished, and when, follow from its work and H5P pace alone.
        h5p_done = _completion_days(behaviour.work * traits["h5p_pace"][:, None], H5P_PER_WEEK, behaviour.deadline_rush)
        assert np.array_equal(h5p_done, learners.h5p_done)
        if profile == "realistic":  # work only between the first week and the withdrawal week the traits say
            week = np.arange(spec.weeks)[None, :]
            active = (week >= traits["first_week"][:, None]) & (week < traits["stop_week"][:, None])
            assert not ((behaviour.work > 0) & ~active).any() and ((behaviour.work > 0) & active).any()
            assert ((traits["hazard"] > 0) & (traits["hazard"] < 1)).all() and (traits["skip_rate"] < 1).all()
