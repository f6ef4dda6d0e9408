"""The I/O shell: Faust app, topics, tables, agents, web views, settings and the embedded broker."""
