"""The `turnout` command line: the front door to every mode.

    turnout run      serve Gateway API objects from files (standalone mode)
    turnout check    compute the status of files offline, as a controller would
    turnout status   print the status a running `turnout run` reports
    turnout demo     the Star Wars demo: backends + gateway in one process
    turnout version

This module only parses and validates options and renders results; the work is done
by `turnout.runtime` (imported lazily, so `turnout --help` stays fast).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.text import Text

from turnout import DEFAULT_CONTROLLER_NAME, __version__

# Modules only some commands need (turnout.report, urllib) are imported inside them:
# `turnout run` serves sooner without them.

DEFAULT_ADMIN = "127.0.0.1:9901"
DEFAULT_ADDRESS_POOL = "127.0.0.0/24"
OUTPUT_FORMATS = ("table", "yaml", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

if TYPE_CHECKING:
    # click >= 8.3 makes ParamType generic; older ones cannot be subscripted at run time.
    _HostPortBase = click.ParamType[tuple[str, int], Any]
    _NetworkBase = click.ParamType[Network, Any]
else:
    _HostPortBase = _NetworkBase = click.ParamType


# --- option types --------------------------------------------------------------------


class HostPortType(_HostPortBase):
    """`HOST:PORT`, `[IPv6]:PORT`; with `loopback_only`, HOST must be a loopback address
    or `localhost` (the admin API has no authentication)."""

    name = "HOST:PORT"

    def __init__(self, *, loopback_only: bool = False) -> None:
        self.loopback_only = loopback_only

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, int]:
        if isinstance(value, tuple):
            return value  # already converted (a default)
        text = str(value)
        host, sep, port_text = text.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            self.fail(f"{text!r}: write an IPv6 address in brackets, as [::1]:9901", param, ctx)
        if not sep or not host:
            self.fail(f"{text!r} is not HOST:PORT (for example {DEFAULT_ADMIN})", param, ctx)
        if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            self.fail(f"{text!r}: the port must be a number from 0 to 65535", param, ctx)
        if self.loopback_only and not _is_loopback_host(host):
            self.fail(
                f"{text!r}: the admin API only listens on a loopback address "
                "(127.0.0.0/8, ::1 or localhost)",
                param,
                ctx,
            )
        return host, int(port_text)


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NetworkType(_NetworkBase):
    """A CIDR such as 127.0.0.0/24."""

    name = "CIDR"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Network:
        if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
            return value
        try:
            return ipaddress.ip_network(str(value), strict=True)
        except ValueError as exc:
            self.fail(f"{value!r} is not a network in CIDR notation: {exc}", param, ctx)


PATHS = click.option(
    "-f",
    "--filename",
    "paths",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="A YAML/JSON file or a directory of them. Repeatable.",
)
ADDRESS_POOL = click.option(
    "--address-pool",
    type=NetworkType(),
    default=DEFAULT_ADDRESS_POOL,
    show_default=True,
    help="Addresses given to Gateways, one each, as a LoadBalancer would.",
)
PORT_OFFSET = click.option(
    "--port-offset",
    metavar="N",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Added to every listener port (80 + 8000 = 8080), to run without root.",
)
CONTROLLER_NAME = click.option(
    "--controller-name",
    metavar="NAME",
    default=DEFAULT_CONTROLLER_NAME,
    show_default=True,
    help="GatewayClasses with this spec.controllerName are ours.",
)
OUTPUT = click.option(
    "-o",
    "--output",
    type=click.Choice(OUTPUT_FORMATS),
    default="table",
    show_default=True,
    help="table: one row per condition; yaml/json: the objects with their status.",
)


def default_workers() -> int:
    """One worker per CPU this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# `turnout run` flags for the data plane's limits, by Limits field; defaults are Limits'.
_LIMIT_FLAGS: tuple[tuple[str, str, str, str], ...] = (
    ("max_request_line", "--max-request-line", "BYTES", "Longest request line; 414 above."),
    ("max_head_bytes", "--max-header-bytes", "BYTES", "Largest request head; 431 above."),
    ("max_header_fields", "--max-header-count", "N", "Most header fields; 431 above."),
    (
        "header_timeout",
        "--header-timeout",
        "SECONDS",
        "Time to receive a request head; 408 (or a silent close) after.",
    ),
    (
        "idle_timeout",
        "--idle-timeout",
        "SECONDS",
        "An idle keep-alive client connection is closed after this.",
    ),
    (
        "max_connections",
        "--max-connections",
        "N",
        "Client connections per worker; more are closed at once.",
    ),
    (
        "max_upstream_head_bytes",
        "--max-upstream-header-bytes",
        "BYTES",
        "Largest backend response head; 502 above.",
    ),
    (
        "retry_buffer_bytes",
        "--retry-buffer-bytes",
        "BYTES",
        "Request bodies up to this size are kept for retries; larger ones are not retried.",
    ),
    (
        "udp_idle_timeout",
        "--udp-idle-timeout",
        "SECONDS",
        "A UDP session without a datagram either way ends after this.",
    ),
)


