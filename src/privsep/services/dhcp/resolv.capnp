@0xa3ce79904722f8bb;
# dhcp-actuator -> dhcp-resolv: the only way the client changes resolv.conf.
# dhcp-resolv alone may write the resolv.conf directory; it checks every value
# again and writes only its own interface's block (see docs/dhcp-actuator.md).

interface Resolv {
  # Replace our block with these values (all empty: remove the block); the
  # file is replaced atomically. Addresses are IPv4Address(int).
  write @0 (servers :List(UInt32), domain :Text, search :List(Text)) -> ();
  # Put back the file as it was before the last `write` (a failed lease's
  # rollback). Only that content: the caller never supplies file bytes.
  undo @1 () -> ();
}
