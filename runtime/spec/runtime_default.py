"""The RuntimeDefault seccomp profile: what Kubernetes' `seccompProfile: RuntimeDefault` means.

A syscall filter is a second wall behind capabilities. Capabilities ask "may this process do that
privileged thing?"; the filter asks "may this process even *enter the kernel* through that door?".
Most kernel bugs that let a container escape were reached through a rarely used syscall, so the
profile allows the ~350 syscalls ordinary programs use and answers everything else with EPERM.

Built like Docker's and containerd's default profile (moby profiles/seccomp/default.json):

- an allow-list of everyday syscalls, grouped below by what they are for;
- syscalls that manage the machine or other namespaces (mount, unshare, setns, bpf,
  perf_event_open, ...) are allowed only when the container has CAP_SYS_ADMIN in its bounding set,
  and similar gates for CAP_SYS_PTRACE, CAP_SYS_TIME, ...;
- clone(2) is allowed only *without* namespace flags (a masked-equal test on its first argument),
  unless CAP_SYS_ADMIN;
- clone3(2) gets ENOSYS, not EPERM: its flags live in a struct in memory that a BPF filter cannot
  read, so it cannot be checked like clone's; ENOSYS makes glibc fall back to clone, which can.
"""

from __future__ import annotations

import platform

from runtime.spec.model import Seccomp, SeccompArg, SeccompRule

_FILES = """
    access chdir chmod chown chown32 close close_range copy_file_range creat dup dup2 dup3
    faccessat faccessat2 fadvise64 fadvise64_64 fallocate fchdir fchmod fchmodat fchmodat2 fchown
    fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fremovexattr fsetxattr
    fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futimesat getcwd getdents
    getdents64 getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch lchown lchown32
    lgetxattr link linkat listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64
    mkdir mkdirat mknod mknodat newfstatat open openat openat2 pread64 preadv preadv2 pwrite64
    pwritev pwritev2 read readahead readlink readlinkat readv removexattr rename renameat renameat2
    rmdir sendfile sendfile64 setxattr splice stat stat64 statfs statfs64 statx symlink symlinkat
    sync sync_file_range syncfs tee truncate truncate64 umask unlink unlinkat utime utimensat
    utimensat_time64 utimes vmsplice write writev fanotify_mark cachestat
    io_cancel io_destroy io_getevents io_pgetevents io_pgetevents_time64 io_setup io_submit
    ioctl ioprio_get ioprio_set memfd_create
"""
_MEMORY = """
    brk madvise membarrier mincore mlock mlock2 mlockall mmap mmap2 mprotect mremap msync munlock
    munlockall munmap remap_file_pages pkey_alloc pkey_free pkey_mprotect mseal map_shadow_stack
"""
_PROCESSES = """
    arch_prctl capget capset execve execveat exit exit_group fork get_robust_list get_thread_area
    getcpu getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getpgid getpgrp
    getpid getppid getpriority getresgid getresgid32 getresuid getresuid32 getrlimit getrusage
    getsid gettid getuid getuid32 modify_ldt prctl prlimit64 rseq sched_get_priority_max
    sched_get_priority_min sched_getaffinity sched_getattr sched_getparam sched_getscheduler
    sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr
    sched_setparam sched_setscheduler sched_yield seccomp set_robust_list set_thread_area
    set_tid_address setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32
    setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
    setreuid32 setrlimit setsid setuid setuid32 ugetrlimit uname vfork wait4 waitid waitpid
    pidfd_open pidfd_send_signal process_mrelease landlock_add_rule landlock_create_ruleset
    landlock_restrict_self
"""
_SIGNALS_AND_TIME = """
    alarm clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
    clock_nanosleep_time64 getitimer gettimeofday kill nanosleep pause restart_syscall rt_sigaction
    rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
    rt_sigtimedwait_time64 rt_tgsigqueueinfo setitimer sigaltstack signalfd signalfd4 sigprocmask
    sigreturn sigsuspend tgkill time timer_create timer_delete timer_getoverrun timer_gettime
    timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64
    timerfd_settime timerfd_settime64 times tkill
"""
_WAITING_AND_IPC = """
    epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
    epoll_wait_old eventfd eventfd2 futex futex_time64 futex_waitv _newselect pipe pipe2 poll ppoll
    ppoll_time64 pselect6 pselect6_time64 select
    ipc mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
    mq_timedsend_time64 mq_unlink msgctl msgget msgrcv msgsnd semctl semget semop semtimedop
    semtimedop_time64 shmat shmctl shmdt shmget
"""
_NETWORK = """
    accept accept4 bind connect getpeername getsockname getsockopt listen recv recvfrom recvmmsg
    recvmmsg_time64 recvmsg send sendmmsg sendmsg sendto setsockopt shutdown socket socketcall
    socketpair getrandom sysinfo
"""

