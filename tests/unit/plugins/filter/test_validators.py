"""The inventory validators in plugins/filter/validators.py: good values pass, bad ones get one sentence."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.sparkfleet.spark.plugins.filter import validators
from through_ansible import ansible_bin, run_ansible

REPO = Path(__file__).resolve().parents[4]

FILTER_NAMES = {
    "path_problem",
    "requirement_problem",
    "requirements_problem",
    "package_names_problem",
    "toml_string",
    "docker_args_problem",
    "one_line_problem",
    "env_mapping_problem",
}


def assert_sentence(message: str, name: str, *words: str) -> None:
    """A problem message: starts with the variable's name, is one line, ends with a period, has the words."""
    assert message, "expected a problem, got ''"
    assert message.startswith(name), message
    assert "\n" not in message and "\r" not in message, message
    assert message.endswith("."), message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_filter_module_exposes_every_filter() -> None:
    filters = validators.FilterModule().filters()
    assert set(filters) == FILTER_NAMES
    assert all(callable(f) for f in filters.values())
    assert all(filters[name] is getattr(validators, name) for name in FILTER_NAMES)


@pytest.mark.parametrize("name", sorted(FILTER_NAMES))
def test_every_filter_has_a_doc_file(name: str) -> None:
    assert (REPO / "plugins" / "filter" / f"{name}.yml").is_file()


# ---------------------------------------------------------------------------------------------
# path_problem
# ---------------------------------------------------------------------------------------------

GOOD_PATHS = [
    ("/home/spark/spark-project", "user_dir"),
    ("/home/spark/.cache/huggingface", "user_dir"),
    ("/home/spark/a_b.c+d@e-f", "user_dir"),
    ("/data/models", "user_dir"),
    ("/mnt/nvme/hf", "user_dir"),
    ("/srv/spark/project", "user_dir"),
    ("/var/lib/sparkfleet-user", "user_dir"),
    ("/opt/work", "user_dir"),
    ("/tmp/scratch", "user_dir"),
    ("/etc/sparkfleet/jupyter", "root_dir"),
    ("/var/cache/sparkfleet/wheels", "root_dir"),
    ("/opt/sparkfleet/uv", "root_dir"),
    ("/var/lib/sparkfleet", "root_dir"),
    ("/opt/sparkfleet-uv", "root_dir"),
    ("/usr/local/lib/sparkfleet", "root_dir"),
    ("/var/lib/sparkfleet/state.json", "root_file"),
    ("/var/log/sparkfleet/drift.jsonl", "root_file"),
    ("/etc/sparkfleet/jupyter/token", "root_file"),
    ("/etc/ssl/certs/ca-certificates.crt", "any_file"),
    ("/usr/share/ca-certificates/corp.crt", "any_file"),
    ("/home/spark/ca.pem", "any_file"),
    ("/" + "a" * 4095, "any_file"),
    ("/opt/sparkfleet/collections/ansible_collections/sparkfleet/spark", "code_dir"),
    ("/srv/sparkfleet-checkout", "code_dir"),
]


@pytest.mark.parametrize(("value", "kind"), GOOD_PATHS)
def test_path_good(value: str, kind: str) -> None:
    assert validators.path_problem(value, "v", kind) == ""


def test_path_default_kind_is_user_dir() -> None:
    assert validators.path_problem("/home/spark/p", "v") == ""
    assert validators.path_problem("/etc/x", "v") != ""


@pytest.mark.parametrize("kind", validators.PATH_KINDS)
def test_path_empty_allowed_only_when_asked(kind: str) -> None:
    assert validators.path_problem("", "v", kind, allow_empty=True) == ""
    assert_sentence(validators.path_problem("", "v", kind), "v", '""', "empty")


