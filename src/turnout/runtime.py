"""Standalone mode: watch files, rebuild graph/status/IR, program the data plane.

This is the glue between the pure pipeline (sources -> graph -> status/IR) and the
processes that serve traffic and the admin API.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turnout import DEFAULT_CONTROLLER_NAME


@dataclass(frozen=True)
class RunOptions:
    paths: tuple[Path, ...]
    admin_host: str = "127.0.0.1"
    admin_port: int = 9901
    address_pool: ipaddress.IPv4Network | ipaddress.IPv6Network = field(
        default_factory=lambda: ipaddress.ip_network("127.0.0.0/24")
    )
    port_offset: int = 0
    controller_name: str = DEFAULT_CONTROLLER_NAME


@dataclass(frozen=True)
class CheckResult:
    """What `turnout check` computes offline."""

    items: list[dict[str, Any]]  # Kubernetes-shaped objects with .status filled in
    errors: list[str]  # load/validation errors, each naming file, document, object, field
    warnings: list[str]  # unknown fields and similar
    ignored: list[str]  # objects of kinds turnout does not use ("file#doc: apiVersion kind ns/name")
