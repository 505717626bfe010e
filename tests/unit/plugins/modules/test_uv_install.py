"""uv_install, the module: real tarballs on a real file system, served by file:// and a local HTTP server."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import os
import socket
import stat
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.spark.plugins.modules import uv_install
from module_harness import run_main

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="uv_install installs root-owned files and runs as root")

VERSION = "0.13.9"
TRIPLE = "uv-x86_64-unknown-linux-gnu"
NOBODY = 65534
PROXY_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "ALL_PROXY")


def fake_uv(version: str, log: Path) -> bytes:
    # TEST DOUBLE of the uv binary: a shell script that answers --version like uv does, and logs
    # each run (with the proxy variables it saw) so tests can tell whether and how it ran.
    return (
        "#!/bin/sh\n"
        f'echo "run $0 proxy=$HTTPS_PROXY$https_proxy$HTTP_PROXY$http_proxy" >> {log}\n'
        f'if [ "$1" = "--version" ]; then echo "uv {version} (fake)"; exit 0; fi\n'
        "exit 2\n"
    ).encode()


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname, info.uid, info.gid = kind, mode, linkname, 1000, 1000
    return info


def release_members(log: Path, version: str = VERSION) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    """What a uv release tarball holds: one top directory with the binaries and the licence."""
    return [
        (entry(f"{TRIPLE}/", tarfile.DIRTYPE, 0o700), None),
        (entry(f"{TRIPLE}/uv", mode=0o700), fake_uv(version, log)),
        (entry(f"{TRIPLE}/LICENSE", mode=0o600), b"MIT or Apache-2.0\n"),
    ]


class Release:
    """A fake release directory: the tarball, its URL, its sha256, and where it goes."""

    def __init__(self, tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]] | None = None) -> None:
        self.log = tmp_path / "uv-runs.log"
        self.data = tar_bytes(members if members is not None else release_members(self.log))
        self.sha256 = hashlib.sha256(self.data).hexdigest()
        self.path = tmp_path / "releases" / VERSION / f"{TRIPLE}.tar.gz"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(self.data)
        self.url = self.path.as_uri()
        self.dest = tmp_path / "opt/sparkfleet/uv" / VERSION
        self.binary = self.dest / TRIPLE / "uv"

    def args(self, **extra: Any) -> dict[str, Any]:
        args = {
            "version": VERSION,
            "url": self.url,
            "checksum": f"sha256:{self.sha256}",
            "dest": str(self.dest),
            "binary": str(self.binary),
            "retries": 0,
        }
        return {**args, **extra}

    def runs(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """No proxy from the test runner's environment, and no real pauses between attempts."""
    for name in PROXY_NAMES:
        monkeypatch.delenv(name, raising=False)
    pauses: list[float] = []
    monkeypatch.setattr(uv_install, "sleep", pauses.append)
    yield pauses
    # The module sets proxy variables for its download only.
    assert not {name for name in PROXY_NAMES if name in os.environ}


@pytest.fixture
def release(tmp_path: Path) -> Release:
    return Release(tmp_path)


def run_raw(capsys: pytest.CaptureFixture, tmp_path: Path, **args: Any) -> tuple[dict, str]:
    (tmp_path / "remote-tmp").mkdir(mode=0o700, exist_ok=True)
    return run_main(uv_install.main, capsys, tmp_path, **args)


def run(capsys: pytest.CaptureFixture, tmp_path: Path, **args: Any) -> dict:
    return run_raw(capsys, tmp_path, **args)[0]


def owner_mode(path: Path) -> tuple[int, int, str]:
    st = path.lstat()
    return st.st_uid, st.st_gid, f"{stat.S_IMODE(st.st_mode):04o}"


def leftovers(directory: Path) -> list[str]:
    """Staging or moved-aside directories the module should have removed."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".")) if directory.exists() else []


class Server:
    """A local HTTP server (also usable as a forward proxy) with canned answers, bounded by the test."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.failures: dict[str, list[int]] = {}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Proxy-Authorization")))
                key = self.path.split("/", 3)[-1] if self.path.startswith("http://") else self.path.lstrip("/")
                pending = server.failures.get(key)
                if pending:
                    self.send_error(pending.pop(0))
                    return
                if key not in server.files:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(server.files[key])))
                self.end_headers()
                self.wfile.write(server.files[key])

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def server() -> Iterator[Server]:
    instance = Server()
    try:
        yield instance
    finally:
        instance.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- installing ---------------------------------------------------------------------------------