# (value, kind, words the message must hold)
BAD_PATHS: list[tuple[Any, str, tuple[str, ...]]] = [
    # common rules, every kind
    (None, "user_dir", ("null", "must be a string")),
    (42, "root_dir", ("42", "must be a string")),
    (["/a"], "any_file", ("a list", "must be a string")),
    ("relative/dir", "user_dir", ('"relative/dir"', "not absolute")),
    ("~/project", "user_dir", ('"~/project"', "not absolute")),
    ("$HOME/project", "root_file", ("not absolute",)),
    ("/" + "a" * 4096, "any_file", ("4097 characters", "4096")),
    ("/home/spark//p", "user_dir", ("not normalized", 'write it as "/home/spark/p"')),
    ("//srv/p", "user_dir", ("not normalized", 'write it as "/srv/p"')),
    ("/home/spark/./p", "user_dir", ("not normalized", 'write it as "/home/spark/p"')),
    ("/home/spark/../../etc", "user_dir", ("not normalized", 'write it as "/etc"')),
    ("/var/lib/sparkfleet/", "root_dir", ("not normalized", 'write it as "/var/lib/sparkfleet"')),
    ("/home/spark/my project", "user_dir", ('" "', "systemd units", "docker --mount", "shell-free argv")),
    ("/home/spark/100%", "user_dir", ('"%"', "systemd units")),
    ("/home/$USER/p", "user_dir", ('"$"', "refused")),
    ('/home/spark/"p"', "user_dir", ('"\\""',)),
    ("/home/spark/it's", "user_dir", ('"\'"',)),
    ("/data/a,b", "user_dir", ('","',)),
    ("/data/a:b", "user_dir", ('":"',)),
    ("/data/a=b", "user_dir", ('"="',)),
    ("/data/a\nb", "user_dir", ('"\\n"',)),
    ("/data/\u00e9t\u00e9", "user_dir", ('"\\u00e9"',)),
    ("/var/lib/sparkfleet\u0000", "root_dir", ('"\\u0000"',)),
    ("/data/-rf", "user_dir", ('"-rf"', "starts with -")),
    ("/var/lib/sparkfleet/--state", "root_file", ('"--state"', "starts with -")),
    # SYSTEM dirs, every kind
    ("/", "user_dir", ("system directory /,",)),
    ("/etc", "user_dir", ("system directory /etc", "chowned")),
    ("/home", "user_dir", ("system directory /home",)),
    ("/tmp", "user_dir", ("system directory /tmp",)),
    ("/srv", "user_dir", ("system directory /srv",)),
    ("/mnt", "user_dir", ("system directory /mnt",)),
    ("/opt", "user_dir", ("system directory /opt",)),
    ("/var/lib", "user_dir", ("system directory /var/lib",)),
    ("/lost+found", "user_dir", ("system directory /lost+found",)),
    ("/etc/ssh", "root_dir", ("system directory /etc/ssh", "chmod")),
    ("/etc/sudoers.d", "root_dir", ("system directory /etc/sudoers.d",)),
    ("/var/lib/docker", "root_dir", ("system directory /var/lib/docker",)),
    ("/usr/local/bin", "root_dir", ("system directory /usr/local/bin",)),
    ("/etc/systemd/system", "root_file", ("system directory /etc/systemd/system", "not a file")),
    ("/etc/apt", "any_file", ("system directory /etc/apt", "not a file")),
    ("/var/log", "any_file", ("system directory /var/log",)),
    ("/tmp", "code_dir", ("system directory /tmp", "never run playbooks", "playbooks/site.yml")),
    # user_dir: system trees at any depth
    ("/etc/sparkfleet", "user_dir", ("lies under /etc", "chowned to a user")),
    ("/usr/share/hf", "user_dir", ("lies under /usr",)),
    ("/usr/local/share/x", "user_dir", ("lies under /usr",)),
    ("/boot/efi", "user_dir", ("lies under /boot",)),
    ("/proc/1", "user_dir", ("lies under /proc",)),
    ("/sys/fs/cgroup", "user_dir", ("lies under /sys",)),
    ("/dev/shm", "user_dir", ("lies under /dev",)),
    ("/run/user/1000", "user_dir", ("lies under /run",)),
    ("/var/run/x", "user_dir", ("lies under /var/run",)),
    ("/bin/x", "user_dir", ("lies under /bin",)),
    ("/sbin/x", "user_dir", ("lies under /sbin",)),
    ("/lib/x", "user_dir", ("lies under /lib",)),
    ("/lib32/x", "user_dir", ("lies under /lib32",)),
    ("/lib64/x", "user_dir", ("lies under /lib64",)),
    ("/var/lib/docker/volumes/x", "user_dir", ("lies under /var/lib/docker",)),
    ("/root/project", "user_dir", ("lies under /root",)),
    # root_dir
    ("/var/lib/foo", "root_dir", ("'sparkfleet' component", "/etc/ssh", "/var/lib/sparkfleet")),
    ("/etc/ssh/sshd_config.d", "root_dir", ("'sparkfleet' component",)),
    ("/opt/spark/fleet", "root_dir", ("'sparkfleet' component",)),
    ("/tmp/sparkfleet", "root_dir", ("lies under /tmp",)),
    ("/home/spark/sparkfleet", "root_dir", ("lies under /home",)),
    ("/root/sparkfleet", "root_dir", ("lies under /root",)),
    ("/run/sparkfleet", "root_dir", ("lies under /run",)),
    ("/var/run/sparkfleet", "root_dir", ("lies under /var/run",)),
    ("/proc/sparkfleet", "root_dir", ("lies under /proc",)),
    ("/sys/sparkfleet", "root_dir", ("lies under /sys",)),
    ("/dev/sparkfleet", "root_dir", ("lies under /dev",)),
    # root_file: its parent follows the root_dir rules
    ("/etc/state.json", "root_file", ('sits in "/etc"', "system directory /etc")),
    ("/state.json", "root_file", ('sits in "/"', "system directory /")),
    ("/var/lib/state.json", "root_file", ('sits in "/var/lib"',)),
    ("/etc/sparkfleet.json", "root_file", ('sits in "/etc"',)),
    ("/var/log/app/drift.jsonl", "root_file", ('sits in "/var/log/app"', "'sparkfleet' component")),
    ("/tmp/sparkfleet/state.json", "root_file", ("lies under /tmp",)),
    ("/home/spark/sparkfleet/state.json", "root_file", ("lies under /home",)),
    ("/etc/ssh", "root_file", ("system directory /etc/ssh", "not a file")),
    ("/var/lib/sparkfleet/../state.json", "root_file", ("not normalized",)),
]


@pytest.mark.parametrize(("value", "kind", "words"), BAD_PATHS)
def test_path_bad(value: Any, kind: str, words: tuple[str, ...]) -> None:
    assert_sentence(validators.path_problem(value, "my_var", kind), "my_var", *words)


