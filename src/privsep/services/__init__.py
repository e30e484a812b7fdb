"""Daemons built on privsep, one sub-package each."""