def test_fresh_install_unpacks_a_root_owned_tree_and_creates_parents(tmp_path, capsys, release):
    result = run(capsys, tmp_path, **release.args(), diff=True)
    assert result["changed"] is True
    assert result["version"] == VERSION
    assert result["binary"] == str(release.binary)
    assert result["actions"] == [
        f"downloaded {release.url} (sha256:{release.sha256})",
        f"created {tmp_path}/opt",
        f"created {tmp_path}/opt/sparkfleet",
        f"created {tmp_path}/opt/sparkfleet/uv",
        f"installed uv {VERSION} into {release.dest}",
    ]
    assert result["diff"] == {"before": f"{release.binary}: absent\n", "after": f"{release.binary}: uv {VERSION}\n"}
    for directory in [tmp_path / "opt", tmp_path / "opt/sparkfleet/uv", release.dest, release.dest / TRIPLE]:
        assert owner_mode(directory) == (0, 0, "0755"), directory
    assert owner_mode(release.binary) == (0, 0, "0755")
    assert owner_mode(release.dest / TRIPLE / "LICENSE") == (0, 0, "0644")
    assert sorted(p.name for p in release.dest.iterdir()) == [TRIPLE]
    assert leftovers(release.dest.parent) == []
    # Checked in the staging directory, then where it lives.
    assert len(release.runs()) == 2
    assert release.runs()[-1].startswith(f"run {release.binary} ")


def test_second_run_changes_nothing(tmp_path, capsys, release):
    first = run(capsys, tmp_path, **release.args())
    second = run(capsys, tmp_path, **release.args(), diff=True)
    assert first["changed"] is True
    assert second["changed"] is False
    assert second["actions"] == []
    assert second["version"] == VERSION
    assert second["diff"]["before"] == second["diff"]["after"] == f"{release.binary}: uv {VERSION}\n"


def test_second_run_does_not_download(tmp_path, capsys, release):
    run(capsys, tmp_path, **release.args())
    release.path.unlink()
    result = run(capsys, tmp_path, **release.args(checksum=""))
    assert result["changed"] is False


def test_check_mode_reports_the_install_and_changes_nothing(tmp_path, capsys, release):
    result = run(capsys, tmp_path, **release.args(), check_mode=True, diff=True)
    assert result["changed"] is True
    assert result["actions"] == [f"would download {release.url} and install uv {VERSION} into {release.dest}"]
    assert result["diff"] == {"before": f"{release.binary}: absent\n", "after": f"{release.binary}: uv {VERSION}\n"}
    assert not (tmp_path / "opt").exists()
    assert release.runs() == []


def test_wrong_checksum_fails_and_installs_nothing(tmp_path, capsys, release):
    wrong = "0" * 64
    result = run(capsys, tmp_path, **release.args(checksum=f"sha256:{wrong}"))
    assert result["failed"] is True
    assert f"expected {wrong}, got {release.sha256}" in result["msg"]
    assert "nothing was installed" in result["msg"]
    assert not (tmp_path / "opt").exists()
    assert release.runs() == []


def test_empty_checksum_reads_the_published_sha256(tmp_path, capsys, release):
    Path(f"{release.path}.sha256").write_text(f"{release.sha256.upper()}  {TRIPLE}.tar.gz\n")
    result = run(capsys, tmp_path, **release.args(checksum=""))
    assert result["changed"] is True
    assert result["actions"][:2] == [
        f"read the sha256 from {release.url}.sha256",
        f"downloaded {release.url} (sha256:{release.sha256})",
    ]
    assert release.binary.is_file()


@pytest.mark.parametrize(
    ("published", "message"),
    [
        ("0" * 64 + "  uv.tar.gz\n", "expected " + "0" * 64),
        ("not a checksum\n", ".sha256 does not start with a sha256"),
        (None, ".sha256 failed (1 attempt)"),
    ],
)
def test_a_bad_or_missing_published_sha256_installs_nothing(tmp_path, capsys, release, published, message):
    if published is not None:
        Path(f"{release.path}.sha256").write_text(published)
    result = run(capsys, tmp_path, **release.args(checksum=""))
    assert result["failed"] is True
    assert message in result["msg"]
    assert not (tmp_path / "opt").exists()


