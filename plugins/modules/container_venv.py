#!/usr/bin/python
# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

# Ansible's module shape puts the imports after DOCUMENTATION, EXAMPLES and RETURN.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
---
module: container_venv
short_description: Keep a uv project venv, made inside a container image, in step with that image
version_added: 0.1.0
description:
  - Keeps the virtual environment of a uv project directory on the host usable from inside a container
    image (the NGC PyTorch image on a DGX Spark), on top of the image's own C(torch).
  - Runs a standalone builder script inside the image (C(docker run --rm), as the project owner's uid:gid,
    project directory bind-mounted) to probe the venv, then compares the venv's stamp (image ID, repo digest,
    Python version, hash of C(pyproject.toml) and C(uv.lock), installed wheels) with the desired one.
  - When the stamp differs, there is no venv, or its interpreter does not run in the image, builds a new venv
    beside the live one (C(uv venv --system-site-packages) then C(uv sync)), installs the given wheels, verifies
    that C(torch) resolves to the image's site-packages and that the given modules import, then switches
    C(project_dir/.venv), a symlink to C(project_dir/.venvs/<id>), atomically.
  - A failed build removes only its own new directory; the previous venv stays live. Other files in
    O(project_dir) (notebooks, data) are never touched. A real C(.venv) directory in the way is moved into
    C(.venvs/), never deleted.
author:
  - sparkfleet maintainers (@sparkfleet)
requirements:
  - The C(docker) CLI on the managed host, allowed to run containers.
  - In the image, C(python3) >= 3.9 with C(torch) installed system-wide.
  - A C(uv) binary on the host built for the image's architecture (it is bind-mounted into the container).
attributes:
  check_mode:
    support: full
    description: Probes the venv (a read-only container run) and reports the pending action, its reasons and the
      diff without building.
  diff_mode:
    support: full
    description: Shows the venv's current stamp as C(before) and the desired stamp as C(after).
  idempotent:
    support: full
    description: A second run with the same image and project files finds a current stamp and changes nothing.
options:
  project_dir:
    description:
      - The uv project directory on the host; it must hold a C(pyproject.toml).
    type: path
    required: true
  container_project_dir:
    description:
      - Where O(project_dir) is mounted inside the container.
      - Defaults to O(project_dir), the same path as on the host, which keeps the venv's absolute paths valid
        both ways. Use the path the Jupyter container mounts the project at.
    type: path
  venv_name:
    description:
      - Name of the venv symlink inside the project directory.
    type: str
    default: .venv
  image:
    description:
      - Image to run the builder in, as a reference (C(nvcr.io/nvidia/pytorch:25.11-py3)) or an image ID.
      - The image must already be present; it is never pulled.
    type: str
    required: true
  image_id:
    description:
      - ID of O(image) (C(sha256:...), or a short ID of at least 12 hex digits), as the image role found it.
      - The module checks that O(image) has this ID, and records the full ID in the stamp; a venv stamped with
        another ID is recreated.
    type: str
    required: true
  repo_digest:
    description:
      - Repository digest of O(image), recorded in the stamp and compared like O(image_id).
    type: str
  user:
    description:
      - Numeric C(uid:gid) the container runs as, so every file it writes belongs to that user.
      - Defaults to the owner and group of O(project_dir).
    type: str
  uv_binary:
    description:
      - Path of the C(uv) binary on the host, mounted read-only into the container.
    type: path
    required: true
  uv_cache_dir:
    description:
      - Host directory used as the uv cache (mounted read-write, C(UV_CACHE_DIR)); it must exist and be writable
        by O(user). It makes recreating a venv fast.
      - Without it uv caches inside the container, which is thrown away.
    type: path
  wheels:
    description:
      - Wheel files on the host installed into the venv after C(uv sync), with C(uv pip install --no-deps)
        (for example an C(xformers) wheel built for this image and GPU). Each is mounted read-only.
      - Their file names are part of the stamp.
    type: list
    elements: path
    default: []
  no_install_packages:
    description:
      - Packages C(uv sync) locks but does not install (C(--no-install-package)), typically those given as
        O(wheels).
    type: list
    elements: str
    default: []
  verify_imports:
    description:
      - Modules that must import in the new venv before it goes live (for example C(xformers)).
      - C(torch) is always checked, and must resolve to the image's own site-packages with the image's version.
    type: list
    elements: str
    default: []
  image_replace_allowed:
    description:
      - Distributions of the image the venv may install its own copy of (canonical or plain names).
      - The project's C(pyproject.toml) is expected to block every other one of the image's distributions
        (C([tool.uv] override-dependencies)); a new venv that still shadows one outside this list fails its
        verification, and stays out of use.
    type: list
    elements: str
    default: []
  ca_bundle:
    description:
      - CA certificate bundle on the host for HTTPS inside the container (labs behind a TLS-inspecting proxy,
        test beds). Mounted read-only; C(SSL_CERT_FILE), C(REQUESTS_CA_BUNDLE), C(PIP_CERT) and C(GIT_SSL_CAINFO)
        point to it.
    type: path
  proxy_env:
    description:
      - Environment variables for the container, typically C(HTTP_PROXY), C(HTTPS_PROXY), C(NO_PROXY) and their
        lower-case forms.
      - Values go through the environment of the C(docker) process (C(docker run -e NAME)), never on a command
        line. The option is not C(no_log) (that would mask every occurrence of values such as C(localhost)); the
        password of a C(http://user:password@proxy) URL is hidden from the module's output instead.
    type: dict
    default: {}
  network:
    description:
      - Docker network for the container (C(docker run --network)), for example C(host) when the proxy listens
        on the host's loopback.
    type: str
  python:
    description:
      - Interpreter inside the image that runs the builder; the venv is created from it.
    type: str
    default: python3
  pyproject_content:
    description:
      - The content C(pyproject.toml) will have once this run's earlier tasks are applied (the workspace role
        passes its rendered template). The lock hash of the desired stamp is computed from it instead of the file,
        so check mode predicts the rebuild a pending template change implies, and does not predict one for a hand
        edit that the template is about to revert. Outside check mode the file already has this content.
    type: str
  force:
    description:
      - Rebuild the venv even when its stamp is current.
    type: bool
    default: false
