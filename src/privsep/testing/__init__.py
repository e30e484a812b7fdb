"""Test helpers for privsep users: a network lab with real DHCP servers."""
