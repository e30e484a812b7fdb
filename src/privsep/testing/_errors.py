"""Errors of the network lab."""

from __future__ import annotations

from privsep._errors import PrivsepError


class LabError(PrivsepError):
    """The lab could not build, run or query something (a failed `ip` call, a bad name)."""


class ServerError(LabError):
    """A DHCP server did not start or stopped unexpectedly; the message ends with its log tail."""