notes:
  - In check mode, a missing image, project directory, C(pyproject.toml), uv binary or wheel (which earlier tasks
    would have provided) is reported as a pending change, not as an error.
  - The venv lives in C(project_dir/.venvs/venv-<time>-<random>) and C(project_dir/.venv) is a relative symlink
    to it; Jupyter kernelspecs pointing at C(.venv/bin/python) survive every rebuild.
  - The builder script is the collection's C(plugins/module_utils/_venv_builder.py). It runs on any Python with
    torch, outside Docker too (C(python3 _venv_builder.py probe --project DIR)), and has a C(build-wheel)
    subcommand for wheels such as C(xformers).
seealso:
  - name: uv projects
    description: How C(uv sync) uses C(UV_PROJECT_ENVIRONMENT) and C(override-dependencies).
    link: https://docs.astral.sh/uv/concepts/projects/config/
"""

EXAMPLES = r"""
- name: Keep the project venv in step with the NGC image
  sparkfleet.spark.container_venv:
    project_dir: /home/spark/spark-project
    image: nvcr.io/nvidia/pytorch:25.11-py3
    image_id: "{{ ngc_image_id }}"
    repo_digest: "{{ ngc_image_repo_digest }}"
    uv_binary: /usr/local/bin/uv
    uv_cache_dir: /home/spark/.cache/uv
    wheels:
      - /var/cache/sparkfleet/wheels/xformers-0.0.33+sm121-cp312-cp312-linux_aarch64.whl
    no_install_packages: [xformers]
    verify_imports: [xformers, unsloth]
  register: workspace_venv

- name: Behind a corporate proxy with its own CA
  sparkfleet.spark.container_venv:
    project_dir: /home/spark/spark-project
    image: "{{ ngc_image_id }}"
    image_id: "{{ ngc_image_id }}"
    uv_binary: /usr/local/bin/uv
    ca_bundle: /etc/ssl/certs/ca-certificates.crt
    proxy_env:
      HTTPS_PROXY: http://proxy.lab.example:3128
      NO_PROXY: localhost,127.0.0.1
"""

RETURN = r"""
action:
  description: What was done (or, in check mode, would be done) with the venv.
  returned: always
  type: str
  choices: [none, create, recreate, repair]
  sample: recreate
reasons:
  description: Why the venv was (or would be) built; empty when it is current.
  returned: always
  type: list
  elements: str
  sample: ["image_id changed: sha256:3ad3... \u2192 sha256:1624..."]
