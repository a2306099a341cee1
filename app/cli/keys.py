"""``crosswatch keys``: API keys."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.root import store

keys = typer.Typer(help="API keys.", no_args_is_help=True)


@keys.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    admin: Annotated[bool, typer.Option("--admin", help="May manage every subscription.")] = False,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from app.auth.service import keys_create as create

    with store() as (settings, _db):
        typer.echo(create(settings, name.strip() or "unnamed", admin))
