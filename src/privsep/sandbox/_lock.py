"""The final locks, in the child, in this order: Landlock → no_new_privs → seccomp.

The kernel lets an unprivileged process enforce a Landlock ruleset only once
no_new_privs is set, so the ruleset is built and filled first, no_new_privs
goes on, then the ruleset is enforced, and seccomp comes last (after it, the
process could not make these syscalls any more).

Landlock and seccomp both act per thread unless synchronised; seccomp is
loaded with TSYNC, and Landlock needs the process to be single-threaded here
(checked: a component's `prepare` must not start threads).
"""

# ruff: noqa: PTH208 - os paths: pathlib would cost start-up time of every sandboxed process

from __future__ import annotations

import os

from privsep.sandbox import _libc

PR_SET_NO_NEW_PRIVS = 38
_LANDLOCK_RULE_PATH_BENEATH = 1
_SYS_CREATE_RULESET = 444
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1
FILE_ACCESS = 1 | 2 | 4 | (1 << 14) | (1 << 15)  # EXECUTE WRITE READ TRUNCATE IOCTL_DEV


class LockError(OSError):
    pass


def _check(result: int, what: str) -> int:
    if result == -1:
        err = _libc.errno()
        raise LockError(err, f"{what}: {os.strerror(err)}")
    return result


def single_threaded() -> bool:
    return len(os.listdir("/proc/self/task")) == 1


def landlock_ruleset(spec: dict[str, object]) -> int:
    """Create the ruleset and add its path rules; return its fd (not yet enforced)."""
    fs, net, scope = spec["fs"], spec["net"], spec["scoped"]
    assert isinstance(fs, int) and isinstance(net, int) and isinstance(scope, int)
    # struct landlock_ruleset_attr {u64 handled_access_fs, handled_access_net, scoped}:
    # pass only as much of it as the ABI in use knows.
    attr = fs.to_bytes(8, "little") + net.to_bytes(8, "little") + scope.to_bytes(8, "little")
    size = 24 if scope else 16 if net else 8
    ruleset = _check(
        _libc.call("syscall", _SYS_CREATE_RULESET, attr[:size], size, 0), "landlock_create_ruleset"
    )
    try:
        rules = spec["rules"]
        assert isinstance(rules, list)
        for path, granted, required in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except FileNotFoundError:
                if required:
                    raise
                continue
            try:
                access = granted & fs
                if os.fstat(fd).st_mode & 0o170000 != 0o040000:  # not a directory
                    access &= FILE_ACCESS
                if not access:
                    continue
                # struct landlock_path_beneath_attr {u64 allowed_access; s32 parent_fd;} packed
                rule = access.to_bytes(8, "little") + fd.to_bytes(4, "little", signed=True)
                rc = _libc.call(
                    "syscall", _SYS_ADD_RULE, ruleset, _LANDLOCK_RULE_PATH_BENEATH, rule, 0
                )
                _check(rc, f"landlock_add_rule {path}")
            finally:
                os.close(fd)
    except BaseException:
        os.close(ruleset)
        raise
    return ruleset


def no_new_privs() -> None:
    _check(_libc.call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")


def landlock_enforce(ruleset: int) -> None:
    try:
        _check(_libc.call("syscall", _SYS_RESTRICT_SELF, ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)


def seccomp_load(program: bytes, seccomp_nr: int) -> None:
    """Install the BPF `program` on every thread of the process (TSYNC)."""
    filters = _libc.Buffer(program)
    # struct sock_fprog {unsigned short len; (padding) struct sock_filter *filter;}
    fprog = (len(program) // 8).to_bytes(8, "little") + filters.address.to_bytes(8, "little")
    rc = _libc.call(
        "syscall", seccomp_nr, _SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_TSYNC, fprog
    )
    _check(rc, "seccomp")


def apply(plan: dict[str, object]) -> None:
    """Landlock → no_new_privs → seccomp, as the plan says (absent keys: skipped by
    degradation the spawner already accepted)."""
    landlock = plan.get("landlock")
    ruleset = -1
    if landlock is not None:
        if not single_threaded():
            raise LockError(0, "threads were started before the locks (in prepare?)")
        assert isinstance(landlock, dict)
        ruleset = landlock_ruleset(landlock)
    no_new_privs()
    if ruleset >= 0:
        landlock_enforce(ruleset)
    program = plan.get("seccomp")
    if program is not None:
        assert isinstance(program, bytes)
        nr = plan["nr"]
        assert isinstance(nr, dict)
        seccomp_load(program, nr["seccomp"])
