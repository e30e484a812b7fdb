@0xf80063cb7c884535;

# A channel interface for the sandbox probes: they only check that the fd is there.
interface Probe {
  ping @0 () -> ();
}
