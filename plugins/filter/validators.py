# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

"""Filters that check inventory values before root writes anything with them.

Every ``*_problem`` filter returns ``''`` when the value is fine, and otherwise one sentence
that starts with the variable's name, quotes the bad value (JSON-escaped), names the rule it
breaks and says what to use instead — ready for ``ansible.builtin.assert``'s ``fail_msg``::

    - ansible.builtin.assert:
        that: problem == ''
        fail_msg: "{{ problem }}"
        quiet: true
      vars:
        problem: "{{ jupyter_project_dir | sparkfleet.spark.path_problem('jupyter_project_dir') }}"

Bad input never raises; only a wrong use of a filter (an unknown ``kind``, a missing name)
raises AnsibleFilterError. ``toml_string`` renders a value instead of checking one.
"""

from __future__ import annotations

import json
import posixpath
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from packaging.requirements import InvalidRequirement, Requirement

# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------

_QUOTE_LIMIT = 200


def _q(value: Any) -> str:
    """Quote a value for a message: JSON, so control characters show escaped; long strings cut."""
    if isinstance(value, str):
        if len(value) > _QUOTE_LIMIT:
            return f"{json.dumps(value[:120])}... ({len(value)} characters in all)"
        return json.dumps(value)
    try:
        text = json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        text = json.dumps(repr(value))
    if len(text) > _QUOTE_LIMIT:
        text = text[:120] + "..."
    return text


