"""Checking a layout's schemas without trusting them (`privsep check`, `inspect`).

pycapnp does not raise on a schema it cannot parse: the C++ exception escapes and
the process aborts. So each schema file is loaded in a forked child (the caller
runs no event loop and no other thread: the CLI's check), which reports the
interfaces it lacks through a pipe; a child that dies instead is reported with
the last line the C++ runtime wrote on its stderr (`what(): FILE:LINE: ...`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable


def schema_problems(refs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(schema path, interface) -> what is wrong with it, for the refs that are wrong."""
    by_schema: dict[str, list[str]] = {}
    for schema, name in refs:
        by_schema.setdefault(schema, [])
        if name not in by_schema[schema]:
            by_schema[schema].append(name)
    problems: dict[tuple[str, str], str] = {}
    for schema, names in by_schema.items():
        for name, problem in _check_one(schema, names).items():
            problems[(schema, name)] = problem
    return problems


def _check_one(schema: str, names: list[str]) -> dict[str, str]:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 0
        try:
            os.close(out_r)
            os.close(err_r)
            os.dup2(err_w, 2)
            from privsep.rpc._schema import RpcError, interface  # noqa: PLC0415

            found: dict[str, str] = {}
            for name in names:
                try:
                    interface(schema, name)
                except RpcError as exc:
                    found[name] = str(exc)
            os.write(out_w, json.dumps(found).encode())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(out_w)
    os.close(err_w)
    data, err = _read_all(out_r), _read_all(err_r)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0 and data:
        reported: dict[str, str] = json.loads(data)
        return reported
    lines = err.decode("utf-8", "replace").strip().splitlines()
    last = lines[-1].strip() if lines else "the schema compiler crashed"
    reason = last.removeprefix("what():").strip()
    return dict.fromkeys(names, f"cannot load schema {schema}: {reason}")


def _read_all(fd: int) -> bytes:
    chunks = []
    try:
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)
