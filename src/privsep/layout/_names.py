"""Name tables the validator checks against, owned by `privsep.sandbox`.

Imported lazily: `privsep check` must stay fast and must not pull in the
launcher's kernel plumbing beyond these tables.
"""

from __future__ import annotations

import shutil

from privsep.layout._model import Process, Seccomp


def capabilities() -> frozenset[str]:
    from privsep.sandbox._caps import CAPABILITIES  # noqa: PLC0415

    return frozenset(CAPABILITIES)


def syscall_known(name: str) -> bool:
    from privsep.sandbox._seccomp import syscall_number  # noqa: PLC0415

    return syscall_number(name) is not None


def profiles() -> frozenset[str]:
    from privsep.sandbox._profiles import PROFILES  # noqa: PLC0415

    return frozenset(PROFILES)


def degradations() -> frozenset[str]:
    from privsep.sandbox._profiles import DEGRADATIONS  # noqa: PLC0415

    return frozenset(DEGRADATIONS)


def allowlist(seccomp: Seccomp) -> frozenset[str]:
    from privsep.sandbox._profiles import resolve_allowlist  # noqa: PLC0415

    return frozenset(resolve_allowlist(seccomp))


def landlock_rules(process: Process) -> list[tuple[str, tuple[str, ...]]]:
    """(path, rights) the launcher grants the process, computed without side effects."""
    from privsep.sandbox._plan import _minimal, landlock_rules  # noqa: PLC0415

    command = list(process.command) if process.command else None
    if command and "/" not in command[0]:  # resolved as the launcher does before exec
        command[0] = shutil.which(command[0], path=COMMAND_PATH) or command[0]
    # As the launcher trims them: no optional path missing on this host (/lib32 ...),
    # none below another rule that grants at least as much.
    rules = _minimal(landlock_rules(process, command=command), {b.target for b in process.binds})
    return [(path, tuple(rights)) for path, rights, _required in rules]


COMMAND_PATH = "/usr/local/bin:/usr/bin:/bin"  # where the launcher looks up bare command names


# Kinds of packet-socket filters the supervisor knows (the programs live in
# privsep.sandbox._resources; a test keeps the two tables equal).
PACKET_FILTERS = ("dhcp-client",)
