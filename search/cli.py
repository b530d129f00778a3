"""The `search` console command: parse, validate, call one function per command.

Every user mistake surfaces as one line on stderr and exit code 2: project ``UserError``s and
click's own usage errors alike. Ctrl-C exits with 130 after the command has said how to resume.
"""

from __future__ import annotations

import sys

import click

from search._cli_space import macs_command, space_group
from space import UserError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="effnas")
def cli() -> None:
    """Neural-architecture and compound-scaling search for EfficientNet-style classifiers."""


cli.add_command(macs_command)
cli.add_command(space_group)


def _register_optional_commands() -> None:
    """Commands from the other packages; each lives in its own ``search._cli_*`` module."""
    import importlib

    for module_name in ("search._cli_train", "search._cli_report", "search._cli_run"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        for command in module.COMMANDS:
            cli.add_command(command)


_register_optional_commands()


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="search", standalone_mode=False)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code or 1
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