def test_a_wrong_version_is_replaced_and_the_old_directory_removed(tmp_path, capsys, release):
    old = tmp_path / "old-uv"
    old.write_bytes(fake_uv("0.13.8", release.log))
    release.binary.parent.mkdir(parents=True)
    os.chmod(old, 0o755)
    os.rename(old, release.binary)
    (release.dest / "stale").write_text("from the old install")
    result = run(capsys, tmp_path, **release.args(), diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"] == f"{release.binary}: uv 0.13.8\n"
    assert f"replaced {release.dest} (its binary was uv 0.13.8)" in result["actions"]
    assert not (release.dest / "stale").exists()
    assert leftovers(release.dest.parent) == []
    assert release.runs()[-1].startswith(f"run {release.binary} ")
    assert run(capsys, tmp_path, **release.args())["changed"] is False


def test_a_broken_binary_is_replaced(tmp_path, capsys, release):
    release.binary.parent.mkdir(parents=True)
    release.binary.write_text("#!/bin/sh\nexit 3\n")
    os.chmod(release.binary, 0o755)
    result = run(capsys, tmp_path, **release.args(), diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"] == f"{release.binary}: present but not a working uv (exit 3: no output)\n"
    assert run(capsys, tmp_path, **release.args())["changed"] is False


@pytest.mark.parametrize("kind", ["symlink", "not owned by root", "world-writable"])
def test_an_untrusted_binary_is_never_run_and_is_replaced(tmp_path, capsys, release, kind):
    planted = tmp_path / "planted-uv"
    planted_log = tmp_path / "planted.log"
    # A binary answering the right version: only its provenance tells it apart.
    planted.write_bytes(fake_uv(VERSION, planted_log))
    os.chmod(planted, 0o755)
    release.binary.parent.mkdir(parents=True)
    if kind == "symlink":
        release.binary.symlink_to(planted)
    else:
        os.rename(planted, release.binary)
        if kind == "not owned by root":
            os.chown(release.binary, NOBODY, NOBODY)
        else:
            os.chmod(release.binary, 0o777)
    result = run(capsys, tmp_path, **release.args(), diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"].startswith(f"{release.binary}: present but not used: ")
    assert not planted_log.exists()
    assert not release.binary.is_symlink()
    assert owner_mode(release.binary) == (0, 0, "0755")


def test_a_tarball_whose_uv_reports_another_version_leaves_the_previous_install(tmp_path, capsys):
    release = Release(tmp_path, release_members(tmp_path / "uv-runs.log", version="0.13.8"))
    release.dest.mkdir(parents=True)
    (release.dest / "keep").write_text("previous install")
    result = run(capsys, tmp_path, **release.args())
    assert result["failed"] is True
    assert f"the tarball's uv reports 'uv 0.13.8 (fake)', not uv {VERSION}" in result["msg"]
    assert (release.dest / "keep").read_text() == "previous install"
    assert leftovers(release.dest.parent) == []


def test_a_binary_for_another_machine_is_refused(tmp_path, capsys):
    # An ELF header with garbage after it: exec fails (ENOEXEC) as for uv built for another architecture.
    members = [(entry(f"{TRIPLE}/uv", mode=0o755), b"\x7fELF" + b"\0" * 60)]
    release = Release(tmp_path, members)
    result = run(capsys, tmp_path, **release.args())
    assert result["failed"] is True
    assert "the tarball's uv reports 'cannot run: Exec format error'" in result["msg"]
    assert not release.dest.exists()
    assert leftovers(release.dest.parent) == []


def test_a_missing_ca_bundle_fails_before_downloading(tmp_path, capsys, release):
    result = run(capsys, tmp_path, **release.args(ca_bundle=str(tmp_path / "no-such-ca.pem")))
    assert result["failed"] is True
    assert result["msg"] == f"ca_bundle {tmp_path}/no-such-ca.pem is not a file"
    assert not (tmp_path / "opt").exists()


def test_a_tarball_without_the_binary_is_refused(tmp_path, capsys):
    log = tmp_path / "uv-runs.log"
    release = Release(tmp_path, [(entry("uv-aarch64-unknown-linux-gnu/uv", mode=0o755), fake_uv(VERSION, log))])
    result = run(capsys, tmp_path, **release.args())
    assert result["failed"] is True
    assert f"the tarball has no {TRIPLE}/uv; its top entries: uv-aarch64-unknown-linux-gnu" in result["msg"]
    assert not release.dest.exists()
    assert leftovers(release.dest.parent) == []


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (lambda t: entry("../evil", mode=0o755), "leaves the directory"),
        (lambda t: entry(f"{TRIPLE}/../../evil"), "leaves the directory"),
        (lambda t: entry(f"{t}/evil"), "absolute"),
        (lambda t: entry(f"{TRIPLE}/evil", tarfile.SYMTYPE, 0o777, f"{t}/evil-target"), "is a link"),
        (lambda t: entry(f"{TRIPLE}/evil", tarfile.LNKTYPE, 0o644, f"{TRIPLE}/uv"), "is a link"),
        (lambda t: entry(f"{TRIPLE}/evil", tarfile.CHRTYPE, 0o666), "not a regular file or directory"),
        (lambda t: entry(f"{TRIPLE}/evil", tarfile.FIFOTYPE, 0o666), "not a regular file or directory"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "device", "fifo"],
)
def test_an_unsafe_tarball_is_refused_and_nothing_is_written(tmp_path, capsys, member, message):
    log = tmp_path / "uv-runs.log"
    info = member(tmp_path)
    data = b"#!/bin/sh\necho pwned\n" if info.isreg() else None
    release = Release(tmp_path, [*release_members(log), (info, data)])
    result = run(capsys, tmp_path, **release.args())
    assert result["failed"] is True
    assert "the tarball is refused" in result["msg"]
    assert message in result["msg"]
    assert not release.dest.exists()
    assert leftovers(release.dest.parent) == []
    assert [p for p in tmp_path.rglob("evil*")] == []
    assert release.runs() == []


def test_a_file_that_is_not_a_tarball_is_refused(tmp_path, capsys, release):
    release.path.write_bytes(b"<html>rate limited</html>")
    digest = hashlib.sha256(b"<html>rate limited</html>").hexdigest()
    result = run(capsys, tmp_path, **release.args(checksum=f"sha256:{digest}"))
    assert result["failed"] is True
    assert "is not a readable tarball" in result["msg"]
    assert not release.dest.exists()


# --- where it installs --------------------------------------------------------------------------


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize("problem", ["symlink", "not owned by root", "group-writable", "dest owned by a user"])
def test_an_unsafe_path_to_dest_is_refused(tmp_path, capsys, release, problem, check_mode):
    real = tmp_path / "real"
    real.mkdir(mode=0o755)
    parent = real
    if problem == "symlink":
        parent = tmp_path / "link"
        parent.symlink_to(real)
    elif problem == "not owned by root":
        os.chown(real, NOBODY, NOBODY)
    elif problem == "group-writable":
        os.chmod(real, 0o775)
    dest = parent / VERSION
    if problem == "dest owned by a user":
        dest.mkdir()
        os.chown(dest, NOBODY, NOBODY)
    args = release.args(dest=str(dest), binary=str(dest / TRIPLE / "uv"))
    result = run(capsys, tmp_path, **args, check_mode=check_mode)
    assert result["failed"] is True
    assert result["msg"].startswith(f"refusing to install uv into {dest}: ")
    assert [p.name for p in real.rglob("*") if p.name != VERSION] == []
    assert release.runs() == []


def test_a_sticky_world_writable_parent_like_tmp_is_accepted(tmp_path, capsys, release):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    dest = shared / VERSION
    result = run(capsys, tmp_path, **release.args(dest=str(dest), binary=str(dest / TRIPLE / "uv")))
    assert result["changed"] is True
    assert (dest / TRIPLE / "uv").is_file()


# --- the network ----------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["installed", "failed"])
def test_the_proxy_password_never_appears_in_the_output(tmp_path, capsys, release, outcome):
    if outcome == "failed":
        release.path.unlink()
    proxy = {"HTTPS_PROXY": "http://u:s3cret@127.0.0.1:9", "no_proxy": "localhost"}
    result, out = run_raw(capsys, tmp_path, **release.args(proxy_env=proxy), diff=True)
    assert result.get("failed", False) is (outcome == "failed")
    assert "s3cret" not in out
    # uv --version ran without the proxy settings.
    assert all("s3cret" not in line and "127.0.0.1:9" not in line for line in release.runs())


def test_the_download_goes_through_the_proxy_of_proxy_env(tmp_path, capsys, release, server):
    server.files["0.13.9/uv.tar.gz"] = release.data
    url = "http://uv-mirror.invalid/0.13.9/uv.tar.gz"
    proxy = {"HTTP_PROXY": f"http://u:s3cret@127.0.0.1:{server.port}"}
    result, out = run_raw(capsys, tmp_path, **release.args(url=url, proxy_env=proxy))
    assert result["changed"] is True, result
    assert server.requests == [(url, "Basic " + base64.b64encode(b"u:s3cret").decode())]
    assert "s3cret" not in out
    assert all("s3cret" not in line for line in release.runs())


def test_server_errors_are_retried_with_a_backoff(tmp_path, capsys, release, server, clean_environment):
    server.files["uv.tar.gz"] = release.data
    server.failures["uv.tar.gz"] = [503, 502]
    url = f"http://127.0.0.1:{server.port}/uv.tar.gz"
    result = run(capsys, tmp_path, **release.args(url=url, retries=3))
    assert result["changed"] is True, result
    assert len(server.requests) == 3
    assert clean_environment == [1.0, 2.0]


def test_a_missing_file_on_the_server_is_not_retried(tmp_path, capsys, release, server, clean_environment):
    url = f"http://127.0.0.1:{server.port}/uv.tar.gz"
    result = run(capsys, tmp_path, **release.args(url=url, retries=3))
    assert result["failed"] is True
    assert result["msg"] == f"downloading {url} failed (1 attempt): HTTP 404 Not Found"
    assert clean_environment == []


def test_a_network_failure_names_the_url_without_its_credentials(tmp_path, capsys, release, clean_environment):
    port = closed_port()
    url = f"http://builder:pw0rd@127.0.0.1:{port}/uv.tar.gz"
    result, out = run_raw(capsys, tmp_path, **release.args(url=url, retries=2, timeout=5))
    assert result["failed"] is True
    assert result["msg"].startswith(f"downloading http://127.0.0.1:{port}/uv.tar.gz failed (3 attempts): ")
    assert "pw0rd" not in out
    # The password is masked everywhere, the invocation's url included; the message names no user either.
    assert "builder" not in result["msg"]
    assert clean_environment == [1.0, 2.0]
    assert not (tmp_path / "opt").exists()


# --- arguments and helpers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "0.13"}, "version '0.13' is not a release number"),
        ({"version": "v0.13.9"}, "version 'v0.13.9' is not a release number"),
        ({"url": "ftp://mirror.example/uv.tar.gz"}, "is not an http, https or file URL"),
        ({"checksum": "md5:0123"}, "checksum must be 'sha256:' followed by 64 hex digits"),
        ({"checksum": "sha256:" + "z" * 64}, "checksum must be 'sha256:' followed by 64 hex digits"),
        ({"binary": "/usr/local/bin/uv"}, "is not inside dest"),
        ({"dest": "relative/0.13.9"}, "dest 'relative/0.13.9' is not an absolute path"),
        ({"retries": -1}, "retries must be 0 or more"),
        ({"timeout": 0}, "timeout must be a positive number"),
    ],
)
def test_bad_arguments_fail_before_any_change(tmp_path, capsys, release, change, message):
    result = run(capsys, tmp_path, **{**release.args(), **change})
    assert result["failed"] is True
    assert message in result["msg"]
    assert not (tmp_path / "opt").exists()


