"""What the analytics add, on held-out data of both simulator profiles, and the time to
analyse an upload.

For each profile, on a private copy of its demo's database (`make demo` fills the default
one; the realistic one is made once by itself into data/benchmark-realistic/):
- engagement anomalies: precision against later dropout of the learners flagged (the
  threshold chosen on the other finished courses) beside the dropout model's precision when
  it flags as many, on the default model's held-out courses;
- evidence fusion: ROC AUC, ECE and Brier score of belief (and of the pignistic
  probability) beside the model's probability alone, on the same held-out courses;
- course recommendations: NDCG@10 and recall@10 of the hybrid beside popularity, on a
  time split (fit on earlier semesters, test on the next one's enrolments).
Then the upload: a 50,000-row, 40-column file checked, profiled and plotted, target under
10 s (exits 1 when missed); and, for information, one with every feature, scored with reasons.

    .venv/bin/python -m benchmarks.analytics [--profile default|realistic|both]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmarks._demo_data import demo_copy
from benchmarks.upload import TARGET_SECONDS, generated_models, time_upload_analysis, timing_line
from dropout_pipeline.analytics.anomalies import anomaly_holdout_report
from dropout_pipeline.analytics.course_recommender import recommender_holdout_report
from dropout_pipeline.analytics.fusion import fusion_holdout_report
from dropout_pipeline.analytics.upload import OUTCOME_COLUMNS
from dropout_pipeline.features.dictionary import FEATURES
from dropout_pipeline.simulator.world import PROFILES


def _number(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def print_anomalies(report: dict) -> None:
    print(f"  anomalies (threshold {_number(report['threshold'])}: {report['threshold_rule']}; chosen on {len(report['chosen_on']['courses'])} "
          f"other finished courses, {report['chosen_on']['rows']:,} rows), held out: {', '.join(report['held_out_courses'])}")
    for label in ("all_weeks", "weeks_1_to_4"):
        part = report[label]
        print(f"    {label.replace('_', ' ')}: {part['flagged']:,} of {part['rows']:,} learner-weeks flagged; precision against later dropout "
              f"{_number(part['anomaly_precision'])} vs the dropout model's {_number(part['model_precision_same_size'])} at the same size "
              f"(recall {_number(part['anomaly_recall'])} vs {_number(part['model_recall_same_size'])}; dropout rate {_number(part['dropout_rate'])})")


def print_fusion(report: dict) -> None:
    print(f"  evidence fusion ({report['model']}), held out: {', '.join(report['held_out_courses'])}; "
          f"Yager's rule for {report['yager']['rows']:,} of {report['yager']['of']:,} (conflict above {report['yager']['conflict_limit']})")
    for label in ("all_weeks", "weeks_1_to_4"):
        compared = report[label]
        cells = "; ".join(f"{name} AUC {_number(m['roc_auc'])} ECE {_number(m['calibration_error'])} Brier {_number(m['brier_score'])}"
                          for name, m in compared.items())
        first = next(iter(compared.values()))
        print(f"    {label.replace('_', ' ')} (n={first['n_samples']:,}, {first['n_positive']:,} failed): {cells}")
    print(f"    categories: {report['categories']}; fail rate per category: "
          f"{ {name: round(rate, 3) for name, rate in report['category_fail_rate'].items()} }")


def print_recommendations(report: dict) -> None:
    k = report["k"]
    print(f"  course recommendations: {report['learners_evaluated']:,} learners evaluated on {len(report['splits'])} semester splits "
          f"({report['learners_with_more_than_one_course']:,} of {report['learners_enrolled']:,} learners took more than one course)")
    print(f"    hybrid NDCG@{k} {_number(report['hybrid'][f'ndcg_at_{k}'])} recall@{k} {_number(report['hybrid'][f'recall_at_{k}'])}; "
          f"popularity NDCG@{k} {_number(report['popularity'][f'ndcg_at_{k}'])} recall@{k} {_number(report['popularity'][f'recall_at_{k}'])}; "
          f"difference 95% interval {report[f'ndcg_at_{k}_difference_interval']}")
    print(f"    verdict: {report['verdict']}")


def print_profile(profile: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = demo_copy(Path(folder), profile)
        print(f"{profile} profile:", flush=True)
        print_anomalies(anomaly_holdout_report(engine))
        print_fusion(fusion_holdout_report(engine))
        print_recommendations(recommender_holdout_report(engine))
        engine.dispose()


def print_upload_timings() -> bool:
    """The issue's upload (50,000 rows, 40 columns: too few features to score, so profiled
    and plotted) against the target, then one with every feature, scored with reasons by
    two generated models (for information: the scoring is the pipeline's own, reasons
    included, for every row). True when the target is met."""
    models = generated_models()
    met = True
    for columns, judged in ((40, True), (1 + len(OUTCOME_COLUMNS) + len(FEATURES), False)):
        timing = time_upload_analysis(50_000, columns, models)
        verdict = ("met" if timing["total_seconds"] < TARGET_SECONDS else "MISSED") if judged else "not judged"
        met &= verdict != "MISSED"
        print(timing_line(timing, verdict), flush=True)
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=[*PROFILES, "both"], default="both")
    profiles = PROFILES if (chosen := parser.parse_args().profile) == "both" else (chosen,)
    for profile in profiles:
        print_profile(profile)
    return 0 if print_upload_timings() else 1


if __name__ == "__main__":
    sys.exit(main())
