"""Two hosts behind NATs, built from Linux network namespaces (root only).

```
 host A 10.0.1.2 --- 10.0.1.1 [NAT A] 198.51.100.2 ---.
                                                       198.51.100.1 [public] 203.0.113.1
 host B 10.0.2.2 --- 10.0.2.1 [NAT B] 203.0.113.2 ----------------------------'
```
The "public" namespace routes between the two NATs' outside links and runs callbox and
coturn (at 198.51.100.1); each NAT is iptables MASQUERADE on its outside link:
- ``cone``: plain MASQUERADE, and unsolicited packets from outside dropped, which makes it
  endpoint-independent in mapping (the port is kept) and port-restricted in filtering: STUN
  is enough, both sides punch holes;
- ``symmetric``: MASQUERADE ``--random-fully``: a new outside port for every destination, so
  the srflx address STUN reports is useless to the peer: only a relay gets through.

Addresses are documentation ranges (RFC 5737) and private ranges, and live only inside the
namespaces. Names carry a random suffix; :meth:`Network.close` deletes every namespace
(their links go with them). Notes on what works here: shared/BROWSER_TESTING.md, "NATs in
network namespaces".
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PUBLIC_IP = "198.51.100.1"
NAT_KINDS = ("cone", "symmetric")
# coturn's denied-peer-ip for the private, loopback, link-local and shared ranges: the relay
# must not reach a LAN (docs/deploy.md has the same list)
DENIED_PEER_RANGES = (
    "0.0.0.0-0.255.255.255",
    "10.0.0.0-10.255.255.255",
    "100.64.0.0-100.127.255.255",
    "127.0.0.0-127.255.255.255",
    "169.254.0.0-169.254.255.255",
    "172.16.0.0-172.31.255.255",
    "192.0.0.0-192.0.0.255",
    "192.168.0.0-192.168.255.255",
    "198.18.0.0-198.19.255.255",
    "::1",
    "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
)


class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be made here (not root, or no ip/iptables)."""


