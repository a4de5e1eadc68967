"""Human-readable tables of a retraining: per-week metrics beside the baselines."""

from __future__ import annotations

from dropout_pipeline.modeling.retrain import RetrainResult


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def per_week_table(result: RetrainResult) -> str:
    """Markdown: ROC AUC per snapshot week for every candidate and the rule, with n, and how
    well the chosen candidate fills worklists."""
    scorers = list(result.evaluations)
    by_scorer = {s: {row["snapshot_week"]: row for row in result.per_week(s)} for s in scorers}
    table = [(week, {s: by_scorer[s][week] for s in scorers}) for week in sorted(by_scorer[result.chosen])]
    table.append(("all", {s: result.overall(s) for s in scorers}))
    header = (
        "| week | n | positives | " + " | ".join(f"{s} AUC" for s in scorers)
        + f" | {result.chosen} PR AUC | {result.chosen} F1 | worklist precision | worklist recall |"
    )
    lines = [header, "|" + "---|" * (len(scorers) + 7)]
    for week, rows in table:
        row, aucs = rows[result.chosen], " | ".join(_fmt(rows[s]["roc_auc"]) for s in scorers)
        lines.append(
            f"| {week} | {row['n_samples']} | {row['n_positive']} | {aucs} | {_fmt(row['pr_auc'])} | {_fmt(row['f1_score'])} "
            f"| {_fmt(row['worklist_precision'])} | {_fmt(row['worklist_recall'])} |"
        )
    return "\n".join(lines)


def overall_table(result: RetrainResult) -> str:
    metrics = ["roc_auc", "pr_auc", "accuracy", "precision_score", "recall_score", "f1_score", "brier_score", "calibration_error"]
    lines = ["| scorer | n | " + " | ".join(metrics) + " |", "|" + "---|" * (len(metrics) + 2)]
    for scorer in result.evaluations:
        row = result.overall(scorer)
        lines.append(f"| {scorer} | {row['n_samples']} | " + " | ".join(_fmt(row[m]) for m in metrics) + " |")
    return "\n".join(lines)
