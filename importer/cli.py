"""The command line: thin click commands over the library API."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="importer")
def cli() -> None:
    """Copy the TV libraries of Plex, Jellyfin and Emby servers into SQLite."""


def main() -> None:
    cli()
