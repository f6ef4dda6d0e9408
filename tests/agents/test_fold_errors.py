"""An exception in an agent is counted per stage in `optouts_fold_errors_total` (Faust restarts the
agent; the counter is what an alert sees)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from streams.settings import Settings
from streams.worker import build_service


def test_an_agent_crash_is_counted_as_a_fold_error_of_its_stage(tmp_path: Path) -> None:
    service = build_service(Settings(kafka_brokers="127.0.0.1:1", data_dir=tmp_path))
    registry = service.metrics.registry
    assert registry.get_sample_value("optouts_fold_errors_total", {"stage": "project"}) == 0

    agent = service.app.agents["project"]
    # What Faust calls when the agent's body raises (faust/agents/agent.py `_execute_actor`).
    asyncio.run(agent._on_error(agent, RuntimeError("fold failed")))

    assert registry.get_sample_value("optouts_fold_errors_total", {"stage": "project"}) == 1
    assert registry.get_sample_value("optouts_fold_errors_total", {"stage": "resolve"}) == 0
