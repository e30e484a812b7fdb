@0xd1a7c0a9b2e34f51;

interface Counter {
  increment @0 (by :UInt32) -> (value :UInt64);
  get @1 () -> (value :UInt64);
}

interface CounterAdmin extends(Counter) {
  reset @0 () -> ();
}
