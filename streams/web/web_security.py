"""What every answer of the web server gets, whoever asks: the `Host` allow-list (a page that rebinds
its own DNS name to this worker's address must not read or drive it: 421) and the headers that keep
personal data out of caches, frames and other sites' reach. Details: docs/security.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import faust
from aiohttp import web
from yarl import URL

from streams.settings import Settings
from streams.web.rendering import CONTENT_SECURITY_POLICY
from streams.web.server import aiohttp_app

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Probes (a load balancer's, Kubernetes', Prometheus') name the pod's address, which no setting
# knows in advance; these answer nothing about a person.
ANY_HOST = ("/health", "/ready", "/metrics")
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_NOT_IN_A_HOST = set("/\\@?#%") | {chr(code) for code in range(0x21)} | {"\x7f"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HostPort = tuple[str, int | None]


# ---- the pure core ----------------------------------------------------------------------------------


def parse_host(value: str | None) -> HostPort | None:
    """`name[:port]` of a Host header or a setting, the name lower-case (IDNA, no final dot); None
    when it is not one."""
    if not value or any(char in _NOT_IN_A_HOST for char in value):
        return None
    try:
        url = URL(f"http://{value}")
    except ValueError:
        return None
    if not url.raw_host:
        return None
    return url.raw_host.lower().rstrip("."), url.explicit_port


@dataclass(frozen=True)
class AllowedHosts:
    """Host header values this service answers: a name with a port, or a name on any port."""

    on_port: frozenset[tuple[str, int]]
    any_port: frozenset[str]
    anything: bool = False

    def allow(self, host: str | None) -> bool:
        if self.anything:
            return True
        parsed = parse_host(host)
        if parsed is None:
            return False
        name, port = parsed
        return name in self.any_port or (port is not None and (name, port) in self.on_port)


def allowed_hosts(settings: Settings) -> AllowedHosts:
    """Loopback names and the web host, on the web port; the public URL's host and each name of
    OPTOUTS_ALLOWED_HOSTS without a port, on any port; with a port, on that one."""
    on_port = {(name, settings.web_port) for name in LOOPBACK}
    any_port: set[str] = set()
    # The name other workers forward to (the canonical URL). Bound to 0.0.0.0 it is only reached on
    # this machine, like loopback: no other site can make a browser name it.
    literal = f"[{settings.web_host}]" if ":" in settings.web_host else settings.web_host
    web_host = parse_host(literal)
    if web_host is not None:
        on_port.add((web_host[0], settings.web_port))
    listed = list(settings.allowed_hosts)
    if settings.public_base_url:
        listed.append(URL(settings.public_base_url).raw_authority)
    for entry in listed:
        parsed = parse_host(entry)
        if parsed is None:
            continue
        name, port = parsed
        if port is None:
            any_port.add(name)
        else:
            on_port.add((name, port))
    return AllowedHosts(frozenset(on_port), frozenset(any_port), anything="*" in settings.allowed_hosts)


# ---- the I/O shell ----------------------------------------------------------------------------------


def register_web_security(app: faust.App, settings: Settings) -> None:
    allowed = allowed_hosts(settings)

    @web.middleware
    async def host_check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in ANY_HOST or allowed.allow(request.headers.get("Host")):
            return await handler(request)
        return web.json_response(
            {
                "error": "this service does not answer to that Host: add the name the clients use to"
                " OPTOUTS_ALLOWED_HOSTS (DNS rebinding protection)"
            },
            status=421,
        )

    async def secure_headers(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)

    web_app: web.Application = aiohttp_app(app)
    web_app.middlewares.insert(0, host_check)
    web_app.on_response_prepare.append(secure_headers)
