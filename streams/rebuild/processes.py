"""Running the parts of a rebuild as processes of this machine: each `optouts <command> --part K/N`
with the same settings, its progress relayed on stderr with its part in front, its summary (the last
line of its stdout, JSON) returned. A part that fails stops the others."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
from typing import Any

from schemas.errors import OptOutsError
from streams.rebuild.parts import Part
from streams.settings import Settings

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_PARENT = "OPTOUTS_REBUILD_PARENT"  # the pid of the process that started a part


class PartFailed(OptOutsError):
    """A part's process exited with an error."""


def part_environment(settings: Settings) -> dict[str, str]:
    """The environment of a part's process: this one's, with the settings a part needs as they are here."""
    return {
        **os.environ,
        "OPTOUTS_KAFKA_BROKERS": ",".join(settings.brokers),
        "OPTOUTS_APP_ID": settings.app_id,
        "OPTOUTS_DATA_DIR": str(settings.data_dir),
        "PYTHONUNBUFFERED": "1",
    }


async def run_parts(settings: Settings, command: list[str], count: int) -> list[dict[str, Any]]:
    """Run `optouts *command --part K/count --json` for every K at once; their JSON summaries."""
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "streams",
            *command,
            "--part",
            str(Part(index, count)),
            "--json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**part_environment(settings), _PARENT: str(os.getpid())},
        )
        for index in range(count)
    ]
    try:
        runs = [
            asyncio.ensure_future(_run(process, Part(index, count)))
            for index, process in enumerate(processes)
        ]
        for finished in asyncio.as_completed(runs):
            await finished  # the first failure raises here; the others are stopped below
        return [run.result() for run in runs]
    finally:
        for process in processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        for process in processes:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 10)
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()


def die_with_parent() -> None:
    """In a part's process that a replay or verification of this machine started: have the kernel kill
    it when that process dies, even by SIGKILL, so that no part goes on alone (the same replay run
    again would find its stores locked)."""
    parent = os.environ.get(_PARENT)
    if parent is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(parent):  # it died before this was set
        raise SystemExit(f"the process that started this part ({parent}) is gone")


async def _run(process: asyncio.subprocess.Process, part: Part) -> dict[str, Any]:
    assert process.stdout is not None and process.stderr is not None
    last_lines: list[str] = []

    async def relay() -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            line = raw.decode(errors="replace").rstrip()
            last_lines[:] = [*last_lines[-9:], line]
            print(f"[part {part}] {line}", file=sys.stderr, flush=True)

    relaying = asyncio.ensure_future(relay())
    out = await process.stdout.read()
    await relaying
    status = await process.wait()
    if status != 0:
        raise PartFailed(f"part {part} exited with status {status}: {' | '.join(last_lines[-3:])}")
    lines = out.decode().strip().splitlines()
    try:
        summary: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError) as exc:
        raise PartFailed(f"part {part} printed no summary: {out[-200:]!r}") from exc
    return summary
