"""`optouts bench --baseline REF`: this checkout against another commit on the same machine, back to
back, each bench on a fresh embedded broker; prints every run's JSON line, then the ratios per mix.

Every bench names the same topics and refuses a log that already holds events, so the two sides
cannot share one broker: each run gets a new Tansu (this virtualenv's), started when it starts.
The baseline runs from a temporary git worktree with this virtualenv's Python (the same pins: the
ratios line says when constraints.txt differs in a package the service runs on).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import IO, Any

from schemas.errors import OptOutsError
from streams.engine.broker import EmbeddedBroker
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]  # this checkout
DISTRIBUTION = "sms-optouts"
STOP_GRACE = 60.0  # seconds a bench gets to stop its workers once interrupted


class BaselineError(OptOutsError):
    """The comparison could not be made (an unknown commit, a bench that failed)."""


@dataclass(frozen=True)
class Option:
    """A bench option as given here, and its default (a bench that lacks it may run without it)."""

    flag: str
    value: object
    default: object


@dataclass
class Side:
    name: str  # "this" or "baseline"
    commit: str
    root: Path
    options: set[str] = field(default_factory=set)  # the flags its bench accepts
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # mix -> its JSON lines


def compare(ref: str, mixes: list[str], options: list[Option], rounds: int, settings: Settings) -> int:
    try:
        return _compare(ref, mixes, options, rounds, settings)
    except BaselineError as exc:
        print(f"bench --baseline failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "bench --baseline interrupted: its benches and brokers stopped, worktree removed", file=sys.stderr
        )
        return 130


def _compare(ref: str, mixes: list[str], options: list[Option], rounds: int, settings: Settings) -> int:
    if settings.brokers:
        raise BaselineError(
            "each side runs on a fresh embedded broker (every bench uses the same topic names and needs"
            " them empty): unset OPTOUTS_KAFKA_BROKERS"
        )
    commit = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    this = Side("this", _describe_checkout(), ROOT)
    constraints = constraints_difference(commit)
    _say(f"this checkout {this.commit} against {ref} ({commit[:10]}); constraints.txt: {constraints}")
    previous = signal.signal(signal.SIGTERM, _interrupt)  # so that the worktree and broker go too
    try:
        with _worktree(commit) as tree:
            baseline = Side("baseline", commit[:10], tree)
            for side in (this, baseline):
                side.options = _bench_options(side)
            for number in range(1, rounds + 1):
                for mix in mixes:
                    for side in (this, baseline):
                        line = {"mix": mix, "side": side.name, "commit": side.commit, "round": number}
                        line |= _run(side, bench_arguments(mix, options, side.options))
                        side.runs.setdefault(mix, []).append(line)
                        print(json.dumps(line), flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    for mix in mixes:
        line = {
            "mix": mix,
            "side": "ratios",
            "this": this.commit,
            "baseline": baseline.commit,
            "rounds": rounds,
            "constraints": constraints,
        }
        line |= ratios(_medians(this.runs[mix]), _medians(baseline.runs[mix]))
        print(json.dumps(line), flush=True)
    return 0


def bench_arguments(mix: str, options: list[Option], known: set[str]) -> list[str]:
    """One side's bench command line for one mix. A bench without `--mixes` measures one log: its
    steady mix is its bench with `--persons` set to the steady mix's persons."""
    given = {option.flag: option.value for option in options}
    with_mixes = "--mixes" in known
    arguments = ["--mixes", mix] if with_mixes else []
    for option in options:
        value = option.value
        if not with_mixes and option.flag == "--steady-persons":
            continue
        if not with_mixes and option.flag == "--persons" and mix == "steady":
            value = given["--steady-persons"]
        elif option.flag not in known:
            if value != option.default:
                raise BaselineError(f"the baseline's bench has no {option.flag}: it cannot measure {value}")
            continue
        arguments += [option.flag, str(value)]
    return arguments


