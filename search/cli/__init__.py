"""The `search` console command: parse, validate, call one function per command.

Every user mistake surfaces as one line on stderr and exit code 2: project ``UserError``s and
click's own usage errors alike. Ctrl-C exits with 130 after the command has said how to resume.

The last line of defence for secrets: whatever an error message says, it is printed
through ``search.study.urls.scrub`` with the command's storage URLs, so a password that a driver
or an exception echoed never reaches the terminal, and always on one line. An unexpected exception
prints its traceback through the same filter (exit 1).
"""

from __future__ import annotations

import itertools
import sys
import traceback

import click

from common.errors import UserError
from search.cli.evaluate import evaluate_command
from search.cli.final import final_command
from search.cli.macs import macs_command, space_group
from search.cli.report import export_command, report_command
from search.cli.run import run_command
from search.cli.studies import best_command, studies_command
from search.cli.train import train_command
from search.study.urls import scrub


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="effnas")
def cli() -> None:
    """Neural-architecture and compound-scaling search for EfficientNet-style classifiers."""


for command in (
    macs_command,
    space_group,
    train_command,
    evaluate_command,
    run_command,
    final_command,
    studies_command,
    best_command,
    report_command,
    export_command,
):
    cli.add_command(command)


def storage_urls(argv: list[str]) -> list[str]:
    """The values of ``--storage`` in a command line (``--storage URL`` and ``--storage=URL``)."""
    urls = [value for flag, value in itertools.pairwise(argv) if flag == "--storage"]
    return urls + [arg.split("=", 1)[1] for arg in argv if arg.startswith("--storage=")]


def _error(message: str, urls: list[str]) -> None:
    """One line on stderr, every known storage password masked."""
    line = " ".join(scrub(message, urls).splitlines())
    click.echo(f"error: {line}", err=True)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    urls = storage_urls(args)
    try:
        cli.main(args=args, prog_name="search", standalone_mode=False)
    except UserError as exc:
        _error(str(exc), urls)
        return 2
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        _error(f"{exc.format_message()}{hint}", urls)
        return 2
    except click.ClickException as exc:
        _error(exc.format_message(), urls)
        return exc.exit_code or 1
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        return 130
    except Exception:  # a bug: show the traceback, but never a password in it
        sys.stderr.write(scrub(traceback.format_exc(), urls))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
