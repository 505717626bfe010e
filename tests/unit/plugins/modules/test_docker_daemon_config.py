"""docker_daemon_config: the merge and the plan as tables; the module on a real file system, with dockerd
replaced by a monkeypatched run_validate or by small executable TEST DOUBLES of dockerd."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.spark.plugins.modules import docker_daemon_config as ddc
from module_harness import run_main

NOBODY = 65534
# The module writes daemon.json as root:root and refuses a file root does not own.
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="daemon.json is owned by root")

NVIDIA = {"runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}}
# How nvidia-ctk lays the file out: another indent, another key order.
NVIDIA_CTK_TEXT = (
    '{\n  "runtimes": {\n    "nvidia": {\n      "path": "nvidia-container-runtime",\n      "args": []\n    }\n  }\n}'
)

# TEST DOUBLE of a Docker 26 dockerd: `--validate --config-file F` refuses a file with a key named no-such-key
# with the message the real engine prints, accepts anything else; `--version` answers as Docker 26.1.5 does.
# Each validation is logged (file and mode) beside the script, so tests see which candidate was checked.
DOCKERD_26 = r"""#!/bin/sh
# TEST DOUBLE: stands in for dockerd 26.1.5 in unit tests.
case "$1" in
  --version)
    echo "Docker version 26.1.5, build 411e817"
    exit 0 ;;
  --validate)
    [ "$2" = "--config-file" ] && [ -f "$3" ] || { echo "TEST DOUBLE: unexpected arguments: $*" >&2; exit 2; }
    echo "$3 $(stat -c %a "$3")" >> "$(dirname "$0")/validated.log"
    if grep -q '"no-such-key"[[:space:]]*:' "$3"; then
      printf '%s %s\n' "unable to configure the Docker daemon with file $3: the following directives" \
        "don't match any configuration option: no-such-key" >&2
      exit 1
    fi
    echo "configuration OK" >&2
    exit 0 ;;
esac
echo "TEST DOUBLE: unexpected arguments: $*" >&2
exit 2
"""

# TEST DOUBLE of a dockerd older than Docker 23, which has no --validate flag.
DOCKERD_20 = r"""#!/bin/sh
# TEST DOUBLE: stands in for an old dockerd (20.10) in unit tests.
if [ "$1" = "--version" ]; then
  echo "Docker version 20.10.24+dfsg1, build 5d6db84"
  exit 0