# Syscalls opened up by one capability in the bounding set.
_BY_CAPABILITY: dict[str, str] = {
    "CAP_SYS_ADMIN": """bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick
                        lookup_dcookie mount mount_setattr move_mount name_to_handle_at open_tree
                        perf_event_open quotactl quotactl_fd setdomainname sethostname setns
                        syslog umount umount2 unshare""",
    "CAP_SYS_BOOT": "reboot",
    "CAP_SYS_CHROOT": "chroot",
    "CAP_SYS_MODULE": "delete_module init_module finit_module",
    "CAP_SYS_PACCT": "acct",
    "CAP_SYS_PTRACE": "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
    "CAP_SYS_RAWIO": "iopl ioperm",
    "CAP_SYS_TIME": "settimeofday stime clock_settime clock_settime64 adjtimex clock_adjtime clock_adjtime64",
    "CAP_SYS_TTY_CONFIG": "vhangup",
    "CAP_SYS_NICE": "get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
    "CAP_SYSLOG": "syslog",
    "CAP_DAC_READ_SEARCH": "open_by_handle_at",
}

# clone(2) flags that create namespaces: CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET.
NAMESPACE_CLONE_FLAGS = 0x7E020000
ENOSYS = 38
EPERM = 1

# The native architecture plus its 32-bit companions: a 64-bit kernel also runs 32-bit programs,
# whose syscalls have other numbers; listing the arches makes the filter check them too.
_ARCHITECTURES: dict[str, tuple[str, ...]] = {
    "x86_64": ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
    "aarch64": ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"),
}


def _names(block: str) -> tuple[str, ...]:
    return tuple(block.split())


def runtime_default_seccomp(bounding: tuple[str, ...]) -> Seccomp:
    """The profile for a container whose bounding capability set is `bounding`."""
    allow = _names(_FILES + _MEMORY + _PROCESSES + _SIGNALS_AND_TIME + _WAITING_AND_IPC + _NETWORK)
    rules = [SeccompRule(allow, "SCMP_ACT_ALLOW")]
    # personality(2): only the harmless "personas" (Linux, 32-bit Linux, uname26; 0xffffffff queries).
    for persona in (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF):
        rules.append(SeccompRule(("personality",), "SCMP_ACT_ALLOW",
                                 args=(SeccompArg(0, "SCMP_CMP_EQ", persona),)))
    granted: set[str] = set()
    for cap in bounding:
        names = _names(_BY_CAPABILITY.get(cap, ""))
        if names:
            granted.update(names)
            rules.append(SeccompRule(names, "SCMP_ACT_ALLOW"))
    if "clone" not in granted:
        rules.append(SeccompRule(("clone",), "SCMP_ACT_ALLOW",
                                 args=(SeccompArg(0, "SCMP_CMP_MASKED_EQ", NAMESPACE_CLONE_FLAGS, 0),)))
    if "clone3" not in granted:
        rules.append(SeccompRule(("clone3",), "SCMP_ACT_ERRNO", errno_ret=ENOSYS))
    return Seccomp(default_action="SCMP_ACT_ERRNO", default_errno_ret=EPERM,
                   architectures=_ARCHITECTURES.get(platform.machine(), ()),
                   syscalls=tuple(rules))