@pytest.mark.parametrize("value", ["/etc/sparkfleet/jupyter", "/usr/local/lib/sparkfleet"])
def test_path_root_dir_allows_what_user_dir_refuses(value: str) -> None:
    assert validators.path_problem(value, "v", "root_dir") == ""
    assert validators.path_problem(value, "v", "user_dir") != ""


@pytest.mark.parametrize(
    ("homes", "words"),
    [
        (["/home/spark"], ("a user's home directory itself", "/home/spark/")),
        (["/home/other", "/home/spark/"], ("a user's home directory itself",)),
        ("/home/spark", ("a user's home directory itself",)),
        ({"spark": "/home/spark"}, ("spark's home directory itself", "/home/spark/")),
    ],
)
def test_path_user_dir_refuses_a_home_itself(homes: Any, words: tuple[str, ...]) -> None:
    message = validators.path_problem("/home/spark", "jupyter_project_dir", "user_dir", homes)
    assert_sentence(message, "jupyter_project_dir", '"/home/spark"', "name a directory inside it", *words)
    assert validators.path_problem("/home/spark/p", "jupyter_project_dir", "user_dir", homes) == ""


def test_path_homes_only_matter_for_user_dir() -> None:
    assert validators.path_problem("/home/sparkfleet", "v", "user_dir") == ""
    assert validators.path_problem("/srv/sparkfleet", "v", "root_dir", ["/srv/sparkfleet"]) == ""


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"kind": "dir"}, "kind must be one of"),
        ({"kind": "USER_DIR"}, "kind must be one of"),
        ({"homes": 5}, "homes must be a list"),
        ({"homes": [5]}, "homes must hold strings"),
    ],
)
def test_path_wrong_usage_raises(kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises(AnsibleFilterError, match=text):
        validators.path_problem("/home/spark/p", "v", **kwargs)


@pytest.mark.parametrize("name", [None, "", 5])
def test_missing_variable_name_raises(name: Any) -> None:
    with pytest.raises(AnsibleFilterError, match="variable's name"):
        validators.path_problem("/home/spark/p", name)
    with pytest.raises(AnsibleFilterError, match="variable's name"):
        validators.docker_args_problem([], name)


def test_long_values_are_cut_in_messages() -> None:
    message = validators.path_problem("relative" * 1000, "v")
    assert "(8000 characters in all)" in message
    assert len(message) < 600


@pytest.mark.parametrize("system_dir", sorted(validators.SYSTEM_DIRS))
@pytest.mark.parametrize("kind", validators.PATH_KINDS)
def test_every_system_dir_is_refused_for_every_kind(system_dir: str, kind: str) -> None:
    assert_sentence(validators.path_problem(system_dir, "v", kind), "v", "system directory")


# ---------------------------------------------------------------------------------------------
# requirement_problem, requirements_problem, package_names_problem
# ---------------------------------------------------------------------------------------------

GOOD_REQUIREMENTS = [
    "trl",
    "trl==0.23.0",
    "peft>=0.17,<0.18",
    "unsloth[cu128]>=2025.11",
    "unsloth[cu128,triton]",
    "numpy; python_version >= '3.12'",
    'numpy ; python_version<"3.13" and platform_machine == "aarch64"',
    "xformers @ https://example.invalid/xformers-0.0.33-cp312-cp312-linux_aarch64.whl",
    "pkg @ file:///opt/sparkfleet/wheels/pkg-1.0-py3-none-any.whl",
    "flash_attn~=2.8",
    "Foo.Bar-baz===1.0",
]


@pytest.mark.parametrize("value", GOOD_REQUIREMENTS)
def test_requirement_good(value: str) -> None:
    assert validators.requirement_problem(value, "r") == ""


BAD_REQUIREMENTS: list[tuple[Any, tuple[str, ...]]] = [
    ("", ("not a PEP 508 requirement", "Expected package name")),
    ('foo"', ('"foo\\""', "not a PEP 508 requirement", "Expected")),
    ("foo bar", ("not a PEP 508 requirement",)),
    ("foo>=1;", ("not a PEP 508 requirement", "marker")),
    ("foo @ ", ("not a PEP 508 requirement", "URL")),
    ("x[", ("not a PEP 508 requirement",)),
    ("-e git+https://x/y", ("not a PEP 508 requirement",)),
    ("--index-url https://evil", ("not a PEP 508 requirement",)),
    ("foo\nbar", ("control character", '"\\n"')),
    ("foo\r", ("control character", '"\\r"')),
    ("foo\x00", ("control character", '"\\u0000"')),
    ("foo\t==1", ("control character",)),
    ("trl==0.23.0\n--extra-index-url https://evil", ("control character",)),
    (5, ("an integer", "must be a string")),
    (None, ("null", "must be a string")),
    (["trl"], ("a list", "must be a string")),
]


@pytest.mark.parametrize(("value", "words"), BAD_REQUIREMENTS)
def test_requirement_bad(value: Any, words: tuple[str, ...]) -> None:
    assert_sentence(validators.requirement_problem(value, "extra_req"), "extra_req", *words)


@pytest.mark.parametrize("values", [[], GOOD_REQUIREMENTS, ("trl",)])
def test_requirements_good(values: Any) -> None:
    assert validators.requirements_problem(values, "reqs") == ""


@pytest.mark.parametrize(
    ("values", "start", "words"),
    [
        (["trl", "peft", 'foo"'], 'workspace_extra_dependencies[2] "foo\\""', ("not a PEP 508 requirement",)),
        (["ok", "bad bad", "x["], "workspace_extra_dependencies[1]", ("not a PEP 508 requirement",)),
        ([3], "workspace_extra_dependencies[0]", ("must be a string",)),
        ("trl==0.23.0", "workspace_extra_dependencies", ("a single string", "must be a list")),
        ({"trl": "0.23"}, "workspace_extra_dependencies", ("a mapping", "must be a list")),
        (None, "workspace_extra_dependencies", ("null", "must be a list")),
    ],
)
def test_requirements_bad(values: Any, start: str, words: tuple[str, ...]) -> None:
    assert_sentence(validators.requirements_problem(values, "workspace_extra_dependencies"), start, *words)


@pytest.mark.parametrize("values", [[], ["flash-attn", "xformers", "A", "a.b_c-d", "Torch2", "9x"]])
def test_package_names_good(values: list[str]) -> None:
    assert validators.package_names_problem(values, "names") == ""


@pytest.mark.parametrize(
    ("values", "start"),
    [
        (["ok", "foo>=1"], 'names[1] "foo>=1"'),
        (["foo[bar]"], "names[0]"),
        (["-foo"], "names[0]"),
        (["foo-"], "names[0]"),
        ([".foo"], "names[0]"),
        (["foo bar"], "names[0]"),
        ([""], 'names[0] ""'),
        (["foo; python_version>'3'"], "names[0]"),
        (["foo @ https://x"], "names[0]"),
        (["foo\n"], "names[0]"),
        (["t\u00f6rch"], "names[0]"),
        ([1], "names[0] 1 (an integer)"),
    ],
)
def test_package_names_bad(values: Any, start: str) -> None:
    assert_sentence(validators.package_names_problem(values, "names"), start, "bare distribution name", "flash-attn")


@pytest.mark.parametrize("values", ["flash-attn", {"a": 1}, 5])
def test_package_names_must_be_a_list(values: Any) -> None:
    assert_sentence(validators.package_names_problem(values, "names"), "names", "must be a list")


# ---------------------------------------------------------------------------------------------
# toml_string
# ---------------------------------------------------------------------------------------------

NASTY_STRINGS = [
    "",
    "plain",
    'say "hi"',
    "back\\slash",
    "\\",
    '\\"',
    "trailing backslash \\",
    "line1\nline2",
    "cr\rlf\r\n",
    "tab\there",
    "\b\f",
    "\u0000",
    "nul\u0000in the middle",
    "\u001f\u007f",
    "".join(chr(c) for c in range(0x20)) + "\x7f",
    "caf\u00e9 na\u00efve \u65e5\u672c\u8a9e",
    "emoji \U0001f680\U0001f9ea",
    "\u0080\u009f\u00a0\u2028\u2029\ufeff",
    "\"; python_version<'3'",
    'x = 1\n[evil]\nkey = "v"',
    "'''literal'''",
    '"""multi"""',
    "\\u0041 is not an escape here",
    "${VAR} {{ jinja }} %(x)s",
]


@pytest.mark.parametrize("value", NASTY_STRINGS)
def test_toml_string_round_trips(value: str) -> None:
    rendered = validators.toml_string(value)
    assert rendered.startswith('"') and rendered.endswith('"')
    assert "\n" not in rendered and "\r" not in rendered
    assert tomllib.loads("k = " + rendered)["k"] == value
    # It stays one value on one line, whatever follows it.
    assert tomllib.loads(f"k = {rendered}\nother = 1") == {"k": value, "other": 1}


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("abc", '"abc"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("\b\t\n\f\r", '"\\b\\t\\n\\f\\r"'),
        ("\u0000\u0001\u001f\u007f", '"\\u0000\\u0001\\u001F\\u007F"'),
        ("\u00e9\U0001f680", '"\u00e9\U0001f680"'),
    ],
)
def test_toml_string_escapes(value: str, rendered: str) -> None:
    assert validators.toml_string(value) == rendered


