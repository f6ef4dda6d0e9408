"""The pure core: folds from (state, event) to (state, emitted events). No Kafka, asyncio or RocksDB."""
