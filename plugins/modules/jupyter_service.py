#!/usr/bin/python
# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

# Ansible's module shape puts the imports after DOCUMENTATION, EXAMPLES and RETURN.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
---
module: jupyter_service
short_description: Reconcile a project's Jupyter Lab service - token, unit, systemd state - in one task
version_added: 0.2.0
description:
  - Reads in one go the image's ID (C(docker image inspect)), the project's venv (the C(.venv) link and its stamp, read
    without following links, as M(sparkfleet.spark.venv_info) does), the unit file, the token file's mode and owner
    (never its content), and the unit's state in systemd (C(systemctl show)). Only when the unit does not already run
    this image and this venv, it runs the venv's interpreter in the image (as the project user, C(--network none), the
    project mounted read-only) to learn the JupyterLab version and where its assets are.
  - Compares that with what is wanted in a pure function (C(plan)), and applies only the difference - create the
    root-only token directory, generate the token, narrow its mode, write the unit, C(daemon-reload), restart (only when
    the unit or the token changed), enable, start - then waits until C(/api/status) answers with the token.
  - The unit's text comes from the role's template, rendered with placeholders for the three values this module
    discovers (see O(unit)); the module fills them in, compares bytes, and writes atomically (root, 0644).
  - The token (32 random bytes, hex) is made on the host, written 0600 root through a temporary file and a rename,
    and never returned, logged or put on a command line.
author:
  - sparkfleet maintainers (@sparkfleet)
attributes:
  check_mode:
    support: full
    description: Writes nothing; reports the actions a real run would take. Without the Docker socket, the image or the
      venv, reports that the service would be set up (changed).
  diff_mode:
    support: full
    description: The unit's text before and after.
  idempotent:
    support: full
