"""The Star Wars demo: the Empire's shared gateway, two teams and a central service.

`turnout demo` runs everything in one process and one event loop: an echo server for
every ready endpoint of every EndpointSlice in the demo directory (each answers saying
which pod and namespace it is), then the standalone gateway on that same directory.
Once the gateway is ready it tries every curl command it is about to print, so what is
printed is known to work, and then serves until Ctrl-C.

The objects live in `examples/starwars/` (Episode V, the default) and
`examples/starwars-episode-iv/`; see the README there for the story.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from turnout.sources.files import FileSource

GATEWAY = "infra/deathstar-gateway"
TEAMS = ("deathstar", "eye-of-palpatine")
DOMAIN = "empire.galactic.gov"
LANDING_NAMESPACE = "landing"
LISTENER_PORT = 80  # the port of every listener in the demo's Gateway
READY_TIMEOUT = 30.0


def default_directory() -> Path:
    # examples/ is not part of the package: find it from the source tree (src layout).
    return Path(__file__).resolve().parents[3] / "examples" / "starwars"


# --- what the demo directory holds -----------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """One ready endpoint of an EndpointSlice: where an echo server must listen."""

    namespace: str
    pod: str
    address: str
    port: int


def backends(directory: Path) -> list[Backend]:
    """Every ready endpoint of every EndpointSlice in `directory`, once each.

    Read with the same loader `turnout run` uses, so the demo starts exactly the
    backends the gateway will send traffic to.
    """
    snapshot = FileSource([directory]).load().snapshot
    found: dict[tuple[str, int], Backend] = {}
    for (namespace, _), endpoint_slice in sorted(snapshot.endpoint_slices.items()):
        ports = [p.port for p in endpoint_slice.ports or [] if p.port is not None]
        for endpoint in endpoint_slice.endpoints:
            if endpoint.conditions.ready is False:
                continue
            target = endpoint.target_ref or {}
            pod = str(target.get("name") or endpoint_slice.service_name or "?")
            for address in endpoint.addresses:
                for port in ports:
                    found.setdefault((address, port), Backend(namespace, pod, address, port))
    return list(found.values())


# --- what the demo prints and checks ---------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """A request to show, the pods that may answer it, or the status expected."""

    title: str
    hostname: str
    path: str
    namespace: str = ""
    pods: tuple[str, ...] = ()
    status: int = 200

    def curl(self, address: str, port: int) -> str:
        authority = self.hostname if port == 80 else f"{self.hostname}:{port}"
        return f"curl --resolve {self.hostname}:{port}:{address} http://{authority}{self.path}"

    def answer(self) -> str:
        if self.status != 200:
            return f"{self.status}: no listener of the Gateway has this hostname"
        pods = " or ".join(self.pods)
        split = " (a weighted split: see the route)" if len(self.pods) > 1 else ""
        return f"answered by pod {pods} (namespace {self.namespace}){split}"


def probes(found: list[Backend]) -> list[Probe]:
    def pods_in(namespace: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(b.pod for b in found if b.namespace == namespace))

    result = []
    for team in TEAMS:
        hostname = f"{team}.{DOMAIN}"
        result.append(Probe(f"The {team} team's own service", hostname, "/", team, pods_in(team)))
        result.append(
            Probe(
                f"The central landing-request service, through the {team} listener",
                hostname,
                "/landing-request",
                LANDING_NAMESPACE,
                pods_in(LANDING_NAMESPACE),
            )
        )
    result.append(Probe("A hostname no listener serves", f"alderaan.{DOMAIN}", "/", status=404))
    return result


async def http_get(address: str, port: int, host: str, path: str) -> tuple[int, bytes]:
    """One HTTP/1.1 GET with `Connection: close`: (status, raw rest of the response)."""
    reader, writer = await asyncio.open_connection(address, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    status_line, _, rest = data.partition(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise OSError(f"not an HTTP response from {address}:{port}: {status_line[:80]!r}")
    return int(parts[1]), rest


async def try_probe(probe: Probe, address: str, port: int) -> str | None:
    """None if the gateway answers as `probe` says, else what went wrong."""
    host = probe.hostname if port == 80 else f"{probe.hostname}:{port}"  # as curl sends it
    try:
        status, rest = await asyncio.wait_for(
            http_get(address, port, host, probe.path), timeout=5.0
        )
    except (OSError, TimeoutError) as exc:
        return f"no answer: {exc or type(exc).__name__}"
    if status != probe.status:
        return f"answered {status}, expected {probe.status}"
    if probe.pods and not any(pod.encode() in rest for pod in probe.pods):
        return "answered by none of the expected pods"
    return None


# --- running it --------------------------------------------------------------------------


async def _wait_ready(admin: tuple[str, int]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, TimeoutError):
            status, _ = await asyncio.wait_for(
                http_get(admin[0], admin[1], "admin", "/readyz"), timeout=2.0
            )
            if status == 200:
                return True
        await asyncio.sleep(0.1)
    return False


async def _start_backends(found: list[Backend]) -> list[asyncio.AbstractServer]:
    from turnout.demo.echo import start_echo

    servers: list[asyncio.AbstractServer] = []
    for backend in found:
        try:
            server = await start_echo(
                backend.address, backend.port, name=backend.pod, namespace=backend.namespace
            )
        except OSError as exc:
            for started in servers:
                started.close()
            raise OSError(
                f"cannot start the demo backend {backend.pod} at "
                f"{backend.address}:{backend.port}: {exc}"
            ) from exc
        servers.append(server)
    return servers


async def serve(
    directory: Path, *, port_offset: int, admin: tuple[str, int], console: Console
) -> None:
    """Run the demo until SIGINT or SIGTERM."""
    from turnout.runtime import RunOptions, Standalone

    found = backends(directory)
    servers = await _start_backends(found)
    gateway = Standalone(
        RunOptions(
            paths=(directory,), admin_host=admin[0], admin_port=admin[1], port_offset=port_offset
        )
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await gateway.start()
        if not await _wait_ready(admin):
            console.print(f"[yellow]the gateway is not ready after {READY_TIMEOUT:.0f}s[/]")
        address = gateway.gateway_addresses().get(GATEWAY)
        if address is None:
            console.print(f"[red]Gateway {GATEWAY} got no address; see `turnout status`[/]")
        else:
            await _introduce(directory, found, address, LISTENER_PORT + port_offset, admin, console)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await gateway.stop()
        for server in servers:
            server.close()
            await server.wait_closed()


async def _introduce(
    directory: Path,
    found: list[Backend],
    address: str,
    port: int,
    admin: tuple[str, int],
    console: Console,
) -> None:
    console.print(f"\n[bold]The Empire's gateway is up[/] ({escape(str(directory))})")
    console.print(
        f"Gateway {GATEWAY} has address {address}; its listeners serve port {port}.\n"
        f"Backends: " + ", ".join(f"{b.pod} at {b.address}:{b.port}" for b in found) + "\n"
    )
    for probe in probes(found):
        problem = await try_probe(probe, address, port)
        mark = "[green]✓[/]" if problem is None else f"[red]✗ {escape(problem)}[/]"
        console.print(f"[bold]{escape(probe.title)}[/] {mark}")
        console.print(f"  {escape(probe.curl(address, port))}", soft_wrap=True)
        console.print(f"  → {escape(probe.answer())}\n")
    admin_text = f"{admin[0]}:{admin[1]}"
    flag = "" if admin_text == "127.0.0.1:9901" else f" --admin {admin_text}"
    console.print(
        f"Status of every object:  turnout status{flag}   or   "
        f"curl http://{admin_text}/status\n"
        f"What the data plane runs: curl http://{admin_text}/config\n"
        "Press Ctrl-C to stop.",
        soft_wrap=True,
    )


def main(directory: Path, *, port_offset: int, admin: tuple[str, int]) -> None:
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency; be kind anyway
        loop_factory = None
    console = Console(highlight=False)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(directory, port_offset=port_offset, admin=admin, console=console))