def _kind_of(value: Any) -> str:
    """A short phrase naming a value's type, for 'must be a string, not ...' messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def _check_name(name: Any, filter_name: str) -> str:
    if not isinstance(name, str) or not name:
        raise AnsibleFilterError(
            f"{filter_name} needs the variable's name as its first argument, such as "
            f"{{{{ value | sparkfleet.spark.{filter_name}('my_variable') }}}}; got {_q(name)}"
        )
    return name


def _control_char(value: str) -> str | None:
    """The first control character (C0, DEL or C1) in value, or None."""
    for ch in value:
        if unicodedata.category(ch) == "Cc":
            return ch
    return None


def _is_list(value: Any) -> bool:
    return isinstance(value, list | tuple)


def _under(path: str, tree: str) -> bool:
    """Whether path lies strictly inside tree (both normalized, absolute)."""
    return path.startswith(tree.rstrip("/") + "/") and path != tree


# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------

PATH_MAX = 4096

_PATH_CHARS = re.compile(r"[A-Za-z0-9._+@/-]*")
_PATH_BAD_CHAR = re.compile(r"[^A-Za-z0-9._+@/-]")

SYSTEM_DIRS = frozenset(
    {
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/media",
        "/mnt",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/snap",
        "/srv",
        "/sys",
        "/tmp",
        "/usr",
        "/var",
        "/var/lib",
        "/var/cache",
        "/var/log",
        "/var/tmp",
        "/var/lib/docker",
        "/etc/docker",
        "/usr/local",
        "/usr/local/bin",
        "/var/run",
        "/lost+found",
        "/etc/systemd",
        "/etc/systemd/system",
        "/etc/sudoers.d",
        "/etc/ssh",
        "/etc/apt",
    }
)

# Trees a directory chowned to a user must never lie in, at any depth.
USER_DIR_FORBIDDEN_TREES = (
    "/etc",
    "/usr",
    "/boot",
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/var/lib/docker",
    "/var/run",
    "/root",
)

# Trees a directory root manages for sparkfleet must never lie in, with the reason.
ROOT_DIR_FORBIDDEN_TREES = {
    "/proc": "a kernel filesystem",
    "/sys": "a kernel filesystem",
    "/dev": "the device filesystem",
    "/run": "a tmpfs emptied at every boot",
    "/var/run": "a link to /run, a tmpfs emptied at every boot",
    "/home": "where users' own files live",
    "/root": "root's own home",
    "/tmp": "world-writable and cleaned up",
}

PATH_KINDS = ("user_dir", "root_dir", "root_file", "any_file", "code_dir")

_INSTEAD = {
    "user_dir": "use a directory inside the user's home, such as /home/spark/spark-project",
    "root_dir": "use a dedicated directory such as /var/lib/sparkfleet or /etc/sparkfleet/jupyter",
    "root_file": "use a file in a dedicated directory, such as /var/lib/sparkfleet/state.json",
    "any_file": "name the file itself, such as /etc/ssl/certs/ca-certificates.crt",
    "code_dir": "name the directory that holds playbooks/site.yml, such as /opt/sparkfleet/checkout",
}

_SYSTEM_DIR_WHY = {
    "user_dir": "which must never be chowned to a user",
    "root_dir": "which root must never chmod or take over as sparkfleet's own",
    "root_file": "not a file",
    "any_file": "not a file",
    "code_dir": "from which root must never run playbooks (anyone who can write there would run code as root)",
}


def _common_path_problem(value: Any, name: str, instead: str, allow_empty: bool = False) -> str:
    """The rules every path obeys, whatever its kind."""
    if not isinstance(value, str):
        return f"{name} {_q(value)} is {_kind_of(value)}, but a path must be a string; {instead}."
    if value == "":
        if allow_empty:
            return ""
        return f'{name} "" is empty, but a path is required here; {instead}.'
    if len(value) > PATH_MAX:
        return (
            f"{name} {_q(value)} is {len(value)} characters long, over the limit of {PATH_MAX} for a path; "
            "use a shorter path."
        )
    if not value.startswith("/"):
        return (
            f"{name} {_q(value)} is not absolute: a path must start with / (~ and $HOME are not expanded); {instead}."
        )
    bad = _PATH_BAD_CHAR.search(value)
    if bad is not None:
        return (
            f"{name} {_q(value)} contains the character {_q(bad.group())}, which a path may not contain: "
            "the value is written into systemd units, docker --mount arguments and shell-free argv, so only "
            "letters, digits and . _ + @ / - are allowed (spaces, %, $, quotes, commas, colons and = are refused); "
            "pick a path made only of those characters."
        )
    if "//" in value or value != posixpath.normpath(value):
        normal = posixpath.normpath(re.sub("/+", "/", value))
        return (
            f"{name} {_q(value)} is not normalized (no //, /./, .. components or trailing /); write it as {_q(normal)}."
        )
    for part in value.split("/"):
        if part.startswith("-"):
            return (
                f"{name} {_q(value)} has the component {_q(part)}, which starts with - and could be read as an "
                "option by the commands it is passed to; use a path in which no component starts with -."
            )
    return ""


def _system_dir_phrase(path: str, kind: str) -> str | None:
    if path in SYSTEM_DIRS:
        return f"is the system directory {path}, {_SYSTEM_DIR_WHY[kind]}"
    return None


def _root_dir_phrase(path: str) -> str | None:
    """Why path cannot be a directory root manages for sparkfleet, or None (path passed the common rules)."""
    phrase = _system_dir_phrase(path, "root_dir")
    if phrase:
        return phrase
    for tree, why in ROOT_DIR_FORBIDDEN_TREES.items():
        if _under(path, tree):
            return f"lies under {tree} ({why}), where a directory root manages for sparkfleet must not live"
    if not any("sparkfleet" in part for part in path.split("/")):
        return (
            "has no component containing 'sparkfleet', but a directory root manages for sparkfleet must have a "
            "'sparkfleet' component, so that it can never be an existing system directory such as /etc/ssh"
        )
    return None


def _homes(homes: Any) -> list[tuple[str | None, str]]:
    """(user or None, normalized home) pairs from a list of homes, one home, or a {user: home} mapping."""
    if homes is None:
        return []
    if isinstance(homes, str):
        items: Iterable[tuple[str | None, Any]] = [(None, homes)]
    elif isinstance(homes, Mapping):
        items = [(str(user), home) for user, home in homes.items()]
    elif _is_list(homes):
        items = [(None, home) for home in homes]
    else:
        raise AnsibleFilterError(
            f"path_problem's homes must be a list of home directories (or a mapping of user to home), "
            f"not {_kind_of(homes)} {_q(homes)}"
        )
    pairs = []
    for user, home in items:
        if not isinstance(home, str):
            raise AnsibleFilterError(f"path_problem's homes must hold strings, not {_kind_of(home)} {_q(home)}")
        if home.startswith("/"):
            pairs.append((user, posixpath.normpath(re.sub("/+", "/", home))))
    return pairs


def path_problem(value: Any, name: str, kind: str = "user_dir", homes: Any = None, allow_empty: bool = False) -> str:
    """'' when value is a safe path of the given kind, else one sentence saying what is wrong.

    kind is one of:
      user_dir  - a directory chowned to a non-root user (project dir, HF home, caches);
      root_dir  - a directory root owns and chmods for sparkfleet (it needs a 'sparkfleet' component);
      root_file - a file root writes (its directory must pass the root_dir rules);
      any_file  - a file that is only read (a CA bundle);
      code_dir  - a directory root only reads, but runs code from (a playbook directory).
    homes lists users' home directories (or maps user to home); a user_dir may not be one itself.
    allow_empty lets '' through (for optional settings).
    """
    name = _check_name(name, "path_problem")
    if kind not in PATH_KINDS:
        raise AnsibleFilterError(f"path_problem's kind must be one of {', '.join(PATH_KINDS)}, not {_q(kind)}")
    instead = _INSTEAD[kind]
    problem = _common_path_problem(value, name, instead, allow_empty)
    if problem or value == "":
        return problem
    subject = f"{name} {_q(value)}"

    phrase = _system_dir_phrase(value, kind)
    if phrase:
        return f"{subject} {phrase}; {instead}."

    if kind == "user_dir":
        for tree in USER_DIR_FORBIDDEN_TREES:
            if _under(value, tree):
                return (
                    f"{subject} lies under {tree}, a system tree whose files must never be chowned to a user; "
                    f"{instead}."
                )
        for user, home in _homes(homes):
            if value == home:
                whose = f"{user}'s home directory" if user else "a user's home directory"
                return (
                    f"{subject} is {whose} itself, which sparkfleet must not chown or chmod as a whole; "
                    f"name a directory inside it, such as {home.rstrip('/')}/spark-project."
                )
    elif kind == "root_dir":
        phrase = _root_dir_phrase(value)
        if phrase:
            return f"{subject} {phrase}; {instead}."
    elif kind == "root_file":
        parent = posixpath.dirname(value)
        phrase = _root_dir_phrase(parent)
        if phrase:
            return (
                f"{subject} sits in {_q(parent)}, and that directory {phrase}; a file root writes must sit in a "
                f"directory root manages for sparkfleet, so {instead}."
            )
    return ""


# ---------------------------------------------------------------------------------------------
# Python requirements and distribution names
# ---------------------------------------------------------------------------------------------

_REQUIREMENT_EXAMPLES = (
    'write it like "unsloth[cu128]>=2025.11", "trl==0.23.0", "numpy; python_version >= \'3.12\'" '
    'or "name @ https://host/name.whl"'
)


def _packaging_error(error: InvalidRequirement) -> str:
    """packaging's message on one line: its first line, plus the column its caret points at."""
    lines = str(error).splitlines()
    text = lines[0].strip() if lines else "invalid requirement"
    if len(lines) >= 3 and "^" in lines[2]:
        column = lines[2].index("^") - 4 + 1
        if column >= 1:
            text += f" at character {column}"
    return text


