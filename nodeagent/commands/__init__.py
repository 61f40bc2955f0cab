"""Subcommands of the `nodeagent` CLI, one module each.

A module here defines `register(subparsers)`, which adds its parser and sets `func` to a function
taking the parsed arguments and returning the exit status. cli.py maps each command to its module in COMMANDS.
Modules import their heavy dependencies inside the function that runs the command, so that one
command's imports never slow down another's start.
"""
