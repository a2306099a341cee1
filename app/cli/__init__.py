"""The ``crosswatch`` command line. Errors print one line on stderr and exit non-zero
(2 for usage errors); a command that touches the store names it on stderr first; long
commands show their progress on stderr (:mod:`app.terminal`).

The commands live in this package's modules by what they do (``servers``, ``bars``,
``polls``, ``signals``, ``brief``, ``universe``, ``keys``); they are registered here, in
the order ``crosswatch --help`` lists them. ``app.cli.root`` is what they run in.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

import typer

# Typer vendors click (0.27+): its parser raises these exceptions, not the click package's.
from typer import _click as click
from typer._click import exceptions as click_errors
from typer.core import TyperGroup

from app.cli import bars, brief, polls, servers, signals, universe
from app.cli.keys import keys


class _Commands(TyperGroup):
    """A reader that stops reading (``crosswatch export ^RUT | head``) ends the command
    quietly with status 0, not a traceback or click's status 1."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:  # ``crosswatch --help | head -1``
            return super().make_context(info_name, args, parent, **extra)
        except BrokenPipeError:
            _discard_stdout()
            raise typer.Exit(0) from None

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _discard_stdout()
            raise typer.Exit(0) from None


def _discard_stdout() -> None:
    # What is still buffered for the closed pipe is flushed at exit: to /dev/null.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


cli = typer.Typer(
    cls=_Commands,
    name="crosswatch",
    help="Crosswatch: golden-cross alerts for stock indices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
cli.command()(servers.migrate)
cli.command()(servers.serve)
cli.command("import")(bars.import_)
cli.command()(bars.export)
cli.command()(signals.signals)
cli.command()(polls.poll)
cli.command()(polls.watch)
cli.command()(servers.scheduler)
cli.command()(bars.replay)
cli.command()(servers.worker)
cli.add_typer(keys, name="keys")
cli.add_typer(universe.universe_cli, name="universe")
cli.command("screen")(signals.screen)
cli.command("brief")(brief.brief_command)


def _usage_error(exc: click_errors.UsageError) -> str:
    """Click's usage error (a box, or several lines) as one line."""
    if isinstance(exc, click_errors.NoSuchOption) and exc.possibilities:
        message = f"no such option: {exc.option_name}"
        message += f", did you mean {' or '.join(sorted(exc.possibilities))}?"
    else:
        message = " ".join(exc.format_message().split()).rstrip(".")
        # "No such command 'exprot'. Did you mean 'export'?": one lower-case sentence.
        message = re.sub(r"\. ([A-Z])", lambda m: ", " + m.group(1).lower(), message)
        message = message[:1].lower() + message[1:]
    path = exc.ctx.command_path if exc.ctx is not None else "crosswatch"
    return f"error: {message} (try '{path} --help')"


def main() -> None:
    """The ``crosswatch`` entry point: usage errors are one line with status 2."""
    try:
        code = _run()
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        code = 0
    sys.exit(code)


def _run() -> int:
    try:
        code = cli(prog_name="crosswatch", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        exc.show()
        return exc.exit_code
    except click_errors.UsageError as exc:
        typer.echo(_usage_error(exc), err=True)
        return exc.exit_code
    except click_errors.ClickException as exc:
        typer.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        return 1
    return code if isinstance(code, int) else 0
