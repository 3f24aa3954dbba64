"""HTTPRoute validation: schema and CEL rules, each with a failing and a passing case."""

from __future__ import annotations

from typing import Any

import pytest

from tests.resources.docs import assert_error, assert_valid, backend, route_doc

R0 = "spec.rules[0]"
F0 = f"{R0}.filters[0]"


def rule(**fields: Any) -> dict[str, Any]:
    return {"backendRefs": [backend()], **fields}


def path_rule(path_type: str, value: str) -> dict[str, Any]:
    return rule(matches=[{"path": {"type": path_type, "value": value}}])


def redirect(**fields: Any) -> dict[str, Any]:
    return {"type": "RequestRedirect", "requestRedirect": fields}


def rewrite(**fields: Any) -> dict[str, Any]:
    return {"type": "URLRewrite", "urlRewrite": fields}


def headers(**fields: Any) -> dict[str, Any]:
    return {"type": "RequestHeaderModifier", "requestHeaderModifier": fields}


def mirror(**fields: Any) -> dict[str, Any]:
    return {"type": "RequestMirror", "requestMirror": {"backendRef": backend("m"), **fields}}


def cors(**fields: Any) -> dict[str, Any]:
    return {"type": "CORS", "cors": fields}


PREFIX_ONE = [{"path": {"type": "PathPrefix", "value": "/api"}}]