def ratios(this: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    """Each figure both sides have, as a ratio above 1 when this checkout does better: a throughput
    (`*_per_s`) this ÷ baseline, a latency (`*_ms`) or memory (`*_mb`) baseline ÷ this."""
    found: dict[str, float | None] = {}
    for key, value in this.items():
        other = baseline.get(key)
        if key.endswith("_per_s"):
            found[f"{key}_this_over_baseline"] = _ratio(value, other)
        elif key.endswith(("_ms", "_mb")):
            found[f"{key}_baseline_over_this"] = _ratio(other, value)
    return found


def constraints_difference(commit: str) -> str:
    """How constraints.txt at `commit` differs from this checkout's, for what the service runs on
    (dev tools such as the linters do not touch the bench)."""
    try:
        then = _pins(_git("show", f"{commit}:constraints.txt"))
    except BaselineError:
        return "the baseline has none: it runs on this checkout's pins"
    now = _pins((ROOT / "constraints.txt").read_text())
    changed = sorted(name for name in then.keys() | now.keys() if then.get(name) != now.get(name))
    if not changed:
        return "the same"
    runtime = [name for name in changed if name in _runtime_packages()]
    if runtime:
        return (
            "DIFFERS in packages the service runs on ("
            + ", ".join(f"{name} {then.get(name, 'none')} -> {now.get(name, 'none')}" for name in runtime)
            + "): the baseline runs on this checkout's, not its own"
        )
    return f"differs in dev tools only ({', '.join(changed)}): no effect on the bench"


def _run(side: Side, arguments: list[str]) -> dict[str, Any]:
    """One bench of `side` on a new broker: its progress copied to stderr, its last JSON line."""
    env = {k: v for k, v in os.environ.items() if k != "OPTOUTS_KAFKA_BROKERS"}
    tag = f"[{side.name} {side.commit}]"
    with EmbeddedBroker() as broker:
        env.update(OPTOUTS_KAFKA_BROKERS=broker.address, PYTHONPATH=str(side.root))
        _say(f"{tag} bench {' '.join(arguments)}")
        # Its own session: a Ctrl-C here is passed on once, and what is left of it can be killed whole.
        process = subprocess.Popen(
            [sys.executable, "-m", "streams", "bench", *arguments],
            env=env,
            cwd=side.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert process.stdout is not None and process.stderr is not None
        copier = threading.Thread(target=_copy, args=(process.stderr, tag), daemon=True)
        copier.start()
        try:
            out = process.stdout.read()
            code = process.wait()
        finally:
            _stop(process)
        copier.join(5)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if code != 0 or not lines:
        raise BaselineError(f"the bench of {side.name} ({side.commit}) failed (exit {code}): see above")
    figures: dict[str, Any] = lines[-1]
    return figures


def _stop(process: subprocess.Popen[str]) -> None:
    """An interrupted bench stops its workers and broker on SIGINT; if it does not, its session goes."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _copy(stream: IO[str], tag: str) -> None:
    for line in stream:
        print(f"{tag} {line}", end="", file=sys.stderr, flush=True)


def _bench_options(side: Side) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-m", "streams", "bench", "--help"],
        env={**os.environ, "PYTHONPATH": str(side.root)},
        cwd=side.root,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise BaselineError(
            f"the bench of {side.name} ({side.commit}) does not start: {result.stderr[-1500:]}"
        )
    return set(re.findall(r"--[a-z][a-z-]*", result.stdout))


@contextlib.contextmanager
def _worktree(commit: str) -> Iterator[Path]:
    parent = Path(tempfile.mkdtemp(prefix="optouts-baseline-"))
    tree = parent / "tree"
    try:
        _git("worktree", "add", "--detach", "--quiet", str(tree), commit)
        _say(f"the baseline's worktree: {tree}")
        yield tree
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True
        )
        shutil.rmtree(parent, ignore_errors=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], capture_output=True)


def _describe_checkout() -> str:
    """HEAD's short commit, `+changes` when the working tree (what runs) differs from it."""
    head = _git("rev-parse", "HEAD")[:10]
    return head + ("+changes" if _git("status", "--porcelain", "--untracked-files=normal") else "")


def _git(*arguments: str) -> str:
    result = subprocess.run(["git", "-C", str(ROOT), *arguments], capture_output=True, text=True)
    if result.returncode != 0:
        raise BaselineError(f"git {' '.join(arguments)}: {result.stderr.strip() or 'failed'}")
    return result.stdout.strip()


def _pins(text: str) -> dict[str, str]:
    pins = (line.split("==", 1) for line in text.splitlines() if "==" in line and not line.startswith("#"))
    return {_normal(name): version.strip() for name, version in pins}


def _runtime_packages() -> set[str]:
    """The installed service's requirements, and theirs, without extras (such as `dev`)."""
    found: set[str] = set()
    todo = [DISTRIBUTION]
    while todo:
        try:
            requires = metadata.requires(todo.pop()) or []
        except metadata.PackageNotFoundError:
            continue
        for requirement in requires:
            if "extra" in requirement.partition(";")[2]:
                continue
            name = _normal(re.split(r"[\s\[<>=!~;(]", requirement, maxsplit=1)[0])
            if name not in found:
                found.add(name)
                todo.append(name)
    return found


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [key for key, value in runs[0].items() if _number(value)]
    return {
        key: statistics.median(values)
        for key in keys
        if (values := [run[key] for run in runs if _number(run.get(key))])
    }


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _ratio(top: Any, bottom: Any) -> float | None:
    if not (_number(top) and _number(bottom)) or not bottom:
        return None
    return round(float(top) / float(bottom), 3)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
