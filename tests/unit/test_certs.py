"""Unit tests for callbox.certs: real keys, real files, real TLS handshakes on loopback."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import socket
import ssl
import stat
import subprocess
from datetime import timedelta
from pathlib import Path

import platformdirs
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from callbox.certs import (
    CertPaths,
    InstallResult,
    SystemStore,
    clock,
    create_ca,
    create_leaf,
    default_data_dir,
    default_hosts,
    ensure_server_cert,
    install_ca,
    load_ca,
    local_addresses,
    truststore,
)
from callbox.certs.addresses import order_addresses
from callbox.certs.ca import fingerprint
from callbox.certs.names import normalize_host
from callbox.errors import CAKeyMissing, CANotFound, CertError, CertWriteError, UnsafeFile

HOSTS = ["localhost", "127.0.0.1", "::1", "callbox.test"]


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def paths(data_dir: Path) -> CertPaths:
    return CertPaths.in_dir(data_dir)


@pytest.fixture
def leaf_paths(data_dir: Path, paths: CertPaths) -> CertPaths:
    """A data dir with a CA and a leaf for HOSTS."""
    create_ca(data_dir)
    create_leaf(data_dir, HOSTS)
    return paths


# --- data dir -------------------------------------------------------------------------------


def test_default_data_dir_honours_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CALLBOX_DATA_DIR", str(tmp_path / "elsewhere"))
    assert default_data_dir() == tmp_path / "elsewhere"


def test_default_data_dir_falls_back_to_user_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLBOX_DATA_DIR", raising=False)
    assert default_data_dir() == Path(platformdirs.user_data_dir("callbox", appauthor=False))
    assert default_data_dir().name == "callbox"


def test_cert_paths_use_the_standard_names(tmp_path: Path) -> None:
    paths = CertPaths.in_dir(tmp_path)
    assert [p.name for p in (paths.ca_cert, paths.ca_key, paths.cert, paths.key)] == [
        "ca.pem",
        "ca-key.pem",
        "cert.pem",
        "key.pem",
    ]
    assert {p.parent for p in (paths.ca_cert, paths.ca_key, paths.cert, paths.key)} == {tmp_path}


# --- CA -------------------------------------------------------------------------------------


def test_ca_is_a_self_signed_p256_ca_constrained_to_leaves(data_dir: Path) -> None:
    info = create_ca(data_dir)
    ca = load_cert(info.cert_path)

    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca and constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(ca.public_key())

    cn = ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert isinstance(cn, str) and cn.startswith("callbox local CA ") and "@" in cn
    org = ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    assert org == "callbox development CA"
    assert ca.issuer == ca.subject
    ca.verify_directly_issued_by(ca)
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"

    assert ca.not_valid_before_utc < clock.now() - timedelta(hours=23)
    validity = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert timedelta(days=3649) <= validity <= timedelta(days=3651)
    assert info.subject == ca.subject.rfc4514_string()
    assert info.not_after == ca.not_valid_after_utc


def test_ca_files_have_private_modes(data_dir: Path, paths: CertPaths) -> None:
    create_ca(data_dir)
    assert mode(data_dir) == 0o700
    assert mode(paths.ca_key) == 0o400
    assert mode(paths.ca_cert) == 0o644
    # Atomic writes leave no temp files behind.
    assert sorted(p.name for p in data_dir.iterdir()) == ["ca-key.pem", "ca.pem"]


def test_create_ca_refuses_to_replace_a_ca_without_force(data_dir: Path, paths: CertPaths) -> None:
    create_ca(data_dir)
    before = fingerprint(load_cert(paths.ca_cert))
    with pytest.raises(CertError, match="already exists.*force"):
        create_ca(data_dir)
    assert fingerprint(load_cert(paths.ca_cert)) == before

    create_ca(data_dir, force=True)  # replaces the read-only (0400) key too
    assert fingerprint(load_cert(paths.ca_cert)) != before
    load_ca(data_dir)
    assert mode(paths.ca_key) == 0o400


def test_create_ca_refuses_to_overwrite_a_stray_ca_key(data_dir: Path, paths: CertPaths) -> None:
    data_dir.mkdir()
    paths.ca_key.write_bytes(b"precious")
    with pytest.raises(CertError, match="ca-key.pem but no CA certificate"):
        create_ca(data_dir)
    with pytest.raises(CertError, match="ca-key.pem but no CA certificate"):
        ensure_server_cert(data_dir, HOSTS)
    assert paths.ca_key.read_bytes() == b"precious"


def test_load_ca_reports_what_is_missing_or_wrong(data_dir: Path, paths: CertPaths) -> None:
    with pytest.raises(CANotFound):
        load_ca(data_dir)
    create_ca(data_dir)
    cert, key = load_ca(data_dir)
    assert fingerprint(cert) == fingerprint(load_cert(paths.ca_cert))

    other = ec.generate_private_key(ec.SECP256R1())
    paths.ca_key.chmod(0o600)
    paths.ca_key.write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(CertError, match="does not belong"):
        load_ca(data_dir)
    paths.ca_key.write_bytes(b"not a key")
    with pytest.raises(CertError, match="cannot load CA key"):
        load_ca(data_dir)
    paths.ca_key.unlink()
    with pytest.raises(CAKeyMissing):
        load_ca(data_dir)
    paths.ca_cert.write_bytes(b"not a certificate")
    with pytest.raises(CertError, match="cannot parse"):
        load_ca(data_dir)


def test_unwritable_data_dir_raises_cert_write_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CertWriteError, match=str(blocker)):
        create_ca(blocker / "data")


# --- leaf -----------------------------------------------------------------------------------


def test_leaf_puts_names_in_dns_sans_and_addresses_in_ip_sans(data_dir: Path) -> None:
    create_ca(data_dir)
    info = create_leaf(data_dir, ["localhost", "127.0.0.1", "[::1]", "Phone.LAN.", "::1"])
    san = load_cert(info.cert_path).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["localhost", "phone.lan"]
    assert san.value.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert info.names == ("localhost", "127.0.0.1", "::1", "phone.lan")


def test_leaf_is_a_p256_server_certificate_within_825_days(leaf_paths: CertPaths) -> None:
    ca = load_cert(leaf_paths.ca_cert)
    leaf = load_cert(leaf_paths.cert)

    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert not usage.value.key_cert_sign and not usage.value.key_encipherment
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    ski = leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(leaf.public_key())

    assert leaf.issuer == ca.subject
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= timedelta(days=825)
    assert leaf.not_valid_before_utc < clock.now() - timedelta(hours=23)  # clock skew margin
    assert leaf.not_valid_after_utc > clock.now() + timedelta(days=800)
    public = leaf.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
    assert mode(leaf_paths.key) == 0o600
    assert mode(leaf_paths.cert) == 0o644


def test_two_leaves_get_different_serials_and_keys(leaf_paths: CertPaths, tmp_path: Path) -> None:
    other = create_leaf(
        leaf_paths.ca_cert.parent,
        HOSTS,
        cert_path=tmp_path / "other.pem",
        key_path=tmp_path / "other-key.pem",
    )
    first, second = load_cert(leaf_paths.cert), load_cert(other.cert_path)
    assert first.serial_number != second.serial_number
    assert first.public_key() != second.public_key()
    assert mode(other.key_path) == 0o600


@pytest.mark.parametrize(
    "host",
    ["", "bad host", "a..b", "10.0.1", "fe80::1%eth0", "-lan", "lan-", "*", "x" * 64 + ".lan"],
)
def test_leaf_rejects_an_invalid_host(data_dir: Path, host: str) -> None:
    create_ca(data_dir)
    with pytest.raises(CertError, match="invalid host"):
        create_leaf(data_dir, ["localhost", host])


def test_leaf_needs_at_least_one_host(data_dir: Path) -> None:
    create_ca(data_dir)
    with pytest.raises(CertError, match="at least one"):
        create_leaf(data_dir, [])


@pytest.mark.parametrize("days", [0, 825])
def test_leaf_validity_is_bounded(data_dir: Path, days: int) -> None:
    create_ca(data_dir)
    with pytest.raises(CertError, match="validity"):
        create_leaf(data_dir, HOSTS, days=days)


def test_leaf_without_a_ca_raises_ca_not_found(data_dir: Path, paths: CertPaths) -> None:
    with pytest.raises(CANotFound):
        create_leaf(data_dir, HOSTS)
    assert not paths.cert.exists()


def test_leaf_into_a_missing_directory_raises_cert_write_error(
    data_dir: Path, tmp_path: Path
) -> None:
    create_ca(data_dir)
    target = tmp_path / "missing" / "cert.pem"
    with pytest.raises(CertWriteError, match="missing"):
        create_leaf(data_dir, HOSTS, cert_path=target, key_path=target.with_name("key.pem"))


def test_hosts_are_normalized_to_one_spelling() -> None:
    assert normalize_host("[0:0::1]") == "::1"
    assert normalize_host(" Host.Example. ") == "host.example"
    assert normalize_host("*.lan") == "*.lan"
    assert normalize_host("bücher.example") == "xn--bcher-kva.example"


# --- the chain verifies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        x509.DNSName("localhost"),
        x509.DNSName("callbox.test"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ],
    ids=str,
)
def test_leaf_chain_verifies_against_the_ca(
    leaf_paths: CertPaths, subject: x509.DNSName | x509.IPAddress
) -> None:
    ca, leaf = load_cert(leaf_paths.ca_cert), load_cert(leaf_paths.cert)
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(subject)
    assert verifier.verify(leaf, []) == [leaf, ca]


def test_leaf_does_not_verify_for_a_name_it_lacks(leaf_paths: CertPaths) -> None:
    ca, leaf = load_cert(leaf_paths.ca_cert), load_cert(leaf_paths.cert)
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(x509.DNSName("other.test"))
    with pytest.raises(x509.verification.VerificationError):
        verifier.verify(leaf, [])


async def tls_greeting(paths: CertPaths, client: ssl.SSLContext, server_hostname: str) -> bytes:
    """Serve the leaf on 127.0.0.1 and read a greeting through a client with ``client``."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(paths.cert, paths.key)

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(greet, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    async with server, asyncio.timeout(5):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname=server_hostname
        )
        try:
            return await reader.read()
        finally:
            writer.close()
            await writer.wait_closed()


