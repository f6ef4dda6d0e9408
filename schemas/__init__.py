"""The contract: the events on every topic, how they are decoded, and how numbers are normalised."""
