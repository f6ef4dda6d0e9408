"""Rebuilding from the logs offline: the fold, replay into a new generation, verify, group offsets."""
