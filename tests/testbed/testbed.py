#!/usr/bin/env python3
"""The sparkfleet test bed: simulated DGX Sparks and stand-ins for what these machines lack.

    testbed.py up                 engine, images, registry, apt repo (cached: rebuilds what changed)
    testbed.py spark up NAME...   start simulated Sparks (systemd + Docker inside)
    testbed.py spark down NAME... remove them and their inner Docker storage
    testbed.py inventory NAME...  write an Ansible inventory for those Sparks, print its path
    testbed.py down [--purge]     stop the services (--purge: images and state too)

Every stand-in is a test double, named as one; see tests/testbed/README.md.
State (keys, the apt repo, wheels, the Spark's Docker packages, testbed.json) lives in
$SPARKFLEET_TESTBED_STATE, default <repo>/.testbed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
STATE = Path(os.environ.get("SPARKFLEET_TESTBED_STATE", REPO / ".testbed")).resolve()

NETWORK = "sparkfleet-testbed"
LABEL = "io.sparkfleet.testbed.hash"
BASE_IMAGE = "sparkfleet-testbed/debian-base:bookworm"
SPARK_IMAGE = "sparkfleet-testbed/spark-sim:latest"
# The same host before anything is installed: no Docker engine (a plain Debian/Ubuntu server).
BARE_SPARK_IMAGE = "sparkfleet-testbed/spark-sim-bare:latest"
SERVICES_IMAGE = "sparkfleet-testbed/services:latest"
# The base of the execution environment the EE stage builds (tests/ee/stage.py): Debian 12's
# Python 3.11 in a venv, because UBI 9 cannot be pulled here (see images/ee-base).
EE_BASE = "sparkfleet-testbed/ee-base:latest"
# The lab admin's SSH key for the simulated Sparks' `admin` user (sudo, no password).
SSH_DIR = STATE / "ssh"
SSH_KEY = SSH_DIR / "id_ed25519"
SSH_USER = "admin"
NGC_LOCAL = "sparkfleet-testbed/ngc-pytorch"
NGC_REPOSITORY = "nvidia/pytorch"
REGISTRY_NAME = "sparkfleet-registry"
REGISTRY_PORT = 5000
APT_NAME = "sparkfleet-apt"
XFORMERS_TAG = "v0.0.33"
UV_VERSION = "0.13.9"
SPARK_CA_BUNDLE = "/etc/ssl/sparkfleet-testbed-ca.pem"
NGC_USER = "$oauthtoken"
# The system packages of each NGC stand-in release: a real CPU torch (a wheel this kind of
# machine keeps on disk; ngc_release.py suffixes its version) and an NGC-like slice of the
# image's Python distributions, each named package pinned and none at PyPI's newest, so that a
# venv that shadows one of them shows. 25.10 keeps the JupyterLab 2.3.2 that NGC's release
# notes list, on the classic Notebook 6 server (no Jupyter Server: no --ServerApp.* options);
# 25.11 has a JupyterLab 4 on Jupyter Server 2. Why these versions: README, "NGC stand-in".
# Changing a spec downloads the wheels again and rebuilds the images.
NGC_PIP_SPECS: dict[str, tuple[str, ...]] = {
    "25.10": (
        "torch==2.13.0",
        "numpy==1.26.4",
        "pandas==2.2.3",
        "pillow==11.2.1",
        "protobuf==4.24.4",
        "jupyterlab==2.3.2",
        "jupyterlab_server==1.2.0",
        "notebook==6.4.13",
        "jupyter_client==7.4.9",
        "jupyter_core==5.7.2",
        "tornado==6.4.2",
        "pyzmq==26.2.1",
        "ipykernel==6.29.5",
        "ipython==8.18.1",
        "traitlets==5.9.0",
        "nbconvert==7.16.4",
        "nbformat==5.10.4",
        "fsspec==2025.9.0",
        "wheel==0.45.1",
    ),
    "25.11": (
        "torch==2.13.0",
        "numpy==2.2.6",
        "pandas==2.3.1",
        "pillow==11.3.0",
        "protobuf==5.29.5",
        "jupyterlab==4.4.9",
        "jupyterlab_server==2.27.3",
        "jupyter_server==2.17.0",
        "jupyter_client==8.6.3",
        "jupyter_core==5.8.1",
        "tornado==6.5.2",
        "pyzmq==27.0.2",
        "ipykernel==6.30.1",
        "ipython==9.5.0",
        "traitlets==5.14.3",
        "nbconvert==7.16.6",
        "nbformat==5.10.4",
        "fsspec==2025.9.0",
        "wheel==0.45.1",
    ),
}
NGC_RELEASES = tuple(NGC_PIP_SPECS)
DEBOOTSTRAP_INCLUDE = "systemd,systemd-sysv,python3,dbus,sudo"
# The simulated Spark's Docker engine. DGX OS ships docker-ce 28 and the docker role validates
# daemon.json with `dockerd --validate` (Docker >= 23), which Debian 12's docker.io 20.10 lacks.
# So the Spark image takes Debian 13's docker.io and docker-cli (the CLI is a package of its
# own there) and installs them over Debian 12's containerd, runc and tini; their dependencies
# are all met by Debian 12. Fetched by apt from the Debian mirror the host's apt sources name,
# kept in $SPARKFLEET_TESTBED_STATE/debs. When the mirror drops this version, `up` says so:
# update DOCKER_DEB_VERSION and DOCKER_DEB_SHA256 (apt-cache show prints the SHA256 fields).
DOCKER_DEB_SUITE = "trixie"
DOCKER_DEB_VERSION = "26.1.5+dfsg1-9+deb13u1+b1"
DOCKER_DEB_PACKAGES = ("docker.io", "docker-cli")
DOCKER_DEB_SHA256 = {
    ("docker.io", "amd64"): "53ae1a99f15113f0a0d2226808ec0d24ee31b3b87b87ab8ec35be09a1a2ee13b",
    ("docker-cli", "amd64"): "596647bc4ffaaaf2e2321116b8a10f6a6086ada797c17a7117798cb391a72776",
    ("docker.io", "arm64"): "09e682d520363b0478356d5befdb36d0833ec1f07fc335401b7d0d4ac81db8fe",
    ("docker-cli", "arm64"): "85b59a59e76bd1dfcd21d5f811a532823f649b6665c8e698d91de270d1f58377",
}
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
HOST_TOOLS = {
    "debootstrap": "debootstrap",
    "htpasswd": "apache2-utils",
    "apt-ftparchive": "apt-utils",
    "gpg": "gnupg",
    "dpkg-deb": "dpkg",
    "ssh-keygen": "openssh-client",
}
# Docker 20.10 knows these; SYS_RESOURCE is left out because the daemon's bounding set
# lacks it here, which is also why --privileged fails (see shared notes on the test bed).
CAPABILITIES = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
]


def log(message: str) -> None:
    print(f"[testbed] {message}", file=sys.stderr, flush=True)


def run(
    cmd: list[str], *, check: bool = True, capture: bool = False, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload,no-any-return]
        cmd, check=check, text=True, capture_output=capture, **kwargs
    )


def out(cmd: list[str]) -> str:
    return run(cmd, capture=True).stdout.strip()


def ok(cmd: list[str]) -> bool:
    return run(cmd, check=False, capture=True).returncode == 0


def digest_of(*parts: str | bytes | Path) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            paths = sorted(p for p in part.rglob("*") if p.is_file()) if part.is_dir() else [part]
            for p in paths:
                h.update(str(p.relative_to(part if part.is_dir() else part.parent)).encode())
                h.update(p.read_bytes())
        else:
            h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:16]


def deb_arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


# --- the engine -------------------------------------------------------------------------


def ensure_engine() -> None:
    if ok(["docker", "info"]):
        return
    if shutil.which("dockerd") is None:
        log("no Docker engine: installing Debian's docker.io")
        apt_install(["docker.io"])
    if ok(["systemctl", "is-system-running"]):
        run(["systemctl", "start", "docker"])
    else:
        # No systemd on CI machines: run the daemon in its own session so it outlives us.
        logfile = open("/var/log/sparkfleet-testbed-dockerd.log", "ab")  # noqa: SIM115
        subprocess.Popen(["dockerd"], stdout=logfile, stderr=logfile, start_new_session=True)
    for _ in range(60):
        if ok(["docker", "info"]):
            log("Docker engine answers")
            return
        time.sleep(1)
    sys.exit("[testbed] the Docker engine did not answer within 60 s; see /var/log/sparkfleet-testbed-dockerd.log")


def apt_install(packages: list[str]) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], env=env)


def ensure_host_tools() -> None:
    missing = sorted({pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None})
    if missing:
        log(f"installing host tools: {' '.join(missing)}")
        apt_install(missing)


# --- images -----------------------------------------------------------------------------


def image_label(image: str) -> str | None:
    result = run(
        ["docker", "image", "inspect", "--format", f'{{{{ index .Config.Labels "{LABEL}" }}}}', image],
        check=False,
        capture=True,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def ensure_base_image() -> str:
    wanted = digest_of("bookworm", "minbase", DEBOOTSTRAP_INCLUDE)
    if image_label(BASE_IMAGE) == wanted:
        return wanted
    log("building the Debian 12 + systemd base image with debootstrap (about a minute)")
    with tempfile.TemporaryDirectory(prefix="sparkfleet-rootfs-") as rootfs:
        run(
            ["debootstrap", "--variant=minbase", f"--include={DEBOOTSTRAP_INCLUDE}", "bookworm", rootfs],
            stdout=subprocess.DEVNULL,
        )
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        run(
            [
                "docker",
                "import",
                "-c",
                'CMD ["/lib/systemd/systemd"]',
                "-c",
                f"LABEL {LABEL}={wanted}",
                "-",
                BASE_IMAGE,
            ],
            stdin=tar.stdout,
            stdout=subprocess.DEVNULL,
        )
        if tar.wait() != 0:
            sys.exit("[testbed] tar of the debootstrap root failed")
    return wanted


def host_debian_mirror(etc_apt: Path = Path("/etc/apt")) -> str:
    """The URI of the Debian main archive in the host's apt sources (the entry whose suites
    include bookworm, so not -security), one-line and deb822 formats alike."""
    override = os.environ.get("SPARKFLEET_TESTBED_DEBIAN_MIRROR")
    if override:
        return override.rstrip("/")
    sources = etc_apt / "sources.list"
    parts = etc_apt / "sources.list.d"
    files = ([sources] if sources.is_file() else []) + sorted(parts.glob("*.list")) + sorted(parts.glob("*.sources"))
    for path in files:
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in text.split("\n\n"):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line or line[:1].isspace():
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
                if (
                    "deb" in fields.get("types", "").split()
                    and fields.get("enabled", "yes").lower() != "no"
                    and "bookworm" in fields.get("suites", "").split()
                    and fields.get("uris")
                ):
                    return fields["uris"].split()[0].rstrip("/")
        else:
            for line in text.splitlines():
                words = line.split("#", 1)[0].split()
                if words[:1] != ["deb"]:
                    continue
                words = words[1:]
                if words and words[0].startswith("["):
                    while words and not words[0].endswith("]"):
                        words.pop(0)
                    words = words[1:]
                if len(words) >= 2 and words[1] == "bookworm":
                    return words[0].rstrip("/")
    sys.exit(
        "[testbed] no Debian archive (suite bookworm) in the host's apt sources, so no mirror for "
        "Debian 13's docker.io; set SPARKFLEET_TESTBED_DEBIAN_MIRROR to a Debian archive URI"
    )


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ensure_docker_debs() -> list[Path]:
    """Debian 13's docker.io and docker-cli at DOCKER_DEB_VERSION, fetched once by apt with a
    private configuration (the host's own sources and state are left alone) and kept in STATE."""
    arch = deb_arch()
    store = STATE / "debs"
    version = DOCKER_DEB_VERSION.replace(":", "%3a")
    debs = {pkg: store / f"{pkg}_{version}_{arch}.deb" for pkg in DOCKER_DEB_PACKAGES}

    def expected(pkg: str) -> str | None:
        recorded = Path(f"{debs[pkg]}.sha256")
        known = DOCKER_DEB_SHA256.get((pkg, arch))
        return known or (recorded.read_text().split()[0] if recorded.is_file() else None)

    missing = [pkg for pkg, deb in debs.items() if not (deb.is_file() and sha256_of(deb) == expected(pkg))]
    if not missing:
        return list(debs.values())
    mirror = host_debian_mirror()
    log(f"fetching {' '.join(missing)} {DOCKER_DEB_VERSION} ({DOCKER_DEB_SUITE}, {arch}) from {mirror}")
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sparkfleet-apt-") as work:
        tmp = Path(work)
        (tmp / "sources.list").write_text(
            f"deb [arch={arch} signed-by={DEBIAN_KEYRING}] {mirror} {DOCKER_DEB_SUITE} main\n"
        )
        for sub in ("lists/partial", "archives/partial", "cache"):
            (tmp / sub).mkdir(parents=True)
        options = {
            "Dir::Etc::SourceList": tmp / "sources.list",
            "Dir::Etc::SourceParts": "/dev/null",
            "Dir::State::Lists": tmp / "lists",
            "Dir::State::status": "/dev/null",
            "Dir::Cache": tmp / "cache",
            "Dir::Cache::Archives": tmp / "archives",
            "Debug::NoLocking": "1",
            "APT::Architecture": arch,
            "APT::Sandbox::User": "root",
            "Acquire::Languages": "none",
        }
        apt_opts = [arg for key, value in options.items() for arg in ("-o", f"{key}={value}")]
        run(["apt-get", *apt_opts, "-qq", "update"], capture=True)
        result = run(
            ["apt-get", *apt_opts, "-q", "download", *(f"{pkg}:{arch}={DOCKER_DEB_VERSION}" for pkg in missing)],
            check=False,
            capture=True,
            cwd=tmp,
        )
        if result.returncode != 0:
            available = run(["apt-cache", *apt_opts, "madison", *missing], check=False, capture=True).stdout
            versions = sorted({line.split("|")[1].strip() for line in available.splitlines() if "|" in line})
            sys.exit(
                f"[testbed] {' '.join(missing)} {DOCKER_DEB_VERSION} is not on the Debian mirror's "
                f"{DOCKER_DEB_SUITE} ({arch}); it has {', '.join(versions) or 'none'}. Update "
                f"DOCKER_DEB_VERSION and DOCKER_DEB_SHA256 in tests/testbed/testbed.py.\n{result.stderr.strip()}"
            )
        for pkg in missing:
            fetched = tmp / debs[pkg].name
            digest = sha256_of(fetched)
            known = DOCKER_DEB_SHA256.get((pkg, arch))
            if known is not None and digest != known:
                sys.exit(
                    f"[testbed] {fetched.name} from the mirror has SHA-256 {digest}, not the recorded "
                    f"{known}: check the mirror, or update DOCKER_DEB_SHA256 in tests/testbed/testbed.py"
                )
            shutil.move(fetched, debs[pkg])
            Path(f"{debs[pkg]}.sha256").write_text(f"{digest}  {debs[pkg].name}\n")
            if known is None:
                log(f"recorded {debs[pkg].name} SHA-256 {digest} (add it to DOCKER_DEB_SHA256)")
    return list(debs.values())


def ensure_ssh_key() -> Path:
    """The admin's key pair (ed25519, no passphrase), made once; its public half goes into the image."""
    if not SSH_KEY.is_file():
        SSH_DIR.mkdir(parents=True, exist_ok=True)
        SSH_DIR.chmod(0o700)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sparkfleet-testbed-admin", "-f", str(SSH_KEY)])
    return SSH_KEY.with_suffix(".pub")


def ensure_spark_context() -> Path:
    """The spark-sim build context: its Dockerfile plus the Docker packages and the admin's
    public key, staged in STATE so they stay out of the source tree and are part of the image's
    input hash."""
    debs = ensure_docker_debs()
    public_key = ensure_ssh_key()
    context = STATE / "spark-context"
    shutil.rmtree(context, ignore_errors=True)
    shutil.copytree(HERE / "images" / "spark-sim", context)
    shutil.copy2(public_key, context / "admin.pub")
    for deb in debs:
        try:
            os.link(deb, context / deb.name)
        except OSError:
            shutil.copy2(deb, context / deb.name)
    return context


def ensure_built(image: str, context: Path, parent: str, build_args: dict[str, str]) -> str:
    wanted = digest_of(parent, context, json.dumps(build_args, sort_keys=True))
    if image_label(image) == wanted:
        return wanted
    log(f"building {image}")
    args = [f"--build-arg={k}={v}" for k, v in {"BASE_IMAGE": BASE_IMAGE, **build_args}.items()]
    # The legacy builder: BuildKit's frontends would be pulled from a registry we cannot reach.
    run(
        ["docker", "build", "--quiet", f"--label={LABEL}={wanted}", *args, "-t", image, str(context)],
        env=dict(os.environ, DOCKER_BUILDKIT="0"),
        stdout=subprocess.DEVNULL,
    )
    return wanted


def pip_download(dest: Path, options: list[str], specs: list[str]) -> None:
    """Binary wheels for this machine's manylinux platforms, fetched on the host (where pip's CA works)."""
    machine = platform.machine()
    platforms = [
        arg
        for tag in ("manylinux_2_28", "manylinux_2_17", "manylinux2014")
        for arg in ("--platform", f"{tag}_{machine}")
    ]
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary=:all:",
            *platforms,
            *options,
            "-d",
            str(dest),
            *specs,
        ]
    )


