"""``stockade safety``: the local content-safety classifier, measured on its shipped dataset."""

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

safety_app = typer.Typer(help="Content safety: the local severity classifier.", no_args_is_help=True)

console = Console()
errors = Console(stderr=True)
TITLES: dict[Split, str] = {
    "heldout": "Held-out split (never fitted on; seen while choosing earlier models)",
    "heldout2": "Second held-out split (never fitted on or seen while choosing)",
    "train": "Train split (what it was fitted on)",
}


@safety_app.command("eval")
def safety_eval(ctx: typer.Context) -> None:
    """Precision, recall and F1 of the local classifier per category and threshold ("flagged at or
    above"), on each held-out split and, separately, on the train split."""
    try:
        classifier = LocalClassifier()
    except ClassifierUnavailable as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    results = [evaluate(classifier, split) for split in TITLES]
    if ctx.obj.as_json:
        ctx.obj.emit({r.split: r.as_dict() for r in results})
        return
    for result in results:
        print_table(console, _table(result))
        _print_policy(result)


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