@pytest.mark.parametrize("value", [None, 5, ["a"], "lone \ud800 surrogate"])
def test_toml_string_refuses_what_it_cannot_render(value: Any) -> None:
    with pytest.raises(AnsibleFilterError, match="toml_string"):
        validators.toml_string(value)


# ---------------------------------------------------------------------------------------------
# docker_args_problem
# ---------------------------------------------------------------------------------------------

GOOD_DOCKER_ARGS: list[list[str]] = [
    [],
    ["--shm-size=16g"],
    ["--shm-size", "512m"],
    ["--shm-size", "1073741824"],
    ["--shm-size=8G"],
    ["--cpus", "4"],
    ["--cpus=2.5"],
    ["--memory", "64g"],
    ["-m", "100G"],
    ["-m=32g"],
    ["--memory-swap", "-1"],
    ["--memory-swap=128g"],
    ["--env", "HF_HUB_OFFLINE=1"],
    ["-e", "HTTPS_PROXY=http://user:p@ss word@proxy:3128"],
    ["-e=TOKENIZERS_PARALLELISM=false"],
    ["--env=EMPTY="],
    ["--env", "A=b=c"],
    ["--env", "_X=\u00e9"],
    ["--label", "org.example.team=research"],
    ["-l", "k="],
    ["--label=a=b c"],
    ["--mount", "type=bind,source=/home/spark/datasets,target=/workspace/datasets"],
    ["--mount=type=bind,src=/data,dst=/data,readonly"],
    ["--mount", "type=bind,src=/data,destination=/mnt/data,ro"],
    ["--mount", "src=/data,type=bind,dst=/data,readonly=true,bind-propagation=rprivate"],
    ["--mount", "type=bind,src=/mnt/nvme/hf,dst=/hf,readonly=false,bind-propagation=private"],
    ["--tmpfs", "/scratch"],
    ["--tmpfs=/scratch:size=8g,mode=1777"],
    ["--tmpfs", "/run/user"],
    ["--add-host", "registry.lan:192.168.1.10"],
    ["--add-host=v6.lan:fd00::1"],
    [
        "--shm-size=16g",
        "--cpus",
        "8",
        "-e",
        "HF_HUB_OFFLINE=1",
        "--mount",
        "type=bind,src=/data,dst=/data,ro",
        "--tmpfs",
        "/scratch",
        "--add-host",
        "a.b:10.0.0.1",
        "-l",
        "x=y",
    ],
]


