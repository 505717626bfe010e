# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The names more than one part of sparkfleet uses, defined once.

Roles read them through the lookup ``sparkfleet.spark.name`` (plugins/lookup/name.py), the
CLI's status playbook and bench/ too; modules import this file. The venv's own names (the
stamp file, the build directory) belong to the in-image builder, a standalone script, and are
imported from it.
"""

from __future__ import annotations

from ansible_collections.sparkfleet.spark.plugins.module_utils._venv_builder import (
    LOCK_FILE,
    STAMP_FILE,
    VENVS_DIR,
)

# Root's own state on a Spark.
STATE_DIR = "/var/lib/sparkfleet"
# The image the host runs (reference, ID, digest), written by the ngc_image role.
STATE_FILE = f"{STATE_DIR}/state.json"
# The image_python module's answers, one file per image ID.
IMAGE_INFO_DIR = f"{STATE_DIR}/images"
# The link in the project that names the live venv build.
VENV_LINK = ".venv"
# systemd unit and container of a project's Jupyter.
JUPYTER_UNIT_PREFIX = "sparkfleet-jupyter-"


def jupyter_unit(project: str) -> str:
    """The unit (and container) name of a project's Jupyter service."""
    return JUPYTER_UNIT_PREFIX + project


def project_path(home: str, project: str, project_dir: str = "") -> str:
    """The project directory: project_dir when set, else HOME/PROJECT."""
    return project_dir if project_dir else f"{home.rstrip('/')}/{project}"


def stamp_path(project_dir: str) -> str:
    """The live venv's stamp, through the project's venv link."""
    return f"{project_dir.rstrip('/')}/{VENV_LINK}/{STAMP_FILE}"


NAMES = {
    "state_dir": STATE_DIR,
    "state_file": STATE_FILE,
    "image_info_dir": IMAGE_INFO_DIR,
    "venv_link": VENV_LINK,
    "venvs_dir": VENVS_DIR,
    "stamp_file": STAMP_FILE,
    "lock_file": LOCK_FILE,
    "jupyter_unit_prefix": JUPYTER_UNIT_PREFIX,
}

FUNCTIONS = {"jupyter_unit": jupyter_unit, "project_path": project_path, "stamp_path": stamp_path}