def limit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    from turnout.dataplane.limits import DEFAULT_LIMITS

    for name, flag, metavar, text in reversed(_LIMIT_FLAGS):
        default = getattr(DEFAULT_LIMITS, name)
        kind: Any = (
            click.FloatRange(min=0.001) if isinstance(default, float) else click.IntRange(min=1)
        )
        command = click.option(
            flag, name, metavar=metavar, type=kind, default=default, show_default=True, help=text
        )(command)
    return command


# --- commands --------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """turnout: the Kubernetes Gateway API in Python."""


@cli.command()
@PATHS
@click.option(
    "--admin",
    type=HostPortType(loopback_only=True),
    default=DEFAULT_ADMIN,
    show_default=True,
    help="Where the admin API listens (/healthz /readyz /status /config /metrics).",
)
@ADDRESS_POOL
@PORT_OFFSET
@CONTROLLER_NAME
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="info",
    show_default=True,
)
@click.option(
    "--workers",
    metavar="N",
    type=click.IntRange(0, 256),
    default=None,
    help="Data-plane worker processes sharing the listener ports (SO_REUSEPORT); 0 serves "
    "in the control-plane process.  [default: the number of CPUs usable]",
)
@click.option(
    "--drain-timeout",
    metavar="SECONDS",
    type=click.FloatRange(0, 3600),
    default=5.0,
    show_default=True,
    help="On SIGTERM/SIGINT: stop accepting, give requests in flight this long, exit 0.",
)
@click.option(
    "--resync-interval",
    metavar="SECONDS",
    type=click.FloatRange(0, 86400),
    default=60.0,
    show_default=True,
    help="Re-read every file this often, in case the file watcher missed a change; 0: never.",
)
@limit_options
def run(
    paths: tuple[Path, ...],
    admin: tuple[str, int],
    address_pool: Network,
    port_offset: int,
    controller_name: str,
    log_level: str,
    workers: int | None,
    drain_timeout: float,
    resync_interval: float,
    **limits: Any,
) -> None:
    """Serve the Gateway API objects in PATHs; reload when they change.

    SIGTERM or SIGINT drains and exits 0; SIGHUP re-reads the files.
    """
    from turnout.util.collector import end_pause_for_start, pause_for_start

    # No cyclic garbage collection while starting: the imports and the first load make
    # hundreds of thousands of long-lived objects (turnout.util.collector). Standalone
    # turns it back on once the first configuration is served; this is the fallback.
    pause_for_start()
    try:
        from turnout import runtime
        from turnout.dataplane.limits import Limits

        setup_logging(log_level)
        options = runtime.RunOptions(
            paths=paths,
            admin_host=admin[0],
            admin_port=admin[1],
            address_pool=address_pool,
            port_offset=port_offset,
            controller_name=controller_name,
            workers=default_workers() if workers is None else workers,
            limits=Limits(**limits),
            drain_timeout=drain_timeout,
            resync_interval=resync_interval,
            log_level=log_level.lower(),
        )
        try:
            runtime.run_standalone(options)
        except KeyboardInterrupt:
            sys.exit(130)
        except OSError as exc:  # typically: an address or port already in use
            raise click.ClickException(str(exc)) from exc
    finally:
        end_pause_for_start()


@cli.command()
@PATHS
@OUTPUT
@click.option("-v", "--verbose", is_flag=True, help="Also list the objects that were ignored.")
@CONTROLLER_NAME
@ADDRESS_POOL
@PORT_OFFSET
def check(
    paths: tuple[Path, ...],
    output: str,
    verbose: bool,
    controller_name: str,
    address_pool: Network,
    port_offset: int,
) -> None:
    """Compute, offline, the status a controller would write for PATHs.

    Exits 1 if anything failed to load or any Accepted, ResolvedRefs or Programmed
    condition is not True.
    """
    from turnout import runtime

    result = runtime.check(
        paths,
        controller_name=controller_name,
        address_pool=address_pool,
        port_offset=port_offset,
    )
    stderr = Console(stderr=True, soft_wrap=True, highlight=False)
    for error in result.errors:
        stderr.print(Text(f"error: {error}", style="red"))
    for warning in result.warnings:
        stderr.print(Text(f"warning: {warning}", style="yellow"))
    if verbose:
        for ignored in result.ignored:
            stderr.print(Text(f"ignored: {ignored}", style="dim"))
    print_items(result.items, output)
    from turnout import report

    failures = report.failing(result.items)
    if result.errors or failures:
        stderr.print(
            Text(
                f"check failed: {len(result.errors)} load error(s), "
                f"{len(failures)} condition(s) not True",
                style="bold red",
            )
        )
        sys.exit(1)


