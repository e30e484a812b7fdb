"""The error hierarchy: one root, so callers can catch everything of ours at once."""

from __future__ import annotations


class PrivsepError(Exception):
    """Root of every error privsep raises on purpose."""


class LayoutError(PrivsepError):
    """A layout file is invalid. `problems` holds one `file:line: message` per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class MalformedPacket(PrivsepError, ValueError):
    """Bytes from the network that do not form a valid message.

    `reason` is a short machine-friendly description; `offset` is where in the
    input the problem was found, when known.
    """

    def __init__(self, reason: str, offset: int | None = None) -> None:
        where = f" at offset {offset}" if offset is not None else ""
        super().__init__(f"{reason}{where}")
        self.reason = reason
        self.offset = offset
