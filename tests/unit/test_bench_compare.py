"""How `optouts bench --baseline` runs the other side and reads the two: the command line each bench
gets, and which way each ratio goes."""

from __future__ import annotations

import argparse

import pytest

from streams.devtools.bench import MIXES, mixes
from streams.devtools.bench_compare import BaselineError, Option, bench_arguments, ratios
from streams.settings import Settings

OPTIONS = [
    Option("--events", 3000, 200_000),
    Option("--persons", 1000, 100_000),
    Option("--steady-persons", 300, 10_000),
    Option("--workers", 1, 1),
]
WITH_MIXES = {"--events", "--persons", "--steady-persons", "--mixes", "--workers"}
WITHOUT_MIXES = {"--events", "--persons", "--workers"}  # as at 40f7b2e


def test_a_bench_with_mixes_measures_the_one_it_is_given() -> None:
    assert bench_arguments("steady", OPTIONS, WITH_MIXES) == [
        "--mixes", "steady", "--events", "3000", "--persons", "1000", "--steady-persons", "300",
        "--workers", "1",
    ]  # fmt: skip


def test_a_bench_without_mixes_measures_the_steady_mix_as_its_log_over_the_steady_persons() -> None:
    assert bench_arguments("cold", OPTIONS, WITHOUT_MIXES) == [
        "--events", "3000", "--persons", "1000", "--workers", "1",
    ]  # fmt: skip
    assert bench_arguments("steady", OPTIONS, WITHOUT_MIXES) == [
        "--events", "3000", "--persons", "300", "--workers", "1",
    ]  # fmt: skip


def test_an_option_the_baseline_lacks_is_left_out_at_its_default_and_refused_otherwise() -> None:
    assert "--workers" not in bench_arguments("cold", OPTIONS, WITHOUT_MIXES - {"--workers"})
    two_workers = [*OPTIONS[:-1], Option("--workers", 2, 1)]
    with pytest.raises(BaselineError, match="--workers"):
        bench_arguments("cold", two_workers, WITHOUT_MIXES - {"--workers"})


def test_every_ratio_is_above_one_when_this_checkout_does_better() -> None:
    this = {"pipeline_events_per_s": 300, "stop_visible_p99_ms": 50.0, "rss_mb": 100.0, "n": 3000}
    baseline = {"pipeline_events_per_s": 100, "stop_visible_p99_ms": 100.0, "rss_mb": 200.0, "n": 3000}
    assert ratios(this, baseline) == {
        "pipeline_events_per_s_this_over_baseline": 3.0,
        "stop_visible_p99_ms_baseline_over_this": 2.0,
        "rss_mb_baseline_over_this": 2.0,
    }


def test_a_figure_missing_or_not_measured_on_one_side_has_no_ratio() -> None:
    this = {"stop_visible_p99_ms": None, "replay_events_per_s": 10}
    assert ratios(this, {"stop_visible_p99_ms": 80.0}) == {
        "stop_visible_p99_ms_baseline_over_this": None,
        "replay_events_per_s_this_over_baseline": None,
    }


def bench_args(**given: object) -> argparse.Namespace:
    return argparse.Namespace(**{"mixes": None, "baseline": None, **given})


def test_both_mixes_by_default_on_the_embedded_broker_and_the_cold_one_on_a_given_broker() -> None:
    assert mixes(bench_args(), Settings(kafka_brokers="")) == list(MIXES) == ["cold", "steady"]
    assert mixes(bench_args(), Settings(kafka_brokers="kafka:9092")) == ["cold"]
    assert mixes(bench_args(mixes=["steady"]), Settings(kafka_brokers="kafka:9092")) == ["steady"]
    with pytest.raises(SystemExit, match="one log"):
        mixes(bench_args(mixes=["cold", "steady"]), Settings(kafka_brokers="kafka:9092"))
