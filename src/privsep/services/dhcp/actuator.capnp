@0xf88fce78d8145f1a;
# The actuator's RPC interface: the only thing the engine can ask of it.
# The actuator treats every call as hostile (see docs/dhcp-actuator.md):
# addresses are UInt32 in host order (IPv4Address(int)), 0 where "absent".

struct Route {
  # One RFC 3442 classless static route; router 0 means on-link.
  destination @0 :UInt32;
  prefixLen @1 :UInt8;
  router @2 :UInt32;
}

struct Configuration {
  address @0 :UInt32;
  prefixLen @1 :UInt8;
  broadcast @2 :UInt32;        # 0: derive from address/prefixLen
  routers @3 :List(UInt32);    # option 3; ignored when routes (121/249) are present
  routes @4 :List(Route);      # option 121 (or 249)
  mtu @5 :UInt16;              # 0: leave the MTU alone
  dns @6 :List(UInt32);
  domain @7 :Text;
  search @8 :List(Text);
  leaseTime @9 :UInt32;        # seconds; 0xffffffff: infinite
  stateBlob @10 :Data;         # the engine's serialised lease, stored opaquely
  interfaceIndex @11 :UInt32;  # 0: the actuator's own; anything else must equal it
  hookEvent @12 :Text;         # "bound" or "renew" ("" = no hook), run after applying
  hookEnv @13 :List(HookVar);  # the hook's variables (udhcpc names), data only
}

struct HookVar {
  key @0 :Text;
  value @1 :Text;
}

interface Actuator {
  applyLease @0 (config :Configuration) -> ();
  deconfigure @1 (reason :Text) -> ();
  loadState @2 () -> (blob :Data);
}

# What the dhcp-engine process gets: the Actuator plus hook notifications.
interface EngineActuator extends(Actuator) {
  # Run the hook for an event that changes nothing here: "leasefail", "nak",
  # or "deconfig" when nothing is configured (udhcpc's deconfig at start).
  notify @0 (event :Text, env :List(HookVar)) -> ();
}
