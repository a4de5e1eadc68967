"""The end-of-cycle summary a person reads: courses, what the cycle did, model quality by
week, who is at risk, and what failed."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from dropout_pipeline.cycle import CycleReport
from dropout_pipeline.lifecycle.plan import CourseState, Phase
from dropout_pipeline.modeling.metrics import WORKLIST_SHARE
from dropout_pipeline.modeling.retrain import RULE
from dropout_pipeline.modeling.scorers import CANDIDATES
from dropout_pipeline.predictions.queries import course_statistics, worklist
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import read_frame
from dropout_pipeline.storage.model_tables import default_model, model_label


def shown_score(score: float) -> str:
    """One decimal, without claiming a certainty no model has: 99.97 reads '>99.9', not '100.0'."""
    return ">99.9" if score >= 99.95 else "<0.1" if score < 0.05 else f"{score:.1f}"


def _model_section(connection: sa.Connection) -> list[str]:
    lines = []
    for target, title in (("fail", "Fail-risk model"), ("dropout", "Dropout-risk model")):
        model = default_model(connection, target)
        if model is None:
            lines.append(f"{title}: none registered yet")
            continue
        perf = schema.model_performance
        rows = read_frame(
            connection,
            sa.select(perf.c.scorer, perf.c.snapshot_week, perf.c.n_samples, perf.c.roc_auc, perf.c.calibration_error)
            .where(perf.c.model_name == model["model_name"], perf.c.model_version == model["model_version"], perf.c.course_id == "all"),
        )
        table = rows.pivot_table(index="snapshot_week", columns="scorer", values="roc_auc", dropna=False)
        chosen = model["metrics"].get("candidate", "catboost")  # versions before candidates were chosen: CatBoost
        scorers = [name for name in (*CANDIDATES, RULE) if name in table.columns]
        sizes = rows[rows["scorer"] == chosen].set_index("snapshot_week")["n_samples"]
        overall_rows = rows[rows["snapshot_week"].isna()].set_index("scorer")
        lines.append(
            f"{title}: {model_label(model)}, a {model['model_type']} ({chosen}, the best of the candidates at early warning), "
            f"trained on {model['training_rows']} rows, held out: {', '.join(model['holdout_courses'])}"
        )
        lines.append("  ROC AUC on held-out courses by course week (candidates and the rule):")
        lines.append("    week      n " + "".join(f"{name[:20]:>21}" for name in scorers))
        auc = lambda value: f"{value:21.3f}"  # noqa: E731
        for week in sorted(w for w in table.index if pd.notna(w))[:8]:
            lines.append(f"    {int(week):>4} {int(sizes.get(week, 0)):>6} " + "".join(auc(table.loc[week].get(name, float("nan"))) for name in scorers))
        all_n = int(sizes[sizes.index.isna()].iloc[0]) if sizes.index.isna().any() else 0
        lines.append(f"     all {all_n:>6} " + "".join(auc(overall_rows["roc_auc"].get(name, float("nan"))) for name in scorers))
        if chosen in overall_rows.index:
            lines.append(f"  Calibration error (ECE) of its scores on the held-out rows: {overall_rows.loc[chosen, 'calibration_error']:.3f}")
    return lines


def _at_risk_section(connection: sa.Connection, course_ids: list[str], top: int) -> list[str]:
    lines = []
    for course_id in course_ids:
        stats = course_statistics(connection, course_id)
        if stats["not_yet_predicted"] == stats["total_students"]:
            lines.append(f"{course_id}: not predicted yet ({stats['total_students']} learners with features)")
            continue
        listed = worklist(connection, course_id)
        lines.append(
            f"{course_id}: {stats['total_students']} learners, mean fail risk {stats['avg_risk_score']:.1f}, "
            f"{stats['high_risk_count']} at HIGH risk, {stats['not_yet_predicted']} not yet predicted; worklist of {len(listed)}"
        )
        for _, s in listed.head(top).iterrows():
            reasons = "; ".join(r["text"] for r in (s["reasons"] or [])) or "no risk signal"
            lines.append(f"  {shown_score(s['fail_risk_score']):>5} {s['risk_level']:<6} {s['full_name'] or s['user_id']!s:<24} {reasons}")
    return lines


def _cycle_line(report: CycleReport) -> str:
    frozen, predicted = report.succeeded(Phase.FREEZE), report.succeeded(Phase.REFRESH)
    retrained = report.attempted(Phase.RETRAIN)
    retrain = retrained[0].outcome if retrained else f"not needed ({report.plan.retrain_reason})"
    return (
        f"This cycle: {_courses(len(frozen))} frozen, {_courses(len(predicted))} predicted, {len(report.failures)} failed. "
        f"Retrain: {retrain}"
    )


def _courses(count: int) -> str:
    return f"{count} course{'' if count == 1 else 's'}"


def render_summary(engine: sa.Engine, report: CycleReport, top: int = 5) -> str:
    plan = report.plan
    running = [step.course_id for step in plan.courses if step.state is CourseState.RUNNING]
    with engine.connect() as connection:
        learners = connection.execute(sa.select(sa.func.count()).select_from(schema.enrollments)).scalar()
        training_rows = connection.execute(sa.select(sa.func.count()).select_from(schema.training_data)).scalar()
        lines = [
            "=" * 78,
            f"Summary of {report.day}",
            "=" * 78,
            f"Courses: {plan.count(CourseState.UPCOMING)} upcoming, {plan.count(CourseState.RUNNING)} running, "
            f"{plan.count(CourseState.FINISHED)} finished; {learners} enrolments stored; {training_rows} frozen training rows",
            _cycle_line(report),
            "",
            *_model_section(connection),
            "",
            f"Most at-risk learners of each running course: the first {top} of its worklist (its riskiest {WORKLIST_SHARE:.0%}, "
            "or the course's own share in course_model_mapping), with the reasons behind each score:",
            *_at_risk_section(connection, running, top),
        ]
    if report.failures:
        lines += ["", "Failures:"] + [
            f"  {' '.join(filter(None, (step.run.job_name, step.run.partition_key)))}: {step.outcome}" for step in report.failures
        ]
    return "\n".join(lines)


def render_web_hint(shown_db_url: str, dagster_home: str, admin_token: str, data_dir: str) -> str:
    """The demo's closing lines: the web app on the same storage, and a ready admin token."""
    return (
        "\nOpen the teachers' and admins' web app on the same data:\n"
        f"  DAGSTER_HOME={dagster_home} DROPOUT_DB_URL=\"{shown_db_url}\" .venv/bin/dropout-pipeline serve --data-dir {data_dir}\n"
        "  then open http://127.0.0.1:8000/login and paste this admin token (made now, shown once):\n"
        f"    {admin_token}\n"
        "  (or: curl -H 'Authorization: Bearer <token>' http://127.0.0.1:8000/api/v1/courses; a teacher's token:\n"
        "   .venv/bin/dropout-pipeline token create --role teacher --org UEL --name 'a teacher')"
    )
