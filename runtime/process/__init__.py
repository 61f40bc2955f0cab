"""runtime.process — the processes of a container and how they survive crashes (ARCHITECTURE.md).

    shim.py        the supervisor: parent of the container, records exits, serves start/exec/attach
    streams.py     the container's output in the supervisor: pipes or pty → CRI log, attached clients
    init.py        the container's first process, from fork to execve
    execproc.py    a process joining a running container
    (zygote.py, spares.py, cmdserver.py, cmdwire.py: moved to runtime/zygote/, above container/;
     the old names still import the same modules)
    executable.py  finding the program, and why it cannot run (missing, shebang, CRLF, loader)
    sealed.py      the interpreter that enters containers, run from a file they cannot change
                   (CVE-2019-5736: /proc/self/exe)
    channel.py     JSON messages (+ fds) over SOCK_SEQPACKET unix sockets between them
    logs.py        CRI-format log files with rotation
    terminal.py    connecting a user's terminal to a container's pty

May import: runtime.sys, runtime.spec, runtime.rootfs, runtime.confine, runtime.cgroups,
runtime.errors, runtime.explain, runtime.statefiles, the standard library. Never runtime.container
or runtime.zygote, which are built on it (pyproject.toml's layers contract checks).
"""