@pytest.mark.parametrize("args", GOOD_DOCKER_ARGS)
def test_docker_args_good(args: list[str]) -> None:
    assert validators.docker_args_problem(args, "extra", ["JUPYTER_TOKEN"]) == ""


# (args, start of the message, words the message must hold)
BAD_DOCKER_ARGS: list[tuple[Any, str, tuple[str, ...]]] = [
    # refused flags and words
    *(
        ([arg, "x"], f'extra[0] "{arg}"', ("not an allowed docker run argument", "jupyter_port", "--shm-size"))
        for arg in [
            "--publish",
            "-p",
            "--network",
            "--net",
            "--user",
            "-u",
            "--entrypoint",
            "--privileged",
            "--cap-add",
            "--security-opt",
            "--pid",
            "--ipc",
            "--userns",
            "--volume",
            "-v",
            "--device",
            "--volumes-from",
            "--name",
            "--rm",
            "--gpus",
            "--group-add",
            "--env-file",
            "--workdir",
            "-w",
            "--hostname",
            "--restart",
            "--detach",
            "-it",
            "--",
            "-",
        ]
    ),
    (["--publish=0.0.0.0:8888:8888"], 'extra[0] "--publish"', ("jupyter_address", "jupyter_port", "jupyter_user")),
    (["--network=host"], 'extra[0] "--network"', ("network",)),
    (["--user=0:0"], 'extra[0] "--user"', ("jupyter_user",)),
    (["ubuntu"], 'extra[0] "ubuntu"', ("positional word",)),
    (["--shm-size=1g", "bash"], 'extra[1] "bash"', ("positional word",)),
    (["--cpus", "2", "--privileged"], 'extra[2] "--privileged"', ("not an allowed",)),
    (["-m16g"], 'extra[0] "-m16g"', ("not an allowed",)),
    (["-eFOO=bar"], 'extra[0] "-eFOO"', ("not an allowed",)),
    (["--ENV", "A=1"], 'extra[0] "--ENV"', ("not an allowed",)),
    # value-less at the end
    (["--shm-size"], 'extra[0] "--shm-size"', ("needs a value", "last argument")),
    (["--cpus", "2", "-e"], 'extra[2] "-e"', ("needs a value",)),
    # not a list of strings
    ("--shm-size=16g", "extra", ("a single string", "must be a list")),
    ({"--shm-size": "16g"}, "extra", ("a mapping", "must be a list")),
    (None, "extra", ("must be a list",)),
    ([5], "extra[0] 5", ("an integer", "must be a string")),
    (["--cpus", 4], "extra[1] 4", ("the value of --cpus", "must be a string")),
    # sizes and cpus
    (["--shm-size", "16 g"], 'extra[1] --shm-size "16 g"', ("not a size", "16g")),
    (["--shm-size=16gb"], 'extra[0] --shm-size "16gb"', ("not a size",)),
    (["--shm-size=-1"], 'extra[0] --shm-size "-1"', ("not a size",)),
    (["--memory", "-1"], 'extra[1] --memory "-1"', ("not a size",)),
    (["-m", "lots"], 'extra[1] -m "lots"', ("not a size",)),
    (["--memory-swap=-2"], 'extra[0] --memory-swap "-2"', ("not a size", "-1")),
    (["--cpus", "1.5.2"], 'extra[1] --cpus "1.5.2"', ("decimal",)),
    (["--cpus=.5"], "extra[0] --cpus", ("decimal",)),
    (["--cpus=-1"], "extra[0] --cpus", ("decimal",)),
    # env
    (["-e", "HOME"], 'extra[1] -e "HOME"', ("no =", "root's own environment")),
    (["--env=HF_TOKEN"], 'extra[0] --env "HF_TOKEN"', ("no =",)),
    (["--env="], 'extra[0] --env ""', ("no =",)),
    (["-e", "1A=x"], 'extra[1] -e sets "1A"', ("not an environment variable name",)),
    (["-e", "A-B=x"], 'extra[1] -e sets "A-B"', ("not an environment variable name",)),
    (["-e", "=x"], 'extra[1] -e sets ""', ("not an environment variable name",)),
    (["-e", "--privileged"], "extra[1] -e", ("no =",)),
    (["-e", "JUPYTER_TOKEN=abc"], 'extra[1] -e sets "JUPYTER_TOKEN"', ("the unit sets itself",)),
    (["-e", "jupyter_token=abc"], 'extra[1] -e sets "jupyter_token"', ("the unit sets itself",)),
    (["-e", "JUPYTER_CONFIG_DIR=/x"], 'extra[1] -e sets "JUPYTER_CONFIG_DIR"', ("starting with JUPYTER", "steer")),
    (["-e", "NVIDIA_VISIBLE_DEVICES=all"], "extra[1] -e", ("NVIDIA_",)),
    (["-e", "LD_PRELOAD=/tmp/x.so"], "extra[1] -e", ("LD_",)),
    (["-e", "ld_library_path=/x"], "extra[1] -e", ("LD_",)),
    (["-e", "PYTHONPATH=/x"], "extra[1] -e", ("PYTHON",)),
    (["-e", "PYTHONSTARTUP=/x"], "extra[1] -e", ("PYTHON",)),
    (["-e", "HOME=/root"], "extra[1] -e", ("HOME",)),
    (["-e", "PATH=/evil"], "extra[1] -e", ("PATH",)),
    (["--env=SPARKFLEET_STATE=x"], "extra[0] --env", ("SPARKFLEET",)),
    (["-e", "A=line1\nline2"], 'extra[1] -e sets "A"', ("several lines",)),
    (["-e", "A=x\ry"], 'extra[1] -e sets "A"', ("several lines",)),
    (["-e", "A=x\x00y"], 'extra[1] -e sets "A"', ("NUL",)),
    # labels
    (["--label", "novalue"], 'extra[1] --label "novalue"', ("KEY=VALUE",)),
    (["-l", "=v"], 'extra[1] -l "=v"', ("KEY=VALUE",)),
    (["--label=a=b\nc"], "extra[0] --label", ("one line",)),
    # mounts
    (["--mount", "type=volume,src=v,dst=/data"], "extra[1] --mount", ("type=volume", "only type=bind")),
    (["--mount", "type=tmpfs,dst=/data"], "extra[1] --mount", ("type=tmpfs", "--tmpfs")),
    (["--mount", "type=npipe,src=/a,dst=/b"], "extra[1] --mount", ("type=npipe",)),
    (["--mount", "type=image,src=/a,dst=/b"], "extra[1] --mount", ("type=image",)),
    (["--mount", "type=cluster,src=/a,dst=/b"], "extra[1] --mount", ("type=cluster",)),
    (["--mount", "type=BIND,src=/a,dst=/b"], "extra[1] --mount", ("only type=bind",)),
    (["--mount", "src=/data,dst=/data"], "extra[1] --mount", ("no type=bind",)),
    (["--mount", "type=bind,dst=/data"], "extra[1] --mount", ("no source",)),
    (["--mount", "type=bind,src=/data"], "extra[1] --mount", ("no target",)),
    (["--mount", "type=bind,src=/var/run/docker.sock,dst=/var/run/docker.sock"], "extra[1] --mount", ("hand root",)),
    (["--mount", "type=bind,src=/run/docker.sock,dst=/d.sock"], "extra[1] --mount", ("hand root", "notebook")),
    (["--mount", "type=bind,src=/run,dst=/host-run"], "extra[1] --mount", ("hand root",)),
    (["--mount", "type=bind,src=/var/run,dst=/host-run"], "extra[1] --mount", ("hand root",)),
    (["--mount", "type=bind,src=/run/containerd,dst=/c"], "extra[1] --mount", ("hand root",)),
    (["--mount", "type=bind,src=/var//run/docker.sock,dst=/d"], "extra[1] --mount", ("hand root",)),
    (["--mount", "type=bind,src=/home/spark/docker.sock,dst=/d"], "extra[1] --mount", ("hand root",)),
    (["--mount", "type=bind,src=/,dst=/host"], "extra[1] --mount", ("source", "system directory /,")),
    (["--mount", "type=bind,src=/etc,dst=/host-etc"], "extra[1] --mount", ("source", "system directory /etc")),
    (["--mount", "type=bind,src=/etc/shadow,dst=/s"], "extra[1] --mount", ("source", "lies under /etc")),
    (["--mount", "type=bind,src=/root,dst=/r"], "extra[1] --mount", ("source", "system directory /root")),
    (["--mount", "type=bind,src=/var/lib/docker/x,dst=/r"], "extra[1] --mount", ("lies under /var/lib/docker",)),
    (["--mount", "type=bind,src=data,dst=/data"], "extra[1] --mount", ("source", "not absolute")),
    (["--mount", "type=bind,src=/data/../etc,dst=/data"], "extra[1] --mount", ("source", "not normalized")),
    (["--mount", "type=bind,src=/data,dst=/"], "extra[1] --mount", ("target", "container's root")),
    (["--mount", "type=bind,src=/data,dst=/etc"], "extra[1] --mount", ("target", "/etc")),
    (["--mount", "type=bind,src=/data,dst=/etc/jupyter"], "extra[1] --mount", ("target", "lies in /etc")),
    (["--mount", "type=bind,src=/data,dst=/usr/local/bin"], "extra[1] --mount", ("target", "lies in /usr")),
    (["--mount", "type=bind,src=/data,dst=/proc/x"], "extra[1] --mount", ("target", "lies in /proc")),
    (["--mount", "type=bind,src=/data,dst=/sys"], "extra[1] --mount", ("target", "lies in /sys")),
    (["--mount", "type=bind,src=/data,dst=/dev/x"], "extra[1] --mount", ("target", "lies in /dev")),
    (["--mount", "type=bind,src=/data,dst=relative"], "extra[1] --mount", ("target", "not absolute")),
    (["--mount", "type=bind,src=/data,dst=/x/../etc"], "extra[1] --mount", ("target", "not normalized")),
    (["--mount", "type=bind,src=/data,dst=/x/"], "extra[1] --mount", ("target", "not normalized")),
    (["--mount", 'type=bind,"src=/etc",dst=/x'], "extra[1] --mount", ("quote",)),
    (["--mount", "type=bind,src='/etc',dst=/x"], "extra[1] --mount", ("quote",)),
    (["--mount", "type=bind,src=/data,dst=/x\nsrc=/etc"], "extra[1] --mount", ("control character",)),
    (["--mount", "type=bind,src=/data,dst=/data,bind-propagation=shared"], "extra[1] --mount", ("rprivate",)),
    (["--mount", "type=bind,src=/data,dst=/data,bind-propagation=rshared"], "extra[1] --mount", ("rprivate",)),
    (["--mount", "type=bind,src=/data,dst=/data,readonly=yes"], "extra[1] --mount", ("true or false",)),
    (["--mount", "type=bind,src=/data,dst=/data,bind-recursive=disabled"], "extra[1] --mount", ("only type=bind",)),
    (["--mount", "type=bind,src=/data,dst=/data,consistency=cached"], "extra[1] --mount", ('"consistency=cached"',)),
    (["--mount", "type=bind,src=/data,dst=/data,volume-driver=x"], "extra[1] --mount", ("volume-driver",)),
    (["--mount", "Type=bind,src=/data,dst=/data"], "extra[1] --mount", ('"Type=bind"',)),
    (["--mount", "type=bind,src=/data,dst=/data,"], "extra[1] --mount", ('the field ""',)),
    (["--mount", "type=bind,src=/data,src=/etc,dst=/d"], "extra[1] --mount", ("more than once",)),
    (["--mount", "type=bind,src=/data,source=/etc,dst=/d"], "extra[1] --mount", ("more than once",)),
    (["--mount", "type=bind,type=volume,src=/data,dst=/d"], "extra[1] --mount", ("more than once",)),
    (["--mount", "type=bind,src,dst=/d"], "extra[1] --mount", ("without a value",)),
    # tmpfs
    (["--tmpfs", "/dev/shm"], 'extra[1] --tmpfs "/dev/shm"', ("/dev",)),
    (["--tmpfs", "/proc"], "extra[1] --tmpfs", ("/proc",)),
    (["--tmpfs=/sys/fs/cgroup"], "extra[0] --tmpfs", ("/sys",)),
    (["--tmpfs", "scratch"], "extra[1] --tmpfs", ("not a tmpfs target",)),
    (["--tmpfs", "/"], "extra[1] --tmpfs", ("not a tmpfs target",)),
    (["--tmpfs", "/a b"], "extra[1] --tmpfs", ("not a tmpfs target",)),
    (["--tmpfs", "/x:size=1g;rm"], "extra[1] --tmpfs", ("not a tmpfs target",)),
    (["--tmpfs", "/x/../dev"], "extra[1] --tmpfs", ("not normalized",)),
    (["--tmpfs", "/scratch/"], "extra[1] --tmpfs", ("not normalized",)),
    # add-host
    (["--add-host", "registry.lan"], 'extra[1] --add-host "registry.lan"', ("HOST:IP",)),
    (["--add-host", "a b:1.2.3.4"], "extra[1] --add-host", ("HOST:IP",)),
    (["--add-host=a:host-gateway"], "extra[0] --add-host", ("HOST:IP",)),
    (["--add-host", "a:1.2.3.4\n"], "extra[1] --add-host", ("HOST:IP",)),
]


