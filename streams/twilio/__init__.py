"""The Twilio edge: signed webhooks in, the guarded sender and the backfill out. Imported as
`streams.twilio`; the third-party `twilio` package is always the top-level one (absolute imports)."""
