"""Subcommands of the `nodeagent` CLI, one module each.

A module here defines `register(subparsers)`, which adds its parser and sets `func` to a function
taking the parsed arguments and returning the exit status. cli.py maps each command to its module in COMMANDS.
Modules import their heavy dependencies inside the function that runs the command, so that one
command's imports never slow down another's start.

Errors and exit statuses: one rule for every command. A command raises its package's error
(AgentError for the agent's own, and the runtime's, image store's, CNI's, network's, storage's
errors as they come) and never catches it just to print it: cli.run prints it as one line and
`cli.exit_status` turns it into the status —

    0                    success
    the program's own    `run` in the foreground, `exec`, `runtime run` and `runtime exec`
    1                    a runtime error (runtime.errors.ContainerError) in `runtime` verbs, as
                         runc exits, and in docker's `ps`, `stop`, `rm`, `exec`, as docker does
    125, 127             a runtime error in `run`: the container could not be created (125) or its
                         program was not found (127), as `docker run` exits
    2                    every other user's error (the other commands, whatever the package)
    130                  interrupted (^C)

and anything else is a bug and keeps its traceback. The statuses are what scripts written for runc
and docker test, so they are the contract here; the one-line message is the runtime error's
`nodeagent COMMAND: ...` and the others' `nodeagent: error: ...`. A command that acts on several
names (`stop a b`, `rm a b`) reports each failure and carries on, as docker does, then exits 1.
"""
