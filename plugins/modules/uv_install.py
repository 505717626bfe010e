#!/usr/bin/python
# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

# Ansible's module shape puts the imports after DOCUMENTATION, EXAMPLES and RETURN.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
---
module: uv_install
short_description: Install one pinned uv release into a root-owned version directory
version_added: 0.1.0
description:
  - Keeps the C(uv) binary of one release at O(binary), unpacked from the release tarball at O(url) into the
    version directory O(dest) (for uv releases, C(dest/uv-<triple>/uv)).
  - Reads the state in one step. When O(binary) is a regular file (not a symlink) owned by root, executable, not
    writable by group or others, in root-owned directories, and C(binary --version) prints C(uv <version>), nothing
    else happens.
  - Otherwise downloads the tarball in the module's own process (no C(curl) or C(wget) command line), checks its
    sha256 against O(checksum) or the C(.sha256) file published beside it, unpacks it safely (regular files and
    directories only, no absolute names, no C(..), no links or devices) into a new directory beside O(dest), makes
    everything C(root:root) with modes C(0755) and C(0644), checks that the new binary reports O(version), and
    only then moves the new directory into place. A previous O(dest) is moved aside first and removed after the
    swap.
  - A failed download, a checksum mismatch, a refused tarball or a binary of another version installs nothing; a
    previous O(dest) stays as it was.
  - Refuses to install when O(dest) or one of its existing parents is a symlink, is not owned by root, or can be
    written by group or others (unless it has the sticky bit, like C(/tmp)), since root must not put an executable
    where a user could swap it. Missing parents are created C(root:root 0755).
author:
  - sparkfleet maintainers (@sparkfleet)
attributes:
  check_mode:
    support: full
    description: Probes the installed binary and reports the pending download and install without doing either.
  diff_mode:
    support: full
    description: Shows the uv version found at O(binary) (or C(absent)) before and after.
  idempotent:
    support: full
    description: A second run finds the binary reporting O(version) and changes nothing.