@pytest.mark.parametrize(
    ("output", "version"),
    [
        ("uv 0.13.9\n", "0.13.9"),
        ("uv 0.13.9 (a1b2c3d 2025-11-20)\nmore\n", "0.13.9"),
        ("uv 0.13.90\n", "0.13.90"),
        ("uv-0.13.9\n", None),
        ("uv 0.13.9\tx\n", None),
        ("", None),
    ],
)
def test_parse_version_reads_the_first_line_only(output, version):
    assert uv_install.parse_version(output) == version


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://u:p@mirror.example:8443/uv.tar.gz?x=1", "https://mirror.example:8443/uv.tar.gz?x=1"),
        ("https://token@mirror.example/uv.tar.gz", "https://mirror.example/uv.tar.gz"),
        ("file:///srv/uv.tar.gz", "file:///srv/uv.tar.gz"),
    ],
)
def test_redact_url_drops_userinfo(url, safe):
    assert uv_install.redact_url(url) == safe


def test_proxy_settings_set_both_cases_and_prefer_lower_case():
    settings = uv_install.proxy_settings(
        {"HTTPS_PROXY": "http://upper:3128", "https_proxy": "http://lower:3128", "NO_PROXY": "localhost", "X": "y"}
    )
    assert settings == {
        "https_proxy": "http://lower:3128",
        "HTTPS_PROXY": "http://lower:3128",
        "no_proxy": "localhost",
        "NO_PROXY": "localhost",
    }
