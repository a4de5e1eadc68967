"""Human-readable tables of a retraining: per-week metrics beside the baselines."""

from __future__ import annotations

from dropout_pipeline.modeling.retrain import RetrainResult


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def per_week_table(result: RetrainResult) -> str:
    """Markdown: ROC AUC per snapshot week for the model and each baseline, with n."""
    scorers = list(result.evaluations)
    weeks = {row["snapshot_week"]: row for row in result.per_week("catboost")}
    by_scorer = {s: {row["snapshot_week"]: row for row in result.per_week(s)} for s in scorers}
    header = "| week | n | positives | " + " | ".join(f"{s} AUC" for s in scorers) + " | catboost PR AUC | catboost F1 |"
    lines = [header, "|" + "---|" * (len(scorers) + 5)]
    for week, row in sorted(weeks.items()):
        aucs = " | ".join(_fmt(by_scorer[s][week]["roc_auc"]) for s in scorers)
        lines.append(f"| {week} | {row['n_samples']} | {row['n_positive']} | {aucs} | {_fmt(row['pr_auc'])} | {_fmt(row['f1_score'])} |")
    overall = " | ".join(_fmt(result.overall(s)["roc_auc"]) for s in scorers)
    all_row = result.overall()
    lines.append(f"| all | {all_row['n_samples']} | {all_row['n_positive']} | {overall} | {_fmt(all_row['pr_auc'])} | {_fmt(all_row['f1_score'])} |")
    return "\n".join(lines)


def overall_table(result: RetrainResult) -> str:
    metrics = ["roc_auc", "pr_auc", "accuracy", "precision_score", "recall_score", "f1_score", "brier_score", "calibration_error"]
    lines = ["| scorer | n | " + " | ".join(metrics) + " |", "|" + "---|" * (len(metrics) + 2)]
    for scorer in result.evaluations:
        row = result.overall(scorer)
        lines.append(f"| {scorer} | {row['n_samples']} | " + " | ".join(_fmt(row[m]) for m in metrics) + " |")
    return "\n".join(lines)
