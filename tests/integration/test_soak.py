"""`optouts soak` at a small size: a worker killed with SIGKILL and restarted twice while 3,000 events
stream in, then every list (API, store, `sms-opt-outs`) checked against the pure fold of the log.
CI runs it at 20,000 events and 5 kills (`make soak`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.processes import ROOT

pytestmark = pytest.mark.integration

SEED = 1  # fixed, so that a failure here can be run again as it was: the kill moments are seeded


def test_a_worker_killed_and_restarted_while_events_stream_in_ends_with_every_list_the_logs_fold(
    output_dir: Path,
) -> None:
    # Its own embedded broker: the soak refuses a log that already holds events (other tests').
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTOUTS_")}
    env.update(PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "streams", "soak", "-n", "3000", "--kills", "2", "--seed", str(SEED)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    (output_dir / "soak.log").write_text(done.stdout + done.stderr)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stderr.count("[soak] killed incarnation") == 2
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["n"], result["kills"], result["seed"]) == (3000, 2, SEED)
    assert (result["result"], result["problems"]) == ("agree", 0)
    assert result["persons_verified"] > 0
