"""nodeagent — the node agent (our kubelet) and its command line.

Place in the layer map (DEVELOPERS.md):

    nodeagent ──► runtime, network, cni, apiclient      (through narrow interfaces)

The agent watches the API for pods bound to its node, runs one worker per pod, reports status, runs
probes and serves the kubelet API. It is the only package that knows both pods and processes.
Nothing imports nodeagent; controlplane in particular never does.

The rooms, in the order a pod passes through them (each named after the kubelet's own package):

    node.py          the agent assembled: run_node_agent (what `up` and `agent` run), clean_node
    nodestatus.py    the Node: registration, status and conditions, the Lease heartbeat
    admission.py     may a new pod run here? (host ports; eviction/ adds node pressure)
    podworkers.py    one task per pod: SYNCING → TERMINATING → TERMINATED
    kuberuntime/     SyncPod / KillPod: pod spec → CRI calls (configs, images, restarts, back-off,
                     lifecycle hooks)
      envvars.py       the container's environment ($(VAR), fieldRef, ConfigMaps, Secrets, Services)
      resources.py     requests and limits → QoS class and cgroup values
      backoff.py       10 s doubling to 300 s
    cm.py            the container manager: the kubepods cgroup tree
    prober.py        liveness, readiness and startup probes
    volumes.py       emptyDir (tmpfs for medium Memory), configMap, secret, downwardAPI, projected
    eviction/        node-pressure eviction (hard and soft thresholds, the pressure conditions)
    imagegc.py       image garbage collection (high/low thresholds, least recently used first)
    podstatus.py     runtime state → the pod's status (phase, conditions, container states)
    status.py        the status manager: the only writer of pod status
    events.py        the event recorder (de-duplicated, with counts)
    volumes.py       a pod's volumes on the node: emptyDir, hostPath, configMap, secret, projected
    cri/             the runtime side of the CRI line (sandboxes, containers, images); cri/spec.py
                     also builds `nodeagent run`'s containers (one ContainerSpec assembly)
    server/          the kubelet API on :10250 (logs, exec, attach, port-forward, stats)
    allinone.py      `nodeagent up`: control plane and agent in one process
    doctor/          `nodeagent doctor`: can this machine be a node (cgroups, nftables, sysctls)
    cli.py, commands/  the command line, one module per command; errors become exit statuses by
                     one rule (commands/__init__.py)
    launcher.py, cmdclient.py   the fast `nodeagent` program: a `runtime` command handed to a
                     warm zygote's command server when one serves the state root
    errors.py        AgentError, the agent's one error type

May import: runtime, network, cni, apiclient, localfs, the standard library, third-party libraries.
"""