@pytest.mark.parametrize("server_hostname", ["localhost", "127.0.0.1", "::1"])
async def test_ssl_context_trusting_the_ca_accepts_the_leaf(
    leaf_paths: CertPaths, server_hostname: str
) -> None:
    client = ssl.create_default_context(cafile=leaf_paths.ca_cert)
    assert await tls_greeting(leaf_paths, client, server_hostname) == b"hello"


async def test_ssl_context_trusting_another_ca_rejects_the_leaf(
    leaf_paths: CertPaths, tmp_path: Path
) -> None:
    other = create_ca(tmp_path / "other")
    client = ssl.create_default_context(cafile=other.cert_path)
    with pytest.raises(ssl.SSLCertVerificationError):
        await tls_greeting(leaf_paths, client, "localhost")


async def test_ssl_context_rejects_a_name_missing_from_the_leaf(leaf_paths: CertPaths) -> None:
    client = ssl.create_default_context(cafile=leaf_paths.ca_cert)
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        await tls_greeting(leaf_paths, client, "other.test")


# --- ensure_server_cert ---------------------------------------------------------------------


def test_first_start_creates_ca_and_leaf_later_starts_reuse_them(
    data_dir: Path, paths: CertPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    first = ensure_server_cert(data_dir, HOSTS)
    assert first.created_ca and first.renewed_leaf
    assert first.names == tuple(HOSTS)
    assert (first.ca_path, first.cert_path, first.key_path) == (
        paths.ca_cert,
        paths.cert,
        paths.key,
    )
    ca_fingerprint = fingerprint(load_cert(paths.ca_cert))
    serial = load_cert(paths.cert).serial_number
    stamps = [p.stat().st_mtime_ns for p in (paths.ca_cert, paths.ca_key, paths.cert, paths.key)]

    # Same hosts in another order and spelling: nothing to do.
    second = ensure_server_cert(data_dir, ["[::1]", "LOCALHOST", "callbox.test", "127.0.0.1"])
    assert not second.created_ca and not second.renewed_leaf
    assert fingerprint(load_cert(paths.ca_cert)) == ca_fingerprint
    assert load_cert(paths.cert).serial_number == serial
    assert [p.stat().st_mtime_ns for p in (paths.ca_cert, paths.ca_key, paths.cert, paths.key)] == (
        stamps
    )
    assert second.not_after == first.not_after
    assert capsys.readouterr() == ("", "")  # a library never prints


def test_leaf_is_renewed_when_the_hosts_change(data_dir: Path, paths: CertPaths) -> None:
    ensure_server_cert(data_dir, HOSTS)
    ca_fingerprint = fingerprint(load_cert(paths.ca_cert))
    serial = load_cert(paths.cert).serial_number

    result = ensure_server_cert(data_dir, [*HOSTS, "192.168.1.20"])
    assert result.renewed_leaf and not result.created_ca
    assert "192.168.1.20" in result.names
    assert load_cert(paths.cert).serial_number != serial
    assert fingerprint(load_cert(paths.ca_cert)) == ca_fingerprint


def test_leaf_is_renewed_when_it_expires_within_30_days(data_dir: Path, paths: CertPaths) -> None:
    create_ca(data_dir)
    create_leaf(data_dir, HOSTS, days=10)
    result = ensure_server_cert(data_dir, HOSTS)
    assert result.renewed_leaf
    assert result.not_after > clock.now() + timedelta(days=800)
    assert not ensure_server_cert(data_dir, HOSTS).renewed_leaf


def test_leaf_is_renewed_when_the_clock_reaches_its_last_month(
    data_dir: Path, paths: CertPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ensure_server_cert(data_dir, HOSTS)
    later = first.not_after - timedelta(days=29)
    monkeypatch.setattr(clock, "now", lambda: later)
    result = ensure_server_cert(data_dir, HOSTS)
    assert result.renewed_leaf and not result.created_ca
    assert result.not_after > later + timedelta(days=800)


def test_leaf_is_renewed_when_the_clock_is_before_its_start(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ensure_server_cert(data_dir, HOSTS)
    earlier = clock.now() - timedelta(days=3)
    monkeypatch.setattr(clock, "now", lambda: earlier)
    result = ensure_server_cert(data_dir, HOSTS)
    assert result.renewed_leaf and result.not_after < first.not_after


def test_leaf_is_renewed_when_the_ca_was_replaced(data_dir: Path, paths: CertPaths) -> None:
    ensure_server_cert(data_dir, HOSTS)
    create_ca(data_dir, force=True)
    result = ensure_server_cert(data_dir, HOSTS)
    assert result.renewed_leaf and not result.created_ca
    load_cert(paths.cert).verify_directly_issued_by(load_cert(paths.ca_cert))


def test_leaf_is_renewed_when_its_key_does_not_match(data_dir: Path, paths: CertPaths) -> None:
    ensure_server_cert(data_dir, HOSTS)
    stray = create_leaf(data_dir, HOSTS, cert_path=data_dir / "x.pem", key_path=data_dir / "x.key")
    stray.key_path.replace(paths.key)  # as if a write stopped between the key and the cert
    assert ensure_server_cert(data_dir, HOSTS).renewed_leaf


def test_unreadable_leaf_is_replaced(data_dir: Path, paths: CertPaths) -> None:
    ensure_server_cert(data_dir, HOSTS)
    paths.cert.write_bytes(b"garbage")
    assert ensure_server_cert(data_dir, HOSTS).renewed_leaf
    load_cert(paths.cert)


def test_a_current_leaf_is_served_even_without_the_ca_key(data_dir: Path, paths: CertPaths) -> None:
    ensure_server_cert(data_dir, HOSTS)
    paths.ca_key.unlink()
    assert not ensure_server_cert(data_dir, HOSTS).renewed_leaf
    with pytest.raises(CAKeyMissing):
        ensure_server_cert(data_dir, ["localhost"])


def test_ensure_defaults_to_the_machine_hosts(data_dir: Path) -> None:
    result = ensure_server_cert(data_dir)
    assert result.names == tuple(normalize_host(h) for h in default_hosts())


def test_ensure_in_an_unusable_data_dir_raises_cert_write_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CertWriteError):
        ensure_server_cert(blocker, HOSTS)


# --- addresses ------------------------------------------------------------------------------


def test_addresses_are_filtered_and_ordered_lan_ipv4_first() -> None:
    pairs = [
        ("lo", "127.0.0.1"),
        ("lo", "::1"),
        ("docker0", "172.17.0.1"),
        ("eth0", "fe80::1%eth0"),
        ("eth0", "2001:db8::5"),
        ("eth1", "8.8.8.8"),
        ("eth1", "169.254.3.4"),
        ("wlan0", "10.0.0.7"),
        ("wlan1", "10.0.0.7"),
        ("odd", "not an address"),
    ]
    assert order_addresses(pairs) == [
        "10.0.0.7",
        "172.17.0.1",
        "8.8.8.8",
        "169.254.3.4",
        "2001:db8::5",
    ]


def test_local_addresses_are_real_non_loopback_addresses() -> None:
    addresses = [ipaddress.ip_address(a) for a in local_addresses()]
    assert not any(a.is_loopback for a in addresses)
    assert not any(a.version == 6 and a.is_link_local for a in addresses)
    versions = [a.version for a in addresses]
    assert versions == sorted(versions)  # IPv4 before IPv6


def test_default_hosts_cover_loopback_host_name_and_addresses() -> None:
    hosts = default_hosts()
    assert hosts[:3] == ["localhost", "127.0.0.1", "::1"]
    assert len(hosts) == len(set(hosts))
    assert set(local_addresses()) <= set(hosts)
    assert normalize_host(socket.gethostname()) in hosts


def test_default_hosts_leave_out_a_host_name_invalid_in_certificates(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "Jo's Laptop")
    hosts = default_hosts()
    assert not any("laptop" in host for host in hosts)
    assert "not valid in a certificate" in caplog.text


# --- install_ca -----------------------------------------------------------------------------


@pytest.fixture
def ca_path(data_dir: Path) -> Path:
    return create_ca(data_dir).cert_path


def fp8(ca_path: Path) -> str:
    return fingerprint(load_cert(ca_path))[:8]


def test_install_copies_the_ca_into_a_system_store(ca_path: Path, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors"
    anchors.mkdir()
    store = SystemStore("test", anchors, ("true",))
    [result] = install_ca(ca_path, system_stores=[store], nss=False)
    target = anchors / f"callbox-{fp8(ca_path)}.crt"
    assert result == InstallResult("system", True, f"installed as {target}")
    assert target.read_bytes() == ca_path.read_bytes()
    assert mode(target) == 0o644


def test_install_reports_a_failing_refresh_command(ca_path: Path, tmp_path: Path) -> None:
    store = SystemStore("test", tmp_path, ("false",))
    [result] = install_ca(ca_path, system_stores=[store], nss=False)
    assert not result.ok and "exited with 1" in result.message


def test_install_reports_a_missing_refresh_command(ca_path: Path, tmp_path: Path) -> None:
    store = SystemStore("test", tmp_path, ("callbox-no-such-command",))
    [result] = install_ca(ca_path, system_stores=[store], nss=False)
    assert not result.ok and "callbox-no-such-command not found" in result.message


def test_install_without_permission_says_to_use_sudo(
    ca_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests run as root in CI, where every directory is writable: inject the denial.
    monkeypatch.setattr(truststore, "_writable", lambda path: False)
    store = SystemStore("test", tmp_path, ("true",))
    [result] = install_ca(ca_path, system_stores=[store], nss=False)
    assert not result.ok and "sudo" in result.message
    assert not list(tmp_path.glob("callbox-*"))


def test_install_without_a_known_system_store_reports_it(ca_path: Path, tmp_path: Path) -> None:
    store = SystemStore("test", tmp_path / "absent", ("true",))
    [result] = install_ca(ca_path, system_stores=[store], nss=False)
    assert result.store == "system" and not result.ok
    assert "no supported system trust store" in result.message


def test_install_without_certutil_says_to_install_nss_tools(
    ca_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    results = install_ca(ca_path, system_stores=())
    assert results[1:] == [
        InstallResult(
            "nss",
            False,
            "certutil not found: install libnss3-tools to trust the CA in Firefox and Chrome",
        )
    ]
    assert not (tmp_path / "home").exists()


def nss_has(db: Path, nickname: str) -> bool:
    certutil = shutil.which("certutil")
    assert certutil is not None
    found = subprocess.run(
        [certutil, "-L", "-d", f"sql:{db}", "-n", nickname], capture_output=True, check=False
    )
    return found.returncode == 0


@pytest.mark.skipif(shutil.which("certutil") is None, reason="needs certutil (libnss3-tools)")
def test_install_trusts_the_ca_in_every_nss_database(
    ca_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    profiles = [
        home / ".mozilla/firefox/abcd.default-release",
        home / "snap/firefox/common/.mozilla/firefox/efgh.default",
    ]
    for profile in profiles:
        profile.mkdir(parents=True)
        subprocess.run(
            ["certutil", "-N", "-d", f"sql:{profile}", "--empty-password"],
            check=True,
            capture_output=True,
        )
    no_db = home / ".mozilla/firefox/stale.profile"
    no_db.mkdir()

    nickname = truststore.nss_nickname(load_cert(ca_path))
    for _ in range(2):  # installing again is harmless
        results = install_ca(ca_path, system_stores=())
        nss = {r.store: r for r in results if r.store.startswith("nss")}
        shared = home / ".pki/nssdb"
        assert set(nss) == {f"nss:{db}" for db in (shared, *profiles)}
        assert all(r.ok for r in nss.values()), nss
    assert all(nss_has(db, nickname) for db in (shared, *profiles))
    assert not (no_db / "cert9.db").exists()


def test_install_needs_a_ca_certificate(tmp_path: Path) -> None:
    with pytest.raises(CANotFound):
        install_ca(tmp_path / "ca.pem", system_stores=(), nss=False)
    junk = tmp_path / "junk.pem"
    junk.write_text("junk")
    with pytest.raises(CertError, match="cannot parse"):
        install_ca(junk, system_stores=(), nss=False)


def test_nss_databases_follow_home(tmp_path: Path) -> None:
    assert truststore.nss_databases(tmp_path) == [tmp_path / ".pki/nssdb"]


# --- files another user could have planted or can change (ssh's rule) ---------------------

requires_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown to another user needs root"
)


def test_a_data_dir_others_can_write_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    data.chmod(0o777)
    with pytest.raises(UnsafeFile, match="chmod go-w"):
        ensure_server_cert(data, hosts=["localhost"])
    data.chmod(0o700)
    ensure_server_cert(data, hosts=["localhost"])


def test_a_private_key_others_can_read_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    served = ensure_server_cert(data, hosts=["localhost"])
    served.key_path.chmod(0o644)
    with pytest.raises(UnsafeFile, match="chmod 600"):
        ensure_server_cert(data, hosts=["localhost"])
    (data / "ca-key.pem").chmod(0o644)
    served.key_path.chmod(0o600)
    with pytest.raises(UnsafeFile, match="private key"):
        create_leaf(data, ["other.test"])


@requires_root
def test_a_ca_planted_by_another_user_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ensure_server_cert(data, hosts=["localhost"])
    os.chown(data / "ca.pem", 65534, 65534)  # nobody
    with pytest.raises(UnsafeFile, match="belongs to another user"):
        ensure_server_cert(data, hosts=["localhost"])
