"""Constrained scalar types shared by the resource models.

Part of ``turnout.resources`` (sources -> **resources** -> Snapshot -> graph). Each type
here is the Python form of one OpenAPI scalar of the Gateway API CRDs (``Hostname``,
``SectionName``, ``PortNumber``, ...) or of a Kubernetes core validation (DNS-1123
names, label keys). Validators raise ``ValueError`` with a short message in plain
words; ``turnout.resources.parse`` turns it into a ``FieldError`` with the field path.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator

# --- patterns (from the CRD OpenAPI schemas and k8s.io/apimachinery validation) ---------

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL_RE = re.compile(rf"^{_DNS_LABEL}$")
DNS1123_SUBDOMAIN_RE = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")
DNS1035_LABEL_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
HOSTNAME_RE = re.compile(rf"^(\*\.)?{_DNS_LABEL}(\.{_DNS_LABEL})*$")
GROUP_RE = re.compile(rf"^$|^{_DNS_LABEL}(\.{_DNS_LABEL})*$")
KIND_RE = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
CONTROLLER_NAME_RE = re.compile(
    rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$"
)
PROTOCOL_RE = re.compile(
    rf"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$|^{_DNS_LABEL}(\.{_DNS_LABEL})*\/[A-Za-z0-9]+$"
)
ADDRESS_TYPE_RE = re.compile(
    rf"^(Hostname|IPAddress|NamedAddress)$|^{_DNS_LABEL}(\.{_DNS_LABEL})*\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$"
)
HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")
QUALIFIED_NAME_RE = re.compile(
    rf"^({_DNS_LABEL}(\.{_DNS_LABEL})*/)?([A-Za-z0-9][-A-Za-z0-9_.]{{0,61}})?[A-Za-z0-9]$"
)
LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DURATION_RE = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
_DURATION_PART_RE = re.compile(r"([0-9]{1,5})(h|ms|m|s)")
PATH_CHARS_RE = re.compile(r"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$")
CORS_ORIGIN_RE = re.compile(
    r"(^\*$)|(^(http(s)?):\/\/(((\*\.)?([a-zA-Z0-9\-]+\.)*[a-zA-Z0-9-]+|\*)(:([0-9]{1,5}))?)$)"
)
CONFIG_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
IANA_SVC_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")

_DURATION_UNIT_MS = {"h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}


def duration_ms(value: str) -> int:
    """Milliseconds of a GEP-2257 duration that already matched ``DURATION_RE``."""
    return sum(int(n) * _DURATION_UNIT_MS[u] for n, u in _DURATION_PART_RE.findall(value))


def is_ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# --- validator factories --------------------------------------------------------------


def _length(value: str, *, min_len: int, max_len: int) -> None:
    if len(value) < min_len:
        raise ValueError("must not be empty" if min_len == 1 else f"must be at least {min_len}")
    if len(value) > max_len:
        raise ValueError(f"must be at most {max_len} characters")


def string_check(
    *,
    max_len: int,
    min_len: int = 1,
    pattern: re.Pattern[str] | None = None,
    what: str = "",
    no_ip: bool = False,
) -> Callable[[str], str]:
    """A validator for a string with a length range and an optional pattern."""

    def check(value: str) -> str:
        _length(value, min_len=min_len, max_len=max_len)
        if pattern is not None and not pattern.match(value):
            raise ValueError(f"{value!r} is not {what or 'valid'}")
        if no_ip and is_ip_address(value):
            raise ValueError(f"{value!r} is an IP address; a hostname is required")
        return value

    return check


def int_range(low: int, high: int) -> Callable[[int], int]:
    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return check


def at_least(low: int) -> Callable[[int], int]:
    def check(value: int) -> int:
        if value < low:
            raise ValueError(f"must be at least {low}")
        return value

    return check


def max_items(limit: int, *, min_items: int = 0) -> Callable[[list[object]], list[object]]:
    """Length bounds of a list; the message counts items."""

    def check(value: list[object]) -> list[object]:
        if len(value) > limit:
            raise ValueError(f"must have at most {limit} items")
        if len(value) < min_items:
            raise ValueError(f"must have at least {min_items} item{'s' * (min_items > 1)}")
        return value

    return check


def max_properties(limit: int) -> Callable[[dict[str, str]], dict[str, str]]:
    def check(value: dict[str, str]) -> dict[str, str]:
        if len(value) > limit:
            raise ValueError(f"must have at most {limit} entries")
        return value

    return check


def _rfc1123(kind: str) -> str:
    return f"a valid {kind} (lower case alphanumerics, '-' or '.', starting and ending with an alphanumeric)"


# --- the scalar types ------------------------------------------------------------------

PortNumber = Annotated[int, AfterValidator(int_range(1, 65535))]
"""``PortNumber``: 1..65535."""

ObjectName = Annotated[str, AfterValidator(string_check(max_len=253))]
"""``ObjectName``: 1..253 characters, no pattern in the CRD."""

Namespace = Annotated[
    str,
    AfterValidator(
        string_check(max_len=63, pattern=DNS1123_LABEL_RE, what=_rfc1123("namespace name"))
    ),
]
"""``Namespace``: an RFC 1123 label."""

SectionName = Annotated[
    str,
    AfterValidator(
        string_check(max_len=253, pattern=DNS1123_SUBDOMAIN_RE, what=_rfc1123("section name"))
    ),
]
Group = Annotated[
    str,
    AfterValidator(
        string_check(min_len=0, max_len=253, pattern=GROUP_RE, what="a valid API group")
    ),
]
Kind = Annotated[
    str, AfterValidator(string_check(max_len=63, pattern=KIND_RE, what="a valid kind"))
]
Hostname = Annotated[
    str,
    AfterValidator(
        string_check(
            max_len=253,
            pattern=HOSTNAME_RE,
            what="a valid hostname (RFC 1123, optionally with a leading '*.' label)",
            no_ip=True,
        )
    ),
]
"""``Hostname``: RFC 1123 subdomain with an optional ``*.`` prefix; IPs not allowed."""

PreciseHostname = Annotated[
    str,
    AfterValidator(
        string_check(max_len=253, pattern=DNS1123_SUBDOMAIN_RE, what="a valid hostname (RFC 1123)")
    ),
]
"""``PreciseHostname``: RFC 1123 subdomain without wildcard."""

HeaderName = Annotated[
    str,
    AfterValidator(
        string_check(max_len=256, pattern=HEADER_NAME_RE, what="a valid HTTP header name")
    ),
]
Duration = Annotated[
    str,
    AfterValidator(
        string_check(
            max_len=64,
            pattern=DURATION_RE,
            what="a valid duration (1 to 4 parts of up to 5 digits with unit h, m, s or ms, e.g. '1h30m', '500ms')",
        )
    ),
]
"""GEP-2257 ``Duration``."""

ControllerName = Annotated[
    str,
    AfterValidator(
        string_check(
            max_len=253,
            pattern=CONTROLLER_NAME_RE,
            what="a valid controller name (a domain-prefixed path such as 'example.com/controller')",
        )
    ),
]
ProtocolType = Annotated[
    str,
    AfterValidator(
        string_check(
            max_len=255,
            pattern=PROTOCOL_RE,
            what="a valid protocol (HTTP, HTTPS, TLS, TCP, UDP or a domain-prefixed name)",
        )
    ),
]
AddressType = Annotated[
    str,
    AfterValidator(
        string_check(
            max_len=253,
            pattern=ADDRESS_TYPE_RE,
            what="a valid address type (IPAddress, Hostname or a domain-prefixed name)",
        )
    ),
]
QualifiedName = Annotated[
    str,
    AfterValidator(
        string_check(
            max_len=316,
            pattern=QUALIFIED_NAME_RE,
            what="a valid key (an optional DNS prefix and '/', then up to 63 alphanumerics, '-', '_' or '.')",
        )
    ),
]
"""Label and annotation keys."""

LabelValue = Annotated[
    str,
    AfterValidator(
        string_check(
            min_len=0,
            max_len=63,
            pattern=LABEL_VALUE_RE,
            what="a valid label value (alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric)",
        )
    ),
]
CORSOrigin = Annotated[
    str,
    AfterValidator(
        string_check(
            max_len=253,
            pattern=CORS_ORIGIN_RE,
            what="a valid origin ('*' or scheme://host[:port] with scheme http or https)",
        )
    ),
]
DNSSubdomainName = Annotated[
    str,
    AfterValidator(string_check(max_len=253, pattern=DNS1123_SUBDOMAIN_RE, what=_rfc1123("name"))),
]
DNSLabelName = Annotated[
    str,
    AfterValidator(
        string_check(max_len=63, pattern=DNS1123_LABEL_RE, what=_rfc1123("RFC 1123 label"))
    ),
]
DNS1035Name = Annotated[
    str,
    AfterValidator(
        string_check(
            max_len=63,
            pattern=DNS1035_LABEL_RE,
            what="a valid RFC 1035 label (lower case alphanumerics or '-', starting with a letter)",
        )
    ),
]
Weight = Annotated[int, AfterValidator(int_range(0, 1_000_000))]
