"""HTTPRoute filters through `turnout run`, as the conformance tests check them.

One `turnout run` (with --port-offset, so listener ports 80 and 8080 bind 10080 and
18080) serves every route of this module, each on its own hostname. Echo backends
report the request they received; mirror backends are in-process recorders, so tests
can count the copies they get.
"""

from __future__ import annotations

import collections
import http.server
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    CLASS_YAML,
    Backend,
    Response,
    Turnout,
    request,
    service_yaml,
    wait_for,
)

OFFSET = 10000
PORT_80, PORT_8080 = 80 + OFFSET, 8080 + OFFSET

GATEWAY = (
    CLASS_YAML
    + """---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: turnout
  listeners:
  - {name: http, port: 80, protocol: HTTP}
  - {name: http-8080, port: 8080, protocol: HTTP}
"""
)


def route(name: str, host: str, rules: str) -> str:
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: infra}}
spec:
  parentRefs: [{{name: gw}}]
  hostnames: [{host}]
  rules:
{rules}
"""


V1 = "[{name: infra-backend-v1, port: 8080}]"


def prefix(path: str) -> str:
    return f"[{{path: {{type: PathPrefix, value: {path}}}}}]"


def header_filter(kind: str, modifier: str) -> str:
    key = kind[0].lower() + kind[1:]
    return f"{{type: {kind}, {key}: {modifier}}}"


HEADER_CASES = {
    "/set": "{set: [{name: X-Header-Set, value: set-overwrites-values}]}",
    "/add": "{add: [{name: X-Header-Add, value: add-appends-values}]}",
    "/remove": "{remove: [X-Header-Remove]}",
    "/multiple": """{set: [{name: X-Header-Set-1, value: header-set-1},
              {name: X-Header-Set-2, value: header-set-2}],
        add: [{name: X-Header-Add-1, value: header-add-1},
              {name: X-Header-Add-2, value: header-add-2},
              {name: X-Header-Add-3, value: header-add-3}],
        remove: [X-Header-Remove-1, X-Header-Remove-2]}""",
    "/case-insensitivity": """{set: [{name: X-Header-Set, value: header-set}],
        add: [{name: X-Header-Add, value: header-add},
              {name: x-lowercase-add, value: lowercase-add},
              {name: x-Mixedcase-ADD-1, value: mixedcase-add-1}],
        remove: [X-Header-Remove]}""",
}


def header_rules(kind: str) -> str:
    return "\n".join(
        f"""  - matches: {prefix(path)}
    filters: [{header_filter(kind, modifier)}]
    backendRefs: {V1}"""
        for path, modifier in HEADER_CASES.items()
    )


BACKEND_HEADERS = """  - backendRefs:
    - name: infra-backend-v1
      port: 8080
      filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: backend, value: infra-backend-v1}]}}]
    - name: infra-backend-v2
      port: 8080
      filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: backend, value: infra-backend-v2}]}}]
    - name: infra-backend-v3
      port: 8080
      filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: backend, value: infra-backend-v3}]}}]"""


def redirect_rule(path: str, redirect: str, match: str = "PathPrefix") -> str:
    return f"""  - matches: [{{path: {{type: {match}, value: {path}}}}}]
    filters: [{{type: RequestRedirect, requestRedirect: {redirect}}}]"""


REDIRECT_PORT_SCHEME = "\n".join(
    redirect_rule(path, redirect)
    for path, redirect in {
        "/scheme-nil-and-port-nil": "{hostname: example.org}",
        "/scheme-nil-and-port-80": "{hostname: example.org, port: 80}",
        "/scheme-nil-and-port-8080": "{hostname: example.org, port: 8080}",
        "/scheme-https-and-port-nil": "{hostname: example.org, scheme: https}",
        "/scheme-https-and-port-443": "{hostname: example.org, scheme: https, port: 443}",
        "/scheme-https-and-port-8443": "{hostname: example.org, scheme: https, port: 8443}",
        "/scheme-http-and-port-nil": "{hostname: example.org, scheme: http}",
    }.items()
)

REDIRECT_PATH = "\n".join(
    redirect_rule(path, redirect)
    for path, redirect in {
        "/original-prefix": "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}}",
        "/full": "{path: {type: ReplaceFullPath, replaceFullPath: /full-path-replacement}}",
        "/path-and-host": "{hostname: example.org, path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}}",
        "/path-and-status": "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}, statusCode: 301}",
        "/full-path-and-host": "{hostname: example.org, path: {type: ReplaceFullPath, replaceFullPath: /replacement-full}}",
        "/strip": "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}",
    }.items()
)

REDIRECT_STATUS = "\n".join(
    redirect_rule(f"/{code}", f"{{hostname: example.org, statusCode: {code}}}")
    for code in (301, 302, 303, 307, 308)
)

REWRITES = f"""  - matches: {prefix("/one")}
    filters: [{{type: URLRewrite, urlRewrite: {{hostname: one.example.org}}}}]
    backendRefs: {V1}
  - matches: {prefix("/prefix/one")}
    filters: [{{type: URLRewrite, urlRewrite: {{path: {{type: ReplacePrefixMatch, replacePrefixMatch: /one}}}}}}]
    backendRefs: {V1}
  - matches: {prefix("/full/one")}
    filters: [{{type: URLRewrite, urlRewrite: {{path: {{type: ReplaceFullPath, replaceFullPath: /one}}}}}}]
    backendRefs: {V1}
  - matches: {prefix("/strip-prefix")}
    filters: [{{type: URLRewrite, urlRewrite: {{path: {{type: ReplacePrefixMatch, replacePrefixMatch: /}}}}}}]
    backendRefs: {V1}
  - matches: {prefix("/rewrite-host-and-path")}
    filters: [{{type: URLRewrite, urlRewrite: {{hostname: two.example.org, path: {{type: ReplaceFullPath, replaceFullPath: /two}}}}}}]
    backendRefs: {V1}"""


def mirror(name: str, share: str = "") -> str:
    return f"{{type: RequestMirror, requestMirror: {{backendRef: {{name: {name}, port: 8080}}{share}}}}}"


MIRRORS = f"""  - matches: {prefix("/mirror")}
    filters: [{mirror("mirror-a")}]
    backendRefs: {V1}
  - matches: {prefix("/mirror-and-modify-headers")}
    filters:
    - {{type: RequestHeaderModifier, requestHeaderModifier: {{set: [{{name: X-Header-Set, value: set-overwrites-values}}], add: [{{name: X-Header-Add, value: header-val-1}}], remove: [X-Header-Remove]}}}}
    - {mirror("mirror-a")}
    backendRefs: {V1}
  - matches: {prefix("/multi-mirror")}
    filters: [{mirror("mirror-b")}, {mirror("mirror-c")}]
    backendRefs: {V1}
  - matches: {prefix("/percent-mirror")}
    filters: [{mirror("mirror-d", ", percent: 20")}]
    backendRefs: {V1}
  - matches: {prefix("/percent-mirror-fraction")}
    filters: [{mirror("mirror-e", ", fraction: {numerator: 25, denominator: 50}")}]
    backendRefs: {V1}
  - matches: {prefix("/percent-mirror-zero")}
    filters: [{mirror("mirror-f", ", percent: 0")}]
    backendRefs: {V1}"""


@dataclass
class Recorder:
    """An in-process HTTP backend that records every request it gets (a mirror target)."""

    name: str
    server: http.server.ThreadingHTTPServer
    seen: list[dict[str, Any]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def paths(self) -> list[str]:
        return [r["path"] for r in self.seen]

    def settled(self, quiet: float = 0.3, timeout: float = 10.0) -> int:
        """The request count once no new copy arrived for `quiet` seconds."""
        deadline = time.monotonic() + timeout
        count, since = len(self.seen), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if len(self.seen) != count:
                count, since = len(self.seen), time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
        return count


def start_recorder(name: str) -> Recorder:
    seen: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            headers: dict[str, list[str]] = {}
            for key, value in self.headers.items():
                headers.setdefault(key.title(), []).append(value)
            seen.append({"path": self.path, "host": self.headers.get("Host"), "headers": headers})
            body = json.dumps({"pod": name}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return Recorder(name, server, seen)


def recorder_service(rec: Recorder) -> str:
    return f"""---
