"""Rebuilding from the logs offline, as the workers fold them: replay into a new generation, and verify.
Partition by partition in local stores (local_store, offline_unit, contacts_partition,
lists_partition), the facts crossing from phones to persons through an exchange topic (exchange), the
partitions split into parts (parts, part, processes)."""
