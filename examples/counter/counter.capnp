# The interface between the counter's two processes. Every method a client may
# call is listed here; the layout grants this interface on the `counter` channel.
@0xa6c4f1b3e2d5c7a9;

interface Counter {
  increment @0 (by :UInt32) -> (value :UInt64);
  get @1 () -> (value :UInt64);
}
