"""The I/O shell around the pure core, in layers that import downward only (make lint checks it):
cli > devtools > worker > twilio | rebuild > web > services > pipeline > engine."""