def ensure_wheels(context: Path) -> None:
    """Download the stand-in's system packages on the host, where pip's CA setup works.

    One directory holds the union of the releases' wheels: each release's spec is resolved on
    its own (they pin different versions of the same packages) and the image build's
    `--no-index --find-links` picks that release's set from it.
    """
    wheels = context / "wheels"
    marker = wheels / ".spec"
    wanted = json.dumps(NGC_PIP_SPECS, indent=2, sort_keys=True) + "\n"
    if marker.is_file() and marker.read_text() == wanted:
        return
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir(parents=True)
    for release, spec in NGC_PIP_SPECS.items():
        log(f"downloading wheels for the NGC stand-in {release}: {' '.join(spec)}")
        pip_download(wheels, ["--python-version", "3.11", "--implementation", "cp"], list(spec))
    marker.write_text(wanted)


def ensure_ngc_images(base: str) -> dict[str, str]:
    context = STATE / "ngc-context"
    src = HERE / "images" / "ngc-pytorch"
    context.mkdir(parents=True, exist_ok=True)
    for name in ("Dockerfile", "ngc_release.py"):
        shutil.copy2(src / name, context / name)
    ensure_wheels(context)
    images = {}
    for release in NGC_RELEASES:
        tag = f"{NGC_LOCAL}:{release}-py3"
        ensure_built(tag, context, base, {"NGC_RELEASE": release, "PIP_SPEC": " ".join(NGC_PIP_SPECS[release])})
        images[release] = tag
    return images


