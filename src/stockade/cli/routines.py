"""``stockade routines``, ``stockade chat`` and ``stockade cases``: support agents from the terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from stockade.cli.client import CommandError
from stockade.cli.output import print_table, when
from stockade.routines.checker import Finding, Severity, check, check_settings, has_errors
from stockade.routines.evaluation import (
    Report,
    Scripted,
    ScriptError,
    evaluate,
    load_script,
    served_functions,
)
from stockade.routines.functions import implemented
from stockade.routines.generate import GenerationError, generate_routine
from stockade.routines.parser import RoutineSyntaxError, load_routine
from stockade.routines.service import BUILTIN_DIRECTORY

routines_app = typer.Typer(help="Routines: procedures that support agents follow step by step.", no_args_is_help=True)
cases_app = typer.Typer(help="Support cases that routine conversations open and close.", no_args_is_help=True)

console = Console()
errors = Console(stderr=True)
SEVERITY_STYLE = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.NOTE: "blue"}


def default_scripts() -> list[Path]:
    """The development set, then every held-out set beside it, in the order they were written
    (baa-held-out.yaml, then baa-held-out-N.yaml by N)."""
    def written(path: Path) -> int:
        return int(path.stem.removeprefix("baa-held-out").lstrip("-") or 1)

    return [BUILTIN_DIRECTORY / "baa-dev.yaml", *sorted(BUILTIN_DIRECTORY.glob("baa-held-out*.yaml"), key=written)]


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


def _print_findings(findings: list[Finding]) -> None:
    if not findings:
        console.print("[green]No findings.[/green]")
    for finding in findings:
        style = SEVERITY_STYLE[finding.severity]
        where = f"step {finding.step}: " if finding.step else ""
        console.print(f"[{style}]{finding.severity.value}[/{style}] {escape(where + finding.message)}")


@routines_app.command("list")
def routines_list(ctx: typer.Context) -> None:
    """The routines conversations can follow."""
    data = ctx.obj.call("GET", "/routines")["data"]
    table = Table("name", "title", "version", "findings")
    for routine in data:
        counts = {s: sum(f["severity"] == s for f in routine["findings"]) for s in ("error", "warning")}
        table.add_row(routine["name"], routine["title"] or "", routine["version"] or "",
                      f"{counts['error']} errors, {counts['warning']} warnings")
    ctx.obj.emit(data, table)


@routines_app.command("show")
def routines_show(ctx: typer.Context, name: str) -> None:
    """A routine in its typed form: steps, branches and function contracts (JSON)."""
    ctx.obj.as_json = True
    ctx.obj.emit(ctx.obj.call("GET", f"/routines/{name}"))


@routines_app.command("check")
def routines_check(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="A routine in Markdown")]) -> None:
    """Check a routine: undefined or unused functions, unreachable steps, branches the agent can
    never observe, a missing final case_resolution, and functions that these settings leave
    without an implementation or a value to give. Exits 1 if it cannot be followed."""
    try:
        routine = load_routine(file)
    except RoutineSyntaxError as exc:
        raise _fail(str(exc)) from None
    settings = ctx.obj.settings
    findings = check(routine) + check_settings(routine, settings.routines, implemented(settings))
    if ctx.obj.as_json:
        ctx.obj.emit({"routine": routine.to_dict(), "findings": [f.to_dict() for f in findings]})
    else:
        console.print(f"[bold]{routine.title}[/bold] ({len(routine.walk())} steps, "
                      f"{len(routine.functions)} functions, version {routine.version})")
        _print_findings(findings)
    if has_errors(findings):
        raise typer.Exit(1)


@routines_app.command("generate")
def routines_generate(
    ctx: typer.Context,
    article: Annotated[Path, typer.Argument(help="A help-center article in Markdown")],
    deployment: Annotated[str, typer.Option(help="The chat deployment that writes the routine")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Where to write it (default: ARTICLE name without -article, .md)")] = None,
) -> None:
    """Turn a help-center article into a routine through a chat deployment, then check it.
    The result is a file to review and edit, not something to trust blindly."""
    try:
        text = article.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot read {article}: {exc}") from None
    target = output or article.with_name(article.stem.removesuffix("-article") + "-routine.md")
    with ctx.obj.client.session() as session, console.status(f"Writing a routine with {deployment}…"):
        try:
            routine, findings = generate_routine(text, article.stem, deployment, session.request)
        except (CommandError, GenerationError) as exc:
            raise _fail(str(exc)) from None
    target.write_text(routine.source, encoding="utf-8")
    console.print(f"Wrote [bold]{target}[/bold] ({len(routine.walk())} steps, {len(routine.functions)} functions). Review it before use.")
    _print_findings(findings)
    if has_errors(findings):
        raise typer.Exit(1)


@routines_app.command("eval")
def routines_eval(
    ctx: typer.Context,
    scripts: Annotated[list[Path] | None, typer.Argument(
        help="Sets of scripted conversations (YAML) for a routine the service offers; "
             "default: the BAA development and held-out sets")] = None,
    runs: Annotated[int, typer.Option(min=1, help="Runs of each conversation; pass^k counts one only if every run passes")] = 3,
    deployment: Annotated[str | None, typer.Option(help="Chat deployment (default: routines.chat_deployment or the first)")] = None,
    embeddings_deployment: Annotated[str | None, typer.Option(help="Embeddings deployment")] = None,
) -> None:
    """Run scripted conversations, each set k times, and print per set pass^k, step adherence,
    function-call precision and recall, the rate of claimed-but-not-taken actions and the
    conversations left open. Exits 1 unless every conversation passes every run, held-out sets
    (`held_out: true`, measurements rather than tests) aside."""
    try:
        sets = [load_script(script) for script in scripts or default_scripts()]
    except ScriptError as exc:
        raise _fail(str(exc)) from None
    create = {k: v for k, v in {"deployment": deployment, "embeddings_deployment": embeddings_deployment}.items() if v}
    reports = []
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=errors)
    # A rate-limited turn changes nothing, so the script waits and says it again.
    with ctx.obj.client.session(wait_out_rate_limits=True) as session, progress:
        task = progress.add_task("Scripted conversations", total=runs * sum(len(s.conversations) for s in sets))

        def ran(scripted: Scripted) -> None:
            progress.update(task, description=scripted.name, advance=1)

        try:
            for script in sets:
                functions = served_functions(script.routine, session.request)
                reports.append(evaluate(script, runs, functions, session.request, ran, **create))
        except CommandError as exc:
            raise _fail(str(exc)) from None
    if ctx.obj.as_json:
        ctx.obj.emit({"runs": runs, "sets": [report.to_dict() for report in reports]})
    else:
        for report in reports:
            _print_report(report)
        _print_summary(reports)
    if any(report.passed != report.conversations for report in reports if not report.held_out):
        raise typer.Exit(1)


def _print_report(report: Report) -> None:
    runs = len(report.runs)
    table = Table("conversation", "turns", "steps", "calls made/expected", "claims without action",
                  f"runs passed (of {runs})", title=f"{report.name} set", title_justify="left")
    for index, first in enumerate(report.runs[0] if report.runs else []):
        each = [run[index] for run in report.runs]
        passed = report.runs_passed(index)
        table.add_row(
            first.name, str(first.turns),
            f"{sum(o.adherent_turns for o in each)}/{sum(o.turns for o in each)}",
            f"{sum(o.matching_calls for o in each)}/{sum(o.made_calls for o in each)}/{sum(o.expected_calls for o in each)}",
            str(sum(o.claimed_not_taken for o in each)),
            f"[green]{passed}[/green]" if passed == runs else f"[red]{passed}[/red]",
        )
    print_table(console, table)
    for run_number, run in enumerate(report.runs, 1):
        for o in run:
            for difference in o.differences:
                console.print(f"[red]{escape(o.name)}[/red] (run {run_number}): {escape(difference)}")


def _print_summary(reports: list[Report]) -> None:
    runs = len(reports[0].runs) if reports else 0
    table = Table("set", "conversations", f"pass^{runs}", "step adherence", "call precision",
                  "call recall", "claimed but not taken", "left open")
    for r in reports:
        table.add_row(f"{r.name} (held out)" if r.held_out else r.name, str(r.conversations), f"{r.pass_k:.1%} ({r.passed}/{r.conversations})",
                      f"{r.step_adherence:.1%}", f"{r.precision:.1%}", f"{r.recall:.1%}",
                      f"{r.claimed_not_taken_rate:.1%} of turns", str(r.left_open))
    print_table(console, table)


def chat(
    ctx: typer.Context,
    routine: Annotated[str, typer.Option(help="The routine the agent follows")] = "baa",
    deployment: Annotated[str | None, typer.Option(help="Chat deployment")] = None,
    embeddings_deployment: Annotated[str | None, typer.Option(help="Embeddings deployment")] = None,
    trace: Annotated[bool, typer.Option(help="Show the steps, decisions and function calls")] = False,
) -> None:
    """Talk to a support agent that follows a routine, in the terminal (Ctrl-D to leave)."""
    body: dict[str, Any] = {"routine": routine}
    body.update({k: v for k, v in {"deployment": deployment, "embeddings_deployment": embeddings_deployment}.items() if v})
    try:
        with ctx.obj.client.session() as session:
            conversation = session.request("POST", "/routines/conversations", body)
            console.print(f"[dim]Conversation {conversation['id']} (case {conversation['case']}) "
                          f"following {conversation['routine']} on {conversation['deployment']}.[/dim]")
            status = conversation["status"]
            while status == "open":
                try:
                    message = console.input("[bold cyan]you>[/bold cyan] ")
                except EOFError:
                    break
                if not message.strip():
                    continue
                path = f"/routines/conversations/{conversation['id']}/messages"
                for event in session.events("POST", path, {"content": message, "stream": True}):
                    status = _show_event(event, trace) or status
    except CommandError as exc:
        raise _fail(str(exc)) from None
    console.print(f"[dim]The conversation is {status}.[/dim]")


def _show_event(event: dict[str, Any], trace: bool) -> str | None:
    if event["kind"] == "message":
        # The agent may repeat what the customer typed: text, not Rich markup.
        console.print(f"[bold green]agent>[/bold green] {escape(event['text'])}")
    elif event["kind"] == "status":
        return str(event["status"])
    elif event["kind"] == "function" and not event["ok"]:
        # Shown with or without --trace: the customer only hears that it could not be done.
        console.print(f"[yellow]  {event['step']}: {escape(event['function'])} failed: {escape(event['error'])}[/yellow]")
    elif trace:
        details = {k: v for k, v in event.items() if k not in ("kind", "step")}
        console.print(f"[dim]  {event['kind']} {event['step'] or ''} {escape(json.dumps(details))}[/dim]")
    return None


@cases_app.command("list")
def cases_list(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="open, resolved or handed_off")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    include_evaluations: Annotated[
        bool, typer.Option(help="Also the cases of scripted evaluations (`stockade routines eval`)")
    ] = False,
) -> None:
    """Recent support cases, without those of scripted evaluations unless asked."""
    data = ctx.obj.call("GET", "/management/cases", status=status, limit=limit,
                        include_evaluations="true" if include_evaluations else None)["data"]
    table = Table("case", "routine", "status", "opened", "closed", "reason", "conversation",
                  *(["evaluation"] if include_evaluations else []))
    for c in data:
        table.add_row(c["id"], c["routine"], c["status"], when(c["opened_at"]), when(c["closed_at"]),
                      c["reason"] or "", c["conversation_id"],
                      *(["yes" if c["evaluation"] else ""] if include_evaluations else []))
    ctx.obj.emit(data, table)


@cases_app.command("show")
def cases_show(ctx: typer.Context, case: str) -> None:
    """A case, and the step trace of its conversation (never the messages' text)."""
    found = ctx.obj.call("GET", f"/management/cases/{case}")
    conversation = ctx.obj.call("GET", f"/routines/conversations/{found['conversation_id']}")
    data = {**found, "conversation": conversation}
    if ctx.obj.as_json:
        ctx.obj.emit(data)
        return
    console.print(f"[bold]Case {found['id']}[/bold]: {found['status']}"
                  f"{' (' + found['reason'] + ')' if found['reason'] else ''}, routine {found['routine']} "
                  f"version {conversation['routine_version']}")
    table = Table("turn", "event", "step", "detail")
    for event in conversation["trace"]:
        table.add_row(str(event["turn"]), event["kind"], event["step"] or "", json.dumps(event["detail"]))
    print_table(console, table)
