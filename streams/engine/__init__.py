"""The Faust adaptation: the app, its transport and fetched batches, direct sends, per-batch table
writes, recovery to the log end, topics and the embedded broker. Every private Faust or aiokafka
name the project touches is in `faust_hooks`, guarded by tests/unit/test_faust_hooks.py."""