# --- services ---------------------------------------------------------------------------


def container_label(name: str) -> str | None:
    result = run(
        ["docker", "inspect", "--format", f'{{{{ .State.Running }}}} {{{{ index .Config.Labels "{LABEL}" }}}}', name],
        check=False,
        capture=True,
    )
    if result.returncode != 0:
        return None
    running, _, label = result.stdout.strip().partition(" ")
    return label if running == "true" else None


def ensure_network() -> None:
    if not ok(["docker", "network", "inspect", NETWORK]):
        run(["docker", "network", "create", NETWORK], stdout=subprocess.DEVNULL)


def run_container(name: str, wanted: str, run_args: list[str]) -> None:
    """(Re)start a detached test bed container on the network, labelled with its input hash."""
    run(["docker", "rm", "-f", "-v", name], check=False, capture=True)
    run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            "--hostname",
            name,
            "--network",
            NETWORK,
            f"--label={LABEL}={wanted}",
            *run_args,
        ],
        stdout=subprocess.DEVNULL,
    )


def ensure_service(name: str, wanted: str, run_args: list[str]) -> None:
    if container_label(name) == wanted:
        return
    log(f"starting {name}")
    run_container(name, wanted, ["--restart", "unless-stopped", *run_args])


def secret_file(path: Path, factory: object = lambda: secrets.token_urlsafe(32)) -> str:
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(factory())  # type: ignore[operator]
    return path.read_text().strip()


