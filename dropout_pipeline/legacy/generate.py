"""A generated V1 database on MariaDB, with the legacy system's damage planted on purpose.

Used by the tests and the benchmark. Everything is deterministic (a seed): the same call
makes the same rows, and `Truth` says what was planted where, so a test can hold the import
to it value by value:
- Vietnamese names and chapter titles stored as UTF-8 read back as cp1252 (MySQL's
  "latin1"), as Latin-1, and twice over; one title whose damage lost a byte (irreparable);
- zero dates ('0000-00-00', stored for real: the session runs with sql_mode='') and an
  impossible one (1000-01-01);
- NULL labels in a finished course, percentages above 100, rows with no course (NULL and
  ''), identical duplicate rows and rows sharing a key with different values;
- course keys with '+' and ':' (course-v1:ORG+CODE+RUN), learners present in raw_data but
  not in enrollments.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

ZERO = "0000-00-00 00:00:00"
IMPOSSIBLE = "1000-01-01 00:00:00"

DDL = {
    "raw_data": """CREATE TABLE raw_data (
        id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, course_id VARCHAR(255) NULL,
        enrollment_date DATETIME NULL, mooc_grade_percentage DECIMAL(6,2) NULL, mooc_letter_grade VARCHAR(10) NULL,
        mooc_is_passed BOOLEAN NULL, progress_percent DECIMAL(6,2) NULL, current_chapter VARCHAR(255) NULL,
        current_section VARCHAR(255) NULL, current_unit VARCHAR(255) NULL, mooc_completion_rate DECIMAL(6,4) NULL,
        h5p_total_contents INT NULL, video_total_videos INT NULL, discussion_threads_count INT NULL,
        discussion_comments_count INT NULL, discussion_total_interactions INT NULL, days_since_last_activity DECIMAL(8,2) NULL,
        is_dropout BOOLEAN NULL, fail_risk_score DECIMAL(6,2) NULL, dropout_risk_score DECIMAL(6,2) NULL,
        risk_level VARCHAR(10) NULL, predicted_at DATETIME NULL, updated_at DATETIME NULL, KEY ix_raw_data_course (course_id)
    ) CHARACTER SET utf8mb4""",
    "enrollments": """CREATE TABLE enrollments (
        id BIGINT AUTO_INCREMENT PRIMARY KEY, course_id VARCHAR(255) NULL, user_id INT NOT NULL, username VARCHAR(255),
        email VARCHAR(255), full_name VARCHAR(255), enrollment_id INT, mode VARCHAR(50), is_active BOOLEAN,
        created DATETIME NULL, all_attributes JSON NULL
    ) CHARACTER SET utf8mb4""",
    "mooc_grades": """CREATE TABLE mooc_grades (
        id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, course_id VARCHAR(255) NULL, percent_grade DECIMAL(6,2),
        grade_percentage DECIMAL(6,2), letter_grade VARCHAR(10), is_passed BOOLEAN, fetched_at DATETIME
    ) CHARACTER SET utf8mb4""",
    "mooc_progress": """CREATE TABLE mooc_progress (
        id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, course_id VARCHAR(255) NULL, total_blocks INT,
        completed_blocks INT, progress_percent DECIMAL(6,2), current_chapter VARCHAR(255), current_section VARCHAR(255),
        current_unit VARCHAR(255), completion_rate DECIMAL(6,4), last_activity DATETIME NULL
    ) CHARACTER SET utf8mb4""",
    "mooc_discussions": """CREATE TABLE mooc_discussions (
        id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, course_id VARCHAR(255) NULL, threads_count INT,
        comments_count INT, total_interactions INT, questions_count INT, total_upvotes INT, fetched_at DATETIME
    ) CHARACTER SET utf8mb4""",
    "h5p_scores": """CREATE TABLE h5p_scores (
        id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, course_id VARCHAR(255) NULL, content_id INT,
        content_title VARCHAR(500), score INT, max_score INT, percentage DECIMAL(6,2)
    ) CHARACTER SET utf8mb4""",
    "video_progress": """CREATE TABLE video_progress (
        id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, course_id VARCHAR(255) NULL, content_id INT,
        content_title VARCHAR(500), progress_percent DECIMAL(6,2), `current_time` INT, duration INT, status VARCHAR(20)
    ) CHARACTER SET utf8mb4""",
    "dashboard_summary": """CREATE TABLE dashboard_summary (
        id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, course_id VARCHAR(255) NULL, overall_completion DECIMAL(6,2),
        total_items INT, completed_items INT, h5p_total_contents INT, video_total_videos INT
    ) CHARACTER SET utf8mb4""",
}
COLUMNS = {
    "raw_data": ["id", "user_id", "course_id", "enrollment_date", "mooc_grade_percentage", "mooc_letter_grade", "mooc_is_passed",
                 "progress_percent", "current_chapter", "current_section", "current_unit", "mooc_completion_rate",
                 "h5p_total_contents", "video_total_videos", "discussion_threads_count", "discussion_comments_count",
                 "discussion_total_interactions", "days_since_last_activity", "is_dropout", "fail_risk_score",
                 "dropout_risk_score", "risk_level", "predicted_at", "updated_at"],
    "enrollments": ["id", "course_id", "user_id", "username", "email", "full_name", "enrollment_id", "mode", "is_active", "created", "all_attributes"],
    "mooc_grades": ["id", "user_id", "course_id", "percent_grade", "grade_percentage", "letter_grade", "is_passed", "fetched_at"],
    "mooc_progress": ["id", "user_id", "course_id", "total_blocks", "completed_blocks", "progress_percent", "current_chapter",
                      "current_section", "current_unit", "completion_rate", "last_activity"],
    "mooc_discussions": ["id", "user_id", "course_id", "threads_count", "comments_count", "total_interactions", "questions_count",
                         "total_upvotes", "fetched_at"],
    "h5p_scores": ["id", "user_id", "course_id", "content_id", "content_title", "score", "max_score", "percentage"],
    "video_progress": ["id", "user_id", "course_id", "content_id", "content_title", "progress_percent", "current_time", "duration", "status"],
    "dashboard_summary": ["id", "user_id", "course_id", "overall_completion", "total_items", "completed_items", "h5p_total_contents",
                          "video_total_videos"],
}

LAST = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý"]
MIDDLE = ["Thị", "Văn", "Hữu", "Đức", "Minh", "Ngọc", "Thanh", "Quốc", "Thùy", "Xuân"]
FIRST = ["Hồng Nhung", "Anh", "Bảo", "Châu", "Dũng", "Giang", "Hà", "Hải", "Hiếu", "Khánh", "Linh", "Lộc", "Mỹ", "Phúc", "Quỳnh",
         "Sơn", "Thảo", "Trí", "Tuấn", "Việt", "Yến", "Đạt"]
CHAPTERS = ["Chương 1: Giới thiệu môn học", "Chương 2: Kiến thức nền tảng", "Chương 3: Thực hành", "Chương 4: Ôn tập cuối kỳ"]
ORGS = [("UEL", "NLTT"), ("DHQG-HCM", "FM"), ("HCMUS", "CS"), ("UIT", "IT"), ("HUST", "ME")]


def cp1252_mojibake(text: str, layers: int = 1, codec: str = "sloppy-windows-1252") -> str:
    """UTF-8 read back as cp1252 (or Latin-1), `layers` times."""
    import ftfy.bad_codecs  # noqa: F401 - registers sloppy-windows-1252: MySQL's "latin1"

    for _ in range(layers):
        text = text.encode("utf-8").decode(codec)
    return text


def lossy_mojibake(text: str) -> str:
    """cp1252 mojibake whose undefined bytes were dropped by a conversion: not recoverable."""
    return text.encode("utf-8").decode("cp1252", errors="ignore")


@dataclass
class Truth:
    """What the generator planted: what a correct import must find."""

    courses: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    raw_rows: int = 0
    true_text: dict[tuple[str, int, str], str] = field(default_factory=dict)  # (table, id, column) -> the true text of a damaged value
    suspect: set[tuple[str, int, str]] = field(default_factory=set)  # damaged beyond repair
    nulled_dates: set[tuple[str, int, str]] = field(default_factory=set)  # zero or impossible dates
    quarantine: set[tuple[str, int, str, str]] = field(default_factory=set)  # (table, id, part, reason)
    not_enrolled: set[tuple[str, int]] = field(default_factory=set)
    unlabelled_in_finished: int = 0


@dataclass(frozen=True)
class Shape:
    courses: int = 6
    learners: int = 30
    finished_share: float = 0.67
    side_tables: tuple[str, ...] = tuple(t for t in DDL if t != "raw_data")
    traps: bool = True
    seed: int = 11


class _Rows:
    def __init__(self) -> None:
        self.rows: dict[str, list[list]] = {t: [] for t in DDL}

    def add(self, table: str, values: dict) -> int:
        rows = self.rows[table]
        row_id = len(rows) + 1
        rows.append([row_id, *(values.get(c) for c in COLUMNS[table][1:])])
        return row_id


def _course_keys(n: int) -> list[str]:
    keys = []
    for i in range(n):
        org, code = ORGS[i % len(ORGS)]
        keys.append(f"course-v1:{org}+{code}{101 + i}+{2024 + (i % 2)}_S{1 + (i // 2) % 2}")
    return keys


def generate_rows(shape: Shape) -> tuple[dict[str, list[list]], Truth]:
    rng = random.Random(shape.seed)
    out, truth = _Rows(), Truth()
    truth.courses = _course_keys(shape.courses)
    n_finished = max(1, round(shape.courses * shape.finished_share)) if shape.courses > 1 else 1
    truth.finished = truth.courses[:n_finished]
    base = datetime(2025, 1, 6, 8, 0, 0)
    side = set(shape.side_tables)
    for c_index, course in enumerate(truth.courses):
        finished = course in truth.finished
        start = base + timedelta(days=30 * (c_index % 10))
        end = start + timedelta(days=70)
        for l_index in range(shape.learners):
            user_id = 1000 + l_index * 7 + c_index  # learners repeat across courses in part
            name = f"{LAST[rng.randrange(len(LAST))]} {MIDDLE[rng.randrange(len(MIDDLE))]} {FIRST[rng.randrange(len(FIRST))]}"
            engagement = rng.random()
            grade = round(min(100.0, max(0.0, rng.gauss(35 + 60 * engagement, 12))), 2)
            passed = grade >= 50
            inactive = round(max(0.0, rng.gauss(60 * (1 - engagement), 10)), 2)
            dropout = inactive > 30
            completion = round(min(1.0, max(0.0, engagement + rng.gauss(0, 0.1))), 4)
            fail_score = round(min(100.0, max(0.0, 100 * (1 - engagement) + rng.gauss(0, 18))), 2)
            enrolled = start - timedelta(days=rng.randrange(0, 10), hours=rng.randrange(24))
            chapter = CHAPTERS[min(3, int(engagement * 4))]
            predicted = end - timedelta(days=7) if finished else datetime(2026, 11, 20, 6, 0)
            row = {
                "user_id": user_id, "course_id": course, "enrollment_date": enrolled, "mooc_grade_percentage": grade,
                "mooc_letter_grade": "Pass" if passed else None, "mooc_is_passed": int(passed) if finished else None,
                "progress_percent": round(100 * completion, 2), "current_chapter": chapter, "current_section": "Bài 1",
                "current_unit": "Video bài giảng", "mooc_completion_rate": completion, "h5p_total_contents": rng.randrange(0, 12),
                "video_total_videos": 12, "discussion_threads_count": rng.randrange(0, 4), "discussion_comments_count": rng.randrange(0, 9),
                "discussion_total_interactions": rng.randrange(0, 15), "days_since_last_activity": inactive,
                "is_dropout": int(dropout) if finished else None, "fail_risk_score": fail_score,
                "dropout_risk_score": round(min(100.0, max(0.0, fail_score + rng.gauss(0, 10))), 2),
                "risk_level": "HIGH" if fail_score >= 70 else ("MEDIUM" if fail_score >= 40 else "LOW"),
                "predicted_at": predicted, "updated_at": end if finished else datetime(2026, 11, 20, 5, 0),
            }
            skip_enrolment = shape.traps and l_index == shape.learners - 1 and c_index < 3  # in raw_data, not in enrollments
            out.add("raw_data", row)
            if "enrollments" in side and not skip_enrolment:
                out.add("enrollments", {
                    "course_id": course, "user_id": user_id, "username": f"user{user_id}", "email": f"user{user_id}@example.edu.vn",
                    "full_name": name, "enrollment_id": c_index * 100_000 + l_index, "mode": "audit", "is_active": 1,
                    "created": enrolled, "all_attributes": '{"source": "v1"}',
                })
            elif skip_enrolment:
                truth.not_enrolled.add((course, user_id))
            if "mooc_grades" in side:
                out.add("mooc_grades", {"user_id": user_id, "course_id": course, "percent_grade": grade, "grade_percentage": grade,
                                        "letter_grade": row["mooc_letter_grade"], "is_passed": int(passed), "fetched_at": end})
            if "mooc_progress" in side:
                out.add("mooc_progress", {"user_id": user_id, "course_id": course, "total_blocks": 40, "completed_blocks": int(40 * completion),
                                          "progress_percent": row["progress_percent"], "current_chapter": chapter, "current_section": "Bài 1",
                                          "current_unit": "Video bài giảng", "completion_rate": completion,
                                          "last_activity": end - timedelta(days=inactive)})
            if "mooc_discussions" in side:
                out.add("mooc_discussions", {"user_id": user_id, "course_id": course, "threads_count": row["discussion_threads_count"],
                                             "comments_count": row["discussion_comments_count"], "total_interactions": row["discussion_total_interactions"],
                                             "questions_count": 0, "total_upvotes": rng.randrange(0, 5), "fetched_at": end})
            if "h5p_scores" in side:
                for content_id in range(1, 3):
                    score = rng.randrange(0, 11)
                    out.add("h5p_scores", {"user_id": user_id, "course_id": course, "content_id": content_id,
                                           "content_title": f"Bài tập {content_id}: Câu hỏi trắc nghiệm", "score": score, "max_score": 10,
                                           "percentage": 10.0 * score})
            if "video_progress" in side:
                out.add("video_progress", {"user_id": user_id, "course_id": course, "content_id": 1, "content_title": "Giới thiệu",
                                           "progress_percent": row["progress_percent"], "current_time": 300, "duration": 600,
                                           "status": "completed" if completion > 0.9 else "in_progress"})
            if "dashboard_summary" in side:
                out.add("dashboard_summary", {"user_id": user_id, "course_id": course, "overall_completion": row["progress_percent"],
                                              "total_items": 24, "completed_items": int(24 * completion), "h5p_total_contents": 2,
                                              "video_total_videos": 12})
        truth.raw_rows = len(out.rows["raw_data"])
    if shape.traps:
        _plant(out, truth, side)
    truth.raw_rows = len(out.rows["raw_data"])
    return out.rows, truth


def _set(rows: _Rows, table: str, row_id: int, column: str, value) -> None:
    rows.rows[table][row_id - 1][COLUMNS[table].index(column)] = value


def _get(rows: _Rows, table: str, row_id: int, column: str):
    return rows.rows[table][row_id - 1][COLUMNS[table].index(column)]


def _plant(out: _Rows, truth: Truth, side: set[str]) -> None:
    """The traps, at fixed rows (ids are 1-based insertion order)."""
    raw = out.rows["raw_data"]
    finished_ids = [i + 1 for i, r in enumerate(raw) if r[2] in truth.finished]
    running_ids = [i + 1 for i, r in enumerate(raw) if r[2] not in truth.finished]
    # Mojibake in names (enrollments) and chapter titles (mooc_progress), one kind each.
    if "enrollments" in side:
        for row_id, (layers, codec) in zip((2, 5, 9, 14), ((1, "sloppy-windows-1252"), (1, "latin-1"), (2, "sloppy-windows-1252"), (2, "latin-1"))):
            true = _get(out, "enrollments", row_id, "full_name")
            if true.isascii():
                continue
            _set(out, "enrollments", row_id, "full_name", cp1252_mojibake(true, layers, codec))
            truth.true_text[("enrollments", row_id, "full_name")] = true
        _set(out, "enrollments", 3, "created", ZERO)
        truth.nulled_dates.add(("enrollments", 3, "created"))
    if "mooc_progress" in side:
        for row_id in (4, 7):
            true = _get(out, "mooc_progress", row_id, "current_chapter")
            _set(out, "mooc_progress", row_id, "current_chapter", cp1252_mojibake(true, 1 if row_id == 4 else 2))
            truth.true_text[("mooc_progress", row_id, "current_chapter")] = true
        _set(out, "mooc_progress", 8, "current_unit", lossy_mojibake("Bài học 1"))  # 'há»c': a byte lost
        truth.suspect.add(("mooc_progress", 8, "current_unit"))
        _set(out, "mooc_progress", 10, "last_activity", ZERO)
        _set(out, "mooc_progress", 11, "last_activity", IMPOSSIBLE)
        truth.nulled_dates |= {("mooc_progress", 10, "last_activity"), ("mooc_progress", 11, "last_activity")}
        out.add("mooc_progress", dict(zip(COLUMNS["mooc_progress"][1:], out.rows["mooc_progress"][0][1:])) | {"course_id": None})
        truth.quarantine.add(("mooc_progress", len(out.rows["mooc_progress"]), "row", "no_course"))
    # raw_data: mojibake in a chapter title, a zero enrolment date, a zero prediction time.
    true = _get(out, "raw_data", running_ids[0], "current_chapter")
    _set(out, "raw_data", running_ids[0], "current_chapter", cp1252_mojibake(true, 2))
    truth.true_text[("raw_data", running_ids[0], "current_chapter")] = true
    _set(out, "raw_data", finished_ids[3], "enrollment_date", ZERO)
    truth.nulled_dates.add(("raw_data", finished_ids[3], "enrollment_date"))
    _set(out, "raw_data", finished_ids[4], "predicted_at", ZERO)
    truth.nulled_dates.add(("raw_data", finished_ids[4], "predicted_at"))
    truth.quarantine.add(("raw_data", finished_ids[4], "prediction", "missing_value"))
    # NULL labels in a finished course: no training row, the prediction kept.
    for row_id in (finished_ids[5], finished_ids[6]):
        _set(out, "raw_data", row_id, "mooc_is_passed", None)
        truth.unlabelled_in_finished += 1
    _set(out, "raw_data", finished_ids[7], "is_dropout", None)
    truth.unlabelled_in_finished += 1
    # Percentages above 100.
    _set(out, "raw_data", finished_ids[8], "mooc_grade_percentage", 104.5)
    _set(out, "raw_data", running_ids[1], "fail_risk_score", 130)
    truth.quarantine |= {("raw_data", finished_ids[8], "row", "out_of_range"), ("raw_data", running_ids[1], "row", "out_of_range")}
    if "h5p_scores" in side:
        _set(out, "h5p_scores", 6, "percentage", 250)
        truth.quarantine.add(("h5p_scores", 6, "row", "out_of_range"))
    # Duplicates: an identical copy (the copy quarantined), a key with two versions (both).
    copy = dict(zip(COLUMNS["raw_data"][1:], raw[finished_ids[10] - 1][1:]))
    truth.quarantine.add(("raw_data", out.add("raw_data", copy), "row", "duplicate"))
    other = dict(zip(COLUMNS["raw_data"][1:], raw[finished_ids[11] - 1][1:])) | {"fail_risk_score": 12.5}
    truth.quarantine |= {("raw_data", finished_ids[11], "row", "duplicate_key"), ("raw_data", out.add("raw_data", other), "row", "duplicate_key")}
    if "mooc_grades" in side:
        copy = dict(zip(COLUMNS["mooc_grades"][1:], out.rows["mooc_grades"][2][1:]))
        truth.quarantine.add(("mooc_grades", out.add("mooc_grades", copy), "row", "duplicate"))
    # Rows with no course.
    for course in (None, ""):
        orphan = dict(zip(COLUMNS["raw_data"][1:], raw[running_ids[2] - 1][1:])) | {"course_id": course, "user_id": 999_999}
        truth.quarantine.add(("raw_data", out.add("raw_data", orphan), "row", "no_course"))


def create_v1_database(url: str, shape: Shape = Shape()) -> Truth:
    """Create the V1 tables in the (empty) database at `url` and fill them."""
    rows, truth = generate_rows(shape)
    engine = sa.create_engine(url, connect_args={"charset": "utf8mb4"})
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("SET SESSION sql_mode = ''")  # V1's servers stored zero dates
            for table in ["raw_data", *shape.side_tables]:
                connection.exec_driver_sql(DDL[table])
                names = ", ".join(f"`{c}`" for c in COLUMNS[table])
                statement = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(COLUMNS[table]))})"
                cursor = connection.connection.driver_connection.cursor()
                batch = rows[table]
                for start in range(0, len(batch), 10_000):
                    cursor.executemany(statement, batch[start : start + 10_000])
                cursor.close()
    finally:
        engine.dispose()
    return truth
