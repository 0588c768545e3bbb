"""``stockade safety``: the local content-safety classifier and the prompt shields, measured on
their shipped datasets."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stockade.cli.output import print_table
from stockade.safety.classifier.dataset import Split
from stockade.safety.classifier.errors import ClassifierUnavailable
from stockade.safety.classifier.evaluation import DEFAULT_BLOCK_AT, Evaluation, evaluate
from stockade.safety.classifier.model import LocalClassifier
from stockade.safety.shields import Detector
from stockade.safety.shields.evaluation import ShieldEvaluation
from stockade.safety.shields.evaluation import evaluate as evaluate_shields

safety_app = typer.Typer(help="Content safety: the local severity classifier and prompt shields.", no_args_is_help=True)

console = Console()
errors = Console(stderr=True)
TITLES: dict[Split, str] = {
    "heldout": "Held-out split (never fitted on; seen while choosing earlier models)",
    "heldout2": "Second held-out split (never fitted on or seen while choosing this model)",
    "heldout3": "Third held-out split (never fitted on; written after this model)",
    "heldout4": "Fourth held-out split (never fitted on; written after this model)",
    "train": "Train split (what it was fitted on)",
}


@safety_app.command("eval")
def safety_eval(ctx: typer.Context) -> None:
    """Precision, recall and F1 of the local classifier per category and threshold ("flagged at or
    above"), on each held-out split and, separately, on the train split; then of each prompt
    shield on its held-out and train splits."""
    try:
        classifier, detector = LocalClassifier(), Detector()
    except ClassifierUnavailable as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    results = [evaluate(classifier, split) for split in TITLES]
    shields = [evaluate_shields(detector, "heldout"), evaluate_shields(detector, "train")]
    if ctx.obj.as_json:
        report: dict[str, object] = {r.split: r.as_dict() for r in results}
        report["prompt_shields"] = {s.split: s.as_dict() for s in shields}
        ctx.obj.emit(report)
        return
    for result in results:
        print_table(console, _table(result))
        _print_policy(result)
    for shield_result in shields:
        print_table(console, _shields_table(shield_result))


def _table(result: Evaluation) -> Table:
    table = Table("category", "flagged at ≥", "precision", "recall", "F1", "support", "flagged",
                  title=f"{TITLES[result.split]}: {result.examples} examples")
    for category, row in result.scores.items():
        for threshold, score in row.items():
            table.add_row(str(category), str(threshold), f"{score.precision:.2f}", f"{score.recall:.2f}",
                          f"{score.f1:.2f}", str(score.support), str(score.flagged))
    return table


def _print_policy(result: Evaluation) -> None:
    passed = len(result.unblocked_high)
    style = "green" if not passed else "red"
    console.print(
        f"Default policy (block at {DEFAULT_BLOCK_AT}): [{style}]{passed} of {result.high}[/{style}] "
        "high-severity examples would pass unblocked.", soft_wrap=True,
    )
    for text in result.unblocked_high:
        console.print(f"  {escape(text)}", soft_wrap=True)
    console.print(
        f"It would block {result.blocked_benign} of {result.benign} examples labelled below "
        f"{DEFAULT_BLOCK_AT} in every category.", soft_wrap=True,
    )
    console.print()


def _shields_table(result: ShieldEvaluation) -> Table:
    table = Table("shield", "precision", "recall", "F1", "attacks", "flagged",
                  title=f"Prompt shields, {TITLES[result.split][0].lower()}{TITLES[result.split][1:]}")
    for shield, score in result.scores.items():
        table.add_row(str(shield), f"{score.precision:.2f}", f"{score.recall:.2f}", f"{score.f1:.2f}",
                      str(score.support), str(score.flagged))
    return table
