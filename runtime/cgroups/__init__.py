"""runtime.cgroups — the only code that reads or writes cgroup files.

A cgroup is a directory in a cgroup filesystem; its files are the controllers' knobs (memory.max,
cpu.cfs_quota_us, pids.max, ...). Linux has two versions, and a machine can mix them:

    v2 ("unified")  one hierarchy at /sys/fs/cgroup; each cgroup lists its usable controllers in
                    cgroup.controllers and hands them to its children through cgroup.subtree_control.
                    Rule: a non-root cgroup with processes cannot hand controllers down ("no internal
                    processes"), so processes live in leaves only.
    v1              one hierarchy per controller (or per group of co-mounted controllers), e.g.
                    /sys/fs/cgroup/memory; a process is in one cgroup *per hierarchy*.
    hybrid          v1 hierarchies for the controllers, plus a cgroup2 mount (often
                    /sys/fs/cgroup/unified) that holds no or few controllers. These course machines are
                    hybrid; so are older systemd distributions.

We only ever create cgroups *below our own* cgroup (read from /proc/self/cgroup), in every hierarchy:
that is what delegation means, and it keeps us from touching anybody else's processes.

    layout.py   find the mode, the hierarchies and our own cgroup in each (/proc/self/mountinfo,
                /proc/self/cgroup)
    probe.py    prove, by creating and removing a child cgroup, which controllers we can use

May import: runtime.sys, the standard library, cgroupspy.
"""