options:
  version:
    description:
      - The uv release, such as C(0.13.9). C(binary --version) must print C(uv <version>).
    type: str
    required: true
  url:
    description:
      - URL of the release tarball (C(http), C(https) or C(file)), for example
        C(https://github.com/astral-sh/uv/releases/download/0.13.9/uv-aarch64-unknown-linux-gnu.tar.gz).
      - Credentials in the URL (C(https://user:token@host/...)) are used, and removed from every message.
    type: str
    required: true
  checksum:
    description:
      - sha256 of the tarball, as C(sha256:<64 hex digits>).
      - Empty, the module downloads C(<url>.sha256) and takes its first word.
    type: str
    default: ""
  dest:
    description:
      - The version directory, such as C(/opt/sparkfleet/uv/0.13.9). The tarball is unpacked into it, so its top
        directory (C(uv-<triple>)) ends up inside O(dest).
      - The module owns this directory. When the binary has to be installed, the whole directory is replaced.
    type: path
    required: true
  binary:
    description:
      - Where the uv binary is once installed, inside O(dest), such as
        C(/opt/sparkfleet/uv/0.13.9/uv-x86_64-unknown-linux-gnu/uv). The tarball must contain it.
    type: path
    required: true
  proxy_env:
    description:
      - Proxy settings for the download, typically C(HTTP_PROXY), C(HTTPS_PROXY), C(NO_PROXY) and their lower-case
        forms (the lower-case form wins when both are given). Other keys are ignored.
      - They are set in the environment of the module's own process for the download only, never on a command
        line, and removed again before C(binary --version) runs.
      - When empty, the proxy settings the module process already has (if any) apply.
      - The values are C(no_log), and the password of a C(http://user:password@proxy) URL is masked wherever it
        would appear in the output. As with any C(no_log) value, a short value such as C(localhost) in C(NO_PROXY)
        is masked in the rest of the output too.
    type: dict
    default: {}
  ca_bundle:
    description:
      - CA certificate bundle on the host for HTTPS (a TLS-inspecting proxy, a private mirror).
      - Omitted, the system's CAs are used.
    type: path
  timeout:
    description: Seconds to wait for the server on each request.
    type: int
    default: 60
  retries:
    description:
      - How many more times a download that failed on the network (connection refused or reset, timeout, HTTP 5xx,
        408 or 429) is tried, after a short pause that doubles each time. C(0) tries once.
    type: int
    default: 3
notes:
  - Runs as root; it refuses otherwise, since the result must be owned by root.
  - The staging directory (C(.uv-install-*)) and the previous version directory (C(.<version>.old-*)) live beside
    O(dest) for the duration of the run only.
seealso:
  - name: uv installation
    description: The standalone release tarballs of uv.
    link: https://docs.astral.sh/uv/getting-started/installation/
"""

EXAMPLES = r"""
- name: Install uv 0.13.9
  sparkfleet.spark.uv_install:
    version: 0.13.9
    url: https://github.com/astral-sh/uv/releases/download/0.13.9/uv-aarch64-unknown-linux-gnu.tar.gz
    dest: /opt/sparkfleet/uv/0.13.9
    binary: /opt/sparkfleet/uv/0.13.9/uv-aarch64-unknown-linux-gnu/uv

- name: Behind a proxy with credentials and its own CA, with a pinned checksum
  sparkfleet.spark.uv_install:
    version: "{{ workspace_uv_version }}"
    url: "{{ workspace_uv_url }}"
    checksum: "sha256:{{ workspace_uv_checksums[ansible_facts.architecture] }}"
    dest: "{{ workspace_uv_dir }}"
    binary: "{{ workspace_uv_binary }}"
    proxy_env:
      HTTPS_PROXY: http://build:{{ vault_proxy_password }}@proxy.lab.example:3128
      NO_PROXY: localhost,127.0.0.1
    ca_bundle: /usr/local/share/ca-certificates/lab-proxy.crt
"""

RETURN = r"""
version:
  description:
    - The version C(binary --version) reports after the run. In check mode, the version the run would install.
  returned: success
  type: str
  sample: 0.13.9
binary:
  description: Path of the uv binary.
  returned: always
  type: str
  sample: /opt/sparkfleet/uv/0.13.9/uv-aarch64-unknown-linux-gnu/uv
actions:
  description: What was done (or, in check mode, would be done), in order; empty when uv was already installed.
  returned: always
  type: list
  elements: str
  sample:
    - downloaded https://github.com/astral-sh/uv/releases/download/0.13.9/uv-aarch64-unknown-linux-gnu.tar.gz
      (sha256:0123...)
    - installed uv 0.13.9 into /opt/sparkfleet/uv/0.13.9
"""

import contextlib
import hashlib
import http.client
import os
import re
import secrets
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
from collections.abc import Iterator
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
CHECKSUM_RE = re.compile(r"^sha256:([0-9a-fA-F]{64})$")
SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
UV_VERSION_RE = re.compile(r"^uv (\S+)(?: |$)")
URL_SCHEMES = ("http", "https", "file")
PROXY_NAMES = ("http_proxy", "https_proxy", "no_proxy")
CHUNK = 1024 * 1024
# A uv tarball is about 20 MiB; anything near this is not one.
MAX_EXTRACTED_BYTES = 1024 * 1024 * 1024
MAX_SHA256_FILE = 64 * 1024
MAX_BACKOFF = 10.0
DIR_MODE = 0o755
EXEC_MODE = 0o755
FILE_MODE = 0o644
# HTTP statuses worth another try; any other HTTP error is final.
RETRY_STATUSES = {408, 429}
# Pause between attempts; tests replace it.
sleep = time.sleep


class InstallError(Exception):
    """A failure to report as the module's msg (never carrying a credential)."""


def write_local(handle: Any, chunk: bytes, path: str) -> None:
    """Write to the local download file; a local error (a full disk) is final, not a network error."""
    try:
        handle.write(chunk)
    except OSError as exc:
        raise InstallError(f"cannot write {path}: {exc}") from None


def redact_url(url: str) -> str:
    """The URL without user and password."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def redact_text(text: str) -> str:
    """Any scheme://user:password@ inside a message, without its userinfo."""
    return re.sub(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@", r"\1", text)


def url_password(value: str) -> str | None:
    """The password of a URL such as http://user:password@proxy:3128, if it has one."""
    try:
        return urlsplit(value if "://" in value else "//" + value).password
    except ValueError:
        return None


def parse_version(output: str) -> str | None:
    """X from the first line of `uv --version` when it is `uv X`, alone or followed by a space."""
    first = output.strip().splitlines()[0] if output.strip() else ""
    match = UV_VERSION_RE.match(first)
    return match.group(1) if match else None


def proxy_settings(proxy_env: dict[str, Any]) -> dict[str, str]:
    """os.environ entries for the download: both cases of each proxy variable given (lower-case wins)."""
    settings: dict[str, str] = {}
    for name in PROXY_NAMES:
        value = proxy_env.get(name, proxy_env.get(name.upper()))
        if value is not None:
            settings[name] = settings[name.upper()] = str(value)
    return settings


@contextlib.contextmanager
def process_environment(update: dict[str, str]) -> Iterator[None]:
    """os.environ with `update` applied, restored afterwards (urllib reads proxies from it)."""
    saved = {name: os.environ.get(name) for name in update}
    os.environ.update(update)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def unsafe_component(path: str) -> str | None:
    """Why an existing directory must not lead to a root-owned executable, or None when it may."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return f"{path} is a symlink"
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} exists and is not a directory"
    if st.st_uid != 0:
        return f"{path} is owned by uid {st.st_uid}, not root"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
        return f"{path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def ancestors(path: str) -> list[str]:
    """'/', '/a', '/a/b', ... up to and including path (a normalized absolute path)."""
    found = [path]
    while path != "/":
        path = os.path.dirname(path)
        found.append(path)
    return list(reversed(found))


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why one tarball member is refused, or None."""
    name = member.name
    if not name or name.startswith("/") or "\0" in name:
        return f"member {name!r} has an absolute or empty name"
    if ".." in name.split("/"):
        return f"member {name!r} leaves the directory (..)"
    if not (member.isreg() or member.isdir()):
        kind = "a link" if member.issym() or member.islnk() else "not a regular file or directory"
        return f"member {name!r} is {kind}"
    return None


def safe_extract(archive: str, target: str) -> None:
    """Unpack a tarball into the empty directory target: regular files and directories only."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            problems = [problem for problem in map(member_problem, members) if problem]
            if problems:
                raise InstallError("the tarball is refused: " + "; ".join(problems[:5]))
            if sum(m.size for m in members if m.isreg()) > MAX_EXTRACTED_BYTES:
                raise InstallError(f"the tarball unpacks to more than {MAX_EXTRACTED_BYTES} bytes")
            for member in members:
                relative = os.path.normpath(member.name)
                if relative == ".":
                    continue
                path = os.path.join(target, relative)
                if member.isdir():
                    os.makedirs(path, mode=0o700, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:
                    raise InstallError(f"member {member.name!r} cannot be read")
                mode = EXEC_MODE if member.mode & 0o111 else FILE_MODE
                if os.path.lexists(path):
                    os.unlink(path)  # a repeated name: the last one wins, as with tar
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as handle, source:
                    shutil.copyfileobj(source, handle, CHUNK)
                os.chmod(path, mode)
    except (tarfile.TarError, EOFError) as exc:
        raise InstallError(f"the download is not a readable tarball: {exc}") from None


def own_tree(root: str) -> None:
    """root:root everywhere; directories 0755, files keep the 0755/0644 safe_extract gave them."""
    # safe_extract made every entry in a fresh 0700 directory: no symlink can be among them.
    for current, _dirs, files in os.walk(root):
        os.lchown(current, 0, 0)
        os.chmod(current, DIR_MODE)
        for name in files:
            path = os.path.join(current, name)
            os.lchown(path, 0, 0)
            os.chmod(path, EXEC_MODE if os.lstat(path).st_mode & 0o111 else FILE_MODE)


class UvInstaller:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = p = module.params
        self.created: list[str] = []
        self.version: str = p["version"]
        self.url: str = p["url"]
        self.safe_url = redact_url(self.url)
        self.dest: str = os.path.normpath(p["dest"])
        self.binary: str = os.path.normpath(p["binary"])
        self.proxy = proxy_settings(p["proxy_env"] or {})
        for value in [*(p["proxy_env"] or {}).values(), self.url]:
            secret = url_password(str(value))
            if secret:
                module.no_log_values.add(secret)
        self.check_values()

    def fail(self, msg: str, **kwargs: Any) -> NoReturn:
        self.module.fail_json(msg=redact_text(msg), binary=self.binary, **kwargs)
        raise SystemExit(1)  # not reached: fail_json exits

    def check_values(self) -> None:
        """Values that are wrong whatever the state of the host."""
        p = self.params
        if not VERSION_RE.match(self.version):
            self.fail(f"version {self.version!r} is not a release number such as 0.13.9")
        try:
            scheme = urlsplit(self.url).scheme.lower()
        except ValueError:
            scheme = ""
        if scheme not in URL_SCHEMES:
            self.fail(f"url {self.safe_url!r} is not an http, https or file URL")
        checksum = p["checksum"] or ""
        match = CHECKSUM_RE.match(checksum)
        if checksum and not match:
            self.fail("checksum must be 'sha256:' followed by 64 hex digits, or empty")
        self.checksum = match.group(1).lower() if match else ""
        for name in ("dest", "binary"):
            if not p[name].startswith("/"):
                self.fail(f"{name} {p[name]!r} is not an absolute path")
        if self.dest == "/" or not self.binary.startswith(self.dest + "/"):
            self.fail(f"binary {self.binary} is not inside dest {self.dest}")
        if p["timeout"] <= 0:
            self.fail("timeout must be a positive number of seconds")
        if p["retries"] < 0:
            self.fail("retries must be 0 or more")

    # --- the state -------------------------------------------------------------------------------

    def untrusted(self) -> str | None:
        """Why the file at binary (and its directories below dest) is not one to run as root."""
        for directory in ancestors(os.path.dirname(self.binary))[len(ancestors(self.dest)) :]:
            problem = unsafe_component(directory)
            if problem:
                return problem
        st = os.lstat(self.binary)
        if stat.S_ISLNK(st.st_mode):
            return "a symlink"
        if not stat.S_ISREG(st.st_mode):
            return "not a regular file"
        if st.st_uid != 0:
            return f"owned by uid {st.st_uid}, not root"
        if not st.st_mode & stat.S_IXUSR:
            return "not executable"
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return f"writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
        return None

    def run_version(self, binary: str) -> tuple[str | None, str]:
        """(version, first line or error) from `binary --version`."""
        try:
            rc, out, err = self.module.run_command([binary, "--version"], handle_exceptions=False)
        except OSError as exc:  # not a program for this machine (another architecture), no interpreter
            return None, f"cannot run: {exc.strerror or exc}"
        first = (out.strip() or err.strip() or "no output").splitlines()[0]
        if rc != 0:
            return None, f"exit {rc}: {first}"
        return parse_version(out), first

    def probe(self) -> tuple[str | None, str]:
        """(version found at binary, how to describe it); a binary not to be trusted is never run."""
        if not os.path.lexists(self.binary):
            return None, "absent"
        problem = self.untrusted()
        if problem:
            return None, f"present but not used: {problem}"
        version, line = self.run_version(self.binary)
        if version is None:
            return None, f"present but not a working uv ({line})"
        return version, f"uv {version}"

    def check_path(self) -> list[str]:
        """Missing directories that lead to dest (to create), after refusing unsafe existing ones."""
        try:
            parents = ancestors(os.path.dirname(self.dest))
            for path in [*parents, self.dest]:
                problem = unsafe_component(path)
                if problem:
                    self.fail(f"refusing to install uv into {self.dest}: {problem}")
            return [path for path in parents if not os.path.lexists(path)]
        except OSError as exc:
            self.fail(f"cannot inspect {self.dest}: {exc}")

    # --- the download ----------------------------------------------------------------------------

    def fetch(self, url: str, path: str, limit: int | None = None) -> str:
        """Download url into path (rewritten on each attempt); returns its sha256."""
        p = self.params
        attempts = p["retries"] + 1
        last = ""
        for attempt in range(attempts):
            digest = hashlib.sha256()
            try:
                with process_environment(self.proxy):
                    response = open_url(
                        url, method="GET", timeout=p["timeout"], ca_path=p["ca_bundle"], http_agent="sparkfleet"
                    )
                with contextlib.closing(response), open(path, "wb") as handle:
                    total = 0
                    while chunk := response.read(CHUNK):
                        total += len(chunk)
                        if limit is not None and total > limit:
                            raise InstallError(f"{redact_url(url)} is larger than {limit} bytes")
                        digest.update(chunk)
                        write_local(handle, chunk, path)
                return digest.hexdigest()
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code} {exc.reason}"
                if exc.code < 500 and exc.code not in RETRY_STATUSES:
                    break
            except urllib.error.URLError as exc:
                last = str(exc.reason)
                if "CERTIFICATE_VERIFY_FAILED" in last:
                    break
            except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, truncated bodies
                last = f"{type(exc).__name__}: {exc}"
            except InstallError:
                raise
            except Exception as exc:  # ansible's ConnectionError, SSLValidationError and friends
                last = f"{type(exc).__name__}: {exc}"
                if "certificate" in last.lower():
                    break
            if attempt + 1 < attempts:
                sleep(min(2.0**attempt, MAX_BACKOFF))
        tries = f"{attempt + 1} attempt{'s' if attempt else ''}"
        raise InstallError(f"downloading {redact_url(url)} failed ({tries}): {redact_text(last)}")

    def published_checksum(self) -> str:
        """The first word of <url>.sha256."""
        url = self.url + ".sha256"
        path = os.path.join(self.module.tmpdir, "uv.tar.gz.sha256")
        self.fetch(url, path, limit=MAX_SHA256_FILE)
        with open(path, "rb") as handle:
            words = handle.read().decode("utf-8", "replace").split()
        if not words or not SHA256_RE.match(words[0]):
            raise InstallError(f"{redact_url(url)} does not start with a sha256 (64 hex digits)")
        return words[0].lower()

    # --- the install -----------------------------------------------------------------------------

    def create_parents(self, missing: list[str]) -> None:
        for path in missing:
            os.mkdir(path, DIR_MODE)  # fails if someone else made it since check_path
            self.created.append(path)
            os.chown(path, 0, 0)
            os.chmod(path, DIR_MODE)

    def install(self, archive: str, previous: str) -> list[str]:
        """Unpack, check, and swap in; returns the actions. Nothing changes at dest on failure."""
        parent = os.path.dirname(self.dest)
        staging = tempfile.mkdtemp(prefix=".uv-install-", dir=parent)
        actions = []
        try:
            safe_extract(archive, staging)
            staged_binary = os.path.join(staging, os.path.relpath(self.binary, self.dest))
            if not (os.path.isfile(staged_binary) and not os.path.islink(staged_binary)):
                raise InstallError(
                    f"the tarball has no {os.path.relpath(self.binary, self.dest)}; its top entries: "
                    + ", ".join(sorted(os.listdir(staging))[:10])
                )
            own_tree(staging)
            found, line = self.run_version(staged_binary)
            if found != self.version:
                raise InstallError(f"the tarball's uv reports {line!r}, not uv {self.version}")
            if os.path.lexists(self.dest):
                aside = os.path.join(parent, f".{os.path.basename(self.dest)}.old-{secrets.token_hex(4)}")
                os.rename(self.dest, aside)
                try:
                    os.rename(staging, self.dest)
                except OSError:
                    os.rename(aside, self.dest)
                    raise
                try:
                    shutil.rmtree(aside)
                except OSError as exc:
                    self.module.warn(f"could not remove the previous {self.dest}, moved to {aside}: {exc}")
                actions.append(f"replaced {self.dest} (its binary was {previous})")
            else:
                os.rename(staging, self.dest)
            actions.append(f"installed uv {self.version} into {self.dest}")
            return actions
        finally:
            if os.path.lexists(staging):
                shutil.rmtree(staging, ignore_errors=True)

    def run(self) -> dict[str, Any]:
        if os.geteuid() != 0:
            self.fail("uv_install must run as root (become: true): the binary must be owned by root")
        missing = self.check_path()
        try:
            found, description = self.probe()
        except OSError as exc:
            self.fail(f"cannot inspect {self.binary}: {exc}")
        before = f"{self.binary}: {description}\n"
        after = f"{self.binary}: uv {self.version}\n"
        results: dict[str, Any] = {"changed": False, "version": found, "binary": self.binary, "actions": []}
        if found == self.version:
            if self.module._diff:
                results["diff"] = {"before": before, "after": before}
            return results

        results.update(changed=True, version=self.version)
        if self.module._diff:
            results["diff"] = {"before": before, "after": after}
        if self.module.check_mode:
            results["actions"] = [f"would download {self.safe_url} and install uv {self.version} into {self.dest}"]
            return results

        actions: list[str] = results["actions"]
        try:
            if self.params["ca_bundle"] and not os.path.isfile(self.params["ca_bundle"]):
                raise InstallError(f"ca_bundle {self.params['ca_bundle']} is not a file")
            expected = self.checksum
            if not expected:
                expected = self.published_checksum()
                actions.append(f"read the sha256 from {self.safe_url}.sha256")
            archive = os.path.join(self.module.tmpdir, "uv.tar.gz")
            actual = self.fetch(self.url, archive)
            if actual != expected:
                raise InstallError(
                    f"sha256 of {self.safe_url} does not match: expected {expected}, got {actual}; "
                    "nothing was installed"
                )
            actions.append(f"downloaded {self.safe_url} (sha256:{actual})")
            self.create_parents(missing)
            actions.extend(f"created {path}" for path in missing)
            actions.extend(self.install(archive, description))
        except InstallError as exc:
            self.fail(str(exc), changed=bool(self.created), actions=actions)
        except OSError as exc:
            msg = f"installing uv {self.version} into {self.dest} failed: {exc}"
            self.fail(msg, changed=bool(self.created), actions=actions)

        final, line = self.run_version(self.binary)
        if final != self.version:
            msg = f"{self.binary} reports {line!r} after the install, not uv {self.version}"
            self.fail(msg, changed=True, actions=actions)
        return results


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            version=dict(type="str", required=True),
            url=dict(type="str", required=True),
            checksum=dict(type="str", default=""),
            dest=dict(type="path", required=True),
            binary=dict(type="path", required=True),
            proxy_env=dict(type="dict", default={}, no_log=True),
            ca_bundle=dict(type="path"),
            timeout=dict(type="int", default=60),
            retries=dict(type="int", default=3),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**UvInstaller(module).run())


if __name__ == "__main__":
    main()