def ensure_registry(services: str) -> str:
    """A real registry with htpasswd (bcrypt) auth; the password is an NGC-style API key."""
    api_key = secret_file(STATE / "ngc_api_key")
    conf = STATE / "registry"
    conf.mkdir(parents=True, exist_ok=True)
    htpasswd = conf / "htpasswd"
    # htpasswd -i reads the password from stdin, so the key is never on a command line.
    check = (
        run(["htpasswd", "-vi", str(htpasswd), NGC_USER], input=api_key, check=False, capture=True)
        if htpasswd.is_file()
        else None
    )
    if check is None or check.returncode != 0:
        run(["htpasswd", "-ciB", str(htpasswd), NGC_USER], input=api_key, capture=True)
    htpasswd.chmod(0o644)  # read by the registry inside its container
    (conf / "config.yml").write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        "storage:\n  filesystem:\n    rootdirectory: /var/lib/docker-registry\n  delete:\n    enabled: true\n"
        f"http:\n  addr: :{REGISTRY_PORT}\n"
        "auth:\n  htpasswd:\n    realm: sparkfleet-testbed\n    path: /etc/docker/registry/htpasswd\n"
    )
    wanted = digest_of(services, conf)
    ensure_service(
        REGISTRY_NAME,
        wanted,
        [
            "-p",
            f"127.0.0.1:{REGISTRY_PORT}:{REGISTRY_PORT}",
            "-v",
            f"{conf}:/etc/docker/registry:ro",
            "-v",
            "sparkfleet-testbed-registry:/var/lib/docker-registry",
            SERVICES_IMAGE,
        ],
    )
    return api_key


