@0xc1ea32a5758e1d8e;
# dhcp-network <-> dhcp-engine: the only thing the engine can do with the wire.
# The network process serves it; every frame the engine sends is checked
# (privsep.services.dhcp._egress) and dropped with a log line when refused.

struct Frame {
  data @0 :Data;                # a whole Ethernet frame
  checksumNotReady @1 :Bool;    # the kernel flagged TP_STATUS_CSUMNOTREADY
}

interface Link {
  # Our MAC address and the interface's index, read from the packet socket.
  info @0 () -> (mac :Data, ifindex :UInt32);
  # Wait for frames (long poll); returns at least one, at most a small batch.
  recv @1 () -> (frames :List(Frame));
  # Send one frame. `candidate`: the address being probed (RFC 5227), `leased`:
  # the bound address, `server`: the unicast destination; 0 = none. These only
  # narrow what dhcp-network allows: it trusts the replies it saw, not the engine.
  # Returns false when the egress check refused it.
  send @2 (frame :Data, candidate :UInt32, leased :UInt32, server :UInt32) -> (sent :Bool);
}
