"""pytest fixtures for the network lab (placeholder until the lab lands)."""