def push_ngc_images(images: dict[str, str], api_key: str) -> dict[str, dict[str, str]]:
    """Push through the loopback port (Docker trusts 127.0.0.1 without TLS)."""
    env = dict(os.environ, DOCKER_CONFIG=str(STATE / "docker-config"))
    local_registry = f"127.0.0.1:{REGISTRY_PORT}"
    for _ in range(30):
        if (
            run(
                ["docker", "login", "-u", NGC_USER, "--password-stdin", local_registry],
                input=api_key,
                env=env,
                check=False,
                capture=True,
            ).returncode
            == 0
        ):
            break
        time.sleep(1)
    else:
        sys.exit("[testbed] could not log in to the test bed registry")
    result = {}
    for release, local in images.items():
        tag = f"{release}-py3"
        pushed = f"{local_registry}/{NGC_REPOSITORY}:{tag}"
        run(["docker", "tag", local, pushed])
        run(["docker", "push", pushed], env=env, stdout=subprocess.DEVNULL)
        repo_digests = json.loads(out(["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", pushed]))
        digest = next(d.split("@", 1)[1] for d in repo_digests if d.startswith(f"{local_registry}/"))
        result[tag] = {
            "reference": f"{REGISTRY_NAME}:{REGISTRY_PORT}/{NGC_REPOSITORY}:{tag}",
            "digest": digest,
            "id": out(["docker", "image", "inspect", "--format", "{{.Id}}", pushed]),
            "release": release,
        }
    return result