@pytest.mark.parametrize(("args", "start", "words"), BAD_DOCKER_ARGS)
def test_docker_args_bad(args: Any, start: str, words: tuple[str, ...]) -> None:
    assert_sentence(validators.docker_args_problem(args, "extra", ["jupyter_token"]), start, *words)


@pytest.mark.parametrize(
    "args",
    [
        ["-e", "HTTPS_PROXY=http://user:hunter2@proxy:3128\n"],
        ["--env=HTTPS_PROXY=http://user:hunter2@proxy\x00"],
        ["-e", "LD_PRELOAD=hunter2"],
        ["-e", "JUPYTER_TOKEN=hunter2"],
    ],
)
def test_docker_args_never_show_env_values(args: list[str]) -> None:
    message = validators.docker_args_problem(args, "extra", ["JUPYTER_TOKEN"])
    assert message
    assert "hunter2" not in message


def test_docker_args_value_of_a_flag_is_never_taken_for_a_flag() -> None:
    # "--env --privileged" sets an (invalid) variable; it never turns --privileged on.
    assert "no =" in validators.docker_args_problem(["--env", "--privileged"], "extra")
    # "--memory-swap -1" consumes "-1" as its value.
    assert validators.docker_args_problem(["--memory-swap", "-1", "--cpus", "1"], "extra") == ""


