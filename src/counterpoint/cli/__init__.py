"""The command line interface."""

from counterpoint.cli.app import app, main

__all__ = ["app", "main"]