def _run(argv: Sequence[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str

    @property
    def prefix(self) -> tuple[str, ...]:
        """Run a command inside: ``[*ns.prefix, "cmd", ...]``."""
        return ("ip", "netns", "exec", self.name)

    def run(self, *argv: str) -> None:
        _run([*self.prefix, *argv])

    def ip(self, *argv: str) -> None:
        _run(["ip", "-n", self.name, *argv])


@dataclass(frozen=True, slots=True)
class Site:
    """One host behind one NAT."""

    host: Namespace
    nat: Namespace
    kind: str
    #: the host's address on its LAN (its host candidate)
    lan_ip: str
    #: the NAT's outside address (what STUN reports for the host)
    wan_ip: str


@dataclass
class Network:
    """The namespaces of one test network; ``close()`` removes them."""

    public: Namespace
    a: Site
    b: Site
    _made: list[Namespace] = field(default_factory=list)

    def close(self) -> None:
        _delete(self._made)


def _delete(namespaces: list[Namespace]) -> None:
    for ns in reversed(namespaces):
        subprocess.run(["ip", "netns", "del", ns.name], capture_output=True, check=False)
    namespaces.clear()


def available() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/setup --test installs it)"
    return None


def _veth(left: Namespace, left_name: str, right: Namespace, right_name: str) -> None:
    """A veth pair from ``left`` to ``right``, made in them: a link that appeared in the root
    namespace, even for a moment, is a network change to every Chromium there (their page
    loads fail with ERR_NETWORK_CHANGED)."""
    left.ip("link", "add", left_name, "type", "veth", "peer", "name", right_name,
            "netns", right.name)  # fmt: skip
    left.ip("link", "set", left_name, "up")
    right.ip("link", "set", right_name, "up")


def _nat(nat: Namespace, kind: str) -> None:
    nat.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
    masquerade = ["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE"]
    nat.run(*masquerade, *(["--random-fully"] if kind == "symmetric" else []))
    # What was not asked for from inside is dropped (a home router's default), also what is
    # addressed to the router itself (INPUT): a peer's check that arrives before our own
    # packet went out would otherwise leave a conntrack entry that makes the NAT pick
    # another port for us, i.e. behave symmetric.
    established = ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"]
    for chain in ("INPUT", "FORWARD"):
        nat.run("iptables", "-A", chain, "-i", "wan", *established)
        nat.run("iptables", "-A", chain, "-i", "wan", "-j", "DROP")


def build(kind_a: str, kind_b: str) -> Network:
    """Make the namespaces, links, addresses, routes and NAT rules; raises
    :class:`NetnsUnavailable` where that cannot be done."""
    why = available()
    if why is not None:
        raise NetnsUnavailable(why)
    if kind_a not in NAT_KINDS or kind_b not in NAT_KINDS:
        raise ValueError(f"NAT kinds are {NAT_KINDS}")
    tag = secrets.token_hex(3)
    roles = ("pub", "nata", "hosta", "natb", "hostb")
    names = {role: Namespace(f"cb{role}-{tag}") for role in roles}
    made: list[Namespace] = []
    try:
        for ns in names.values():
            try:
                _run(["ip", "netns", "add", ns.name])
            except RuntimeError as e:
                raise NetnsUnavailable(str(e)) from None
            made.append(ns)
            # IPv4 only: an IPv6 link-local address that finishes its duplicate detection a
            # second after the link came up is a network change to the Chromium inside,
            # which then fails the page loads it has in flight (ERR_NETWORK_CHANGED)
            ns.run("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                   "net.ipv6.conf.default.disable_ipv6=1")  # fmt: skip
            ns.ip("link", "set", "lo", "up")
        public = names["pub"]
        public.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        sites = []
        for side, kind, outside, lan in (
            ("a", kind_a, ("198.51.100", "pa"), "10.0.1"),
            ("b", kind_b, ("203.0.113", "pb"), "10.0.2"),
        ):
            nat, host = names[f"nat{side}"], names[f"host{side}"]
            net, link = outside
            _veth(public, link, nat, "wan")
            public.ip("addr", "add", f"{net}.1/24", "dev", link)
            nat.ip("addr", "add", f"{net}.2/24", "dev", "wan")
            nat.ip("route", "add", "default", "via", f"{net}.1")
            _veth(nat, "lan", host, "lan")
            nat.ip("addr", "add", f"{lan}.1/24", "dev", "lan")
            host.ip("addr", "add", f"{lan}.2/24", "dev", "lan")
            host.ip("route", "add", "default", "via", f"{lan}.1")
            _nat(nat, kind)
            sites.append(Site(host, nat, kind, f"{lan}.2", f"{net}.2"))
    except BaseException:
        _delete(made)
        raise
    return Network(public, sites[0], sites[1], _made=made)


def chromium_wrapper(ns: Namespace, chromium: str, directory: Path) -> Path:
    """An executable that runs Chromium inside ``ns`` (Playwright launches it and talks to it
    over a pipe, which crosses namespaces)."""
    path = directory / f"chromium-in-{ns.name}"
    path.write_text(f'#!/bin/sh\nexec ip netns exec {ns.name} {chromium} "$@"\n')
    path.chmod(0o755)
    return path


def serve_in(
    ns: Namespace, data_dir: Path, log_path: Path, *extra: str, port: int = 8443
) -> subprocess.Popen[bytes]:
    """Start `callbox serve` inside ``ns`` on ``PUBLIC_IP:port``; ready once it printed its
    banner (nothing outside the namespace can reach it to ask). Stop it with SIGTERM."""
    argv = [*ns.prefix, sys.executable, "-m", "callbox", "-v", "serve", "--host", PUBLIC_IP]
    argv += ["--port", str(port), "--data-dir", str(data_dir), *extra]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CALLBOX_PASSWORD", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "callbox is ready" in log_path.read_text(errors="replace"):
            return process
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    process.wait()
    raise RuntimeError(f"callbox serve in {ns.name} did not start:\n{log_path.read_text()}")