apiVersion: v1
kind: Service
metadata: {{name: {rec.name}, namespace: infra}}
spec:
  ports: [{{name: http, port: 8080, protocol: TCP}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {rec.name}
  namespace: infra
  labels: {{kubernetes.io/service-name: {rec.name}}}
addressType: IPv4
ports: [{{name: http, port: {rec.port}, protocol: TCP}}]
endpoints:
  - addresses: ["127.0.0.1"]
"""


@dataclass
class Env:
    turnout: Turnout
    address: str
    mirrors: dict[str, Recorder]

    def get(self, host: str, path: str = "/", port: int = PORT_80, **kw: Any) -> Response:
        return request(self.address, port, path, host=host, **kw)

    def echo(self, host: str, path: str = "/", **kw: Any) -> dict[str, Any]:
        resp = self.get(host, path, **kw)
        assert resp.status == 200, (host, path, resp.status, resp.body)
        seen: dict[str, Any] = resp.json()
        return seen


def joined(seen: dict[str, Any]) -> dict[str, str]:
    """The echoed request headers, each name's values joined as one header line."""
    return {name: ",".join(values) for name, values in seen["headers"].items()}


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
    module_backends: Callable[..., Backend],
    module_turnout: Callable[..., Turnout],
) -> Iterator[Env]:
    directory: Path = tmp_path_factory.mktemp("filters")
    text = GATEWAY
    for version in ("v1", "v2", "v3"):
        name = f"infra-backend-{version}"
        text += service_yaml(name, "infra", [module_backends(name, "infra")])
    mirrors = {n: start_recorder(n) for n in (f"mirror-{x}" for x in "abcdef")}
    for rec in mirrors.values():
        text += recorder_service(rec)
    text += route(
        "request-header-modifier", "request-headers.example", header_rules("RequestHeaderModifier")
    )
    text += route(
        "response-header-modifier",
        "response-headers.example",
        header_rules("ResponseHeaderModifier"),
    )
    text += route("backend-headers", "backend-headers.example", BACKEND_HEADERS)
    text += route("redirect-port-and-scheme", "redirect.example", REDIRECT_PORT_SCHEME)
    text += route("redirect-path", "redirect-path.example", REDIRECT_PATH)
    text += route("redirect-status", "redirect-status.example", REDIRECT_STATUS)
    text += route("rewrite", "rewrite.example", REWRITES)
    text += route("mirror", "mirror.example", MIRRORS)
    (directory / "all.yaml").write_text(text)
    t = module_turnout(directory, "--port-offset", str(OFFSET))
    yield Env(t, t.address("gw", "infra"), mirrors)
    for rec in mirrors.values():
        rec.server.shutdown()
        rec.server.server_close()


def test_request_header_modifier(env: Env) -> None:
    """HTTPRouteRequestHeaderModifier: set overwrites, add appends, remove; names any case."""
    host = "request-headers.example"
    h = joined(env.echo(host, "/set"))
    assert h["X-Header-Set"] == "set-overwrites-values"
    h = joined(env.echo(host, "/set", headers={"x-header-set": "some-other-value"}))
    assert h["X-Header-Set"] == "set-overwrites-values"
    h = joined(env.echo(host, "/add"))
    assert h["X-Header-Add"] == "add-appends-values"
    h = joined(env.echo(host, "/add", headers={"X-Header-Add": "some-other-value"}))
    assert h["X-Header-Add"] == "some-other-value,add-appends-values"
    h = joined(env.echo(host, "/remove", headers={"X-Header-Remove": "val"}))
    assert "X-Header-Remove" not in h
    sent = {
        "X-Header-Set-2": "set-val-2",
        "X-Header-Add-2": "add-val-2",
        "X-Header-Remove-2": "remove-val-2",
        "Another-Header": "another-header-val",
        "X-Header-Remove-1": "val",
    }
    h = joined(env.echo(host, "/multiple", headers=sent))
    assert {k: h.get(k) for k in ("X-Header-Set-1", "X-Header-Set-2", "X-Header-Add-1")} == {
        "X-Header-Set-1": "header-set-1",
        "X-Header-Set-2": "header-set-2",
        "X-Header-Add-1": "header-add-1",
    }
    assert h["X-Header-Add-2"] == "add-val-2,header-add-2"
    assert h["X-Header-Add-3"] == "header-add-3"
    assert h["Another-Header"] == "another-header-val"
    assert "X-Header-Remove-1" not in h and "X-Header-Remove-2" not in h
    sent = {
        "x-header-set": "original-val-set",
        "x-header-add": "original-val-add",
        "x-header-remove": "original-val-remove",
        "Another-Header": "another-header-val",
    }
    h = joined(env.echo(host, "/case-insensitivity", headers=sent))
    assert h["X-Header-Set"] == "header-set"
    assert h["X-Header-Add"] == "original-val-add,header-add"
    assert h["X-Lowercase-Add"] == "lowercase-add"
    assert h["X-Mixedcase-Add-1"] == "mixedcase-add-1"
    assert "X-Header-Remove" not in h


def test_request_header_add_joins_repeated_request_headers(env: Env) -> None:
    """A request header sent twice plus `add` gives one comma-separated value."""
    # http.client cannot repeat a header through a dict; send the raw bytes.
    raw = (
        b"GET /add HTTP/1.1\r\nHost: request-headers.example\r\n"
        b"X-Header-Add: one\r\nx-header-add: two\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((env.address, PORT_80), timeout=5) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    body = data.partition(b"\r\n\r\n")[2]
    assert joined(json.loads(body))["X-Header-Add"] == "one,two,add-appends-values"


def test_response_header_modifier(env: Env) -> None:
    """HTTPRouteResponseHeaderModification: the same edits on the backend's response."""
    host = "response-headers.example"

    def response_headers(path: str, backend_sets: dict[str, str]) -> dict[str, str]:
        line = ", ".join(f"{k}: {v}" for k, v in backend_sets.items())
        resp = env.get(host, path, headers={"X-Echo-Set-Header": line})
        assert resp.status == 200
        return resp.headers  # names lower-cased by the helper

    h = response_headers("/set", {"Some-Other-Header": "val"})
    assert (h["some-other-header"], h["x-header-set"]) == ("val", "set-overwrites-values")
    h = response_headers("/set", {"Some-Other-Header": "val", "X-Header-Set": "some-other-value"})
    assert h["x-header-set"] == "set-overwrites-values"
    h = response_headers("/add", {"Some-Other-Header": "val"})
    assert h["x-header-add"] == "add-appends-values"
    h = response_headers("/add", {"X-Header-Add": "some-other-value"})
    assert h["x-header-add"] == "some-other-value,add-appends-values"
    h = response_headers("/remove", {"X-Header-Remove": "val"})
    assert "x-header-remove" not in h
    h = response_headers(
        "/multiple",
        {
            "X-Header-Set-2": "set-val-2",
            "X-Header-Add-2": "add-val-2",
            "X-Header-Remove-2": "remove-val-2",
            "Another-Header": "another-header-val",
            "X-Header-Remove-1": "val",
        },
    )
    assert h["x-header-set-1"] == "header-set-1" and h["x-header-set-2"] == "header-set-2"
    assert h["x-header-add-1"] == "header-add-1" and h["x-header-add-3"] == "header-add-3"
    assert h["x-header-add-2"] == "add-val-2,header-add-2"
    assert h["another-header"] == "another-header-val"
    assert "x-header-remove-1" not in h and "x-header-remove-2" not in h
    h = response_headers(
        "/case-insensitivity",
        {
            "x-header-set": "original-val-set",
            "x-header-add": "original-val-add",
            "x-header-remove": "x",
        },
    )
    assert h["x-header-set"] == "header-set"
    assert h["x-header-add"] == "original-val-add,header-add"
    assert h["x-lowercase-add"] == "lowercase-add"
    assert h["x-mixedcase-add-1"] == "mixedcase-add-1"
    assert "x-header-remove" not in h


def test_backend_request_header_modifier_only_for_the_chosen_backend(env: Env) -> None:
    """HTTPRouteRequestHeaderModifierBackendWeights: each backendRef's filter applies
    only to the requests sent to that backend."""
    pods: collections.Counter[str] = collections.Counter()
    for _ in range(100):
        seen = env.echo("backend-headers.example")
        assert seen["headers"]["Backend"] == [seen["pod"]]
        pods[seen["pod"]] += 1
    assert len(pods) == 3, pods


def location(resp: Response) -> str:
    return resp.headers.get("location", "")


def test_redirect_port_and_scheme(env: Env) -> None:
    """HTTPRoutePortRedirect, HTTPRouteSchemeRedirect (httproute-redirect-port-and-scheme):
    default port is the listener's; a scheme's well-known port is never printed."""
    expected_80 = {
        "/scheme-nil-and-port-nil": "http://example.org/scheme-nil-and-port-nil",
        "/scheme-nil-and-port-80": "http://example.org/scheme-nil-and-port-80",
        "/scheme-nil-and-port-8080": "http://example.org:8080/scheme-nil-and-port-8080",
        "/scheme-https-and-port-nil": "https://example.org/scheme-https-and-port-nil",
        "/scheme-https-and-port-443": "https://example.org/scheme-https-and-port-443",
        "/scheme-https-and-port-8443": "https://example.org:8443/scheme-https-and-port-8443",
    }
    for path, want in expected_80.items():
        resp = env.get("redirect.example", path)
        assert (resp.status, location(resp)) == (302, want), path
    expected_8080 = {
        "/scheme-nil-and-port-nil": "http://example.org:8080/scheme-nil-and-port-nil",
        "/scheme-nil-and-port-80": "http://example.org/scheme-nil-and-port-80",
        "/scheme-https-and-port-nil": "https://example.org/scheme-https-and-port-nil",
        "/scheme-https-and-port-443": "https://example.org/scheme-https-and-port-443",
        "/scheme-https-and-port-8443": "https://example.org:8443/scheme-https-and-port-8443",
        "/scheme-http-and-port-nil": "http://example.org/scheme-http-and-port-nil",
    }
    for path, want in expected_8080.items():
        resp = env.get("redirect.example", path, port=PORT_8080)
        assert (resp.status, location(resp)) == (302, want), path
    # The query string is kept.
    resp = env.get("redirect.example", "/scheme-https-and-port-nil?q=1")
    assert location(resp) == "https://example.org/scheme-https-and-port-nil?q=1"


def test_redirect_path(env: Env) -> None:
    """HTTPRoutePathRedirect: ReplacePrefixMatch and ReplaceFullPath, with host/status."""
    host = "redirect-path.example"
    cases = {
        "/original-prefix/lemon": (302, "http://redirect-path.example/replacement-prefix/lemon"),
        "/full/path/original": (302, "http://redirect-path.example/full-path-replacement"),
        "/path-and-host": (302, "http://example.org/replacement-prefix"),
        "/path-and-status": (301, "http://redirect-path.example/replacement-prefix"),
        "/full-path-and-host": (302, "http://example.org/replacement-full"),
        "/strip/x/y": (302, "http://redirect-path.example/x/y"),
        "/strip": (302, "http://redirect-path.example/"),
    }
    for path, (status, want) in cases.items():
        resp = env.get(host, path)
        assert (resp.status, location(resp)) == (status, want), path


def test_redirect_status_codes(env: Env) -> None:
    """HTTPRoute303/307/308RedirectStatusCode (and the core 301, 302)."""
    for code in (301, 302, 303, 307, 308):
        resp = env.get("redirect-status.example", f"/{code}", method="POST", body=b"")
        assert (resp.status, location(resp)) == (code, f"http://example.org/{code}")


def test_url_rewrite_host_and_path(env: Env) -> None:
    """HTTPRouteHostRewrite, HTTPRoutePathRewrite: what the backend receives."""
    host = "rewrite.example"
    seen = env.echo(host, "/one/two")
    assert (seen["host"], seen["path"]) == ("one.example.org", "/one/two")
    seen = env.echo(host, "/prefix/one/two")
    assert (seen["host"], seen["path"]) == (host, "/one/two")
    seen = env.echo(host, "/full/one/two")
    assert seen["path"] == "/one"
    seen = env.echo(host, "/strip-prefix")
    assert seen["path"] == "/"
    seen = env.echo(host, "/strip-prefix/three?x=1")
    assert seen["path"] == "/three?x=1"
    seen = env.echo(host, "/prefix/one?query=kept")
    assert seen["path"] == "/one?query=kept"
    seen = env.echo(host, "/rewrite-host-and-path/x")
    assert (seen["host"], seen["path"]) == ("two.example.org", "/two")


def test_request_mirror(env: Env) -> None:
    """HTTPRouteRequestMirror: every request also reaches the mirror, with the header
    edits listed before the mirror filter; the client gets the primary's answer."""
    rec = env.mirrors["mirror-a"]
    for i in range(5):
        assert env.echo("mirror.example", f"/mirror?n={i}")["pod"] == "infra-backend-v1"
    wait_for(lambda: len(rec.seen) >= 5, timeout=5, what="mirrored requests")
    assert rec.settled() == 5
    assert sorted(rec.paths()) == [f"/mirror?n={i}" for i in range(5)]
    sent = {"X-Header-Set": "original", "X-Header-Add": "a", "X-Header-Remove": "gone"}
    primary = joined(env.echo("mirror.example", "/mirror-and-modify-headers", headers=sent))
    wait_for(lambda: len(rec.seen) == 6, timeout=5, what="the mirrored request")
    copy = {k: ",".join(v) for k, v in rec.seen[-1]["headers"].items()}
    for h in (primary, copy):
        assert h["X-Header-Set"] == "set-overwrites-values"
        assert h["X-Header-Add"] == "a,header-val-1"
        assert "X-Header-Remove" not in h


def test_request_multiple_mirrors(env: Env) -> None:
    """HTTPRouteRequestMultipleMirrors: each mirror gets a copy of each request."""
    for i in range(4):
        assert env.echo("mirror.example", f"/multi-mirror/{i}")["pod"] == "infra-backend-v1"
    for name in ("mirror-b", "mirror-c"):
        rec = env.mirrors[name]
        assert rec.settled() == 4, name
        assert sorted(rec.paths()) == [f"/multi-mirror/{i}" for i in range(4)]


def test_request_percentage_mirror(env: Env) -> None:
    """HTTPRouteRequestPercentageMirror: percent 20, fraction 25/50, percent 0."""
    n = 400
    for _ in range(n):
        env.echo("mirror.example", "/percent-mirror")
        env.echo("mirror.example", "/percent-mirror-fraction")
        env.echo("mirror.example", "/percent-mirror-zero")
    # 4.5 binomial standard deviations: a false failure about once in 150,000 runs.
    for name, share in (("mirror-d", 0.2), ("mirror-e", 0.5)):
        got = env.mirrors[name].settled()
        sd = (n * share * (1 - share)) ** 0.5
        assert abs(got - n * share) <= 4.5 * sd, (name, got)
    assert env.mirrors["mirror-f"].settled(quiet=0.1) == 0
