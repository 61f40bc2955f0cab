"""runtime.zygote — warm processes that create containers and run whole CLI commands quickly.

    client.py      find the zygote of a state root, ask it to create a container
    server.py      the zygote: a pre-imported, single-threaded process forking workers on request
    spares.py      workers forked and warmed before their requests come
    cmdserver.py   a worker running a whole CLI command on behalf of a thin client
    cmdwire.py     the command server's request/reply format (bytes only: its client imports nothing)

Above container/ (a worker creates a container with container/create.py and becomes its
supervisor), and nothing below imports it. This package's own import loads nothing: the thin
command client imports cmdwire through it.

May import: everything else in runtime except images, the standard library.
"""