@cli.command()
@click.option(
    "--admin",
    type=HostPortType(),
    default=DEFAULT_ADMIN,
    show_default=True,
    help="The admin API of a running `turnout run`.",
)
@OUTPUT
def status(admin: tuple[str, int], output: str) -> None:
    """Print the status a running gateway reports on its admin API.

    Load errors (files that do not parse, invalid objects, which keep serving their
    last good version) are printed first, to stderr.
    """
    items, errors = fetch_status(admin)
    stderr = Console(stderr=True, soft_wrap=True, highlight=False)
    for error in errors:
        stderr.print(Text(f"error: {error}", style="red"))
    print_items(items, output)


@cli.command()
@click.option(
    "--port-offset",
    metavar="N",
    type=click.IntRange(0, 65535),
    default=None,
    help="Added to listener ports. [default: 0 as root, else 8000 (port 8080)]",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="The demo's objects. [default: examples/starwars in the source tree]",
)
@click.option(
    "--admin",
    type=HostPortType(loopback_only=True),
    default=DEFAULT_ADMIN,
    show_default=True,
    help="Where the admin API listens.",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="warning",
    show_default=True,
)
def demo(
    port_offset: int | None, directory: Path | None, admin: tuple[str, int], log_level: str
) -> None:
    """Run the Star Wars demo: backends and gateway in one process.

    Starts an echo server for every endpoint of the demo's EndpointSlices, then the
    gateway on the demo's objects, and prints curl commands to try.
    """
    from turnout.demo import starwars

    setup_logging(log_level)
    if directory is None:
        directory = starwars.default_directory()
        if not directory.is_dir():
            raise click.ClickException(
                f"demo objects not found at {directory} (turnout installed without its "
                "source tree?); pass --dir examples/starwars"
            )
    if port_offset is None:
        port_offset = 0 if os.geteuid() == 0 else 8000
    try:
        starwars.main(directory, port_offset=port_offset, admin=admin)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        raise click.ClickException(str(exc)) from exc


@cli.command()
def version() -> None:
    """Print turnout's version, and whether its data plane is compiled."""
    from turnout.dataplane import native

    click.echo(
        f"turnout {__version__} (Python {platform.python_version()}; data plane {native.mode()})"
    )


# --- helpers ---------------------------------------------------------------------------


def print_items(items: list[dict[str, Any]], output: str) -> None:
    from turnout import report

    if output == "yaml":
        click.echo(report.dump_yaml(items), nl=False)
    elif output == "json":
        click.echo(report.dump_json(items), nl=False)
    else:
        report.render_table(items, table_console())


def table_console() -> Console:
    """stdout; when it is not a terminal (a pipe, a file) and COLUMNS does not say
    otherwise, lines are not wrapped at 80 columns, like kubectl's."""
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, width=500)
    return console


def admin_url(admin: tuple[str, int], path: str) -> str:
    host, port = admin
    return f"http://[{host}]:{port}{path}" if ":" in host else f"http://{host}:{port}{path}"


def fetch_status(
    admin: tuple[str, int], timeout: float = 10.0
) -> tuple[list[dict[str, Any]], list[str]]:
    """The items and load errors a running gateway reports on GET /status."""
    import urllib.error
    import urllib.request

    url = admin_url(admin, "/status")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            document = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise click.ClickException(f"{url} answered {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise click.ClickException(
            f"cannot reach the admin API at {url}: {reason}\n"
            "Is `turnout run` (or `turnout demo`) running? Point at it with --admin HOST:PORT."
        ) from exc
    except ValueError as exc:
        raise click.ClickException(f"{url} did not answer JSON: {exc}") from exc
    items = document.get("items") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise click.ClickException(f"{url} answered JSON without an 'items' list")
    errors = document.get("errors") or []
    return items, [str(e) for e in errors] if isinstance(errors, list) else [str(errors)]


def setup_logging(level: str) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=level.upper(),
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=Console(stderr=True), show_path=False)],
        force=True,
    )


def main() -> None:
    cli()
