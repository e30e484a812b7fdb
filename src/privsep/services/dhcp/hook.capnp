@0xd5720f6417757509;
# dhcp-actuator -> dhcp-hook: run the hook script for one udhcpc event.
# Values are data: the hook process passes them to execve as environment only.

struct Var {
  key @0 :Text;
  value @1 :Text;
}

interface Hook {
  # Runs `SCRIPT event` with exactly `env` (+ PATH); returns when it finished.
  run @0 (event :Text, env :List(Var)) -> (returncode :Int32);
}
