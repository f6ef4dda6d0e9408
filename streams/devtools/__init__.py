"""Development tools outside the runtime's import path: the benchmark, the crash soak, the workload."""
