"""The `morningpost` command: thin wrappers that parse, call a service and print.

Start-up speed: the application (SQLAlchemy, FastAPI, the MJML renderer, premailer, aiosmtpd…)
takes seconds to import, so this module imports only typer and rich at the top and each command
imports what it needs inside its body. `morningpost --help`, a typo or `--help` of one command
answer at once; keep new imports of `app.*` modules inside the commands that use them.

Output: a command prints its result on stdout (an id, a token, a table) and nothing else; log
lines go to stderr at WARNING, or INFO with `--verbose`, and always INFO for the long-running
`serve`, `worker` and `bounces`.
"""

from __future__ import annotations

# Importing the command modules registers their commands: `--help` lists its panels in the
# order of their first command, so this order is the newcomer's (not the alphabet's).
# isort: off
from app.cli import demo, sending, servers, admin, issues  # noqa: F401

# isort: on
from app.cli.base import cli


def main() -> None:
    """Entry point of the console script."""
    cli()


__all__ = ["cli", "main"]