@pytest.mark.parametrize("forbidden", [None, (), [], "JUPYTER_TOKEN", ("A", "B")])
def test_docker_args_forbidden_env_forms(forbidden: Any) -> None:
    assert validators.docker_args_problem(["-e", "OK=1"], "extra", forbidden) == ""


def test_docker_args_forbidden_env_is_case_insensitive() -> None:
    assert "the unit sets itself" in validators.docker_args_problem(["-e", "Http_Proxy=x"], "extra", ["HTTP_PROXY"])


@pytest.mark.parametrize("forbidden", [5, {"A": 1}, [5]])
def test_docker_args_wrong_forbidden_env_raises(forbidden: Any) -> None:
    with pytest.raises(AnsibleFilterError, match="forbidden_env"):
        validators.docker_args_problem([], "extra", forbidden)


# ---------------------------------------------------------------------------------------------
# one_line_problem, env_mapping_problem
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "plain", "http://user:pw@proxy:3128", "caf\u00e9 \U0001f680", "a b  c", "%h $X"])
def test_one_line_good(value: str) -> None:
    assert validators.one_line_problem(value, "v") == ""


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("a\nb", ('"a\\nb"', "control character", "one line")),
        ("a\r", ('"\\r"',)),
        ("a\x00", ('"\\u0000"',)),
        ("a\tb", ('"\\t"',)),
        ("\x1b[31m", ('"\\u001b"',)),
        ("\x7f", ('"\\u007f"',)),
        ("\x85", ('"\\u0085"',)),
        (5, ("an integer", "must be a string")),
        (None, ("null", "must be a string")),
        (True, ("a boolean",)),
        (["a"], ("a list",)),
    ],
)
def test_one_line_bad(value: Any, words: tuple[str, ...]) -> None:
    assert_sentence(validators.one_line_problem(value, "jupyter_base_url"), "jupyter_base_url", *words)