fi
echo "unknown flag: --validate" >&2
echo "See 'dockerd --help'." >&2
exit 125
"""

REFUSED = "the following directives don't match any configuration option: no-such-key"


# --- merge and plan -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "options", "merged"),
    [
        pytest.param({}, {}, {}, id="nothing"),
        pytest.param({}, {"debug": True}, {"debug": True}, id="new key"),
        pytest.param(
            NVIDIA, {"log-opts": {"max-size": "10m"}}, {**NVIDIA, "log-opts": {"max-size": "10m"}}, id="keeps others"
        ),
        pytest.param(
            {"log-opts": {"max-size": "10m", "max-file": "3"}},
            {"log-opts": {"max-size": "50m"}},
            {"log-opts": {"max-size": "50m", "max-file": "3"}},
            id="nested merge key by key",
        ),
        pytest.param(
            NVIDIA,
            {"runtimes": {"nvidia": {"args": ["--debug"]}}},
            {"runtimes": {"nvidia": {"args": ["--debug"], "path": "nvidia-container-runtime"}}},
            id="three levels deep",
        ),
        pytest.param(
            {"insecure-registries": ["a:5000", "b:5000"]},
            {"insecure-registries": ["r:5000"]},
            {"insecure-registries": ["r:5000"]},
            id="lists replace",
        ),
        pytest.param(
            {"log-opts": {"max-size": "10m"}}, {"log-opts": "x"}, {"log-opts": "x"}, id="scalar replaces dict"
        ),
        pytest.param({"log-opts": "x"}, {"log-opts": {"a": "1"}}, {"log-opts": {"a": "1"}}, id="dict replaces scalar"),
        pytest.param({"debug": True}, {"debug": None}, {"debug": None}, id="null replaces"),
    ],
)
def test_merge_is_combine_recursive(existing, options, merged) -> None:
    before = json.dumps([existing, options], sort_keys=True)
    assert ddc.merge(existing, options) == merged
    # Pure: neither argument is touched.
    assert json.dumps([existing, options], sort_keys=True) == before


def test_merge_shares_nothing_with_its_arguments() -> None:
    options = {"log-opts": {"max-size": "10m"}, "dns": ["1.1.1.1"]}
    merged = ddc.merge({}, options)
    merged["log-opts"]["max-size"] = "1m"
    merged["dns"].append("8.8.8.8")
    assert options == {"log-opts": {"max-size": "10m"}, "dns": ["1.1.1.1"]}


@pytest.mark.parametrize(
    ("existing", "merged", "lines"),
    [
        pytest.param({}, {}, [], id="nothing"),
        pytest.param(NVIDIA, json.loads(NVIDIA_CTK_TEXT), [], id="same data in another layout"),
        pytest.param({"a": 1, "b": 2}, {"b": 2, "a": 1}, [], id="key order is not a change"),
        pytest.param({}, {"insecure-registries": ["r:5000"]}, ['set "insecure-registries": ["r:5000"]'], id="new list"),
        pytest.param(
            {"log-opts": {"max-file": "3"}},
            {"log-opts": {"max-file": "3", "max-size": "10m"}},
            ['set "log-opts"."max-size": "10m"'],
            id="nested key",
        ),
        pytest.param(
            NVIDIA,
            {**NVIDIA, "log-opts": {"max-size": "10m"}},
            ['set "log-opts": {"max-size": "10m"}'],
            id="new object at once",
        ),
        pytest.param({"debug": 1}, {"debug": True}, ['set "debug": true'], id="true is not 1"),
        pytest.param({"mtu": 1500}, {"mtu": 1500.0}, ['set "mtu": 1500.0'], id="1500.0 is not 1500"),
        pytest.param({"dns": ["a", "b"]}, {"dns": ["b", "a"]}, ['set "dns": ["b", "a"]'], id="list order counts"),
        pytest.param({"a": {"b": 1}}, {"a": 2}, ['set "a": 2'], id="object to scalar"),
        pytest.param({"old": 1, "keep": 2}, {"keep": 2}, ['remove "old"'], id="removed key"),
    ],
)
def test_plan_lists_what_differs_as_data(existing, merged, lines) -> None:
    assert ddc.plan(existing, merged) == lines


def test_render_is_the_layout_the_role_wrote() -> None:
    # to_nice_json(indent=4) plus a newline: sorted keys, four spaces, no trailing blanks.
    assert ddc.render({"b": [1], "a": {"y": "2", "x": True}}) == (
        '{\n    "a": {\n        "x": true,\n        "y": "2"\n    },\n    "b": [\n        1\n    ]\n}\n'
    )


# --- the module -----------------------------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "etc-docker").mkdir()
    return tmp_path / "etc-docker" / "daemon.json"


def double(tmp_path: Path, script: str) -> Path:
    """Write a dockerd TEST DOUBLE into tmp_path/bin and return its path."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    path = bindir / "dockerd"
    path.write_text(script)
    path.chmod(0o755)
    return path


def validated(dockerd: Path) -> list[tuple[str, str]]:
    """(candidate, its mode) for each `--validate` the TEST DOUBLE answered."""
    log = dockerd.parent / "validated.log"
    return [tuple(line.rsplit(" ", 1)) for line in log.read_text().splitlines()] if log.exists() else []  # type: ignore[misc]


def run(capsys: pytest.CaptureFixture, tmp_path: Path, **args: Any) -> dict:
    return run_main(ddc.main, capsys, tmp_path, **args)[0]


def warnings(result: dict) -> list[str]:
    """The warnings' texts (ansible-core 2.19 returns each as a structured summary)."""
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]


def leftovers(config: Path) -> list[str]:
    return sorted(p.name for p in config.parent.iterdir() if p.name != config.name)


def snapshot(path: Path) -> tuple[bytes, int, int, int]:
    st = path.stat()
    return path.read_bytes(), st.st_ino, st.st_mtime_ns, stat.S_IMODE(st.st_mode)


def refuse_to_validate(module, dockerd, path):
    raise AssertionError("dockerd --validate must not run here")


@as_root
def test_creates_a_missing_file_once_dockerd_accepts_it(tmp_path, capsys, config) -> None:
    dockerd = double(tmp_path, DOCKERD_26)
    options = {"log-opts": {"max-size": "10m"}, "insecure-registries": ["r:5000"]}
    result = run(capsys, tmp_path, path=str(config), options=options, dockerd=str(dockerd), diff=True)
    assert result["changed"] is True and result["restart_needed"] is True
    assert result["actions"] == ['set "log-opts": {"max-size": "10m"}', 'set "insecure-registries": ["r:5000"]']
    assert result["config"] == options
    assert result["diff"] == {"before": "", "after": ddc.render(options)}
    assert config.read_text() == ddc.render(options)
    st = config.lstat()
    assert stat.S_ISREG(st.st_mode) and (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o644)
    # dockerd checked a private candidate beside daemon.json, which became daemon.json.
    [(candidate, mode)] = validated(dockerd)
    assert Path(candidate).parent == config.parent and mode == "600"
    assert leftovers(config) == []