def requirement_problem(value: Any, name: str) -> str:
    """'' when value is one PEP 508 requirement (extras, markers and 'name @ url' allowed), else a sentence."""
    name = _check_name(name, "requirement_problem")
    return _requirement_problem(value, name)


def _requirement_problem(value: Any, name: str) -> str:
    if not isinstance(value, str):
        return f"{name} {_q(value)} is {_kind_of(value)}, but a requirement must be a string; {_REQUIREMENT_EXAMPLES}."
    ch = _control_char(value)
    if ch is not None:
        return (
            f"{name} {_q(value)} contains the control character {_q(ch)}, and a requirement must be one line "
            f"without control characters; {_REQUIREMENT_EXAMPLES}."
        )
    try:
        Requirement(value)
    except InvalidRequirement as error:
        return f"{name} {_q(value)} is not a PEP 508 requirement ({_packaging_error(error)}); {_REQUIREMENT_EXAMPLES}."
    return ""


def _list_problem(values: Any, name: str, example: str) -> str:
    if _is_list(values):
        return ""
    what = "a single string" if isinstance(values, str) else _kind_of(values)
    return f"{name} {_q(values)} is {what}, but it must be a list; write it as a YAML list, such as {example}."


def requirements_problem(values: Any, name: str) -> str:
    """'' when values is a list of PEP 508 requirements, else a sentence about the first bad one (name[index])."""
    name = _check_name(name, "requirements_problem")
    problem = _list_problem(values, name, '["trl==0.23.0", "peft>=0.17"]')
    if problem:
        return problem
    for index, value in enumerate(values):
        problem = _requirement_problem(value, f"{name}[{index}]")
        if problem:
            return problem
    return ""


