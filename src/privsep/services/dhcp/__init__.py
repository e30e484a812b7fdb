"""The privilege-separated DHCPv4 client (codec, sans-IO engine, processes)."""
