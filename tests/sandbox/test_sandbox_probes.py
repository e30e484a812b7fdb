"""Kernel-level containment probes: each runs a script through `privsep probe` inside a
process of tests/sandbox/layouts/probes.yaml, after every lock, and checks one fact.

Documented errnos (docs/sandbox.md): a syscall the policy denies on purpose fails
with EPERM; one it does not know fails with ENOSYS; Landlock refusals are EACCES.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from privsep.sandbox._seccomp import syscall_number

pytestmark = pytest.mark.sandbox

Run = Callable[..., Any]


def nr(name: str) -> int:
    number = syscall_number(name)
    assert number is not None, name
    return number


def _status(probe: Run, process: str) -> dict[str, str]:
    result = probe(process, "print(open('/proc/self/status').read())")
    assert result.code == 0, result.err
    fields = {}
    for line in result.out.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


# --- how the process started ------------------------------------------------------


def test_start_mode_is_the_one_asked_for(probe: Run) -> None:
    # A forked child still holds the modules of the process that forked it (pytest here);
    # an exec'd one starts from `python -S -E` with only what the helper imported.
    script = "import signal; print('_pytest' in sys.modules, signal.set_wakeup_fd(-1))"
    result = probe("plain", script)
    assert result.code == 0, result.err
    forked = result.mode == "fork"
    # -1: no wakeup fd left over from the parent's event loop to write signals into.
    assert result.out.split() == [str(forked), "-1"]


def test_signal_handlers_start_at_their_defaults(probe: Run) -> None:
    script = """
    import signal
    odd = [s for s in range(1, signal.NSIG) if s not in (signal.SIGTERM, signal.SIGINT)
           and callable(signal.getsignal(s))]
    blocked = [l.split()[1] for l in open("/proc/self/status") if l.startswith("SigBlk:")]
    print(odd, signal.getsignal(signal.SIGTERM).__name__, blocked[0])
    """
    result = probe("plain", script)
    assert result.code == 0, result.err
    # No handler of the parent's, ours for SIGTERM, and no signal left blocked (the fork
    # start blocks them around fork() and must unblock them in the child).
    assert result.out.split() == ["[]", "_terminate", "0000000000000000"]


# --- pid namespace -----------------------------------------------------------------


def test_probe_is_pid_1_of_its_own_pid_namespace(probe: Run) -> None:
    result = probe("plain", "print(os.getpid(), os.getppid())")
    assert result.code == 0, result.err
    assert result.out.split() == ["1", "0"]


def test_proc_shows_only_the_sandbox_pids(probe: Run) -> None:
    result = probe("plain", "print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))")
    assert result.code == 0, result.err
    assert result.out.strip() == "[1]"


def test_host_process_environ_is_not_visible(probe: Run) -> None:
    host_pid = os.getpid()  # this pytest process: certainly alive on the host
    result = probe(
        "plain",
        f"""
        try:
            open('/proc/{host_pid}/environ').read()
            print('readable')
        except OSError as exc:
            print(exc.errno)
        """,
    )
    assert result.code == 0, result.err
    assert result.out.strip() == str(errno.ENOENT)


def test_proc_1_environ_is_the_probe_itself_not_host_init(probe: Run) -> None:
    # pid 1 is the probe; after its uid change it is not dumpable, so even its own
    # environ is closed to it (EACCES). Either way nothing of the host's init shows.
    result = probe(
        "plain",
        """
        print(os.readlink('/proc/self'))
        try:
            print('HOME=' in open('/proc/1/environ').read())
        except OSError as exc:
            print(exc.errno)
        """,
    )
    assert result.code == 0, result.err
    assert result.lines[0] == "1"
    assert result.lines[1] in ("False", str(errno.EACCES))


def test_kill_of_a_host_process_fails(probe: Run) -> None:
    result = probe(
        "plain",
        f"""
        try:
            os.kill({os.getpid()}, 0)
            print('reachable')
        except OSError as exc:
            print(exc.errno)
        """,
    )
    assert result.code == 0, result.err
    assert result.out.strip() == str(errno.ESRCH)


# --- sockets ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "kind"),
    [
        (socket.AF_INET, socket.SOCK_DGRAM),
        (socket.AF_INET6, socket.SOCK_STREAM),
        (socket.AF_PACKET, socket.SOCK_RAW),
        (socket.AF_NETLINK, socket.SOCK_DGRAM),
        (socket.AF_UNIX, socket.SOCK_STREAM),
    ],
    ids=["af_inet", "af_inet6", "af_packet", "af_netlink", "af_unix"],
)
def test_cannot_create_socket_of_any_family(probe: Run, family: int, kind: int) -> None:
    result = probe(
        "plain",
        f"""
        import socket
        try:
            socket.socket({family}, {kind})
            print('created')
        except OSError as exc:
            print(exc.errno)
        """,
    )
    assert result.code == 0, result.err
    assert result.out.strip() == str(errno.EPERM)


def test_cannot_create_socketpair(probe: Run) -> None:
    result = probe("plain", f"print(raw({nr('socketpair')}, 1, 1, 0, 0))")
    assert result.out.strip() == str(-errno.EPERM)


def test_granted_socket_syscall_creates_af_unix_socket(probe: Run) -> None:
    result = probe("sockets", "import socket; socket.socket(socket.AF_UNIX); print('created')")
    assert result.code == 0, result.err
    assert result.out.strip() == "created"


# --- files ------------------------------------------------------------------------


def test_cannot_read_etc_shadow(probe: Run) -> None:
    result = probe(
        "plain",
        """
        try:
            open('/etc/shadow').read()
            print('read')
        except OSError as exc:
            print(exc.errno)
        """,
    )
    assert result.out.strip() == str(errno.ENOENT)


@pytest.mark.parametrize("path", ["/x", "/etc/x", "/root/x"], ids=["root", "etc", "root_home"])
def test_cannot_write_outside_granted_paths(probe: Run, path: str) -> None:
    result = probe(
        "plain",
        f"""
        try:
            open({path!r}, 'w')
            print('written')
        except OSError as exc:
            print(exc.errno in (errno.EROFS, errno.EACCES, errno.ENOENT))
        """,
    )
    assert result.out.strip() == "True"


def test_cannot_write_the_host_tmp(probe: Run) -> None:
    marker = f"/tmp/privsep-probe-{os.getpid()}"
    result = probe(
        "plain",
        f"""
        try:
            open({marker!r}, 'w').write('x')
            print('written')
        except OSError as exc:
            print(exc.errno)
        """,
    )
    assert result.out.strip() == str(errno.EACCES)
    assert not Path(marker).exists()


def test_can_write_a_granted_rw_bind(probe: Run, state_dir: Path) -> None:
    target = state_dir / "rw" / "written"
    result = probe("writer", f"open({str(target)!r}, 'w').write('from inside'); print('ok')")
    assert result.code == 0, result.err
    assert target.read_text() == "from inside"


def test_cannot_write_a_read_only_bind(probe: Run, state_dir: Path) -> None:
    target = state_dir / "ro" / "written"
    result = probe(
        "writer",
        f"""
        try:
            open({str(target)!r}, 'w')
        except OSError as exc:
            print(exc.errno)
        """,
    )
    assert result.out.strip() in (str(errno.EROFS), str(errno.EACCES))
    assert not target.exists()


def test_landlock_denies_a_rw_bind_without_a_write_rule(probe: Run, state_dir: Path) -> None:
    # Mounted read-write and mode 0777: only Landlock stands in the way.
    target = state_dir / "nolandlock" / "written"
    result = probe(
        "writer",
        f"""
        try:
            open({str(target)!r}, 'w')
        except OSError as exc:
            print(exc.errno)
        """,
    )
    assert result.out.strip() == str(errno.EACCES)
    assert not target.exists()


def test_landlock_denies_listing_the_root_despite_dac(probe: Run) -> None:
    result = probe(
        "plain",
        """
        print(oct(os.stat('/').st_mode & 0o777))
        try:
            os.listdir('/')
        except OSError as exc:
            print(exc.errno)
        """,
    )
    assert result.lines == ["0o755", str(errno.EACCES)]


def test_landlock_cannot_be_reconfigured_from_inside(probe: Run) -> None:
    result = probe("plain", f"print(raw({nr('landlock_create_ruleset')}, 0, 0, 1))")
    assert result.out.strip() == str(-errno.EPERM)


def test_root_filesystem_is_read_only(probe: Run) -> None:
    result = probe(
        "plain",
        """
        for line in open('/proc/self/mountinfo'):
            fields = line.split()
            if fields[4] == '/':
                print(fields[5].split(',')[0], line.split(' - ')[1].split()[0])
        """,
    )
    assert result.out.strip() == "ro tmpfs"


def test_mountinfo_shows_only_the_sandbox_mounts(probe: Run) -> None:
    result = probe("plain", "print(*(l.split()[4] for l in open('/proc/self/mountinfo')))")
    mounts = result.out.split()
    assert "/" in mounts and "/proc" in mounts and "/tmp" in mounts
    for host_only in ("/sys", "/run", "/boot", "/home", "/var"):
        assert host_only not in mounts
    assert len(mounts) < 20


def test_dev_holds_only_the_allowed_nodes(probe: Run) -> None:
    result = probe(
        "plain",
        """
        for node in ('null', 'zero', 'urandom', 'random', 'mem', 'kmsg', 'sda', 'vda', 'tty',
                     'full', 'console', 'shm'):
            print(node, os.path.exists('/dev/' + node))
        """,
    )
    present = {line.split()[0] for line in result.lines if line.endswith("True")}
    assert present == {"null", "zero", "urandom", "random"}


# --- credentials and capabilities --------------------------------------------------


def test_runs_as_a_dynamic_uid_not_root(probe: Run) -> None:
    result = probe("plain", "print(repr((os.getresuid(), os.getresgid(), os.getgroups())))")
    uids = os.getresuid()
    assert result.code == 0, result.err
    ruid, rgid, groups = eval(result.out)
    assert len(set(ruid)) == 1 and ruid[0] in range(61184, 65520)
    assert rgid == ruid and groups == []
    assert ruid != uids


def test_setuid_0_fails(probe: Run) -> None:
    result = probe(
        "plain",
        """
        try:
            os.setuid(0)
            print('root')
        except OSError as exc:
            print(exc.errno)
        """,
    )
    assert result.out.strip() == str(errno.EPERM)


def test_no_capabilities_without_a_grant(probe: Run) -> None:
    status = _status(probe, "plain")
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert status[field] == "0000000000000000", field


def test_exactly_cap_net_admin_when_granted(probe: Run) -> None:
    status = _status(probe, "netadmin")
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert status[field] == f"{1 << 12:016x}", field


def test_no_new_privs_is_set(probe: Run) -> None:
    assert _status(probe, "plain")["NoNewPrivs"] == "1"


def test_seccomp_filter_mode_is_on(probe: Run) -> None:
    status = _status(probe, "plain")
    assert status["Seccomp"] == "2"
    assert int(status["Seccomp_filters"]) >= 1


def test_securebits_are_locked(probe: Run) -> None:
    # PR_GET_SECUREBITS: NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE set and all locked.
    result = probe("secbits", "print(hex(libc.prctl(27, 0, 0, 0, 0)))")
    assert result.out.strip() == "0xef"


def test_rlimit_nofile_is_applied(probe: Run) -> None:
    result = probe("netadmin", "import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE))")
    assert result.out.strip() == "(32, 32)"


# --- fds and environment -----------------------------------------------------------


def test_inherited_fds_are_exactly_the_granted_ones(probe: Run) -> None:
    result = probe(
        "holder",
        """
        fds = sorted(int(fd) for fd in os.listdir('/proc/self/fd'))
        print(fds[:-1])  # the last one is the listing's own directory fd
        print(os.environ['LISTEN_FDS'], os.environ['LISTEN_FDNAMES'], os.environ['LISTEN_PID'])
        print(os.read(3, 100).decode().strip())
        """,
    )
    assert result.code == 0, result.err
    assert result.lines == ["[0, 1, 2, 3, 4]", "2 data:probe 1", "granted file"]


def test_environment_holds_only_what_the_launcher_sets(probe: Run) -> None:
    os.environ["PRIVSEP_PROBE_SECRET"] = "leak"
    try:
        result = probe("plain", "print(sorted(os.environ))")
    finally:
        del os.environ["PRIVSEP_PROBE_SECRET"]
    names = set(eval(result.out))
    assert names <= {"PATH", "PRIVSEP_PROCESS", "LC_CTYPE"}


def test_layout_environment_is_passed(probe: Run) -> None:
    result = probe("netadmin", "print(os.environ['GREETING'], sorted(os.environ))")
    assert result.out.split(" ", 1)[0] == "hello"
    names = set(eval(result.out.split(" ", 1)[1]))
    assert names <= {"PATH", "PRIVSEP_PROCESS", "LC_CTYPE", "GREETING"}


# --- explicit root ----------------------------------------------------------------


def test_uid_0_holds_no_capability_and_securebits_keep_it_so(probe: Run) -> None:
    status = _status(probe, "root")
    assert status["Uid"].split() == ["0"] * 4
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert status[field] == "0000000000000000", field


def test_uid_0_cannot_write_kernel_knobs(probe: Run) -> None:
    result = probe(
        "root",
        """
        ro = [l.split()[4] for l in open('/proc/self/mountinfo') if ' ro,' in l]
        knobs = ('/proc/sys', '/proc/sysrq-trigger', '/proc/irq', '/proc/bus')
        print(all(p in ro for p in knobs if os.path.exists(p)) and '/proc/sys' in ro)
        try:
            open('/proc/sys/kernel/domainname', 'w').write('leak')
        except OSError as exc:
            print(exc.errno in (errno.EROFS, errno.EACCES))
        """,
    )
    assert result.code == 0, result.err
    assert result.lines == ["True", "True"]


# --- syscalls ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("syscall", "args"),
    [
        ("ptrace", (16, 1, 0, 0)),  # PTRACE_ATTACH pid 1
        ("mount", (0, 0, 0, 0, 0)),
        ("unshare", (0x40000000,)),  # CLONE_NEWNET
        ("keyctl", (0, 0, 0, 0, 0)),
        ("bpf", (0, 0, 0)),
        ("perf_event_open", (0, 0, -1, -1, 0)),
        ("setns", (0, 0)),
        ("userfaultfd", (0,)),
        ("personality", (0xFFFFFFFF,)),
    ],
)
def test_denied_syscall_fails_with_eperm(probe: Run, syscall: str, args: tuple[int, ...]) -> None:
    result = probe("plain", f"print(raw({nr(syscall)}, *{args!r}))")
    assert result.out.strip() == str(-errno.EPERM)


def test_syscall_unknown_to_the_policy_fails_with_enosys(probe: Run) -> None:
    result = probe("plain", f"print(raw({nr('io_setup')}, 1, 0), raw({nr('getcpu')}, 0, 0, 0))")
    assert result.out.split() == [str(-errno.ENOSYS)] * 2


def test_execve_is_denied(probe: Run) -> None:
    result = probe(
        "plain",
        """
        try:
            os.execv('/bin/sh', ['sh', '-c', 'echo escaped'])
        except OSError as exc:
            print(exc.errno)
        """,
    )
    assert result.out.strip() == str(errno.EPERM)


def test_clone_with_a_namespace_flag_is_denied(probe: Run) -> None:
    # clone(CLONE_NEWUSER | SIGCHLD): if it ever succeeded, the child leaves at once.
    result = probe(
        "plain",
        f"""
        pid = raw({nr("clone")}, 0x10000000 | 17, 0, 0, 0, 0)
        if pid == 0:
            os._exit(0)
        print(pid)
        """,
    )
    assert result.out.strip() == str(-errno.EPERM)


def test_threads_still_work_under_the_filter(probe: Run) -> None:
    result = probe(
        "plain",
        """
        import threading
        box = []
        t = threading.Thread(target=box.append, args=(42,))
        t.start(); t.join()
        print(box)
        """,
    )
    assert result.out.strip() == "[42]"


def test_x32_syscall_is_denied(probe: Run) -> None:
    if os.uname().machine != "x86_64":
        pytest.skip("x32 exists on x86_64 only")
    result = probe("plain", f"print(raw(0x40000000 | {nr('getpid')}))")
    assert result.out.strip() == str(-errno.EPERM)


def test_hostname_change_fails_and_does_not_leak(probe: Run) -> None:
    before = socket.gethostname()
    result = probe(
        "netadmin",
        """
        import socket
        try:
            socket.sethostname('privsep-leak')
            print('changed')
        except OSError as exc:
            print(exc.errno)
        """,
    )
    assert result.out.strip() == str(errno.EPERM)
    assert socket.gethostname() == before


def test_only_loopback_in_a_new_network_namespace(probe: Run) -> None:
    result = probe("plain", "print([l.split(':')[0].strip() for l in open('/proc/net/dev')][2:])")
    assert result.out.strip() == "['lo']"


def test_joins_the_named_network_namespace(probe: Run) -> None:
    netns = f"privsep-sbx-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        link = ["ip", "-n", netns, "link", "add", "privsep-v0", "type", "veth"]
        subprocess.run([*link, "peer", "name", "privsep-v1"], check=True)  # both ends inside
        result = probe(
            "joined",
            "print(sorted(l.split(':')[0].strip() for l in list(open('/proc/net/dev'))[2:]))",
            f"netns={netns}",
        )
    finally:
        subprocess.run(["ip", "netns", "delete", netns], check=True)
    assert result.code == 0, result.err
    assert result.out.strip() == "['lo', 'privsep-v0', 'privsep-v1']"


def test_pids_limit_caps_threads(probe: Run) -> None:
    from privsep.sandbox import _cgroups

    if _cgroups.locate("pids") is None:
        pytest.skip("no writable pids cgroup controller here")
    result = probe(
        "limited",
        """
        import threading, time
        started = 0
        try:
            for _ in range(32):
                threading.Thread(target=time.sleep, args=(1,), daemon=True).start()
                started += 1
        except RuntimeError:
            pass
        print(started)
        """,
    )
    assert result.code == 0, result.err
    assert 0 < int(result.out) < 8


# --- user namespace ----------------------------------------------------------------


def test_user_namespace_maps_only_the_process_uid(probe: Run) -> None:
    host_ns = str(Path("/proc/self/ns/user").readlink())
    result = probe(
        "dac-userns",
        """
        print(os.readlink('/proc/self/ns/user'))
        print(open('/proc/self/uid_map').read().split(), os.getuid())
        """,
    )
    assert result.code == 0, result.err
    ns, mapping = result.lines
    assert ns != host_ns
    uid = mapping.split()[-1]
    assert mapping == f"['{uid}', '{uid}', '1'] {uid}"


def test_capability_reaches_host_files_without_a_user_namespace(
    probe: Run, state_dir: Path
) -> None:
    secret = state_dir / "secret"
    result = probe("dac", f"print(open({str(secret)!r}).read().strip())")
    assert result.out.strip() == "root only"


def test_capability_in_a_user_namespace_does_not_reach_host_files(
    probe: Run, state_dir: Path
) -> None:
    secret = state_dir / "secret"
    result = probe(
        "dac-userns",
        f"""
        try:
            print(open({str(secret)!r}).read().strip())
        except OSError as exc:
            print(exc.errno)
        """,
    )
    assert result.out.strip() == str(errno.EACCES)
