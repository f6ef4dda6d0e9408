"""The worker's pipeline over the engine: the agents that fold each batch, admission, forwarding,
dead letters, metrics, the broker watch and the projection's generations."""
