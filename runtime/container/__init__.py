"""runtime.container — the lifecycle verbs, one module each, over state directories.

    create.py   spec → "created" (supervisor + init waiting), with full rollback on failure
    start.py    start and wait
    run.py      create + start (+ wait), and `drive` for a container someone else created
    kill.py     signal the init, or every process of the container
    stop.py     the stop signal, a grace period, then SIGKILL (docker stop, the kubelet's kill)
    delete.py   remove processes, cgroup, overlay dirs and state
    exec.py     run another process inside a running container
    state.py    the state directory and how the OCI status is derived

States (OCI runtime spec, runtime.md): creating → created → running → stopped → (deleted).

Import the verbs from their modules (`from runtime.container.create import create`): this package
imports nothing itself, so that `from runtime.container.run import drive` — all a zygote client
needs — does not load the whole runtime.

May import: everything else in runtime, the standard library.
"""