_DIST_NAME = re.compile(r"([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])", re.IGNORECASE)


def package_names_problem(values: Any, name: str) -> str:
    """'' when values is a list of bare distribution names (PEP 508 names), else a sentence (name[index])."""
    name = _check_name(name, "package_names_problem")
    problem = _list_problem(values, name, '["flash-attn", "xformers"]')
    if problem:
        return problem
    for index, value in enumerate(values):
        if not isinstance(value, str) or not _DIST_NAME.fullmatch(value):
            kind = "" if isinstance(value, str) else f" ({_kind_of(value)})"
            return (
                f"{name}[{index}] {_q(value)}{kind} is not a bare distribution name: a PEP 508 name is made of "
                "letters, digits, . _ and -, and starts and ends with a letter or digit; write only the name, "
                'without version, extras or markers, such as "flash-attn".'
            )
    return ""


# ---------------------------------------------------------------------------------------------
# TOML
# ---------------------------------------------------------------------------------------------

_TOML_SHORT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(value: Any) -> str:
    """value rendered as a TOML basic string, double quotes included, safe to put after 'key = '."""
    if not isinstance(value, str):
        raise AnsibleFilterError(f"toml_string renders strings, not {_kind_of(value)} {_q(value)}; apply string first")
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in _TOML_SHORT_ESCAPES:
            out.append(_TOML_SHORT_ESCAPES[ch])
        elif code <= 0x1F or code == 0x7F:
            out.append(f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF:
            raise AnsibleFilterError(f"toml_string cannot render the lone surrogate U+{code:04X}; TOML is UTF-8 text")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# One-line values and environment mappings
# ---------------------------------------------------------------------------------------------


def one_line_problem(value: Any, name: str) -> str:
    """'' when value is a string without newline, carriage return, NUL or other control characters."""
    name = _check_name(name, "one_line_problem")
    if not isinstance(value, str):
        return (
            f"{name} {_q(value)} is {_kind_of(value)}, but it must be a string; quote it in YAML so that it "
            "stays a string."
        )
    ch = _control_char(value)
    if ch is not None:
        return (
            f"{name} {_q(value)} contains the control character {_q(ch)}, but it lands in a systemd unit or an "
            "env file, where it must be one line without control characters; put it on one line."
        )
    return ""


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def env_mapping_problem(mapping: Any, name: str) -> str:
    """'' when mapping maps environment variable names to one-line values; the message never shows a value."""
    name = _check_name(name, "env_mapping_problem")
    if not isinstance(mapping, Mapping):
        return (
            f"{name} is {_kind_of(mapping)}, but it must be a mapping of environment variable names to values; "
            "write it as a YAML mapping, such as {HTTPS_PROXY: 'http://proxy:3128'}."
        )
    for key, value in mapping.items():
        if not isinstance(key, str) or not _ENV_NAME.fullmatch(key):
            return (
                f"{name} has the key {_q(key)}, which is not an environment variable name: a name is letters, "
                "digits and _, and does not start with a digit; rename the key, such as HTTPS_PROXY."
            )
        if isinstance(value, Mapping) or _is_list(value):
            return (
                f"{name}.{key}: the value of {name}.{key} is {_kind_of(value)}, but an environment value must be a "
                "string, number or boolean; give it as one string."
            )
        text = "" if value is None else str(value)
        if any(ch in text for ch in "\n\r\0"):
            return (
                f"{name}.{key}: the value of {name}.{key} spans several lines or holds a NUL character (it is not "
                "shown here, as it may hold a password); an environment value lands in a systemd unit or an env "
                "file and must be one line, so put it on one line."
            )
    return ""


# ---------------------------------------------------------------------------------------------
# Extra docker run arguments
# ---------------------------------------------------------------------------------------------

_SIZE = re.compile(r"[0-9]+[bkmgBKMG]?")
_CPUS = re.compile(r"[0-9]+(\.[0-9]+)?")
_TMPFS = re.compile(r"/[A-Za-z0-9._/-]+(:[A-Za-z0-9=,]+)?")
_ADD_HOST = re.compile(r"[A-Za-z0-9.-]+:[0-9A-Fa-f.:]+")

STEERING_ENV_PREFIXES = ("JUPYTER", "NVIDIA_", "LD_", "PYTHON", "HOME", "PATH", "SPARKFLEET")

_MOUNT_TARGET_FORBIDDEN = ("/proc", "/sys", "/dev", "/etc", "/usr")
_TMPFS_FORBIDDEN = ("/proc", "/sys", "/dev")

_ALLOWED_TEXT = (
    "only --shm-size, --cpus, --memory (-m), --memory-swap, --env (-e), --label (-l), --mount (type=bind), "
    "--tmpfs and --add-host are allowed, and the address, port, user and network have their own variables "
    "(jupyter_address, jupyter_port, jupyter_user)"
)

# Every allowed flag takes a value; short forms map to their long names.
_DOCKER_FLAGS = {
    "--shm-size": "--shm-size",
    "--cpus": "--cpus",
    "--memory": "--memory",
    "-m": "--memory",
    "--memory-swap": "--memory-swap",
    "--env": "--env",
    "-e": "--env",
    "--label": "--label",
    "-l": "--label",
    "--mount": "--mount",
    "--tmpfs": "--tmpfs",
    "--add-host": "--add-host",
}


def _path_under_any(path: str, trees: Iterable[str]) -> str | None:
    for tree in trees:
        if path == tree or _under(path, tree):
            return tree
    return None


def _size_problem(value: str, subject: str, flag: str) -> str:
    if _SIZE.fullmatch(value) or (flag == "--memory-swap" and value == "-1"):
        return ""
    extra = " (or -1 for unlimited swap)" if flag == "--memory-swap" else ""
    return f"{subject} is not a size; write a number of bytes with an optional unit b, k, m or g, such as 16g{extra}."


def _cpus_problem(value: str, subject: str, flag: str) -> str:
    if _CPUS.fullmatch(value):
        return ""
    return f"{subject} is not a decimal number of CPUs; write it like 4 or 2.5."


def _env_problem(value: str, subject_index: str, flag: str, forbidden: frozenset[str]) -> str:
    # Only the variable's name is ever quoted: values may hold secrets such as proxy passwords.
    env_name, sep, env_value = value.partition("=")
    if not sep:
        return (
            f"{subject_index} {flag} {_q(value)} has no =, and a bare name would copy root's own environment "
            "variable into the container; write NAME=VALUE, such as HF_HUB_OFFLINE=1."
        )
    if not _ENV_NAME.fullmatch(env_name):
        return (
            f"{subject_index} {flag} sets {_q(env_name)}, which is not an environment variable name (letters, digits "
            "and _, not starting with a digit); write NAME=VALUE, such as HF_HUB_OFFLINE=1."
        )
    upper = env_name.upper()
    if upper in forbidden:
        return (
            f"{subject_index} {flag} sets {_q(env_name)}, which the unit sets itself and must not be overridden; "
            "drop it, or change the variable that controls it."
        )
    for prefix in STEERING_ENV_PREFIXES:
        if upper.startswith(prefix):
            return (
                f"{subject_index} {flag} sets {_q(env_name)}, and variables starting with {prefix} steer what runs "
                f"in the container, so they are refused ({', '.join(STEERING_ENV_PREFIXES)}); drop it, or set "
                "the matching sparkfleet variable instead."
            )
    if any(ch in env_value for ch in "\n\r\0"):
        return (
            f"{subject_index} {flag} sets {_q(env_name)} to a value that spans several lines (or holds a NUL "
            "character), and it must be one line; put the value on one line."
        )
    return ""


def _label_problem(value: str, subject: str, flag: str) -> str:
    key, sep, _ = value.partition("=")
    if not sep or not key:
        return f"{subject} is not KEY=VALUE; write a label like org.example.team=research."
    if _control_char(value) is not None:
        return f"{subject} holds a control character, and a label must be one line; put it on one line."
    return ""


def _mount_source_problem(source: str, subject: str) -> str:
    normal = posixpath.normpath(re.sub("/+", "/", source)) if source.startswith("/") else source
    if (
        normal.endswith("/docker.sock")
        or _path_under_any(normal, ("/run", "/var/run")) is not None
        or "docker.sock" in normal
    ):
        return (
            f"{subject} mounts {_q(source)}, and a bind mount of /run, /var/run or the docker socket would hand "
            "root on the host to the notebook; mount a data directory instead, such as "
            "source=/home/spark/datasets."
        )
    return path_problem(source, f"{subject} source", "user_dir")


def _mount_target_problem(target: str, subject: str) -> str:
    instead = "use a directory such as /workspace/data"
    problem = _common_path_problem(target, f"{subject} target", instead)
    if problem:
        return problem
    if target == "/":
        return f"{subject} target {_q(target)} is the container's root, which a bind mount must not cover; {instead}."
    tree = _path_under_any(target, _MOUNT_TARGET_FORBIDDEN)
    if tree is not None:
        return (
            f"{subject} target {_q(target)} lies in {tree}, which a bind mount must not cover "
            f"({', '.join(_MOUNT_TARGET_FORBIDDEN)} are refused); {instead}."
        )
    return ""


def _mount_problem(value: str, subject: str, flag: str) -> str:
    usage = "write it like type=bind,source=/home/spark/datasets,target=/workspace/datasets,readonly"
    if _control_char(value) is not None:
        return f"{subject} holds a control character, and a mount must be one line; {usage}."
    if '"' in value or "'" in value:
        return f"{subject} contains a quote, which docker's --mount parser would interpret; {usage}."
    fields: dict[str, str] = {}
    for field in value.split(","):
        key, sep, field_value = field.partition("=")
        canonical = {"src": "source", "dst": "target", "destination": "target", "ro": "readonly"}.get(key, key)
        if canonical not in ("type", "source", "target", "readonly", "bind-propagation"):
            return (
                f"{subject} has the field {_q(field)}, but only type=bind, source (src), target (dst, destination), "
                f"readonly (ro) and bind-propagation=rprivate|private are allowed; {usage}."
            )
        if canonical in fields:
            return f"{subject} gives {canonical} more than once; give each field once, {usage}."
        if canonical == "readonly":
            if sep and field_value not in ("true", "false"):
                return f"{subject} has {_q(field)}, but readonly takes true or false, or no value; {usage}."
            fields[canonical] = field_value if sep else "true"
            continue
        if not sep:
            return f"{subject} has the field {_q(field)} without a value; {usage}."
        fields[canonical] = field_value
    mount_type = fields.get("type")
    if mount_type is None:
        return f"{subject} has no type=bind, and docker would make a volume; {usage}."
    if mount_type != "bind":
        return (
            f"{subject} has type={mount_type}, but only type=bind is allowed here (volume, tmpfs, npipe, image "
            f"and cluster are refused; use --tmpfs for a tmpfs); {usage}."
        )
    if "source" not in fields:
        return f"{subject} has no source; {usage}."
    if "target" not in fields:
        return f"{subject} has no target; {usage}."
    if fields.get("bind-propagation", "rprivate") not in ("rprivate", "private"):
        propagation = fields["bind-propagation"]
        return f"{subject} has bind-propagation={propagation}, but only rprivate or private is allowed; {usage}."
    return _mount_source_problem(fields["source"], subject) or _mount_target_problem(fields["target"], subject)


def _tmpfs_problem(value: str, subject: str, flag: str) -> str:
    usage = "write it like /scratch or /scratch:size=8g,mode=1777"
    if not _TMPFS.fullmatch(value):
        return f"{subject} is not a tmpfs target with optional options (path:options); {usage}."
    target = value.partition(":")[0]
    if target != posixpath.normpath(target) or "//" in target:
        return f"{subject} has a target that is not normalized (no //, /./, .. or trailing /); {usage}."
    tree = _path_under_any(target, _TMPFS_FORBIDDEN)
    if tree is not None:
        return f"{subject} would cover {tree}, and a tmpfs must not cover /proc, /sys or /dev; {usage}."
    return ""


def _add_host_problem(value: str, subject: str, flag: str) -> str:
    if _ADD_HOST.fullmatch(value):
        return ""
    return f"{subject} is not HOST:IP; write it like registry.lan:192.168.1.10."


_VALUE_CHECKS: dict[str, Callable[[str, str, str], str]] = {
    "--shm-size": _size_problem,
    "--cpus": _cpus_problem,
    "--memory": _size_problem,
    "--memory-swap": _size_problem,
    "--label": _label_problem,
    "--mount": _mount_problem,
    "--tmpfs": _tmpfs_problem,
    "--add-host": _add_host_problem,
}


def _forbidden_env(forbidden_env: Any) -> frozenset[str]:
    if forbidden_env is None:
        return frozenset()
    if isinstance(forbidden_env, str):
        forbidden_env = [forbidden_env]
    if not isinstance(forbidden_env, list | tuple | set | frozenset):
        raise AnsibleFilterError(
            f"docker_args_problem's forbidden_env must be a list of variable names, not {_kind_of(forbidden_env)}"
        )
    for item in forbidden_env:
        if not isinstance(item, str):
            raise AnsibleFilterError(f"docker_args_problem's forbidden_env must hold strings, not {_q(item)}")
    return frozenset(item.upper() for item in forbidden_env)


def docker_args_problem(args: Any, name: str, forbidden_env: Any = ()) -> str:
    """'' when args is a list of allowed extra `docker run` arguments, else a sentence (name[index]).

    The allowlist keeps extra arguments from overriding the address, port, user, network,
    entrypoint or privileges the unit sets. Both `--flag=value` and `--flag value` are parsed.
    forbidden_env names environment variables the unit sets itself (compared case-insensitively).
    """
    name = _check_name(name, "docker_args_problem")
    forbidden = _forbidden_env(forbidden_env)
    problem = _list_problem(args, name, '["--shm-size=16g", "--env", "HF_HUB_OFFLINE=1"]')
    if problem:
        return problem
    index = 0
    while index < len(args):
        arg_index, arg = index, args[index]
        if not isinstance(arg, str):
            return (
                f"{name}[{arg_index}] {_q(arg)} is {_kind_of(arg)}, but each argument must be a string; "
                "quote it in YAML."
            )
        value: Any
        if arg.startswith("-") and "=" in arg:
            flag, _, value = arg.partition("=")
            value_index = arg_index
        else:
            flag, value, value_index = arg, None, arg_index + 1
        canonical = _DOCKER_FLAGS.get(flag)
        if canonical is None:
            what = "is not an allowed docker run argument" if flag.startswith("-") else "is a positional word"
            return f"{name}[{arg_index}] {_q(flag)} {what}; {_ALLOWED_TEXT}."
        if value is None:
            if value_index >= len(args):
                return (
                    f"{name}[{arg_index}] {_q(flag)} needs a value but is the last argument; give the value as the "
                    f"next element or as {canonical}=VALUE."
                )
            value = args[value_index]
            if not isinstance(value, str):
                return (
                    f"{name}[{value_index}] {_q(value)}, the value of {flag}, is {_kind_of(value)}, but each "
                    "argument must be a string; quote it in YAML."
                )
        index = value_index + 1
        where = f"{name}[{value_index}]"
        if canonical == "--env":
            problem = _env_problem(value, where, flag, forbidden)
        else:
            problem = _VALUE_CHECKS[canonical](value, f"{where} {flag} {_q(value)}", canonical)
        if problem:
            return problem
    return ""


# ---------------------------------------------------------------------------------------------


class FilterModule:
    """sparkfleet's inventory validators."""

    def filters(self) -> dict[str, Callable[..., str]]:
        return {
            "path_problem": path_problem,
            "requirement_problem": requirement_problem,
            "requirements_problem": requirements_problem,
            "package_names_problem": package_names_problem,
            "toml_string": toml_string,
            "docker_args_problem": docker_args_problem,
            "one_line_problem": one_line_problem,
            "env_mapping_problem": env_mapping_problem,
        }