def ensure_apt_repo() -> Path:
    repo = STATE / "apt-repo"
    source = HERE / "apt"
    wanted = digest_of(source)
    stamp = repo / ".hash"
    if not (stamp.is_file() and stamp.read_text() == wanted):
        log("building the signed apt repo of stand-in NVIDIA packages")
        shutil.rmtree(repo, ignore_errors=True)
        (STATE / "gnupg").mkdir(mode=0o700, parents=True, exist_ok=True)
        run(["bash", str(source / "build.sh"), str(repo), str(STATE / "gnupg")], stdout=subprocess.DEVNULL)
        stamp.write_text(wanted)
    return repo / "libnvidia-container"


def ensure_xformers_git() -> Path:
    """The xformers stand-in as a bare git repo with the release tag, served over dumb HTTP
    (`git update-server-info`), so Sparks fetch it the way they fetch GitHub."""
    root = STATE / "git"
    source = HERE / "xformers-standin"
    wanted = digest_of(source, XFORMERS_TAG)
    stamp = root / ".hash"
    if stamp.is_file() and stamp.read_text() == wanted:
        return root
    log("publishing the xformers stand-in as a git repo")
    shutil.rmtree(root, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="sparkfleet-xformers-") as work:
        shutil.copytree(source, work, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        git = ["git", "-C", work, "-c", "user.name=testbed", "-c", "user.email=testbed@sparkfleet.invalid"]
        run([*git, "init", "-q", "-b", "main"])
        run([*git, "add", "-A"])
        run([*git, "commit", "-q", "-m", "xformers test stand-in"])
        run([*git, "tag", XFORMERS_TAG])
        run(["git", "clone", "-q", "--bare", work, str(root / "xformers.git")])
    run(["git", "-C", str(root / "xformers.git"), "update-server-info"])
    stamp.write_text(wanted)
    return root


def ensure_uv_release() -> Path:
    """uv's release tarball, laid out as on its release page, repacked from PyPI's wheel."""
    root = STATE / "uv"
    triple = f"{platform.machine()}-unknown-linux-gnu"
    tarball = root / "releases" / "download" / UV_VERSION / f"uv-{triple}.tar.gz"
    if tarball.is_file():
        return root
    log(f"fetching uv {UV_VERSION} for the release mirror")
    with tempfile.TemporaryDirectory(prefix="sparkfleet-uv-") as work:
        pip_download(Path(work), ["--no-deps"], [f"uv=={UV_VERSION}"])
        (wheel,) = Path(work).glob("uv-*.whl")
        unpacked = Path(work) / f"uv-{triple}"
        unpacked.mkdir()
        with zipfile.ZipFile(wheel) as archive:
            for name in ("uv", "uvx"):
                target = unpacked / name
                target.write_bytes(archive.read(f"uv-{UV_VERSION}.data/scripts/{name}"))
                target.chmod(0o755)
        tarball.parent.mkdir(parents=True, exist_ok=True)
        run(["tar", "-C", work, "-czf", str(tarball), unpacked.name])
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    Path(f"{tarball}.sha256").write_text(f"{digest}  {tarball.name}\n")
    return root


def ensure_file_server(services: str) -> None:
    mounts = {
        "libnvidia-container": ensure_apt_repo(),
        "git": ensure_xformers_git(),
        "uv": ensure_uv_release(),
    }
    volumes = [arg for name, path in mounts.items() for arg in ("-v", f"{path}:/srv/www/{name}:ro")]
    stamps = [(STATE / d / ".hash").read_text() for d in ("apt-repo", "git")]
    wanted = digest_of(services, *stamps, UV_VERSION, *volumes)
    ensure_service(
        APT_NAME, wanted, [*volumes, SERVICES_IMAGE, "python3", "-m", "http.server", "80", "--directory", "/srv/www"]
    )


def up(_: argparse.Namespace) -> None:
    started = time.monotonic()
    STATE.mkdir(parents=True, exist_ok=True)
    ensure_host_tools()
    ensure_engine()
    base = ensure_base_image()
    spark_context = ensure_spark_context()
    ensure_built(SPARK_IMAGE, spark_context, base, {})
    ensure_built(BARE_SPARK_IMAGE, spark_context, base, {"ENGINE": "none"})
    services = ensure_built(SERVICES_IMAGE, HERE / "images" / "services", base, {})
    ensure_ee_base(base)
    images = ensure_ngc_images(base)
    ensure_network()
    api_key = ensure_registry(services)
    ensure_file_server(services)
    ngc = push_ngc_images(images, api_key)
    facts = {
        "network": NETWORK,
        "spark_image": SPARK_IMAGE,
        "registry": f"{REGISTRY_NAME}:{REGISTRY_PORT}",
        "registry_user": NGC_USER,
        "api_key_file": str(STATE / "ngc_api_key"),
        "ngc_images": ngc,
        "apt_repo_url": f"http://{APT_NAME}/libnvidia-container/stable/deb/",
        "apt_key_url": f"http://{APT_NAME}/libnvidia-container/gpgkey",
        "xformers_git_url": f"http://{APT_NAME}/git/xformers.git",
        "xformers_tag": XFORMERS_TAG,
        "uv_version": UV_VERSION,
        "uv_download_base": f"http://{APT_NAME}/uv/releases/download",
        "deb_arch": deb_arch(),
    }
    (STATE / "testbed.json").write_text(json.dumps(facts, indent=2) + "\n")
    log(f"test bed ready in {time.monotonic() - started:.0f} s; facts in {STATE / 'testbed.json'}")


# --- simulated Sparks -------------------------------------------------------------------


def spark_up(names: list[str], bare: bool = False) -> None:
    image = BARE_SPARK_IMAGE if bare else SPARK_IMAGE
    wanted = image_label(image)
    if wanted is None:
        sys.exit("[testbed] no simulated Spark image: run `testbed.py up` first")
    for name in names:
        if container_label(name) == wanted:
            continue
        caps = [f"--cap-add={cap}" for cap in CAPABILITIES]
        run_container(
            name,
            wanted,
            [
                "--label=io.sparkfleet.testbed.role=spark",
                "--cap-drop=ALL",
                *caps,
                "--security-opt",
                "seccomp=unconfined",
                "--security-opt",
                "apparmor=unconfined",
                "--cgroupns=host",
                "-v",
                "/sys/fs/cgroup:/sys/fs/cgroup:rw",
                "--tmpfs",
                "/run",
                "--tmpfs",
                "/run/lock",
                "--stop-signal",
                "SIGRTMIN+3",
                # The inner Docker engine needs a real filesystem for overlay2.
                "-v",
                "/var/lib/docker",
                image,
            ],
        )
    for name in names:
        wait_for_spark(name, engine=not bare)
        # The lab's CA: HTTPS from this machine goes through a TLS-intercepting proxy.
        run(["docker", "cp", host_ca_bundle(), f"{name}:{SPARK_CA_BUNDLE}"], capture=True)
    log(f"simulated Sparks up: {' '.join(names)}")


def wait_for_spark(name: str, engine: bool = True) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = run(["docker", "exec", name, "systemctl", "is-system-running"], check=False, capture=True)
        if state.stdout.strip() in {"running", "degraded"} and (
            not engine or ok(["docker", "exec", name, "docker", "info"])
        ):
            return
        time.sleep(1)
    sys.exit(f"[testbed] simulated Spark {name} did not boot within 120 s")


def host_ca_bundle() -> str:
    return os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"


def spark_down(names: list[str]) -> None:
    for name in names:
        run(["docker", "rm", "-f", "-v", name], check=False, capture=True)


def ensure_ee_base(base: str) -> str:
    """The EE's base image: the Debian base with Python 3.11 in a venv, the lab's CA and ssh."""
    context = STATE / "ee-base-context"
    shutil.rmtree(context, ignore_errors=True)
    shutil.copytree(HERE / "images" / "ee-base", context)
    shutil.copy2(host_ca_bundle(), context / "lab-ca.pem")
    return ensure_built(EE_BASE, context, base, {})


def spark_address(name: str) -> str:
    """The Spark's address on the test bed network (reachable from this machine and from it)."""
    fmt = f'{{{{ (index .NetworkSettings.Networks "{NETWORK}").IPAddress }}}}'
    address = out(["docker", "inspect", "--format", fmt, name]).strip()
    if not address:
        sys.exit(f"[testbed] simulated Spark {name} has no address on {NETWORK}: is it up?")
    return address


def ssh_host_vars(names: list[str]) -> dict[str, dict[str, object]]:
    """What a lab's inventory says for each Spark: its address, the admin user, sudo, the key,
    and a known_hosts file holding each Spark's host key (read from the container itself)."""
    known = []
    hosts: dict[str, dict[str, object]] = {}
    for name in names:
        address = spark_address(name)
        host_key = out(["docker", "exec", name, "cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).split()[:2]
        known.append(f"{address} {' '.join(host_key)}")
        hosts[name] = {"ansible_host": address}
    # Merged: other inventories' Sparks (molecule's, the EE stage's) keep their lines.
    known_hosts = SSH_DIR / "known_hosts"
    ours = {line.split()[0] for line in known}
    kept = [
        line
        for line in (known_hosts.read_text().splitlines() if known_hosts.is_file() else [])
        if line.strip() and line.split()[0] not in ours
    ]
    known_hosts.write_text("\n".join(kept + known) + "\n")
    common = {
        "ansible_connection": "ssh",
        "ansible_user": SSH_USER,
        "ansible_become": True,
        "ansible_ssh_private_key_file": str(SSH_KEY),
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes",
        "sparkfleet_testbed_state": str(STATE),
    }
    return {name: {**common, **host} for name, host in hosts.items()}


def inventory(names: list[str], ssh: bool = False, path: Path | None = None) -> None:
    """An inventory for quick starts and benchmarks; group_vars come from tests/testbed/inventory.

    With ssh, the Sparks are reached as a lab reaches them: SSH as `admin`, sudo to root."""
    inv_file = path or STATE / "inventory" / "hosts.yml"
    inv_dir = inv_file.parent
    inv_dir.mkdir(parents=True, exist_ok=True)
    group_vars = inv_dir / "group_vars"
    if not group_vars.exists():
        group_vars.symlink_to(HERE / "inventory" / "group_vars")
    if ssh:
        hosts = ssh_host_vars(names)
    else:
        hosts = {
            name: {"ansible_connection": "community.docker.docker", "sparkfleet_testbed_state": str(STATE)}
            for name in names
        }
    inv_file.write_text(json.dumps({"sparks": {"hosts": hosts}}, indent=2) + "\n")
    print(inv_file)


def down(args: argparse.Namespace) -> None:
    names = out(["docker", "ps", "-aq", "--filter", "label=io.sparkfleet.testbed.role=spark"]).split()
    run(["docker", "rm", "-f", "-v", REGISTRY_NAME, APT_NAME, *names], check=False, capture=True)
    if args.purge:
        run(["docker", "volume", "rm", "sparkfleet-testbed-registry"], check=False, capture=True)
        run(["docker", "network", "rm", NETWORK], check=False, capture=True)
        tags = [BASE_IMAGE, SPARK_IMAGE, BARE_SPARK_IMAGE, SERVICES_IMAGE, EE_BASE]
        tags += [f"{NGC_LOCAL}:{r}-py3" for r in NGC_RELEASES]
        run(["docker", "rmi", "-f", *tags], check=False, capture=True)
        shutil.rmtree(STATE, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up").set_defaults(func=up)
    spark = sub.add_parser("spark")
    spark.add_argument("action", choices=["up", "down"])
    spark.add_argument("--bare", action="store_true", help="up: a host without a Docker engine yet")
    spark.add_argument("names", nargs="+")
    spark.set_defaults(func=lambda a: spark_up(a.names, a.bare) if a.action == "up" else spark_down(a.names))
    inv = sub.add_parser("inventory")
    inv.add_argument("--ssh", action="store_true", help="reach the Sparks over SSH as admin with sudo")
    inv.add_argument("--output", type=Path, help="the inventory file to write (default .testbed/inventory/hosts.yml)")
    inv.add_argument("names", nargs="+")
    inv.set_defaults(func=lambda a: inventory(a.names, a.ssh, a.output))
    dn = sub.add_parser("down")
    dn.add_argument("--purge", action="store_true")
    dn.set_defaults(func=down)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