options:
  name:
    description: The unit's and the container's name (without C(.service)).
    type: str
    required: true
  unit:
    description:
      - The unit's text with three placeholders - C(@SPARKFLEET_IMAGE_ID@) (twice - the C(Environment=) line and the
        image C(docker run) starts), C(@SPARKFLEET_VENV_ID@) (once), and C(@SPARKFLEET_JUPYTERLAB_DIR@) (once, on a
        line of its own, removed when JupyterLab's assets need no directory).
    type: str
    required: true
  unit_path:
    description: Where the unit is written; default C(/etc/systemd/system/<name>.service).
    type: path
  image:
    description: The image reference the service runs (by its ID).
    type: str
    required: true
  project_dir:
    description: The project directory (absolute, normalized); its C(.venv) link names the venv.
    type: path
    required: true
  uid:
    description: The project user's uid; the probe container runs as uid:gid.
    type: int
    required: true
  gid:
    description: The project user's gid.
    type: int
    required: true
  token_file:
    description: The env file holding C(JUPYTER_TOKEN); its directory is made root-only (0700).
    type: path
    required: true
  docker:
    description: The docker CLI.
    type: path
    default: /usr/bin/docker
  docker_socket:
    description: The engine's socket; without it (check mode on a host whose engine is not installed yet) nothing is
      asked.
    type: path
    default: /var/run/docker.sock
  probe_url:
    description: Where the host reaches the server, e.g. C(http://127.0.0.1:8888).
    type: str
    required: true
  start_timeout:
    description: Seconds to wait for C(/api/status); on timeout the task fails with the last 40 lines of the journal.
    type: int
    default: 120
  venv_pending:
    description: Check mode only - the workspace role would build a new venv, so the unit would change and the service
      restart.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Enable and start the service
  sparkfleet.spark.jupyter_service:
    name: sparkfleet-jupyter-spark-project
    unit: "{{ lookup('ansible.builtin.template', 'jupyter.service.j2', template_vars=jupyter_unit_placeholders) }}"
    image: nvcr.io/nvidia/pytorch:25.11-py3
    project_dir: /home/spark/spark-project
    uid: 1000
    gid: 1000
    token_file: /etc/sparkfleet/jupyter/spark-project.env
    probe_url: http://127.0.0.1:8888
"""

RETURN = r"""
actions:
  description: What was done (or, in check mode, would be), in order.
  returned: always
  type: list
  elements: str
  sample: [write_unit, daemon_reload, restart]
image_id:
  description: The image's ID; null when there is none.
  returned: always
  type: str
venv_id:
  description: The venv build the project's link names; null when the venv is not usable.
  returned: always
  type: str
jupyterlab_dir:
  description: The JupyterLab assets directory the unit passes (JUPYTERLAB_DIR), or "".
  returned: always
  type: str
probed:
  description: Whether the JupyterLab probe container ran (it does not when the unit already runs this image and venv).
  returned: always
  type: bool
token:
  description: The token file's state before this run - never its content.
  returned: always
  type: dict
  sample: {exists: true, private: true}
service:
  description: The unit's state in systemd before this run.
  returned: always
  type: dict
  sample: {enabled: true, active: true, need_daemon_reload: false}
msg:
  description: In check mode, what would be set up or restarted.
  returned: sometimes
  type: str
"""

import contextlib
import os
import re
import secrets
import stat
import tempfile
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url
from ansible_collections.sparkfleet.spark.plugins.module_utils import _userspace
from ansible_collections.sparkfleet.spark.plugins.module_utils._path_policy import plain_path_ok
from ansible_collections.sparkfleet.spark.plugins.module_utils._venv_info import read_venv

IMAGE_PLACEHOLDER = "@SPARKFLEET_IMAGE_ID@"
VENV_PLACEHOLDER = "@SPARKFLEET_VENV_ID@"
LAB_DIR_PLACEHOLDER = "@SPARKFLEET_JUPYTERLAB_DIR@"
# How often each placeholder must appear in the unit's text.
PLACEHOLDER_COUNTS = {IMAGE_PLACEHOLDER: 2, VENV_PLACEHOLDER: 1, LAB_DIR_PLACEHOLDER: 1}

IMAGE_ID_RE = re.compile(r"sha256:[0-9a-f]{64}")
UNIT_LIMIT = 1024 * 1024
TOKEN_LIMIT = 64 * 1024
ENABLED_STATES = {"enabled", "enabled-runtime", "static", "alias", "indirect", "generated"}
RUNNING_STATES = {"active", "activating", "reloading"}
JOURNAL_LINES = 40

# Run by the venv's interpreter. Line 1: the version of the JupyterLab it imports (empty when
# none). Line 2: JupyterLab's application directory when the venv's own (under sys.prefix) has
# no assets: the one the installed jupyterlab distribution shipped, e.g. /usr/local/share/jupyter/lab.
LAB_DIR_PROBE = """\
import os
from importlib.metadata import files, version
try:
    from jupyterlab.commands import get_app_dir
except Exception:
    print(''); print(''); raise SystemExit(0)
print(version('jupyterlab'))
marker = 'share/jupyter/lab/static/package.json'
found = [f for f in files('jupyterlab') or [] if str(f).replace(os.sep, '/').endswith(marker)]
own = os.path.isdir(os.path.join(get_app_dir(), 'static'))
print('' if own or not found else os.path.realpath(os.path.dirname(os.path.dirname(found[0].locate()))))"""

# The unit passes `--ServerApp.*` options: a JupyterLab on Jupyter Server (3 or later).
LAB_VERSION_OK = re.compile(r"^([3-9]|[1-9][0-9]+)[.]")


class ServiceError(Exception):
    """A failure whose message is safe to show (it never holds the token)."""


# ---------------------------------------------------------------------------------------------
# The pure part: what to do, from what is and what is wanted
# ---------------------------------------------------------------------------------------------


def plan(current: dict[str, Any], desired: dict[str, Any]) -> list[str]:
    """The actions, in order, that take `current` to `desired`.

    current: token_dir ('ok' | 'missing' | 'wrong': not root's 0700), token ('ok' | 'missing' |
      'wrong_mode'), unit (the unit file's text or None), enabled, active, need_daemon_reload (bools).
    desired: unit (the text to write, or None when it cannot be known yet: check mode before the
      image is pulled or the venv built), venv_pending (check mode: the workspace role would
      build a new venv).
    """
    actions: list[str] = []
    if current["token_dir"] != "ok":
        actions.append("token_dir")
    if current["token"] == "missing":
        actions.append("write_token")
    elif current["token"] == "wrong_mode":
        actions.append("fix_token_mode")
    unit_changes = desired["unit"] is None or desired["venv_pending"] or desired["unit"] != current["unit"]
    if unit_changes:
        actions.append("write_unit")
    if unit_changes or current["need_daemon_reload"]:
        actions.append("daemon_reload")
    if not current["enabled"]:
        actions.append("enable")
    if unit_changes or "write_token" in actions:
        actions.append("restart")
    elif not current["active"]:
        actions.append("start")
    return actions


def fill_unit(template: str, image_id: str, venv_id: str, lab_dir: str) -> str:
    """The unit's text with the discovered values in place of the placeholders."""
    lines = []
    for line in template.splitlines(keepends=True):
        if LAB_DIR_PLACEHOLDER in line:
            if not lab_dir:
                continue
            line = line.replace(LAB_DIR_PLACEHOLDER, lab_dir)
        lines.append(line.replace(IMAGE_PLACEHOLDER, image_id).replace(VENV_PLACEHOLDER, venv_id))
    return "".join(lines)


def placeholder_problem(template: str) -> str:
    for placeholder, count in PLACEHOLDER_COUNTS.items():
        found = template.count(placeholder)
        if found != count:
            return f"the unit's text holds {placeholder} {found} times, not {count}"
    return ""


def unit_runs(unit: str | None, image_id: str, venv_id: str) -> bool:
    """Whether the unit on the host was written for this image and this venv."""
    return (
        unit is not None
        and re.search(rf"(?m)^Environment=SPARKFLEET_IMAGE_ID={re.escape(image_id)}$", unit) is not None
        and re.search(rf"(?m)^Environment=SPARKFLEET_VENV_ID={re.escape(venv_id)}$", unit) is not None
    )


def lab_dir_of_unit(unit: str) -> str:
    found = re.findall(r"--env JUPYTERLAB_DIR=([^ ]+)", unit)
    return found[0] if found else ""


def probe_answer(stdout: str, image: str) -> str:
    """The assets directory from the probe's two lines; ServiceError for a JupyterLab before 3."""
    lines = stdout.splitlines()
    version = (lines[0] if lines else "").strip()[:40]
    if not LAB_VERSION_OK.match(version):
        found = f"JupyterLab {version}, which predates Jupyter Server (3.0)" if version else "no JupyterLab"
        raise ServiceError(
            f"The venv's Python in {image} finds {found}: the service cannot start it. Keep "
            "workspace_jupyter_dependencies (default jupyterlab==4.6.6 and ipykernel==7.4.0) so that the venv has its "
            "own, or use an image with JupyterLab 3 or later."
        )
    return (lines[1] if len(lines) > 1 else "").strip()


def systemd_state(show: str) -> dict[str, bool]:
    """enabled, active, need_daemon_reload from `systemctl show` output (KEY=VALUE lines)."""
    props = dict(line.split("=", 1) for line in show.splitlines() if "=" in line)
    return {
        "enabled": props.get("UnitFileState", "") in ENABLED_STATES,
        "active": props.get("ActiveState", "") in RUNNING_STATES,
        "need_daemon_reload": props.get("NeedDaemonReload", "no") == "yes",
    }


# ---------------------------------------------------------------------------------------------
# Reading and writing on the host
# ---------------------------------------------------------------------------------------------


def root_owned(st: os.stat_result, mode: int) -> bool:
    return st.st_uid == 0 and st.st_gid == 0 and stat.S_IMODE(st.st_mode) == mode


def token_dir_state(path: str) -> str:
    st = _userspace.lstat(path)
    if st is None:
        return "missing"
    if not stat.S_ISDIR(st.st_mode):
        raise ServiceError(f"{path} is not a directory (a link is never followed): remove it, or set jupyter_token_dir")
    return "ok" if root_owned(st, 0o700) else "wrong"


def token_state(path: str) -> str:
    st = _userspace.lstat(path)
    if st is None or not stat.S_ISREG(st.st_mode):
        # Anything but a regular file (a link, a FIFO) is replaced by the rename, never followed.
        return "missing"
    return "ok" if root_owned(st, 0o600) else "wrong_mode"


def read_unit(path: str) -> str | None:
    data = _userspace.read_file(path, UNIT_LIMIT)
    return None if data is None else data.decode("utf-8", errors="replace")


def write_private(path: str, data: bytes, mode: int) -> None:
    """Write root's file at path through a temporary file in its directory and a rename."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=f".{os.path.basename(path)}.")
    try:
        os.fchmod(fd, mode)
        os.fchown(fd, 0, 0)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def make_token_dir(path: str) -> None:
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    own_by_root(path, 0o700, os.O_DIRECTORY)


def write_token(path: str) -> None:
    try:
        write_private(path, f"JUPYTER_TOKEN={secrets.token_hex(32)}\n".encode(), 0o600)
    except OSError as exc:
        raise ServiceError(
            f"Writing the Jupyter token to {path} failed: {exc}. Check that {os.path.dirname(path)} is a root-owned "
            "directory on a writable file system."
        ) from None


def own_by_root(path: str, mode: int, flags: int = os.O_NONBLOCK) -> None:
    """root:root and `mode` on `path` itself, never through a link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | flags)
    try:
        os.fchown(fd, 0, 0)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def fix_token_mode(path: str) -> None:
    own_by_root(path, 0o600)


def read_token(path: str) -> str:
    data = _userspace.read_file(path, TOKEN_LIMIT) or b""
    found = re.search(rb"(?m)^JUPYTER_TOKEN=(.*)$", data)
    return found.group(1).decode("ascii", errors="replace") if found else ""


def api_answers(url: str, token: str) -> bool:
    try:
        response = open_url(f"{url}/api/status", headers={"Authorization": f"token {token}"}, timeout=5)
        return bool(response.getcode() == 200)
    except Exception:  # refused, reset, 403 while starting: try again
        return False


class JupyterService:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.p = module.params
        self.unit_path: str = self.p["unit_path"] or f"/etc/systemd/system/{self.p['name']}.service"
        self.result: dict[str, Any] = {
            "changed": False,
            "actions": [],
            "image_id": None,
            "venv_id": None,
            "jupyterlab_dir": "",
            "probed": False,
        }

    def run_checked(self, argv: list[str], what: str) -> str:
        rc, out, err = self.module.run_command(argv)
        if rc != 0:
            raise ServiceError(f"{what} failed (exit {rc}): {(err or out).strip()[-400:]}")
        return str(out)

    def image_id(self) -> str | None:
        docker = self.p["docker"]
        if not os.path.exists(self.p["docker_socket"]) or not os.path.exists(docker):
            return None
        rc, out, _ = self.module.run_command([docker, "image", "inspect", "--format", "{{.Id}}", self.p["image"]])
        image_id = out.strip()
        return image_id if rc == 0 and IMAGE_ID_RE.fullmatch(image_id) else None

    def probe_lab_dir(self, image_id: str) -> str:
        project, python = self.p["project_dir"], os.path.join(self.p["project_dir"], ".venv", "bin", "python")
        argv = [self.p["docker"], "run", "--rm", "--network", "none", "--user", f"{self.p['uid']}:{self.p['gid']}"]
        argv += ["--env", "HOME=/tmp", "--mount", f"type=bind,source={project},target={project},readonly"]
        argv += ["--entrypoint", python, image_id, "-c", LAB_DIR_PROBE]
        self.result["probed"] = True
        out = self.run_checked(argv, f"Asking the venv's Python in {self.p['image']} for its JupyterLab")
        return probe_answer(out, self.p["image"])

    def read(self) -> dict[str, Any]:
        token_file = self.p["token_file"]
        try:
            unit = read_unit(self.unit_path)
            token_dir = token_dir_state(os.path.dirname(token_file))
            token = "missing" if token_dir == "missing" else token_state(token_file)
        except (_userspace.UnsafePath, OSError) as exc:
            raise ServiceError(str(exc)) from None
        show = self.run_checked(
            ["systemctl", "show", self.p["name"] + ".service", "--property=UnitFileState,ActiveState,NeedDaemonReload"],
            "systemctl show",
        )
        current = {"token_dir": token_dir, "token": token, "unit": unit, **systemd_state(show)}
        self.result["token"] = {"exists": token != "missing", "private": token == "ok"}
        self.result["service"] = {key: current[key] for key in ("enabled", "active", "need_daemon_reload")}
        return current

    def desired_unit(self, current: dict[str, Any]) -> str | None:
        """The unit to write, or None (check mode only) when the image or the venv is not there yet."""
        image_id = self.image_id()
        venv = read_venv(self.p["project_dir"])
        usable = image_id is not None and venv["venv"]["link_ok"] and venv["stamp_ok"]
        if not usable:
            if self.module.check_mode:
                self.result["msg"] = (
                    f"{self.p['name']} would be set up once the image {self.p['image']} is pulled "
                    f"and the venv in {self.p['project_dir']} is built."
                )
                return None
            problems = venv["problems"]
            raise ServiceError(
                f"Jupyter needs the image {self.p['image']} (pulled by the ngc_image role) and the venv "
                f"{self.p['project_dir']}/.venv as the workspace role builds it"
                f"{(': ' + '; '.join(problems)) if problems else ''}. Run site.yml, which builds it first."
            )
        assert image_id is not None
        venv_id: str = venv["venv"]["id"]
        self.result.update(image_id=image_id, venv_id=venv_id)
        # The unit written for this same image and venv already names the assets: no container run.
        if unit_runs(current["unit"], image_id, venv_id):
            answer = lab_dir_of_unit(current["unit"])
        else:
            answer = self.probe_lab_dir(image_id)
        # The probe ran the user's interpreter: its answer is used only when it is a plain path.
        lab_dir = answer if plain_path_ok(answer) else ""
        self.result["jupyterlab_dir"] = lab_dir
        return fill_unit(self.p["unit"], image_id, venv_id, lab_dir)

    def apply(self, actions: list[str], unit: str | None) -> None:
        name, token_file = self.p["name"] + ".service", self.p["token_file"]
        for action in actions:
            if action == "token_dir":
                try:
                    make_token_dir(os.path.dirname(token_file))
                except OSError as exc:
                    raise ServiceError(
                        f"Creating the token directory {os.path.dirname(token_file)} failed: {exc}"
                    ) from None
            elif action == "write_token":
                write_token(token_file)
            elif action == "fix_token_mode":
                fix_token_mode(token_file)
            elif action == "write_unit":
                assert unit is not None
                write_private(self.unit_path, unit.encode(), 0o644)
            elif action == "daemon_reload":
                self.run_checked(["systemctl", "daemon-reload"], "systemctl daemon-reload")
            elif action in ("enable", "start", "restart"):
                self.run_checked(["systemctl", action, name], f"systemctl {action} {name}")

    def wait(self) -> None:
        url, timeout = self.p["probe_url"], self.p["start_timeout"]
        token = read_token(self.p["token_file"])
        deadline = time.monotonic() + timeout
        while not api_answers(url, token):
            if time.monotonic() >= deadline:
                _, out, _ = self.module.run_command(
                    ["journalctl", "--unit", self.p["name"], "--lines", str(JOURNAL_LINES), "--no-pager"]
                )
                raise ServiceError(
                    f"Jupyter did not answer on {url}/api/status within {timeout} s. "
                    f"Last lines of `journalctl -u {self.p['name']}`: {out.splitlines()}"
                )
            time.sleep(2)

    def run(self) -> dict[str, Any]:
        problem = placeholder_problem(self.p["unit"])
        if problem:
            raise ServiceError(problem)
        current = self.read()
        unit = self.desired_unit(current)
        venv_pending = self.module.check_mode and self.p["venv_pending"] and unit is not None
        if venv_pending:
            self.result["msg"] = f"{self.p['name']} would be restarted on the venv the workspace role would build."
        actions = plan(current, {"unit": unit, "venv_pending": venv_pending})
        self.result.update(changed=bool(actions), actions=actions)
        if unit is not None and current["unit"] != unit:
            self.result["diff"] = {
                "before": current["unit"] or "",
                "after": unit,
                "before_header": self.unit_path,
                "after_header": self.unit_path,
            }
        if not self.module.check_mode:
            self.apply(actions, unit)
            self.wait()
        return self.result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "unit": {"type": "str", "required": True},
            "unit_path": {"type": "path"},
            "image": {"type": "str", "required": True},
            "project_dir": {"type": "path", "required": True},
            "uid": {"type": "int", "required": True},
            "gid": {"type": "int", "required": True},
            "token_file": {"type": "path", "required": True},
            "docker": {"type": "path", "default": "/usr/bin/docker"},
            "docker_socket": {"type": "path", "default": "/var/run/docker.sock"},
            "probe_url": {"type": "str", "required": True},
            "start_timeout": {"type": "int", "default": 120},
            "venv_pending": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    p = module.params
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,200}", p["name"]):
        module.fail_json(msg=f"name {p['name']!r} is not a plain unit name")
    for key in ("project_dir", "token_file"):
        if not plain_path_ok(p[key]):
            module.fail_json(msg=f"{key} {p[key]!r} must be a plain, normalized absolute path")
    try:
        result = JupyterService(module).run()
    except ServiceError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
