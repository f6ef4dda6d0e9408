"""The Faust and Kafka adaptation: the app, its transport and fetched batches, direct sends,
per-batch table writes, recovery to the log end, topics, reading a log end to end, and the embedded
broker. Every private Faust or aiokafka name is touched in `faust_hooks` (tests/unit/test_faust_hooks.py)."""
