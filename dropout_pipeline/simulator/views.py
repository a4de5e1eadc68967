"""What the simulated platform answers on a given day: the contract's JSON, as plain dicts.

`day` is the moment answered for, counted in days from the course start (its local
midnight): the end of the `as_of` date, or the platform's present (06:00 of the course's
first day is 0.25). An event on day d has happened when d < day. Learners who enrol later
are not listed yet.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import numpy as np

from dropout_pipeline.simulator.world import PASS_CUTOFF, CourseLearners, H5P_PER_WEEK, BLOCKS_PER_WEEK, VIDEOS_PER_WEEK


def day_of(learners: CourseLearners, as_of: date) -> float:
    """The end of the `as_of` date."""
    return float((as_of - learners.spec.start).days + 1)


def moment_of(learners: CourseLearners, at: datetime) -> float:
    """A moment (naive, the platform's local time)."""
    return (at - datetime.combine(learners.spec.start, time())) / timedelta(days=1)


def answer_day(learners: CourseLearners, as_of: date | None, now: datetime) -> float:
    """What an answer describes: the end of the `as_of` date, or the present when `as_of` is
    absent or that day is not over yet (nobody knows what the rest of today will bring)."""
    present = moment_of(learners, now)
    return present if as_of is None else min(day_of(learners, as_of), present)


def _stamp(learners: CourseLearners, day: float) -> str:
    return (learners.spec.start_at + timedelta(days=float(day))).isoformat(timespec="seconds")


def visible(learners: CourseLearners, day: float) -> np.ndarray:
    """Indices of learners enrolled by the end of `day`."""
    return np.flatnonzero(learners.enrolment_day < day)


def _username(learners: CourseLearners, i: int) -> str:
    return learners.names[i].lower().replace(" ", "") + str(learners.user_ids[i] % 10_000)


def enrollment(learners: CourseLearners, i: int, day: float) -> dict:
    i = int(i)
    user_id = int(learners.user_ids[i])
    username = _username(learners, i)
    return {
        "enrollment_id": 90_000_000 + user_id * 7 + i,
        "user_id": user_id,
        "username": username,
        "email": f"{username}@example.edu",
        "full_name": learners.names[i],
        "mode": learners.modes[i],
        "is_active": bool(learners.unenrol_day[i] >= day),  # unenrolled learners stay listed, inactive
        "created": _stamp(learners, learners.enrolment_day[i]),
        "attributes": {"faculty": learners.spec.display_name.split()[0], "cohort": f"K{45 + i % 6}"},
    }


def grades(learners: CourseLearners, day: float, indices: np.ndarray) -> list[dict]:
    weeks = learners.spec.weeks
    done = learners.h5p_done[indices] < day
    percent = np.where(done, learners.h5p_percent[indices], 0.0).reshape(len(indices), weeks, H5P_PER_WEEK)
    attempted = done.reshape(len(indices), weeks, H5P_PER_WEEK).any(axis=2)
    section = percent.mean(axis=2) / 100
    overall = section.mean(axis=1)
    rows = []
    for k, i in enumerate(indices):
        passed = bool(overall[k] >= PASS_CUTOFF)
        rows.append(
            {
                "user_id": int(learners.user_ids[i]),
                "percent_grade": round(float(overall[k]), 4),
                "letter_grade": "Pass" if passed else None,
                "is_passed": passed,
                "section_breakdown": [
                    {"label": f"HW {w + 1:02d}", "category": "Homework", "percent": round(float(section[k, w]), 4), "attempted": bool(attempted[k, w])}
                    for w in range(weeks)
                ],
            }
        )
    return rows


def last_activity_day(learners: CourseLearners, i: int, day: float) -> float | None:
    events = learners.last_event_day[i]
    position = np.searchsorted(events, day, side="left")
    return float(events[position - 1]) if position else None


def progress(learners: CourseLearners, day: float, indices: np.ndarray) -> list[dict]:
    total = learners.spec.weeks * BLOCKS_PER_WEEK
    completed = (learners.block_done[indices] < day).sum(axis=1)
    rows = []
    for k, i in enumerate(indices):
        last = last_activity_day(learners, i, day)
        current_week = min(int(completed[k]) // BLOCKS_PER_WEEK + 1, learners.spec.weeks)
        rows.append(
            {
                "user_id": int(learners.user_ids[i]),
                "total_blocks": total,
                "completed_blocks": int(completed[k]),
                "progress_percent": round(100 * completed[k] / total, 2),
                "current_chapter": f"Week {current_week}",
                "current_section": f"Lesson {int(completed[k]) % BLOCKS_PER_WEEK + 1}",
                "current_unit": f"Unit {int(completed[k]) + 1}",
                "completion_rate": round(float(completed[k] / total), 4),
                "last_activity": _stamp(learners, last) if last is not None else None,
            }
        )
    return rows


def discussions(learners: CourseLearners, day: float, indices: np.ndarray) -> list[dict]:
    rows = []
    for i in indices:
        happened = learners.post_days[i] < day
        kinds = learners.post_kinds[i][happened]
        threads = int((kinds == "thread").sum())
        questions = int((kinds == "question").sum())
        comments = int((kinds == "comment").sum())
        rows.append(
            {
                "user_id": int(learners.user_ids[i]),
                "threads_count": threads + questions,
                "comments_count": comments,
                "total_interactions": int(happened.sum()),
                "questions_count": questions,
                "total_upvotes": int(learners.post_upvotes[i][happened].sum()),
            }
        )
    return rows


def complete_student(learners: CourseLearners, day: float, indices: np.ndarray) -> list[dict]:
    parts = zip(grades(learners, day, indices), progress(learners, day, indices), discussions(learners, day, indices), strict=False)
    return [
        {"user_id": g["user_id"], "enrollment": enrollment(learners, i, day), "grade": g, "progress": p, "discussion": d}
        for i, (g, p, d) in zip(indices, parts, strict=False)
    ]


def h5p_scores(learners: CourseLearners, i: int, day: float) -> dict:
    """A course without H5P content has no scores: its graded work lives in the MOOC only."""
    done = np.flatnonzero(learners.h5p_done[i] < day) if learners.spec.has_h5p else []
    scores = []
    for j in done:
        percent = float(learners.h5p_percent[i, j])
        scores.append(
            {
                "content_id": int(learners.h5p_content_ids[j]),
                "content_title": f"Quiz {j // H5P_PER_WEEK + 1}.{j % H5P_PER_WEEK + 1}",
                "content_type": "H5P.QuestionSet",
                "score": round(percent / 10, 1),
                "max_score": 10,
                "percentage": percent,
                "attempts": int(learners.h5p_attempts[i, j]),
                "finished_at": _stamp(learners, learners.h5p_done[i, j]),
            }
        )
    return {"user_id": int(learners.user_ids[i]), "course_id": learners.spec.course_id, "scores": scores}


def video_progress(learners: CourseLearners, i: int, day: float) -> dict:
    started = np.flatnonzero(learners.video_started[i] < day)
    videos = []
    for j in started:
        duration = int(learners.video_durations[j])
        done_day = learners.video_done[i, j]
        if done_day < day:
            fraction, status, watched = 1.0, "completed", done_day
        else:
            begun = learners.video_started[i, j]
            fraction = learners.video_final_fraction[i] if not np.isfinite(done_day) else (day - begun) / max(done_day - begun, 1e-6)
            fraction, status, watched = min(max(float(fraction), 0.01), 0.99), "in_progress", min(day - 0.01, begun + 0.2)
        videos.append(
            {
                "content_id": int(learners.video_content_ids[j]),
                "content_title": f"Lecture {j // VIDEOS_PER_WEEK + 1}.{j % VIDEOS_PER_WEEK + 1}",
                "progress_percent": round(100 * fraction, 1),
                "current_time": int(duration * fraction),
                "duration": duration,
                "status": status,
                "last_watched_at": _stamp(learners, watched),
            }
        )
    return {"user_id": int(learners.user_ids[i]), "course_id": learners.spec.course_id, "videos": videos}


def dashboard(learners: CourseLearners, i: int, day: float) -> dict:
    n_h5p = learners.h5p_done.shape[1] if learners.spec.has_h5p else 0
    n_video = learners.video_done.shape[1]
    h5p_completed = int((learners.h5p_done[i] < day).sum()) if n_h5p else 0
    video_completed = int((learners.video_done[i] < day).sum())
    total = n_h5p + n_video
    return {
        "user_id": int(learners.user_ids[i]),
        "course_id": learners.spec.course_id,
        "overall_completion": round(100 * (h5p_completed + video_completed) / total, 2) if total else 0.0,
        "total_items": total,
        "completed_items": h5p_completed + video_completed,
        "h5p_total_contents": n_h5p,
        "h5p_completed_contents": h5p_completed,
        "video_total_videos": n_video,
        "video_completed_videos": video_completed,
    }


def parse_as_of(value: str | None) -> date | None:
    """The `as_of` query parameter (YYYY-MM-DD), or None when absent."""
    return None if value is None else datetime.strptime(value, "%Y-%m-%d").date()
