"""Hostname rules shared by listeners and routes.

A hostname is exact (`foo.example.com`) or a wildcard (`*.example.com`), which is a
suffix match over one or more labels: it matches `a.example.com` and `a.b.example.com`
but not `example.com` (apis/v1 Listener.Hostname). `None` means "any hostname".
"""

from __future__ import annotations

ANY = "*"


def is_wildcard(hostname: str) -> bool:
    return hostname.startswith("*.")


def matches(pattern: str, hostname: str) -> bool:
    """Does `pattern` (exact or wildcard) match the concrete or wildcard `hostname`?"""
    if pattern == ANY:
        return True
    if is_wildcard(pattern):
        # "*.example.com" covers "a.example.com" and "*.a.example.com", not "example.com".
        return hostname.endswith(pattern[1:]) and len(hostname) > len(pattern) - 1
    return pattern == hostname


def intersect(listener_hostname: str | None, route_hostname: str) -> str | None:
    """The hostname both sides accept, or None when they do not intersect.

    Per HTTPRoute.spec.hostnames: a wildcard route hostname covers an exact listener
    hostname under it (the result is the listener's), and a more specific wildcard
    on either side wins over a less specific one.
    """
    if listener_hostname is None:
        return route_hostname
    if matches(listener_hostname, route_hostname):
        return route_hostname
    if matches(route_hostname, listener_hostname):
        return listener_hostname
    if listener_hostname == route_hostname:
        return route_hostname
    return None


def effective_hostnames(listener_hostname: str | None, route_hostnames: list[str]) -> list[str]:
    """Hostnames a route serves on a listener: [] means no intersection at all.

    `ANY` stands for "every hostname" (neither side restricts it).
    """
    if not route_hostnames:
        return [listener_hostname or ANY]
    result: list[str] = []
    for hostname in route_hostnames:
        common = intersect(listener_hostname, hostname.lower())
        if common is not None and common not in result:
            result.append(common)
    return result


def specificity(hostname: str | None) -> tuple[int, int]:
    """Sort key, most specific first: exact, then wildcards by length, then any."""
    if hostname is None or hostname == ANY:
        return (2, 0)
    if is_wildcard(hostname):
        return (1, -len(hostname))
    return (0, -len(hostname))