@as_root
def test_merged_options_change_nothing_and_the_file_is_untouched(tmp_path, capsys, config, monkeypatch) -> None:
    # nvidia-ctk's layout holding what the options ask: the same data, so no rewrite for the layout.
    config.write_text(json.dumps({**NVIDIA, "log-opts": {"max-size": "10m"}}, indent=2))
    os.utime(config, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    before = snapshot(config)
    monkeypatch.setattr(ddc, "run_validate", refuse_to_validate)
    result = run(capsys, tmp_path, path=str(config), options={"log-opts": {"max-size": "10m"}}, dockerd="/nonexistent")
    assert result["changed"] is False and result["restart_needed"] is False and result["actions"] == []
    assert snapshot(config) == before
    assert leftovers(config) == []


@as_root
def test_a_refused_key_fails_and_leaves_the_file_byte_identical(tmp_path, capsys, config) -> None:
    dockerd = double(tmp_path, DOCKERD_26)
    config.write_text(NVIDIA_CTK_TEXT)
    before = snapshot(config)
    result = run(capsys, tmp_path, path=str(config), options={"no-such-key": True}, dockerd=str(dockerd))
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"] == (
        f"docker_daemon_options would make dockerd refuse {config}: {REFUSED} \u2014 daemon.json was left as it was"
    )
    assert result["actions"] == ['set "no-such-key": true']
    [(candidate, _mode)] = validated(dockerd)
    assert result["dockerd_output"] == [f"unable to configure the Docker daemon with file {candidate}: {REFUSED}"]
    assert snapshot(config) == before
    assert leftovers(config) == []


@as_root
def test_an_engine_without_validate_fails_clearly(tmp_path, capsys, config) -> None:
    dockerd = double(tmp_path, DOCKERD_20)
    config.write_text(NVIDIA_CTK_TEXT)
    before = snapshot(config)
    result = run(capsys, tmp_path, path=str(config), options={"debug": True}, dockerd=str(dockerd))
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"] == (
        "dockerd 20.10.24+dfsg1 cannot validate a configuration (`dockerd --validate` needs Docker 23 or newer); "
        "upgrade the engine or set docker_daemon_validate: false to write daemon.json unvalidated"
    )
    assert snapshot(config) == before
    assert leftovers(config) == []


@as_root
def test_check_mode_validates_reports_and_writes_nothing(tmp_path, capsys, config) -> None:
    dockerd = double(tmp_path, DOCKERD_26)
    config.write_text(NVIDIA_CTK_TEXT)
    before = snapshot(config)
    options = {"log-opts": {"max-size": "10m"}}
    result = run(capsys, tmp_path, path=str(config), options=options, dockerd=str(dockerd), check_mode=True, diff=True)
    assert result["changed"] is True and result["restart_needed"] is True
    assert result["actions"] == ['set "log-opts": {"max-size": "10m"}']
    assert result["diff"] == {"before": NVIDIA_CTK_TEXT, "after": ddc.render({**NVIDIA, **options})}
    assert snapshot(config) == before
    # Validated for real, from a candidate outside /etc/docker, which is gone afterwards.
    [(candidate, _mode)] = validated(dockerd)
    assert Path(candidate).parent != config.parent and not Path(candidate).exists()
    assert leftovers(config) == []


@as_root
def test_check_mode_fails_on_a_refused_key(tmp_path, capsys, config) -> None:
    dockerd = double(tmp_path, DOCKERD_26)
    config.write_text(NVIDIA_CTK_TEXT)
    before = snapshot(config)
    args = {"path": str(config), "options": {"no-such-key": 1}, "dockerd": str(dockerd)}
    result = run(capsys, tmp_path, **args, check_mode=True)
    assert result["failed"] is True and result["changed"] is False
    assert "docker_daemon_options would make dockerd refuse" in result["msg"] and REFUSED in result["msg"]
    assert snapshot(config) == before
    assert all(not Path(candidate).exists() for candidate, _mode in validated(dockerd))


@as_root
def test_a_symlinked_daemon_json_is_refused(tmp_path, capsys, config, monkeypatch) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text(NVIDIA_CTK_TEXT)
    config.symlink_to(target)
    before = snapshot(target)
    monkeypatch.setattr(ddc, "run_validate", refuse_to_validate)
    result = run(capsys, tmp_path, path=str(config), options={"debug": True}, dockerd="/nonexistent")
    assert result["failed"] is True
    assert result["msg"] == (
        f"{config} is a symlink; sparkfleet writes it only as a regular file, never through a link"
    )
    assert config.is_symlink() and os.readlink(config) == str(target)
    assert snapshot(target) == before


