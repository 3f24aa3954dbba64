"""ir: the frozen, serializable description of what the data plane must do.

Built by ``turnout.ir.build`` from the graph; consumed by ``turnout.dataplane``. The data
plane imports nothing but this package (and ``turnout.util``).
"""

from turnout.ir.model import (
    Cluster,
    Config,
    Endpoint,
    Filters,
    Gateway,
    HeaderMatch,
    HeaderModifier,
    HTTPRouteRule,
    Listener,
    PathMatch,
    PathModifier,
    QueryParamMatch,
    RequestMirror,
    RequestRedirect,
    RouteMatch,
    URLRewrite,
    VirtualHost,
    WeightedBackend,
    from_msgpack,
    to_json,
    to_msgpack,
)

__all__ = [
    "Cluster",
    "Config",
    "Endpoint",
    "Filters",
    "Gateway",
    "HTTPRouteRule",
    "HeaderMatch",
    "HeaderModifier",
    "Listener",
    "PathMatch",
    "PathModifier",
    "QueryParamMatch",
    "RequestMirror",
    "RequestRedirect",
    "RouteMatch",
    "URLRewrite",
    "VirtualHost",
    "WeightedBackend",
    "from_msgpack",
    "to_json",
    "to_msgpack",
]
