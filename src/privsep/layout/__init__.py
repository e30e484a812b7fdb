"""Layouts: parse, validate and model the processes of a service (facade filled in by the parser)."""