@as_root
@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"[1, 2]", ""),
        (b'"log-opts"', ""),
        (b"null", ""),
        (b'{"debug": true,}', " (invalid JSON: "),
        (b"\xff\xfe{}", " (invalid JSON: "),
    ],
)
def test_a_file_that_is_not_a_json_object_is_refused(tmp_path, capsys, config, monkeypatch, content, detail) -> None:
    config.write_bytes(content)
    monkeypatch.setattr(ddc, "run_validate", refuse_to_validate)
    result = run(capsys, tmp_path, path=str(config), options={"debug": True}, dockerd="/nonexistent")
    assert result["failed"] is True
    message = f"{config} is not a JSON object; fix or remove it, sparkfleet never overwrites a file it cannot read"
    assert result["msg"].startswith(message + detail)
    assert config.read_bytes() == content


@as_root
def test_a_file_root_does_not_own_is_refused(tmp_path, capsys, config, monkeypatch) -> None:
    config.write_text("{}")
    os.chown(config, NOBODY, NOBODY)
    monkeypatch.setattr(ddc, "run_validate", refuse_to_validate)
    result = run(capsys, tmp_path, path=str(config), options={"debug": True}, dockerd="/nonexistent")
    assert result["failed"] is True
    assert result["msg"] == f"{config} is owned by uid {NOBODY}, not root; sparkfleet never replaces it"
    assert config.read_text() == "{}"


@as_root
def test_nested_merge_keeps_keys_owned_by_others(tmp_path, capsys, config, monkeypatch) -> None:
    config.write_text(NVIDIA_CTK_TEXT)
    checked: list[dict] = []

    def accept(module, dockerd, path):
        checked.append(json.loads(Path(path).read_text()))
        return 0, "", "configuration OK\n"

    monkeypatch.setattr(ddc, "run_validate", accept)
    options = {"log-opts": {"max-size": "10m", "max-file": "3"}}
    result = run(capsys, tmp_path, path=str(config), options=options, dockerd=str(double(tmp_path, DOCKERD_26)))
    assert result["changed"] is True
    assert json.loads(config.read_text()) == {**NVIDIA, **options} == result["config"]
    # What dockerd checked is what was installed.
    assert checked == [result["config"]]
    again = run(capsys, tmp_path, path=str(config), options={"log-opts": {"max-size": "10m"}}, dockerd="/x")
    assert again["changed"] is False
    assert json.loads(config.read_text()) == {**NVIDIA, **options}


@as_root
def test_dockerds_message_is_trimmed_to_the_reason(tmp_path, capsys, config, monkeypatch) -> None:
    def refuse(module, dockerd, path):
        return 1, "", f"\n  unable to configure the Docker daemon with file {path}: invalid log-opts: max-size\n\n"

    monkeypatch.setattr(ddc, "run_validate", refuse)
    result = run(capsys, tmp_path, path=str(config), options={"log-opts": {"max-size": "x"}}, dockerd="/bin/true")
    assert result["msg"] == (
        f"docker_daemon_options would make dockerd refuse {config}: invalid log-opts: max-size"
        " \u2014 daemon.json was left as it was"
    )
    assert not config.exists() and leftovers(config) == []


@as_root
def test_without_validation_dockerd_is_not_run_and_a_warning_says_so(tmp_path, capsys, config, monkeypatch) -> None:
    monkeypatch.setattr(ddc, "run_validate", refuse_to_validate)
    result = run(capsys, tmp_path, path=str(config), options={"no-such-key": 1}, validate=False, dockerd="/x")
    assert result["changed"] is True
    assert "daemon.json written without validation" in warnings(result)
    assert json.loads(config.read_text()) == {"no-such-key": 1}


@as_root
def test_a_missing_dockerd_fails_but_only_warns_in_check_mode(tmp_path, capsys, config) -> None:
    args = {"path": str(config), "options": {"debug": True}, "dockerd": str(tmp_path / "no-dockerd")}
    result = run(capsys, tmp_path, **args)
    assert result["failed"] is True and "cannot be validated" in result["msg"]
    assert not config.exists()
    checked = run(capsys, tmp_path, **args, check_mode=True)
    assert checked["changed"] is True
    assert any("could not be validated in check mode" in w for w in warnings(checked))


REAL_DOCKERD = shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/usr/bin:/sbin")


@as_root
@pytest.mark.skipif(REAL_DOCKERD is None, reason="no dockerd installed on this machine")
def test_the_installed_dockerd_refuses_an_unknown_key(tmp_path, capsys, config) -> None:
    """Not a double: whatever engine this machine has either refuses the key or says it cannot validate."""
    config.write_text(NVIDIA_CTK_TEXT)
    before = snapshot(config)
    result = run(capsys, tmp_path, path=str(config), options={"no-such-key": True}, dockerd=REAL_DOCKERD)
    assert result["failed"] is True and result["changed"] is False
    assert ("no-such-key" in result["msg"]) or ("needs Docker 23 or newer" in result["msg"]), result["msg"]
    assert snapshot(config) == before
    assert leftovers(config) == []
