"""The Faust app is built from the settings: what an operator sets is what the workers run with."""

from __future__ import annotations

import pytest

from streams.app import create_app
from streams.settings import Settings


@pytest.mark.parametrize(("env", "replicas"), [({}, 1), ({"OPTOUTS_STANDBY_REPLICAS": "0"}, 0)])
def test_standby_replicas_come_from_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], replicas: int
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    app = create_app(Settings(kafka_brokers="127.0.0.1:9"))

    assert app.conf.table_standby_replicas == replicas