CASES: list[tuple[str, dict[str, Any], str, str, dict[str, Any]]] = [
    # --- parentRefs and hostnames ---
    (
        "parentRef port range",
        route_doc(parentRefs=[{"name": "gw", "port": 0}]),
        "spec.parentRefs[0].port",
        "must be between 1 and 65535",
        route_doc(parentRefs=[{"name": "gw", "port": 8080}]),
    ),
    (
        "parentRef sectionName pattern",
        route_doc(parentRefs=[{"name": "gw", "sectionName": "HTTP"}]),
        "spec.parentRefs[0].sectionName",
        "is not a valid section name",
        route_doc(parentRefs=[{"name": "gw", "sectionName": "http"}]),
    ),
    (
        "parentRefs max 32",
        route_doc(parentRefs=[{"name": f"gw{i}"} for i in range(33)]),
        "spec.parentRefs",
        "must have at most 32 items",
        route_doc(parentRefs=[{"name": f"gw{i}"} for i in range(32)]),
    ),
    (
        "parentRefs to the same parent need sectionName",
        route_doc(parentRefs=[{"name": "gw"}, {"name": "gw", "sectionName": "a"}]),
        "spec.parentRefs[1]",
        "must be specified, the same way",
        route_doc(
            parentRefs=[{"name": "gw", "sectionName": "b"}, {"name": "gw", "sectionName": "a"}]
        ),
    ),
    (
        "parentRefs to the same parent must differ",
        route_doc(
            parentRefs=[{"name": "gw", "sectionName": "a"}, {"name": "gw", "sectionName": "a"}]
        ),
        "spec.parentRefs[1]",
        "must be unique",
        route_doc(
            parentRefs=[
                {"name": "gw", "sectionName": "a"},
                {"name": "gw", "namespace": "other", "sectionName": "a"},
            ]
        ),
    ),
    (
        "parentRefs identical without sectionName",
        route_doc(parentRefs=[{"name": "gw"}, {"name": "gw"}]),
        "spec.parentRefs[1]",
        "must be unique",
        route_doc(parentRefs=[{"name": "gw", "port": 80}, {"name": "gw", "port": 443}]),
    ),
    (
        "hostname pattern",
        route_doc(hostnames=["*.Example.com"]),
        "spec.hostnames[0]",
        "is not a valid hostname",
        route_doc(hostnames=["*.example.com", "foo.example.com"]),
    ),
    (
        "hostname no IP",
        route_doc(hostnames=["192.0.2.1"]),
        "spec.hostnames[0]",
        "IP address",
        route_doc(hostnames=["host.example"]),
    ),
    (
        "hostnames max 16",
        route_doc(hostnames=[f"h{i}.example" for i in range(17)]),
        "spec.hostnames",
        "must have at most 16 items",
        route_doc(hostnames=[f"h{i}.example" for i in range(16)]),
    ),
    # --- rules and matches ---
    (
        "rules max 16",
        route_doc(*[rule()] * 17),
        "spec.rules",
        "must have at most 16 items",
        route_doc(*[rule()] * 16),
    ),
    (
        "rules min 1",
        route_doc(rules=[]),
        "spec.rules",
        "must have at least 1 item",
        route_doc(),
    ),
    (
        "matches max 64",
        route_doc(rule(matches=[{}] * 65)),
        f"{R0}.matches",
        "must have at most 64 items",
        route_doc(rule(matches=[{}] * 64)),
    ),
    (
        "matches max 128 in total",
        route_doc(*[rule(matches=[{}] * 43)] * 3),
        "spec.rules",
        "at most 128 matches in total",
        route_doc(*[rule(matches=[{}] * 42)] * 3),
    ),
    (
        "rule names unique",
        route_doc(rule(name="a"), rule(name="a")),
        "spec.rules[1].name",
        "duplicate rule name",
        route_doc(rule(name="a"), rule(name="b")),
    ),
    (
        "path must start with /",
        route_doc(path_rule("PathPrefix", "api")),
        f"{R0}.matches[0].path.value",
        "must start with '/'",
        route_doc(path_rule("PathPrefix", "/api")),
    ),
    (
        "path no //",
        route_doc(path_rule("Exact", "/a//b")),
        f"{R0}.matches[0].path.value",
        "must not contain '//'",
        route_doc(path_rule("Exact", "/a/b")),
    ),
    (
        "path no /./",
        route_doc(path_rule("PathPrefix", "/a/./b")),
        f"{R0}.matches[0].path.value",
        "must not contain '/./'",
        route_doc(path_rule("PathPrefix", "/a.b/c")),
    ),
    (
        "path no /../",
        route_doc(path_rule("PathPrefix", "/a/../b")),
        f"{R0}.matches[0].path.value",
        "must not contain '/../'",
        route_doc(path_rule("PathPrefix", "/a/..b")),
    ),
    (
        "path not ending /..",
        route_doc(path_rule("PathPrefix", "/a/..")),
        f"{R0}.matches[0].path.value",
        "must not end with '/..'",
        route_doc(path_rule("PathPrefix", "/a/..x")),
    ),
    (
        "path not ending /.",
        route_doc(path_rule("Exact", "/a/.")),
        f"{R0}.matches[0].path.value",
        "must not end with '/.'",
        route_doc(path_rule("Exact", "/a/.well-known")),
    ),
    (
        "path no %2f",
        route_doc(path_rule("PathPrefix", "/a%2fb")),
        f"{R0}.matches[0].path.value",
        "must not contain '%2f'",
        route_doc(path_rule("PathPrefix", "/a%20b")),
    ),
    (
        "path no %2F",
        route_doc(path_rule("PathPrefix", "/a%2Fb")),
        f"{R0}.matches[0].path.value",
        "must not contain '%2F'",
        route_doc(path_rule("PathPrefix", "/a%3Ab")),
    ),
    (
        "path no #",
        route_doc(path_rule("Exact", "/a#b")),
        f"{R0}.matches[0].path.value",
        "must not contain '#'",
        route_doc(path_rule("Exact", "/a~b")),
    ),
    (
        "path valid characters",
        route_doc(path_rule("Exact", "/a b")),
        f"{R0}.matches[0].path.value",
        "valid path characters",
        route_doc(path_rule("RegularExpression", "/a b.*")),
    ),
    (
        "path at most 1024",
        route_doc(path_rule("PathPrefix", "/" + "a" * 1024)),
        f"{R0}.matches[0].path.value",
        "at most 1024 characters",
        route_doc(path_rule("PathPrefix", "/" + "a" * 1023)),
    ),
    (
        "path type enum",
        route_doc(path_rule("Prefix", "/")),
        f"{R0}.matches[0].path.type",
        "must be one of",
        route_doc(path_rule("Exact", "/")),
    ),
    (
        "header match name pattern",
        route_doc(rule(matches=[{"headers": [{"name": "bad:name", "value": "x"}]}])),
        f"{R0}.matches[0].headers[0].name",
        "is not a valid HTTP header name",
        route_doc(rule(matches=[{"headers": [{"name": "X-Good_Name", "value": "x"}]}])),
    ),
    (
        "header match names unique",
        route_doc(
            rule(matches=[{"headers": [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]}])
        ),
        f"{R0}.matches[0].headers[1].name",
        "duplicate name",
        route_doc(
            rule(matches=[{"headers": [{"name": "a", "value": "1"}, {"name": "A", "value": "2"}]}])
        ),
    ),
    (
        "query param names unique",
        route_doc(rule(matches=[{"queryParams": [{"name": "q", "value": "1"}] * 2}])),
        f"{R0}.matches[0].queryParams[1].name",
        "duplicate name",
        route_doc(
            rule(
                matches=[
                    {"queryParams": [{"name": "q", "value": "1"}, {"name": "Q", "value": "1"}]}
                ]
            )
        ),
    ),
    (
        "method enum",
        route_doc(rule(matches=[{"method": "get"}])),
        f"{R0}.matches[0].method",
        "must be one of",
        route_doc(rule(matches=[{"method": "GET"}])),
    ),
    # --- backendRefs ---
    (
        "weight range",
        route_doc(rule(backendRefs=[backend(weight=1_000_001)])),
        f"{R0}.backendRefs[0].weight",
        "must be between 0 and 1000000",
        route_doc(rule(backendRefs=[backend(weight=0), backend("b", weight=1_000_000)])),
    ),
    (
        "Service backendRef needs a port",
        route_doc(rule(backendRefs=[backend(port=None)])),
        f"{R0}.backendRefs[0].port",
        "required when kind is Service",
        route_doc(rule(backendRefs=[backend(port=None, group="example.com", kind="Bucket")])),
    ),
    (
        "backendRef port range",
        route_doc(rule(backendRefs=[backend(port=70000)])),
        f"{R0}.backendRefs[0].port",
        "must be between 1 and 65535",
        route_doc(rule(backendRefs=[backend(port=65535)])),
    ),
    (
        "backendRefs max 16",
        route_doc(rule(backendRefs=[backend()] * 17)),
        f"{R0}.backendRefs",
        "must have at most 16 items",
        route_doc(rule(backendRefs=[backend()] * 16)),
    ),
    # --- filters ---
    (
        "filter type enum",
        route_doc(rule(filters=[{"type": "Rewrite"}])),
        f"{F0}.type",
        "must be one of",
        route_doc(rule(filters=[headers(set=[{"name": "a", "value": "b"}])])),
    ),
    (
        "field for the type must be set",
        route_doc(rule(filters=[{"type": "RequestHeaderModifier"}])),
        f"{F0}.requestHeaderModifier",
        "required when type is RequestHeaderModifier",
        route_doc(rule(filters=[headers(add=[{"name": "a", "value": "b"}])])),
    ),
    (
        "no field of another type",
        route_doc(
            rule(filters=[{**headers(remove=["a"]), "responseHeaderModifier": {"remove": ["b"]}}])
        ),
        f"{F0}.responseHeaderModifier",
        "must not be set when type is RequestHeaderModifier",
        route_doc(rule(filters=[headers(remove=["a"])])),
    ),
    (
        "redirect and rewrite not together",
        route_doc({"filters": [redirect(), rewrite(hostname="a.example")]}),
        f"{R0}.filters",
        "RequestRedirect and URLRewrite filters cannot be used together",
        route_doc({"filters": [redirect()]}),
    ),
    (
        "redirect with backendRefs",
        route_doc(rule(filters=[redirect()])),
        F0,
        "must not be used together with backendRefs",
        route_doc({"filters": [redirect(hostname="a.example")]}),
    ),
    (
        "RequestHeaderModifier not repeated",
        route_doc(rule(filters=[headers(remove=["a"]), headers(remove=["b"])])),
        f"{R0}.filters[1]",
        "at most one RequestHeaderModifier filter",
        route_doc(rule(filters=[headers(remove=["a", "b"])])),
    ),
    (
        "ResponseHeaderModifier not repeated",
        route_doc(
            rule(
                filters=[
                    {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"remove": ["a"]}}
                ]
                * 2
            )
        ),
        f"{R0}.filters[1]",
        "at most one ResponseHeaderModifier filter",
        route_doc(
            rule(
                filters=[
                    {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"remove": ["a"]}}
                ]
            )
        ),
    ),
    (
        "RequestRedirect not repeated",
        route_doc({"filters": [redirect(), redirect()]}),
        f"{R0}.filters[1]",
        "at most one RequestRedirect filter",
        route_doc({"filters": [redirect()]}),
    ),
    (
        "URLRewrite not repeated",
        route_doc(rule(filters=[rewrite(hostname="a.example")] * 2)),
        f"{R0}.filters[1]",
        "at most one URLRewrite filter",
        route_doc(rule(filters=[rewrite(hostname="a.example")])),
    ),
    (
        "CORS not repeated",
        route_doc(rule(filters=[cors(allowOrigins=["*"])] * 2)),
        f"{R0}.filters[1]",
        "at most one CORS filter",
        route_doc(rule(filters=[cors(allowOrigins=["*"])])),
    ),
    (
        "RequestMirror may repeat",
        route_doc(rule(filters=[mirror(percent=101)])),
        f"{F0}.requestMirror.percent",
        "must be between 0 and 100",
        route_doc(rule(filters=[mirror(percent=100), mirror(percent=0)])),
    ),
    (
        "mirror percent and fraction exclusive",
        route_doc(rule(filters=[mirror(percent=50, fraction={"numerator": 1})])),
        f"{F0}.requestMirror",
        "only one of percent or fraction",
        route_doc(rule(filters=[mirror(fraction={"numerator": 1, "denominator": 3})])),
    ),
    (
        "mirror fraction numerator <= denominator",
        route_doc(rule(filters=[mirror(fraction={"numerator": 101})])),
        f"{F0}.requestMirror.fraction.numerator",
        "less than or equal to denominator",
        route_doc(rule(filters=[mirror(fraction={"numerator": 100})])),
    ),
    (
        "mirror backendRef needs a port",
        route_doc(
            rule(
                filters=[{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "m"}}}]
            )
        ),
        f"{F0}.requestMirror.backendRef.port",
        "required when kind is Service",
        route_doc(rule(filters=[mirror()])),
    ),
    (
        "header modifier name pattern",
        route_doc(rule(filters=[headers(set=[{"name": "a b", "value": "1"}])])),
        f"{F0}.requestHeaderModifier.set[0].name",
        "is not a valid HTTP header name",
        route_doc(rule(filters=[headers(set=[{"name": "a-b", "value": "1"}])])),
    ),
    (
        "header modifier one action per name",
        route_doc(rule(filters=[headers(set=[{"name": "X-A", "value": "1"}], remove=["x-a"])])),
        f"{F0}.requestHeaderModifier.remove[0]",
        "already appears in set",
        route_doc(rule(filters=[headers(set=[{"name": "X-A", "value": "1"}], remove=["x-b"])])),
    ),
    (
        "header modifier set/add duplicates",
        route_doc(
            rule(
                filters=[
                    headers(
                        set=[{"name": "X-A", "value": "1"}], add=[{"name": "x-a", "value": "2"}]
                    )
                ]
            )
        ),
        f"{F0}.requestHeaderModifier.add[0].name",
        "already appears in set",
        route_doc(rule(filters=[headers(add=[{"name": "x-a", "value": "2"}])])),
    ),
    (
        "header modifier value control characters",
        route_doc(rule(filters=[headers(add=[{"name": "a", "value": "x\r\nInjected: 1"}])])),
        f"{F0}.requestHeaderModifier.add[0].value",
        "control characters",
        route_doc(rule(filters=[headers(add=[{"name": "a", "value": "x\ty z"}])])),
    ),
    (
        "rewrite full path characters (no CR/LF into the request line)",
        route_doc(
            rule(
                filters=[
                    rewrite(path={"type": "ReplaceFullPath", "replaceFullPath": "/a\r\nX-B: 1"})
                ]
            )
        ),
        f"{F0}.urlRewrite.path.replaceFullPath",
        "valid path characters",
        route_doc(
            rule(filters=[rewrite(path={"type": "ReplaceFullPath", "replaceFullPath": "/a"})])
        ),
    ),
    (
        "redirect prefix characters (no space, ? or # into the Location)",
        route_doc(
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/p"}}],
                "filters": [
                    redirect(path={"type": "ReplacePrefixMatch", "replacePrefixMatch": "/a b?c"})
                ],
            }
        ),
        f"{F0}.requestRedirect.path.replacePrefixMatch",
        "valid path characters",
        route_doc(
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/p"}}],
                "filters": [
                    redirect(path={"type": "ReplacePrefixMatch", "replacePrefixMatch": "/a%20b"})
                ],
            }
        ),
    ),
    (
        "redirect port range",
        route_doc({"filters": [redirect(port=70000)]}),
        f"{F0}.requestRedirect.port",
        "must be between 1 and 65535",
        route_doc({"filters": [redirect(port=8443)]}),
    ),
    (
        "redirect status code enum",
        route_doc({"filters": [redirect(statusCode=304)]}),
        f"{F0}.requestRedirect.statusCode",
        "must be one of",
        route_doc({"filters": [redirect(statusCode=308)]}),
    ),
    (
        "redirect scheme enum",
        route_doc({"filters": [redirect(scheme="ftp")]}),
        f"{F0}.requestRedirect.scheme",
        "must be one of",
        route_doc({"filters": [redirect(scheme="https")]}),
    ),
    (
        "redirect hostname has no wildcard",
        route_doc({"filters": [redirect(hostname="*.example.com")]}),
        f"{F0}.requestRedirect.hostname",
        "is not a valid hostname",
        route_doc({"filters": [redirect(hostname="www.example.com")]}),
    ),
    (
        "ReplaceFullPath needs its value",
        route_doc(rule(filters=[rewrite(path={"type": "ReplaceFullPath"})])),
        f"{F0}.urlRewrite.path.replaceFullPath",
        "required when type is ReplaceFullPath",
        route_doc(
            rule(filters=[rewrite(path={"type": "ReplaceFullPath", "replaceFullPath": "/x"})])
        ),
    ),
    (
        "path modifier value of the other type",
        route_doc(
            rule(
                filters=[
                    rewrite(
                        path={
                            "type": "ReplaceFullPath",
                            "replaceFullPath": "/",
                            "replacePrefixMatch": "/",
                        }
                    )
                ]
            )
        ),
        f"{F0}.urlRewrite.path.replacePrefixMatch",
        "must not be set when type is ReplaceFullPath",
        route_doc(
            rule(filters=[rewrite(path={"type": "ReplaceFullPath", "replaceFullPath": "/"})])
        ),
    ),
    (
        "ReplacePrefixMatch needs exactly one PathPrefix match (rewrite)",
        route_doc(
            rule(
                filters=[rewrite(path={"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"})],
                matches=[{"path": {"type": "Exact", "value": "/api"}}],
            )
        ),
        f"{F0}.urlRewrite.path.type",
        "exactly one match, with a PathPrefix path",
        route_doc(
            rule(
                filters=[rewrite(path={"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"})],
                matches=PREFIX_ONE,
            )
        ),
    ),
    (
        "ReplacePrefixMatch needs exactly one match (redirect)",
        route_doc(
            {
                "filters": [
                    redirect(path={"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"})
                ],
                "matches": PREFIX_ONE * 2,
            }
        ),
        f"{F0}.requestRedirect.path.type",
        "exactly one match",
        route_doc(
            {"filters": [redirect(path={"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"})]}
        ),
    ),
    (
        "ReplacePrefixMatch in a backendRef filter",
        route_doc(
            rule(
                backendRefs=[
                    backend(
                        filters=[
                            rewrite(path={"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"})
                        ]
                    )
                ],
                matches=[],
            )
        ),
        f"{R0}.backendRefs[0].filters[0].urlRewrite.path.type",
        "exactly one match",
        route_doc(
            rule(
                backendRefs=[
                    backend(
                        filters=[
                            rewrite(path={"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"})
                        ]
                    )
                ],
                matches=PREFIX_ONE,
            )
        ),
    ),
    (
        "backendRef filters not repeated",
        route_doc(rule(backendRefs=[backend(filters=[headers(remove=["a"])] * 2)])),
        f"{R0}.backendRefs[0].filters[1]",
        "at most one RequestHeaderModifier filter",
        route_doc(rule(backendRefs=[backend(filters=[headers(remove=["a"])])])),
    ),
    (
        "CORS origin pattern",
        route_doc(rule(filters=[cors(allowOrigins=["ftp://a.example"])])),
        f"{F0}.cors.allowOrigins[0]",
        "is not a valid origin",
        route_doc(rule(filters=[cors(allowOrigins=["https://*.example.com:8443"])])),
    ),
    (
        "CORS '*' alone",
        route_doc(rule(filters=[cors(allowMethods=["*", "GET"])])),
        f"{F0}.cors.allowMethods",
        "'*' must be the only entry",
        route_doc(rule(filters=[cors(allowMethods=["*"])])),
    ),
    (
        "CORS maxAge at least 1",
        route_doc(rule(filters=[cors(maxAge=0)])),
        f"{F0}.cors.maxAge",
        "must be between 1 and",
        route_doc(rule(filters=[cors(maxAge=1)])),
    ),
    (
        "ExtensionRef needs group/kind/name",
        route_doc(rule(filters=[{"type": "ExtensionRef", "extensionRef": {"name": "x"}}])),
        f"{F0}.extensionRef.kind",
        "required",
        route_doc(
            rule(
                filters=[
                    {
                        "type": "ExtensionRef",
                        "extensionRef": {"group": "example.com", "kind": "K", "name": "x"},
                    }
                ]
            )
        ),
    ),
    # --- timeouts ---
    (
        "timeout duration format",
        route_doc(rule(timeouts={"request": "1.5s"})),
        f"{R0}.timeouts.request",
        "is not a valid duration",
        route_doc(rule(timeouts={"request": "1h30m500ms"})),
    ),
    (
        "timeout duration at most 4 parts",
        route_doc(rule(timeouts={"backendRequest": "1h1m1s1ms1ms"})),
        f"{R0}.timeouts.backendRequest",
        "is not a valid duration",
        route_doc(rule(timeouts={"backendRequest": "1h1m1s1ms"})),
    ),
    (
        "backendRequest <= request",
        route_doc(rule(timeouts={"request": "1s", "backendRequest": "1001ms"})),
        f"{R0}.timeouts.backendRequest",
        "must not be longer than the request timeout",
        route_doc(rule(timeouts={"request": "0s", "backendRequest": "10m"})),
    ),
]


@pytest.mark.parametrize(
    ("bad", "path", "message", "good"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_httproute_rule(bad: dict[str, Any], path: str, message: str, good: dict[str, Any]) -> None:
    assert_error(bad, path, message)
    assert_valid(good)


def test_all_schema_errors_reported_with_json_names() -> None:
    doc = route_doc(rule(backendRefs=[backend(port="80")], filters=[redirect(statusCode="301")]))
    from tests.resources.docs import errors_of

    paths = {p for p, _ in errors_of(doc)}
    assert paths == {f"{R0}.backendRefs[0].port", f"{F0}.requestRedirect.statusCode"}
