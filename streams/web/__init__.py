"""The HTTP edge: the JSON API, the operator pages (templates/), routing to a key's owner, operator
sign-in, sessions and the security headers; `api_client` is the client of that API."""
