"""The `optouts` command line (`main`); development commands load streams.devtools lazily."""
