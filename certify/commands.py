"""Subcommands beyond ``constants``: run, report, compare, sweep."""


def add_subcommands(sub) -> None:
    return None
