"""The control plane besides the API server: which of the scheduler and the controllers run.

`nodeagent server` (a control plane alone) and `nodeagent up` (an all-in-one node) both start the
API server and then these, as clients of it over loopback. Each part is leader-elected through its
own Lease (kube-system/kube-scheduler, kube-system/kube-controller-manager), so several control
planes against one store do each piece of work once.

The flags are kube-controller-manager's and kube-scheduler's: `--controllers` takes `*` (all),
`name` (on), `-name` (off), comma-separated; `--no-scheduler` leaves pods for another scheduler.

May import: apiclient, controlplane.scheduler, controlplane.controllers, the standard library.
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass


@dataclass(frozen=True)
class Components:
    scheduler: bool = True
    controllers: str = "*"                 # kube-controller-manager's --controllers
    cluster_cidr: str = "10.244.0.0/16"    # node IPAM hands out each node's podCIDR from it

    def enabled_controllers(self) -> set[str] | None:
        """The --controllers items as a set (None: all), checked: an unknown name is a ValueError
        whose message names the flag."""
        from controlplane.controllers.manager import resolve

        items = {s.strip() for s in self.controllers.split(",") if s.strip()}
        enabled = None if items == {"*"} else items
        resolve(enabled)                   # raises ValueError("--controllers: unknown ...")
        return enabled

    def check(self) -> None:
        """Every flag's error before anything starts (ValueError naming the flag)."""
        from controlplane.controllers import ControllerOptions

        self.enabled_controllers()
        ControllerOptions(cluster_cidr=self.cluster_cidr)


def parts(api, components: Components) -> list[tuple[str, Coroutine]]:
    """(name, coroutine) for each enabled part; each runs until cancelled."""
    from controlplane.controllers import ControllerOptions, run_controllers
    from controlplane.controllers.manager import resolve

    out: list[tuple[str, Coroutine]] = []
    if components.scheduler:
        from controlplane.scheduler import run_scheduler

        out.append(("scheduler", run_scheduler(api)))
    enabled = components.enabled_controllers()
    if resolve(enabled):                   # `--controllers=-*`-like specs leave none to run
        out.append(("controllers", run_controllers(
            api, enabled, ControllerOptions(cluster_cidr=components.cluster_cidr))))
    return out
