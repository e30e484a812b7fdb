"""Named seccomp base profiles and the degradations a layout may opt into.

`default` is what a Python 3.11 component (asyncio, pycapnp's KJ loop, threads,
logging, reading its granted files, talking over inherited sockets) does once
every lock is on, measured with `strace -f` on the example service and the
probes; see docs/sandbox.md. It holds no syscall that creates sockets, execs,
traces, mounts, changes namespaces, loads code into the kernel or reboots:
those are in DENIED and fail with EPERM. Anything neither allowed nor denied
fails with ENOSYS. `clone3` deliberately stays out of both lists: its flags
live in memory, where seccomp cannot look, and glibc falls back to `clone`
(whose flags the filter checks) only on ENOSYS.

`none` is the empty base: the layout lists every syscall itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from privsep.layout._model import Seccomp

_DEFAULT = frozenset(
    {
        # memory
        "brk", "mmap", "munmap", "mprotect", "mremap", "madvise", "mincore", "msync",
        "membarrier",
        # files on fds already open or reachable through the granted paths
        "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
        "preadv2", "pwritev2", "lseek", "close", "close_range", "fstat", "newfstatat",
        "stat", "lstat", "statx", "fstatfs", "statfs", "open", "openat", "openat2",
        "access", "faccessat", "faccessat2", "readlink", "readlinkat", "getdents64",
        "getcwd", "chdir", "fchdir", "fcntl", "flock", "fsync", "fdatasync", "ftruncate",
        "fadvise64", "mkdir", "mkdirat", "unlink", "unlinkat", "rename", "renameat",
        "renameat2", "rmdir", "fchmod", "utimensat", "umask", "copy_file_range",
        "sendfile", "dup", "dup2", "dup3", "pipe", "pipe2", "ioctl",
        # waiting and event loops
        "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1",
        "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd2",
        "timerfd_create", "timerfd_settime", "timerfd_gettime", "signalfd4",
        "futex", "futex_waitv", "nanosleep", "clock_nanosleep", "sched_yield",
        "restart_syscall", "pause",
        # inherited sockets (no socket creation: see DENIED)
        "sendmsg", "recvmsg", "sendto", "recvfrom", "sendmmsg", "recvmmsg", "shutdown",
        "getsockopt", "setsockopt", "getsockname", "getpeername", "accept", "accept4",
        # signals
        "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending",
        "rt_sigtimedwait", "rt_sigsuspend", "sigaltstack", "kill", "tgkill", "tkill",
        # threads and processes (clone filtered: no namespace flags)
        "clone", "exit", "exit_group", "wait4", "waitid", "set_robust_list",
        "get_robust_list", "set_tid_address", "rseq", "arch_prctl",
        # identity, time and limits (read only)
        "getpid", "gettid", "getppid", "getpgrp", "getpgid", "getsid", "getuid",
        "geteuid", "getgid", "getegid", "getgroups", "getresuid", "getresgid",
        "clock_gettime", "clock_getres", "gettimeofday", "time", "getrandom",
        "uname", "sysinfo", "getrlimit", "prlimit64", "getrusage", "times",
        "sched_getaffinity", "sched_getparam", "sched_getscheduler", "getpriority",
        "getitimer", "setitimer", "alarm",
    }
)  # fmt: skip

# Deliberately denied (EPERM) in every profile unless the layout allows them.
DENIED = frozenset(
    {
        "socket", "socketpair", "bind", "connect", "listen",
        "execve", "execveat",
        "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
        "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree",
        "fsopen", "fsmount", "fsconfig", "fspick", "mount_setattr",
        "setns", "unshare",
        "bpf", "perf_event_open", "userfaultfd", "io_uring_setup",
        "keyctl", "add_key", "request_key",
        "open_by_handle_at", "name_to_handle_at",
        "init_module", "finit_module", "delete_module",
        "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff",
        "personality", "acct", "quotactl", "syslog", "settimeofday", "clock_settime",
        "adjtimex", "clock_adjtime", "sethostname", "setdomainname", "vhangup",
        "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
        "setgroups", "setfsuid", "setfsgid", "capset", "prctl",
        "seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
        "iopl", "ioperm", "lookup_dcookie", "mknod", "mknodat", "uselib",
    }
)  # fmt: skip

PROFILES: dict[str, frozenset[str]] = {
    "default": _DEFAULT,
    "none": frozenset(),
}

# Named degradations a layout may opt into when the kernel (or the host set-up)
# lacks a mechanism. Without the matching opt-in, a missing mechanism is fatal.
DEGRADATIONS: frozenset[str] = frozenset(
    {
        "no-landlock",  # Landlock unavailable: run without the path ruleset
        "landlock-abi-below-4",  # Landlock present but cannot restrict TCP bind/connect
        "no-cgroup-limits",  # memory/pids requested but no writable cgroup controller
        "no-user-namespace",  # user namespace requested but the kernel allows none
        "no-seccomp",  # libseccomp2 or kernel seccomp filtering unavailable
    }
)


def resolve_allowlist(seccomp: Seccomp) -> frozenset[str]:
    """The syscalls the process may make: base profile + `allow` - `deny`.

    A syscall in `allow` is taken out of the denied set too (an explicit grant).
    """
    return (PROFILES[seccomp.profile] | frozenset(seccomp.allow)) - frozenset(seccomp.deny)


def resolve_denylist(seccomp: Seccomp) -> frozenset[str]:
    """The syscalls that fail with EPERM (the rest of the unknown ones get ENOSYS)."""
    return (DENIED - frozenset(seccomp.allow)) | frozenset(seccomp.deny)
