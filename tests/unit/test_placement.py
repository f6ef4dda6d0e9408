"""Where the contract puts a key (Kafka's murmur2), what a producer placing it elsewhere most likely
did, and the throttle of the line that says so."""

from __future__ import annotations

import zlib

import pytest

from streams.pipeline.placement import CRC32, UNKNOWN, Throttle, expected_partition, likely_cause


def java_partition(murmur2: int, partitions: int) -> int:
    """Kafka's `Utils.toPositive(Utils.murmur2(key)) % numPartitions`, from the Java client's hash."""
    return (murmur2 & 0x7FFFFFFF) % partitions


# Utils.murmur2 of these keys in Kafka's own test (clients/.../common/utils/UtilsTest.java).
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "murmur2"), JAVA_MURMUR2.items())
@pytest.mark.parametrize("partitions", [1, 4, 12, 1000])
def test_a_key_goes_where_the_java_client_puts_it(key: bytes, murmur2: int, partitions: int) -> None:
    assert expected_partition(key, partitions) == java_partition(murmur2, partitions)


def test_keys_go_where_the_java_partitioner_puts_them_of_1000_partitions() -> None:
    # The Java DefaultPartitioner's choices for these keys (kafka-python's compatibility test).
    keys = [b"", b"a", b"ab", b"abc", b"123456789", b"\x00 "]
    assert [expected_partition(key, 1000) for key in keys] == [681, 524, 434, 107, 566, 742]


def test_a_phone_placed_by_crc32_is_named_as_librdkafkas_default() -> None:
    phone = b"+14155550123"
    murmur2, crc32 = expected_partition(phone, 4), zlib.crc32(phone) % 4
    assert (murmur2, crc32) == (1, 3)  # they differ for this phone: a CRC32 producer misplaces it

    cause = likely_cause(phone, 4, crc32)

    assert cause == CRC32
    assert "partitioner=murmur2_random" in cause and "confluent-kafka" in cause


def test_a_partition_neither_hash_gives_is_not_blamed_on_crc32() -> None:
    phone = b"+14155550123"
    assert likely_cause(phone, 4, 0) == UNKNOWN


def test_the_first_occurrence_is_reported_at_once() -> None:
    throttle = Throttle(interval=60)
    assert throttle.count("sms-messaging-events", now=1000.0) == 1


def test_occurrences_within_the_interval_are_counted_into_the_next_report() -> None:
    throttle = Throttle(interval=60)
    throttle.count("t", now=0.0)

    quiet = [throttle.count("t", now=float(s)) for s in (1, 20, 59)]
    due = throttle.count("t", now=60.0)

    assert quiet == [None, None, None]
    assert due == 4  # the three held back and this one
    assert throttle.count("t", now=61.0) is None


def test_each_topic_has_its_own_interval() -> None:
    throttle = Throttle(interval=60)
    throttle.count("sms-messaging-events", now=0.0)
    assert throttle.count("sms-person-events", now=1.0) == 1
    assert throttle.count("sms-messaging-events", now=2.0) is None
