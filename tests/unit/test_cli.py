"""`callbox cert ...` and the CLI's error lines, called in-process through main()."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from callbox.cli import main


def test_cert_ca_create_and_refuse_to_replace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cert", "ca", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Created a new local CA" in out and str(tmp_path / "ca.pem") in out
    assert stat.S_IMODE((tmp_path / "ca-key.pem").stat().st_mode) & 0o077 == 0
    # a second time: one readable line, exit 1, the CA untouched
    before = (tmp_path / "ca.pem").read_bytes()
    assert main(["cert", "ca", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("callbox: error:") and "--force" in err[0]
    assert (tmp_path / "ca.pem").read_bytes() == before
    assert main(["cert", "ca", "--force", "--data-dir", str(tmp_path)]) == 0
    assert (tmp_path / "ca.pem").read_bytes() != before


def test_cert_create_lists_names_and_writes_0600_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cert", "create", "--data-dir", str(tmp_path), "example.test"]) == 1
    err = capsys.readouterr().err.strip().splitlines()  # no CA yet: refused, one line
    assert len(err) == 1 and err[0].startswith("callbox: error:") and "CA" in err[0]
    main(["cert", "ca", "--data-dir", str(tmp_path)])
    capsys.readouterr()
    cert, key = tmp_path / "leaf.pem", tmp_path / "leaf-key.pem"
    argv = ["cert", "create", "--data-dir", str(tmp_path), "--cert-file", str(cert)]
    argv += ["--key-file", str(key), "example.test", "10.1.2.3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "- example.test" in out and "- 10.1.2.3" in out and "expires" in out
    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "example.test" in san.get_values_for_type(x509.DNSName)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_cert_install_without_a_ca_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cert", "install", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no CA in" in err[0]


def test_serve_usage_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--cert", "only-cert.pem"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["callbox: error: --cert and --key go together: give both or neither"]


def test_serve_refuses_a_busy_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        argv = ["serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path)]
        assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot listen on 127.0.0.1:{port}" in err[0]


def test_the_parser_and_the_server_import_nothing_of_the_python_peer() -> None:
    """`callbox serve` builds the whole parser (call and answer included) and the server: none
    of it may import aiortc, which costs ~0.7 s of CPU and 25 MB at every server start, nor
    PyJWT (~45 ms) without JWT settings."""
    probe = (
        "import sys; from callbox.cli import _build_parser; import callbox.server.runner; "
        "_build_parser().parse_args(['call', 'https://h:1']); "
        "print(sorted(m for m in sys.modules if m == 'aiortc' or m.startswith('callbox.peer.')))"
        "; from callbox.server.app import create_app; import callbox.server.auth; "
        "print('jwt' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    # nor PyJWT, which only a server with --jwt-secret or --jwt-public-key loads
    assert out.split("\n")[:2] == ["['callbox.peer.arguments']", "False"]
    # the package's names still resolve, on first use
    import callbox.peer

    assert callbox.peer.Call.__name__ == "Call"
    with pytest.raises(AttributeError):
        _ = callbox.peer.NoSuchThing


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["call", "ftp://example.org"], "URL must be http(s)://host[:port]"),
        (["answer", "https://h:1", "--send", "/no/such/file.mp4"], "--send /no/such/file.mp4"),
        (["call", "https://h:1", "--say", ""], "--say: a chat line has 1 to 2000"),
    ],
)
def test_a_bad_peer_argument_is_refused_before_the_media_stack_is_imported(
    argv: list[str], said: str
) -> None:
    """One line and exit 2 at once: not after importing aiortc (~0.7 s of CPU), and never
    a connection attempt."""
    probe = (
        "import sys; from callbox.cli import main; code = main(sys.argv[1:]); "
        "print(code, 'aiortc' in sys.modules)"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe, *argv], capture_output=True, text=True, check=True
    )
    assert run.stdout.split() == ["2", "False"]
    assert run.stderr.startswith("callbox: error: ") and said in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
