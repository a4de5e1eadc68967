"""What a course key says about the course: the subject its runs share.

Open edX keys name one run of a course, `course-v1:ORG+CODE+RUN`; every semester's run of
the same course has the same ORG+CODE. Both recommenders reason about subjects, not
runs: a learner who took PY101 last year has taken this year's PY101 too, and the
learners of last year's run are the classmates who went before.
"""

from __future__ import annotations

import re

OPEN_EDX_KEY = re.compile(r"^course-v1:(?P<org>[^+]+)\+(?P<code>[^+]+)\+(?P<run>[^+]+)$")


def course_subject(course_id: str) -> str:
    """`course-v1:UEL+PY101+2026_S2` -> `UEL+PY101`; a key of another form is its own subject."""
    found = OPEN_EDX_KEY.match(course_id)
    return f"{found['org']}+{found['code']}" if found else course_id


def course_code(course_id: str) -> str:
    """`course-v1:UEL+PY101+2026_S2` -> `PY101` (a key of another form: the key)."""
    found = OPEN_EDX_KEY.match(course_id)
    return found["code"] if found else course_id
