"""container_venv's pure logic: stamps, plan decisions, docker argv, result parsing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ansible_collections.sparkfleet.spark.plugins.module_utils import _container_venv as cv

STAMP = {
    "image_id": "sha256:aaa",
    "repo_digest": "nvcr.io/nvidia/pytorch@sha256:ddd",
    "python_version": "3.12.3",
    "lock_hash": "sha256:111",
    "wheels": ["xformers-0.0.33-cp312-cp312-linux_aarch64.whl"],
}
# Informational keys the builder adds; never a reason to rebuild.
BUILT = {**STAMP, "venv_id": "venv-20251125T160616Z-f87688e0", "built_at": "2025-11-25T16:06:18Z", "torch": {}}


def probe(stamp: Any = "built", exists: bool = True, interpreter_ok: bool = True, **venv: Any) -> dict[str, Any]:
    """A probe result; stamp "built" stands for BUILT (a dict default would be shared between calls)."""
    if stamp == "built":
        stamp = dict(BUILT)
    return {
        "python_version": "3.12.3",
        "lock_hash": "sha256:111",
        "venv": {
            "path": "/home/spark/spark-project/.venv",
            "exists": exists,
            "interpreter_ok": interpreter_ok,
            "interpreter_error": None if interpreter_ok else "venv interpreter does not run (exit 127): not found",
            "stamp": stamp,
            **venv,
        },
    }


@pytest.mark.parametrize(
    ("desired", "current", "force", "action", "reasons"),
    [
        pytest.param(STAMP, probe(), False, "none", [], id="current"),
        pytest.param(
            {**STAMP, "wheels": list(reversed(STAMP["wheels"]))}, probe(), False, "none", [], id="wheel-order-ignored"
        ),
        pytest.param(
            STAMP, probe(stamp=None, exists=False), False, "create", ["venv .venv does not exist"], id="no-venv"
        ),
        pytest.param(
            {**STAMP, "image_id": "sha256:bbb"},
            probe(),
            False,
            "recreate",
            ["image_id changed: sha256:aaa \u2192 sha256:bbb"],
            id="image-changed",
        ),
        pytest.param(
            {**STAMP, "repo_digest": None},
            probe(),
            False,
            "recreate",
            ["repo_digest changed: nvcr.io/nvidia/pytorch@sha256:ddd \u2192 (none)"],
            id="digest-dropped",
        ),
        pytest.param(
            {**STAMP, "lock_hash": "sha256:222", "python_version": "3.12.9"},
            probe(),
            False,
            "recreate",
            ["python_version changed: 3.12.3 \u2192 3.12.9", "lock_hash changed: sha256:111 \u2192 sha256:222"],
            id="lock-and-python",
        ),
        pytest.param(
            {**STAMP, "wheels": []},
            probe(),
            False,
            "recreate",
            ["wheels changed: xformers-0.0.33-cp312-cp312-linux_aarch64.whl \u2192 (none)"],
            id="wheel-removed",
        ),
        pytest.param(
            STAMP,
            probe(stamp={k: v for k, v in STAMP.items() if k != "wheels"}),
            False,
            "recreate",
            ["wheels changed: (none) \u2192 xformers-0.0.33-cp312-cp312-linux_aarch64.whl"],
            id="old-stamp-without-wheels-key",
        ),
        pytest.param(
            STAMP,
            probe(interpreter_ok=False),
            False,
            "repair",
            ["venv interpreter does not run (exit 127): not found"],
            id="broken-interpreter",
        ),
        pytest.param(
            {**STAMP, "image_id": "sha256:bbb"},
            probe(interpreter_ok=False),
            False,
            "recreate",
            ["image_id changed: sha256:aaa \u2192 sha256:bbb", "venv interpreter does not run (exit 127): not found"],
            id="image-changed-and-broken",
        ),
        pytest.param(
            STAMP,
            probe(stamp=None),
            False,
            "recreate",
            ["venv .venv has no sparkfleet stamp (not built by this module)"],
            id="foreign-venv",
        ),
        pytest.param(STAMP, probe(), True, "recreate", ["force is set"], id="force"),
        pytest.param(
            STAMP, probe(stamp=None, exists=False), True, "create", ["venv .venv does not exist"], id="force-no-venv"
        ),
    ],
)
def test_plan(desired: dict, current: dict, force: bool, action: str, reasons: list[str]) -> None:
    assert cv.plan(desired, current, force=force) == {"action": action, "reasons": reasons}


def test_plan_tolerates_a_stamp_with_unknown_keys() -> None:
    assert cv.plan(STAMP, probe(stamp={**BUILT, "future_key": 1}))["action"] == "none"


def test_desired_stamp_takes_python_and_lock_from_the_probe() -> None:
    assert cv.desired_stamp(
        "sha256:aaa", "", ["/var/cache/w/b.whl", "/other/a.whl"], {"python_version": "3.12.3", "lock_hash": "h"}
    ) == {
        "image_id": "sha256:aaa",
        "repo_digest": None,
        "python_version": "3.12.3",
        "lock_hash": "h",
        "wheels": ["a.whl", "b.whl"],
    }


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        (None, {}),
        ({}, {}),
        (BUILT, STAMP),
        (
            {"image_id": "x"},
            {"image_id": "x", "repo_digest": None, "python_version": None, "lock_hash": None, "wheels": []},
        ),
    ],
)
def test_stamp_subset(stamp: dict | None, expected: dict) -> None:
    assert cv.stamp_subset(stamp) == expected


SECRET_PROXY = "http://alice:hunter2@proxy.lab.example:3128"
BASE = dict(
    user="1000:1000",
    project_dir="/home/spark/spark-project",
    script="/root/.ansible/tmp/ansible-tmp-1/sparkfleet_venv_builder.py",
    args=["probe", "--project", "/home/spark/spark-project", "--venv", ".venv"],
)


def _pairs(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


@pytest.mark.parametrize(
    ("kwargs", "mounts", "env"),
    [
        pytest.param(
            {},
            [
                "type=bind,source=/home/spark/spark-project,target=/home/spark/spark-project",
                "type=bind,source=/root/.ansible/tmp/ansible-tmp-1/sparkfleet_venv_builder.py,"
                "target=/opt/sparkfleet/venv_builder.py,readonly",
            ],
            ["HOME=/tmp", "PYTHONUNBUFFERED=1"],
            id="probe",
        ),
        pytest.param(
            dict(
                container_project_dir="/workspace/project",
                uv_binary="/usr/local/bin/uv",
                uv_cache_dir="/home/spark/.cache/uv",
                wheels=["/var/cache/sparkfleet/wheels/xformers-0.0.33-cp312-cp312-linux_aarch64.whl"],
                ca_bundle="/etc/ssl/certs/ca-certificates.crt",
                pass_env=["HTTPS_PROXY", "NO_PROXY"],
            ),
            [
                "type=bind,source=/home/spark/spark-project,target=/workspace/project",
                "type=bind,source=/root/.ansible/tmp/ansible-tmp-1/sparkfleet_venv_builder.py,"
                "target=/opt/sparkfleet/venv_builder.py,readonly",
                "type=bind,source=/usr/local/bin/uv,target=/opt/sparkfleet/bin/uv,readonly",
                "type=bind,source=/home/spark/.cache/uv,target=/opt/sparkfleet/uv-cache",
                "type=bind,source=/var/cache/sparkfleet/wheels/xformers-0.0.33-cp312-cp312-linux_aarch64.whl,"
                "target=/opt/sparkfleet/wheels/xformers-0.0.33-cp312-cp312-linux_aarch64.whl,readonly",
                "type=bind,source=/etc/ssl/certs/ca-certificates.crt,target=/opt/sparkfleet/ca-bundle.crt,readonly",
            ],
            [
                "HOME=/tmp",
                "PYTHONUNBUFFERED=1",
                "UV_CACHE_DIR=/opt/sparkfleet/uv-cache",
                "SSL_CERT_FILE=/opt/sparkfleet/ca-bundle.crt",
                "REQUESTS_CA_BUNDLE=/opt/sparkfleet/ca-bundle.crt",
                "PIP_CERT=/opt/sparkfleet/ca-bundle.crt",
                "GIT_SSL_CAINFO=/opt/sparkfleet/ca-bundle.crt",
                "HTTPS_PROXY",
                "NO_PROXY",
            ],
            id="build-with-everything",
        ),
        pytest.param(
            dict(project_dir="/data/a,b"),
            [
                'type=bind,"source=/data/a,b","target=/data/a,b"',
                "type=bind,source=/root/.ansible/tmp/ansible-tmp-1/sparkfleet_venv_builder.py,"
                "target=/opt/sparkfleet/venv_builder.py,readonly",
            ],
            ["HOME=/tmp", "PYTHONUNBUFFERED=1"],
            id="comma-in-path-is-csv-quoted",
        ),
    ],
)
def test_docker_run_argv(kwargs: dict, mounts: list[str], env: list[str]) -> None:
    argv = cv.docker_run_argv("/usr/bin/docker", "nvcr.io/nvidia/pytorch:25.11-py3", **{**BASE, **kwargs})
    assert argv[:4] == ["/usr/bin/docker", "run", "--rm", "--pull=never"]
    assert _pairs(argv, "--user") == ["1000:1000"]
    assert _pairs(argv, "--mount") == mounts
    assert _pairs(argv, "-e") == env
    image_at = argv.index("nvcr.io/nvidia/pytorch:25.11-py3")
    assert argv[image_at + 1 :] == ["python3", "/opt/sparkfleet/venv_builder.py", *BASE["args"]]


def test_docker_run_argv_never_carries_proxy_values() -> None:
    proxy_env = {"HTTPS_PROXY": SECRET_PROXY, "HTTP_PROXY": SECRET_PROXY, "NO_PROXY": "localhost,10.0.0.0/8"}
    argv = cv.docker_run_argv("docker", "img", **BASE, pass_env=sorted(proxy_env), network="host")
    joined = " ".join(argv)
    for value in proxy_env.values():
        assert value not in joined
    assert "hunter2" not in joined
    assert _pairs(argv, "-e")[-3:] == ["HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"]
    assert _pairs(argv, "--network") == ["host"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(user="spark"), "numeric"),
        (dict(user="1000:spark"), "numeric"),
        (dict(pass_env=["HTTPS_PROXY=http://x"]), "invalid environment variable name"),
        (dict(wheels=["/a/x.whl", "/b/x.whl"]), "share the file name"),
    ],
)
def test_docker_run_argv_rejects(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cv.docker_run_argv("docker", "img", **{**BASE, **kwargs})


def test_build_args() -> None:
    args = cv.build_args(
        "/p",
        ".venv",
        {"image_id": "sha256:aaa", "repo_digest": None, "wheels": ["x.whl"]},
        wheels=["/cache/x.whl"],
        no_install_packages=["xformers"],
        verify_imports=["xformers", "unsloth"],
    )
    assert args[:7] == ["build", "--project", "/p", "--venv", ".venv", "--uv", "/opt/sparkfleet/bin/uv"]
    assert json.loads(_pairs(args, "--stamp")[0]) == {
        "image_id": "sha256:aaa",
        "repo_digest": None,
        "wheels": ["x.whl"],
    }
    assert _pairs(args, "--wheel") == ["/opt/sparkfleet/wheels/x.whl"]
    assert _pairs(args, "--no-install-package") == ["xformers"]
    assert _pairs(args, "--verify-import") == ["xformers", "unsloth"]


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ('{"a": 1}\n', {"a": 1}),
        # NGC images print a banner through their entrypoint first.
        ("\n=============\n== PyTorch ==\n=============\n{not json\n" + '{"a": 2}\n', {"a": 2}),
        ('{"a": 1}\n{"b": 2}\n', {"b": 2}),
        ("", None),
        ("Traceback (most recent call last):\n", None),
        ("[1, 2]\n", None),
    ],
)
def test_parse_result(stdout: str, expected: dict | None) -> None:
    assert cv.parse_result(stdout) == expected


@pytest.mark.parametrize(
    ("allow_replace", "expected"),
    [
        ((), []),
        (["jupyter-server"], ["jupyter-server"]),
        (["Jupyter_Server", "tornado"], ["Jupyter_Server", "tornado"]),  # passed as given; the builder canonicalizes
    ],
)
def test_build_args_allow_replace(allow_replace: list[str], expected: list[str]) -> None:
    args = cv.build_args("/p", ".venv", {"image_id": "sha256:aaa"}, verify_imports=["x"], allow_replace=allow_replace)
    assert _pairs(args, "--allow-replace") == expected
    assert _pairs(args, "--verify-import") == ["x"]
    if expected:
        assert args[-2 * len(expected) :] == [part for name in expected for part in ("--allow-replace", name)]


def test_build_args_without_allow_replace() -> None:
    assert "--allow-replace" not in cv.build_args("/p", ".venv", {"image_id": "sha256:aaa"})


GOOD = {"venv": "6.5.2", "image": "6.4.1"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({}, {}, id="empty"),
        pytest.param(None, {}, id="none"),
        pytest.param(["tornado"], {}, id="a-list"),
        pytest.param("tornado", {}, id="a-string"),
        pytest.param(
            {
                "tornado": GOOD,
                "jupyter-server": {"venv": "2.4.0", "image": "2.3.2"},
                "numpy": {"venv": "2.1.0", "image": "1.26.4"},
            },
            {
                "jupyter-server": {"venv": "2.4.0", "image": "2.3.2"},
                "numpy": {"venv": "2.1.0", "image": "1.26.4"},
                "tornado": GOOD,
            },
            id="kept-sorted",
        ),
        pytest.param(
            {
                "torch": {"venv": "2.9.0", "image": "2.9.0a0+145a3a7.nv25.10"},
                "a": {"venv": "1!2.0.post1", "image": "0_1"},
            },
            {
                "a": {"venv": "1!2.0.post1", "image": "0_1"},
                "torch": {"venv": "2.9.0", "image": "2.9.0a0+145a3a7.nv25.10"},
            },
            id="version-shapes",
        ),
        pytest.param(
            {"tornado": {**GOOD, "path": "/home/x", "extra": 1}},
            {"tornado": GOOD},
            id="extra-keys-dropped",
        ),
        pytest.param(
            {
                "Tornado": GOOD,  # not canonical
                "jupyter_server": GOOD,
                "zope.interface": GOOD,
                "-tornado": GOOD,
                "tornado-": GOOD,
                "": GOOD,
                "a b": GOOD,
                "x;rm": GOOD,
                1: GOOD,
                "ok": GOOD,
            },
            {"ok": GOOD},
            id="names",
        ),
        pytest.param(
            {
                "a": {"venv": "1.0"},
                "b": {"image": "1.0"},
                "c": {"venv": 1, "image": "1.0"},
                "d": {"venv": "1.0", "image": None},
                "e": {"venv": "1.0 beta", "image": "1.0"},
                "f": {"venv": "", "image": "1.0"},
                "g": {"venv": "1" * 129, "image": "1.0"},
                "h": {"venv": ".1", "image": "1.0"},
                "i": "6.5.2",
                "j": ["6.5.2", "6.4.1"],
                "k": None,
                "ok": GOOD,
            },
            {"ok": GOOD},
            id="versions-and-shapes",
        ),
    ],
)
def test_checked_shadowed(value: Any, expected: dict[str, dict[str, str]]) -> None:
    checked = cv.checked_shadowed(value)
    assert checked == expected and list(checked) == sorted(checked)


def test_checked_shadowed_reads_at_most_limit_entries() -> None:
    value = {f"d{i:04d}": GOOD for i in range(2500)}
    assert len(cv.checked_shadowed(value)) == 2000
    assert list(cv.checked_shadowed(value, limit=3)) == ["d0000", "d0001", "d0002"]
    # The limit counts entries read, dropped ones too.
    assert cv.checked_shadowed({"Bad": GOOD, "b": GOOD, "c": GOOD}, limit=2) == {"b": GOOD}
    assert cv.checked_shadowed(value, limit=0) == {}


@pytest.mark.parametrize(
    "value",
    [{"numpy\n": GOOD}, {"numpy": {"venv": "1.0\n", "image": "1.0"}}],
)
def test_checked_shadowed_refuses_a_trailing_newline(value: dict) -> None:
    assert cv.checked_shadowed(value) == {}
