"""The example counter service: a server process and a client process, one channel."""