stamp:
  description:
    - Stamp of the live venv after the run (C(sparkfleet-stamp.json) in the venv). In check mode, the stamp a
      build would write; null when there is no venv and nothing was built.
    - Besides the compared keys it holds C(venv_id), C(built_at), C(torch) and C(script_version).
  returned: always
  type: dict
  sample:
    image_id: sha256:162400951df1
    repo_digest: null
    python_version: 3.11.2
    lock_hash: sha256:2f27...
    wheels: []
venv_path:
  description: Path of the venv symlink on the host.
  returned: always
  type: str
  sample: /home/spark/spark-project/.venv
venv_target:
  description: Directory the venv symlink points to after the run, as a host path; null when there is none.
  returned: always
  type: str
  sample: /home/spark/spark-project/.venvs/venv-20251125T160616Z-f87688e0
system_torch:
  description: The image's own torch as the probe found it.
  returned: always
  type: dict
  sample: {version: 2.9.0a0+145a3a7bda.nv25.10, file: /usr/local/lib/python3.12/dist-packages/torch/__init__.py}
shadowed:
  description:
    - The image's distributions the live venv installs a copy of, name to C(venv) and C(image) versions, read
      from the venv's metadata after the run (in check mode, of the venv in place).
  returned: always
  type: dict
  sample: {tornado: {venv: 6.5.2, image: 6.4.1}}
missing:
  description:
    - Requirements nothing in the new venv or the image provides (for example C(torchvision) on an image without
      it, blocked by the overrides). Reported with a warning; the build does not fail for them.
  returned: when a venv was built
  type: list
  elements: dict
actions:
  description: Steps taken, in order.
  returned: always
  type: list
  elements: str
  sample: ["building a new venv in .venvs/venv-20251125T160616Z-f87688e0", "uv sync", "switched .venv to ..."]
stage:
  description:
    - On failure, the stage that failed.
    - One of C(prepare), C(lock), C(venv), C(sync), C(wheels), C(check), C(verify), C(stamp), C(swap), C(internal),
      C(docker run).
    - C(check) is the comparison of every requirement of the project and of the venv's distributions with the
      version C(import) loads (the venv's, else the image's); its message names both packages and the remedy.
  returned: failed
  type: str
  sample: sync
log_tail:
  description: On failure, the last lines of the failing tool's output.
  returned: failed
  type: list
  elements: str
