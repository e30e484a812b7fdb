"""The supervisor: runs the processes of a layout, each in its sandbox, and keeps them running.

What it does, in order:

- Groups the processes into *restart groups*: processes linked by channels,
  directly or through others. Groups are independent of each other.
- Starts each group's processes in layout order (a channel's server before its
  users). For each start it opens the granted resources itself
  (`privsep.sandbox._resources.open_resources`, in the right network
  namespace), makes one `socketpair(AF_UNIX, SOCK_STREAM)` per channel of the
  group, and passes each process its resources then its channel ends, in
  declaration order, as fds 3.. named by LISTEN_FDNAMES
  (`privsep.sandbox.spawn`). Its own copies are closed right after the spawn,
  so a process's death is seen by its peers at once as a disconnected channel.
- Watches each child through a pidfd and forwards its stdout and stderr line by
  line as JSON log lines tagged with the process name (see `_lines`: JSON-object
  lines pass through with `process` enforced, other lines are wrapped as
  `{"event": "stderr", "line": ...}`, lines are capped). That is all it reads
  from a child: the supervisor never parses a sandboxed process's data.
- Logs lifecycle events as JSON (process `supervisor`, the child in `child`):
  `start`, `start-failed`, `exit` (`code` or `signal`, `runtime`), `restart`
  (`attempt`, `delay`, `peers`), `stop`, `kill`, `give-up`, `supervisor-exit`.

Restart semantics (a channel lives exactly as long as both its ends):

- When a process exits, its `restart` policy decides: `always` restarts,
  `on-failure` restarts on a non-zero exit or a signal, `never` does not. A
  process that is not restarted and failed *gives up*; so does one that has
  spent `max_restarts` restarts (the count resets after a run of at least
  `stable_after` seconds).
- A restart restarts the whole group: the supervisor stops the other running
  members (SIGTERM, then SIGKILL after `stop_timeout`), waits the crashed
  process's backoff (`backoff_initial` doubling per attempt up to
  `backoff_max`), makes fresh socketpairs for every channel of the group and
  starts every member again in layout order (also members that had ended
  normally: the restarted process needs its peers). So after any restart both ends of
  every channel start from a fresh, empty connection: no half-read message, no
  capability from the old peer, no state to reconcile. Members stopped this way
  did not fail: their own restart budgets are untouched.
- A process that ends normally and is not restarted does not disturb its peers:
  they see the channel disconnect and decide for themselves (a server whose
  only client finished returns from `serve` and exits 0).
- A `required` process that gives up stops the supervisor: every child is
  stopped and `run` returns 1. One that is not required stays down; its peers
  keep running and see a disconnected channel (after a later group restart,
  they get a channel with no one at the other end).

Stopping: SIGTERM or SIGINT (or `Supervisor.stop()`) stops every running child
in reverse start order (SIGTERM, `stop_timeout`, SIGKILL), closes every fd and
returns 0. `run` also returns 0 once every process has ended without giving up.
"""

from __future__ import annotations

from privsep.supervisor._supervisor import Handle, Spawner, Supervisor

__all__ = ["Handle", "Spawner", "Supervisor"]
