"""The `optouts` command line: `main`, and one module per group of commands (operator, dead letters,
Twilio, replay); the development commands load streams.devtools lazily."""