"""

import os
import stat
from typing import Any, NoReturn

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.spark.plugins.module_utils import _userspace
from ansible_collections.sparkfleet.spark.plugins.module_utils._container_venv import (
    build_args,
    builder_source,
    checked_shadowed,
    desired_stamp,
    docker_run_argv,
    parse_result,
    plan,
    probe_args,
    same_image_id,
    stamp_subset,
    url_password,
)
from ansible_collections.sparkfleet.spark.plugins.module_utils._venv_builder import STAMP_FILE, lock_hash_of

# uv.lock of a large project is a few MiB; anything beyond this is not a lock uv wrote.
UV_LOCK_LIMIT = 64 * 1024 * 1024


def _tail(text: str, lines: int = 20) -> list[str]:
    return (text or "").strip().splitlines()[-lines:]


class ContainerVenvManager:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        for value in self.params["proxy_env"].values():
            secret = url_password(str(value))
            if secret:
                module.no_log_values.add(secret)
        self.project_dir: str = self.params["project_dir"]
        self.container_project_dir: str = self.params["container_project_dir"] or self.project_dir
        self.venv_name: str = self.params["venv_name"]
        self.venv_path = os.path.join(self.project_dir, self.venv_name)
        self.image_id: str = self.params["image_id"]  # the full ID once the image is inspected
        self.user = ""
        self.script = ""
        self.check_values()
        self.docker = module.get_bin_path("docker", required=True)

    def fail(self, msg: str, **kwargs: Any) -> NoReturn:
        self.module.fail_json(msg=msg, venv_path=self.venv_path, **kwargs)
        raise SystemExit(1)  # not reached: fail_json exits (its annotation does not say so)

    def check_values(self) -> None:
        """Values that are wrong whatever the state of the host."""
        p = self.params
        if "/" in self.venv_name or self.venv_name in ("", ".", "..", ".venvs"):
            self.fail(f"venv_name {self.venv_name!r} must be a plain name such as .venv")
        if p["user"] and not all(part.isdigit() for part in p["user"].split(":", 1)):
            self.fail(f"user must be a numeric uid:gid (names do not resolve inside the image), got {p['user']!r}")
        names = set()
        for wheel in p["wheels"]:
            if not wheel.endswith(".whl"):
                self.fail(f"wheel {wheel} is not a .whl file")
            if os.path.basename(wheel) in names:
                self.fail(f"two wheels share the file name {os.path.basename(wheel)}")
            names.add(os.path.basename(wheel))

    def missing_inputs(self) -> tuple[list[str], list[str]]:
        """(what stops a probe, what stops only a build) among the files and the image.

        In check mode, earlier tasks (the image pull, the project template, the uv install,
        the wheel build) have not run either: their absence means "would change", not an error.
        """
        p = self.params
        blocking, for_build = [], []
        # The project belongs to its user: looked at without following links (_userspace).
        try:
            project = _userspace.lstat(self.project_dir)
            pyproject = _userspace.lstat(os.path.join(self.project_dir, "pyproject.toml")) if project else None
        except (_userspace.UnsafePath, OSError) as exc:
            self.fail(f"project_dir {self.project_dir}: {exc}")
        if project is None:
            blocking.append(f"project_dir {self.project_dir} does not exist")
        elif not stat.S_ISDIR(project.st_mode):
            self.fail(f"project_dir {self.project_dir} is not a directory (a link is never followed)")
        elif pyproject is None or not stat.S_ISREG(pyproject.st_mode):
            blocking.append(f"project_dir {self.project_dir} has no pyproject.toml")
        if not (os.path.isfile(p["uv_binary"]) and os.access(p["uv_binary"], os.X_OK)):
            for_build.append(f"uv_binary {p['uv_binary']} is not an executable file")
        if p["uv_cache_dir"] and not os.path.isdir(p["uv_cache_dir"]):
            for_build.append(f"uv_cache_dir {p['uv_cache_dir']} is not a directory")
        if p["ca_bundle"] and not os.path.isfile(p["ca_bundle"]):
            for_build.append(f"ca_bundle {p['ca_bundle']} is not a file")
        for wheel in p["wheels"]:
            if not os.path.isfile(wheel):
                for_build.append(f"wheel {wheel} does not exist")
        rc, out, err = self.module.run_command([self.docker, "image", "inspect", "--format", "{{.Id}}", p["image"]])
        self.image_id = out.strip() if rc == 0 else p["image_id"]
        if rc != 0:
            blocking.append(f"image {p['image']} is not present: {' '.join(_tail(err, 1))}")
        elif not same_image_id(self.image_id, p["image_id"]):
            blocking.append(f"image {p['image']} has ID {self.image_id}, not image_id {p['image_id']}")
        return blocking, for_build

    def owner_of(self, path: str) -> str:
        st = _userspace.lstat(path)
        if st is None or not stat.S_ISDIR(st.st_mode) or st.st_uid == 0:
            self.fail(f"give user: {path} is not a directory owned by a non-root user")
        return f"{st.st_uid}:{st.st_gid}"

    def venv_id(self) -> str | None:
        """The build the venv link names, read on the host with readlink (never followed)."""
        try:
            return _userspace.venv_id_of_link(_userspace.read_link(self.venv_path))
        except (_userspace.UnsafePath, OSError):
            return None

    def build_dir(self) -> str | None:
        build_id = self.venv_id()
        return os.path.join(self.project_dir, ".venvs", build_id) if build_id else None

    def host_stamp(self) -> dict[str, Any] | None:
        """The live venv's checked stamp read on the host (for a diff when the image cannot run)."""
        build_id = self.venv_id()
        if build_id is None:
            return None
        raw, _why = _userspace.read_json(
            os.path.join(self.project_dir, ".venvs", build_id, STAMP_FILE), _userspace.STAMP_LIMIT
        )
        stamp, problems = _userspace.checked_stamp(raw, build_id)
        return stamp if raw and not problems else None

    def lock_hash(self, pyproject: str) -> str | None:
        """lock_hash_of the pyproject this run writes and the project's uv.lock, read without following links."""
        try:
            uv_lock = _userspace.read_file(os.path.join(self.project_dir, "uv.lock"), UV_LOCK_LIMIT)
        except (_userspace.UnsafePath, OSError) as exc:
            self.fail(f"uv.lock in {self.project_dir} cannot be read safely: {exc}")
        return lock_hash_of(pyproject.encode("utf-8"), uv_lock)

    def write_script(self) -> str:
        path = os.path.join(self.module.tmpdir, "sparkfleet_venv_builder.py")
        with open(path, "wb") as handle:
            handle.write(builder_source())
        # Read by the container's user, which is not the user running this module.
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
        return path

    def run_builder(self, args: list[str], with_build_mounts: bool) -> tuple[dict[str, Any] | None, int, str, str]:
        p = self.params
        argv = docker_run_argv(
            self.docker,
            p["image"],
            user=self.user,
            project_dir=self.project_dir,
            container_project_dir=self.container_project_dir,
            script=self.script,
            args=args,
            uv_binary=p["uv_binary"] if with_build_mounts else None,
            uv_cache_dir=p["uv_cache_dir"] if with_build_mounts else None,
            wheels=p["wheels"] if with_build_mounts else (),
            ca_bundle=p["ca_bundle"] if with_build_mounts else None,
            pass_env=sorted(p["proxy_env"]) if with_build_mounts else (),
            env=None if with_build_mounts else {"PYTHONDONTWRITEBYTECODE": "1"},
            # The probe runs the venv's interpreter (the user's code) and needs no network.
            network=p["network"] if with_build_mounts else "none",
            python=p["python"],
        )
        environ = {name: str(value) for name, value in p["proxy_env"].items()} if with_build_mounts else {}
        rc, out, err = self.module.run_command(argv, environ_update=environ)
        return parse_result(out), rc, out, err

    def probe(self) -> dict[str, Any]:
        result, rc, out, err = self.run_builder(probe_args(self.container_project_dir, self.venv_name), False)
        if result is None or rc != 0 or result.get("failed"):
            detail = (result or {}).get("msg") or " | ".join(_tail(err, 5)) or "no output"
            self.fail(
                f"probing the venv in image {self.params['image']} failed (exit {rc}): {detail}",
                stdout_lines=_tail(out),
                stderr_lines=_tail(err),
            )
        return result

    def host_path(self, path: str | None) -> str | None:
        """A path the builder reported (inside the container) as seen on the host."""
        cpd = self.container_project_dir.rstrip("/")
        if path and cpd != self.project_dir.rstrip("/") and (path == cpd or path.startswith(cpd + "/")):
            return self.project_dir.rstrip("/") + path[len(cpd) :]
        return path

    def pending(self, reasons: list[str]) -> dict[str, Any]:
        """Check mode, when the venv cannot be probed yet: it will be built."""
        p = self.params
        before = self.host_stamp()
        after = {
            "image_id": p["image_id"],
            "repo_digest": p["repo_digest"] or None,
            "python_version": (before or {}).get("python_version"),
            "lock_hash": None,
            "wheels": sorted(os.path.basename(w) for w in p["wheels"]),
        }
        action = "recreate" if os.path.lexists(self.venv_path) else "create"
        results: dict[str, Any] = {
            "changed": True,
            "action": action,
            "reasons": reasons,
            "venv_path": self.venv_path,
            "venv_target": None,
            "system_torch": None,
            "stamp": after,
            "shadowed": {},
            "actions": [f"would {action} venv {self.venv_name}: " + "; ".join(reasons)],
        }
        if self.module._diff:
            results["diff"] = {"before": stamp_subset(before), "after": after}
        return results

    def run(self) -> dict[str, Any]:
        p = self.params
        blocking, for_build = self.missing_inputs()
        if blocking:
            if self.module.check_mode:
                return self.pending(blocking)
            self.fail("; ".join(blocking))
        self.user = p["user"] or self.owner_of(self.project_dir)
        self.script = self.write_script()
        probe = self.probe()
        venv = probe.get("venv") or {}
        if p["pyproject_content"] is not None:
            probe = dict(probe, lock_hash=self.lock_hash(p["pyproject_content"]))
        # The probe ran the user's interpreter: its report is the user's word. The link is
        # read again here, and the stamp must pass _userspace's checks to count as current.
        altered: list[str] = []
        if venv.get("exists"):
            checked, altered = _userspace.checked_stamp(venv.get("stamp"), self.venv_id())
            if venv.get("stamp"):
                venv = dict(venv, stamp=checked)
        desired = desired_stamp(self.image_id, p["repo_digest"], p["wheels"], probe)
        decision = plan(desired, probe, force=p["force"], altered=altered)
        action, reasons = decision["action"], decision["reasons"]
        results: dict[str, Any] = {
            "changed": action != "none",
            "action": action,
            "reasons": reasons,
            "venv_path": self.venv_path,
            "venv_target": self.build_dir(),
            "system_torch": probe.get("system_torch"),
            "stamp": venv.get("stamp"),
            "shadowed": checked_shadowed(venv.get("shadowed")),
            "actions": [],
        }
        if self.module._diff:
            results["diff"] = {"before": stamp_subset(venv.get("stamp")), "after": desired}
        if action == "none":
            return results
        if self.module.check_mode:
            for problem in for_build:
                self.module.warn(f"a build would need: {problem}")
            results["stamp"] = desired
            results["actions"] = [f"would {action} venv {self.venv_name}: " + "; ".join(reasons)]
            return results
        if for_build:
            self.fail(f"cannot {action} the venv ({'; '.join(reasons)}): " + "; ".join(for_build))

        build_stamp = {key: desired[key] for key in ("image_id", "repo_digest", "wheels")}
        args = build_args(
            self.container_project_dir,
            self.venv_name,
            build_stamp,
            wheels=p["wheels"],
            no_install_packages=p["no_install_packages"],
            verify_imports=p["verify_imports"],
            allow_replace=p["image_replace_allowed"],
        )
        result, rc, _out, err = self.run_builder(args, True)
        if result is None or rc != 0 or result.get("failed"):
            result = result or {}
            kept = (
                f"the previous venv ({self.venv_name} -> {self.host_path(venv.get('target'))}) is still in place"
                if venv.get("exists")
                else "no venv was in place before, none was created"
            )
            self.fail(
                f"building the venv ({action}) failed at stage {result.get('stage', 'docker run')}: "
                f"{result.get('msg') or ' | '.join(_tail(err, 5)) or 'no output'}; {kept}",
                action=action,
                reasons=reasons,
                stage=result.get("stage", "docker run"),
                log_tail=result.get("log_tail") or _tail(err),
                changed=False,
            )
        for problem in result.get("cleanup_errors") or []:
            self.module.warn(f"could not remove a superseded venv: {problem}")
        missing = [
            {"by": str(item.get("by", "?"))[:200], "requirement": str(item.get("requirement", "?"))[:200]}
            for item in (result.get("missing") or [])[:50]
            if isinstance(item, dict)
        ]
        for item in missing:
            self.module.warn(
                f"{item['by']} requires {item['requirement']}, which neither the venv nor the image provides "
                "(blocked by override-dependencies, absent from the image)"
            )
        results.update(shadowed=checked_shadowed(result.get("shadowed")), missing=missing)
        # The build ran the project's own build steps as its user: its report is read back
        # from the host instead (the link and the checked stamp).
        results.update(stamp=self.host_stamp(), venv_target=self.build_dir(), actions=result.get("actions", []))
        if results["stamp"] is None:
            self.fail("the build reported success, but the venv link or its stamp on the host did not pass the checks")
        if result.get("moved_aside"):
            moved = self.host_path(result["moved_aside"])
            self.module.warn(f"the existing {self.venv_name} was not a symlink; it was moved to {moved}")
        return results


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            project_dir=dict(type="path", required=True),
            container_project_dir=dict(type="path"),
            venv_name=dict(type="str", default=".venv"),
            image=dict(type="str", required=True),
            image_id=dict(type="str", required=True),
            repo_digest=dict(type="str"),
            user=dict(type="str"),
            uv_binary=dict(type="path", required=True),
            uv_cache_dir=dict(type="path"),
            wheels=dict(type="list", elements="path", default=[]),
            no_install_packages=dict(type="list", elements="str", default=[]),
            verify_imports=dict(type="list", elements="str", default=[]),
            image_replace_allowed=dict(type="list", elements="str", default=[]),
            ca_bundle=dict(type="path"),
            proxy_env=dict(type="dict", default={}, no_log=False),
            network=dict(type="str"),
            python=dict(type="str", default="python3"),
            pyproject_content=dict(type="str"),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**ContainerVenvManager(module).run())


if __name__ == "__main__":
    main()
