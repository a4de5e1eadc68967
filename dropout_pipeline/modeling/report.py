"""Human-readable tables of a retraining: per-week metrics beside the baselines, and the
AUC each candidate was chosen on beside the one the gate judged."""

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


def choice_table(result: RetrainResult) -> str:
    """Markdown: each candidate's ROC AUC where the choice was made (the training courses'
    out-of-fold predictions) beside where the gate judged it (the held-out courses), at
    early warning and over all weeks, with the rows of each; the chosen one marked."""
    lines = [
        f"Chosen on: {result.selection_strategy or 'n/a'}",
        "",
        "| scorer | selection AUC wk 1-4 | gate AUC wk 1-4 | selection AUC all | n | gate AUC all | n |",
        "|---|---|---|---|---|---|---|",
    ]
    for scorer in result.evaluations:
        chosen_on, judged = result.selection_overall(scorer), result.overall(scorer)
        name = f"**{scorer}** (chosen)" if scorer == result.chosen else scorer
        lines.append(
            f"| {name} | {_fmt(result.selection_auc(scorer))} | {_fmt(result.early_auc(scorer))} "
            f"| {_fmt(chosen_on['roc_auc'] if chosen_on else None)} | {chosen_on['n_samples'] if chosen_on else 0} "
            f"| {_fmt(judged['roc_auc'])} | {judged['n_samples']} |"
        )
    return "\n".join(lines)
