"""The use cases the web and the CLI share: reading lists and a person's history, and overrides."""