@pytest.mark.parametrize(
    "mapping",
    [
        {},
        {"HTTPS_PROXY": "http://user:pw@proxy:3128", "NO_PROXY": "localhost,127.0.0.1"},
        {"_x": "", "A1": 5, "B": None, "C": True, "D": "caf\u00e9\ttab"},
    ],
)
def test_env_mapping_good(mapping: dict[str, Any]) -> None:
    assert validators.env_mapping_problem(mapping, "proxy_env") == ""


@pytest.mark.parametrize(
    ("mapping", "start", "words"),
    [
        (
            {"OK": "1", "HTTPS_PROXY": "http://u:secret@p\n"},
            "proxy_env.HTTPS_PROXY",
            ("the value of proxy_env.HTTPS_PROXY spans several lines",),
        ),
        ({"A": "x\ry"}, "proxy_env.A", ("spans several lines",)),
        ({"A": "x\x00y"}, "proxy_env.A", ("NUL",)),
        ({"A": ["secret\n"]}, "proxy_env.A", ("is a list", "one string")),
        ({"A": {"secret": 1}}, "proxy_env.A", ("is a mapping",)),
        ({"1A": "x"}, 'proxy_env has the key "1A"', ("not an environment variable name",)),
        ({"A-B": "x"}, 'proxy_env has the key "A-B"', ("not an environment variable name",)),
        ({"": "x"}, 'proxy_env has the key ""', ("not an environment variable name",)),
        ({"A\nB": "x"}, 'proxy_env has the key "A\\nB"', ("not an environment variable name",)),
        ({5: "x"}, "proxy_env has the key 5", ("not an environment variable name",)),
        (["A=b"], "proxy_env is a list", ("must be a mapping",)),
        ("A=b", "proxy_env is a string", ("must be a mapping",)),
        (None, "proxy_env is null", ("must be a mapping",)),
    ],
)
def test_env_mapping_bad(mapping: Any, start: str, words: tuple[str, ...]) -> None:
    message = validators.env_mapping_problem(mapping, "proxy_env")
    assert_sentence(message, start, *words)
    assert "secret" not in message


# ---------------------------------------------------------------------------------------------
# Through Ansible itself
# ---------------------------------------------------------------------------------------------

ANSIBLE_BIN = ansible_bin("ansible")


@pytest.mark.skipif(ANSIBLE_BIN is None, reason="the ansible command is not installed")
def test_filters_load_through_ansible(tmp_path: Path) -> None:
    assert ANSIBLE_BIN is not None
    expression = (
        "{{ ["
        "'/etc' | sparkfleet.spark.path_problem('x', 'user_dir'), "
        "'/home/spark/p' | sparkfleet.spark.path_problem('y'), "
        "'a\"b' | sparkfleet.spark.toml_string, "
        "['--privileged'] | sparkfleet.spark.docker_args_problem('z'), "
        "{'A': 'b'} | sparkfleet.spark.env_mapping_problem('e')"
        "] }}"
    )
    result = run_ansible(
        [ANSIBLE_BIN, "-i", "localhost,", "-c", "local", "localhost", "-m", "debug", "-a", f"msg={expression}"],
        tmp_path,
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.minimal",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "=>" in result.stdout, result.stdout
    msg = json.loads(result.stdout.split("=>", 1)[1])["msg"]
    assert msg[0] == validators.path_problem("/etc", "x", "user_dir")
    assert msg[0].startswith('x "/etc" is the system directory /etc')
    assert msg[1] == ""
    assert msg[2] == '"a\\"b"'
    assert msg[3].startswith('z[0] "--privileged" is not an allowed docker run argument')
    assert msg[4] == ""
