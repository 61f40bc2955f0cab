"""runtime.rootfs — the container's file tree, built in its own mount namespace by its init.

    paths.py     resolving paths inside the rootfs from outside without following its symlinks out
    options.py   config.json mount options → mount(2) flags and data
    mounts.py    propagation, the root (overlay or bind), then config.json's mounts in order
    devices.py   the minimal /dev
    pivot.py     pivot_root and detaching the host's root
    masks.py     masked and read-only paths, readonly root, namespaced sysctls (after pivot_root)

`setup_rootfs` runs the whole pipeline in order; each stage is named through `step` so that a
failure says which one failed ("mount /proc (proc): ...").

May import: runtime.sys, runtime.spec, runtime.errors, the standard library.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from runtime.rootfs import devices, masks, mounts, pivot
from runtime.spec.model import ContainerSpec
from runtime.sys import Syscalls


@dataclass(frozen=True)
class RootfsPlan:
    """Where the root goes on the host: the mount point, and overlay's upper/work (None: no overlay)."""

    rootfs: str
    upper: str | None = None
    work: str | None = None


def setup_rootfs(sys: Syscalls, spec: ContainerSpec, plan: RootfsPlan, cgroup, cgroup_ns: bool,
                 step, cgroup_ready=lambda: None, before_pivot=lambda: None) -> None:
    """Everything from "make / private" to "readonly root", in the container's mount namespace.
    `step(name)` is a context manager naming the stage for errors and --explain.
    `cgroup_ready()` returns once we are in the container's cgroup (and its cgroup namespace): it
    is called before anything that needs that, and at the latest after pivot_root.
    `before_pivot()` runs once the mounts are made, right before pivot_root (the create hooks)."""
    # Without a mount namespace of its own the container shares ours (the spec allows it): then
    # we leave our mount tree's propagation alone and chroot instead of pivot_root, which would
    # move the root of every process in the namespace. The mounts made for the container stay
    # below its root directory, and `delete` detaches them (container/delete.py).
    own_mount_ns = spec.linux.namespace("mount") is not None
    if own_mount_ns:
        with step("make the mount tree private"):
            # An unbindable tree could not be bound onto itself below: private until pivot_root,
            # then the asked-for propagation is given to the new root (root_propagation_after_pivot).
            unbindable = spec.linux.rootfs_propagation in ("unbindable", "runbindable")
            mounts.make_private(sys, None if unbindable else spec.linux.rootfs_propagation)
            if spec.linux.rootfs_propagation in ("shared", "rshared"):
                mounts.make_parent_private(sys, plan.rootfs)
    with step("mount the root filesystem"):
        mounts.mount_root(sys, spec, plan.rootfs, plan.upper, plan.work)
    rootfd = os.open(plan.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        dev_is_ours, deferred = mounts.mount_all(sys, rootfd, spec, cgroup, cgroup_ns, step,
                                                 cgroup_ready)
        userns = spec.linux.namespace("user") is not None
        if dev_is_ours:
            with step("create /dev nodes and links"):
                devices.populate_dev(sys, rootfd, spec.linux.devices, bind=userns)
        elif spec.linux.devices:
            with step("create /dev nodes"):
                devices.populate_dev(sys, rootfd, spec.linux.devices, defaults=False, bind=userns)
    finally:
        os.close(rootfd)
    before_pivot()
    if own_mount_ns:
        with step("pivot_root into the container's root"):
            pivot.pivot_root(sys, plan.rootfs)
    else:
        with step("chroot into the container's root (no mount namespace of its own)"):
            fd = os.open(plan.rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
            try:
                sys.chroot_fd(fd)
            finally:
                os.close(fd)
    cgroup_ready()
    if spec.linux.rootfs_propagation is not None and own_mount_ns:
        with step(f"make the root mount {spec.linux.rootfs_propagation}"):
            mounts.root_propagation_after_pivot(sys, spec.linux.rootfs_propagation)
    if deferred:
        rootfd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for m in deferred:
                with step(f"mount {m.destination} ({m.type})"):
                    mounts.mount_cgroup(sys, rootfd, m, cgroup, cgroup_ns)
        finally:
            os.close(rootfd)
    if spec.linux.sysctl:
        with step("write sysctls"):
            masks.write_sysctls(spec.linux.sysctl)
    with step("mask paths"):
        masks.mask_paths(sys, spec.linux.masked_paths)
    with step("make paths read-only"):
        masks.readonly_paths(sys, spec.linux.readonly_paths)
    if spec.root.readonly:
        with step("make the root read-only"):
            masks.readonly_root(sys)
