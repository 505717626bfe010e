"""image_python: the image's answer checked, its root-owned cache, and whole runs (a real image where present)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.spark.plugins.modules import image_python
from module_harness import run_main

IMAGE = "sparkfleet-testbed/ngc-pytorch:25.11-py3"
FAKE_ID = "sha256:" + "ab" * 32
ANSWER = {"python_version": "3.12", "distributions": {"jupyter-server": "2.3.2", "numpy": "1.26.4"}}


def run(capsys: pytest.CaptureFixture, tmp_path: Path, **args: Any) -> dict:
    return run_main(image_python.main, capsys, tmp_path, **args)[0]


def cache_text(answer: Any, fmt: Any = image_python.CACHE_FORMAT) -> str:
    return json.dumps({"format": fmt, "answer": answer})


VALID_RAW = {"python": "3.12", "distributions": [["numpy", "1.26.4"], ["jupyter_server", "2.3.2"]]}


# --------------------------------------------------------------------------- parse_answer


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("numpy", "numpy"),
        ("Jupyter_Server", "jupyter-server"),
        ("jupyter-server", "jupyter-server"),
        ("zope.interface", "zope-interface"),
        ("A__B--C..d", "a-b-c-d"),
        ("nvidia-cudnn-cu12", "nvidia-cudnn-cu12"),
    ],
)
def test_canonical(name: str, expected: str) -> None:
    assert image_python.canonical(name) == expected


@pytest.mark.parametrize(
    ("data", "distributions"),
    [
        pytest.param(
            {
                "python": "3.12",
                "distributions": [
                    ["torch", "2.9.0a0+145a3a7.nv25.10"],
                    ["numpy", "1.26.4"],
                    ["Jupyter_Server", "2.3.2"],
                    # A second copy further down sys.path: import loads the first one.
                    ["NumPy", "2.1.0"],
                    ["jupyter-server", "9.9.9"],
                ],
            },
            {"jupyter-server": "2.3.2", "numpy": "1.26.4", "torch": "2.9.0a0+145a3a7.nv25.10"},
            id="first-copy-wins-canonical",
        ),
        pytest.param({"python": "3.8", "distributions": []}, {}, id="no-distributions"),
        pytest.param(
            {"python": "3.11", "distributions": [["a", "1"], ["Z", "1!2.0.post1.dev3"], ["m_m.m", "0_1-rc"]]},
            {"a": "1", "m-m-m": "0_1-rc", "z": "1!2.0.post1.dev3"},
            id="shapes-of-names-and-versions",
        ),
        pytest.param(
            {"python": "3.12", "distributions": [["x", "1"]], "extra": "ignored key"},
            {"x": "1"},
            id="unknown-keys",
        ),
    ],
)
def test_parse_answer_valid(data: dict, distributions: dict[str, str]) -> None:
    answer, ignored = image_python.parse_answer(data)
    assert ignored == []
    assert answer == {"python_version": data["python"], "distributions": distributions}
    assert answer is not None and list(answer["distributions"]) == sorted(distributions)


BAD_ENTRIES: list[Any] = [
    ["foo bar", "1.0"],  # a space is no PEP 508 name
    ["-numpy", "1.0"],
    ["numpy-", "1.0"],
    ["", "1.0"],
    ["numpy;rm", "1.0"],
    ["numpy", "1.0 beta"],
    ["numpy", ""],
    ["numpy", ".1"],
    ["numpy", "1" * 129],
    ["numpy", "1.0; rm -rf /"],
    ["numpy"],
    ["numpy", "1.0", "extra"],
    [],
    "numpy==1.0",
    None,
    42,
    {"name": "numpy", "version": "1.0"},
    ["numpy", 1.0],
    [1, "1.0"],
    ("numpy", "1.0"),  # not a list
    ["no " + "x" * 200, "1.0"],  # cut to 80 characters in ignored
]


def test_parse_answer_drops_invalid_entries_into_ignored() -> None:
    entries = [["ok", "1.0"], *BAD_ENTRIES, ["Also_OK", "2"]]
    answer, ignored = image_python.parse_answer({"python": "3.12", "distributions": entries})
    assert answer == {"python_version": "3.12", "distributions": {"also-ok": "2", "ok": "1.0"}}
    assert ignored == [repr(entry)[:80] for entry in BAD_ENTRIES]
    assert all(len(line) <= 80 for line in ignored)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        pytest.param([], "the answer is not a JSON object", id="list"),
        pytest.param("3.12", "the answer is not a JSON object", id="string"),
        pytest.param(None, "the answer is not a JSON object", id="none"),
        pytest.param(3.12, "the answer is not a JSON object", id="number"),
        pytest.param({"python": "3", "distributions": []}, "python '3' is not MAJOR.MINOR", id="major-only"),
        pytest.param(
            {"python": "python3.11", "distributions": []}, "python 'python3.11' is not MAJOR.MINOR", id="prefixed"
        ),
        pytest.param({"python": 3.11, "distributions": []}, "python '3.11' is not MAJOR.MINOR", id="a-number"),
        pytest.param({"python": "3.11.2", "distributions": []}, "python '3.11.2' is not MAJOR.MINOR", id="micro"),
        pytest.param({"python": "2.7", "distributions": []}, "python '2.7' is not MAJOR.MINOR", id="python2"),
        pytest.param({"python": "3.123", "distributions": []}, "python '3.123' is not MAJOR.MINOR", id="3-digits"),
        pytest.param({"distributions": []}, "python 'None' is not MAJOR.MINOR", id="no-python"),
        pytest.param(
            {"python": "3." + "1" * 100, "distributions": []},
            f"python {('3.' + '1' * 100)[:40]!r} is not MAJOR.MINOR",
            id="long-python-cut",
        ),
        pytest.param({"python": "3.12"}, "distributions is not a list of at most 5000 entries", id="no-list"),
        pytest.param(
            {"python": "3.12", "distributions": {"numpy": "1"}},
            "distributions is not a list of at most 5000 entries",
            id="a-mapping",
        ),
        pytest.param(
            {"python": "3.12", "distributions": [["d", "1"]] * 5001},
            "distributions is not a list of at most 5000 entries",
            id="too-many",
        ),
    ],
)
def test_parse_answer_refuses(data: Any, why: str) -> None:
    assert image_python.parse_answer(data) == (None, [why])


def test_parse_answer_takes_as_many_as_the_limit() -> None:
    entries = [[f"d{i}", "1"] for i in range(image_python.MAX_DISTRIBUTIONS)]
    answer, ignored = image_python.parse_answer({"python": "3.12", "distributions": entries})
    assert ignored == [] and answer is not None and len(answer["distributions"]) == image_python.MAX_DISTRIBUTIONS


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"python": "3.11\n", "distributions": []}, id="python"),
        pytest.param({"python": "3.11", "distributions": [["numpy\n", "1.0"]]}, id="name"),
        pytest.param({"python": "3.11", "distributions": [["numpy", "1.0\n"]]}, id="version"),
    ],
)
def test_parse_answer_refuses_a_trailing_newline(data: dict) -> None:
    answer, ignored = image_python.parse_answer(data)
    assert answer is None or (answer["distributions"] == {} and ignored)


def test_image_id_refuses_a_trailing_newline() -> None:
    assert not image_python.IMAGE_ID.fullmatch("sha256:" + "a" * 64 + "\n")


# --------------------------------------------------------------------------- the cache


def test_read_cache_of_a_missing_file(tmp_path: Path) -> None:
    assert image_python.read_cache(str(tmp_path / "missing.json")) is None
    assert image_python.read_cache(str(tmp_path / "no-dir" / "missing.json")) is None


def test_read_cache_of_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(cache_text(VALID_RAW))
    path.chmod(0o644)
    assert image_python.read_cache(str(path)) == ANSWER


def test_read_cache_does_not_follow_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text(cache_text(VALID_RAW))
    real.chmod(0o644)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert image_python.read_cache(str(real)) == ANSWER
    assert image_python.read_cache(str(link)) is None


@pytest.mark.parametrize(
    ("mode", "expected"),
    [(0o644, ANSWER), (0o600, ANSWER), (0o400, ANSWER), (0o664, None), (0o646, None), (0o666, None), (0o620, None)],
)
def test_read_cache_refuses_a_file_others_can_write(tmp_path: Path, mode: int, expected: dict | None) -> None:
    path = tmp_path / "a.json"
    path.write_text(cache_text(VALID_RAW))
    path.chmod(mode)
    assert image_python.read_cache(str(path)) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(cache_text(VALID_RAW, fmt=2), id="format-2"),
        pytest.param(cache_text(VALID_RAW, fmt="1"), id="format-as-string"),
        pytest.param(json.dumps({"answer": VALID_RAW}), id="no-format"),
        pytest.param(json.dumps([1, VALID_RAW]), id="a-list"),
        pytest.param("{not json", id="not-json"),
        pytest.param("", id="empty"),
        pytest.param(cache_text({"python": "3", "distributions": []}), id="bad-python"),
        pytest.param(cache_text({"python": "3.12", "distributions": [["foo bar", "1"]]}), id="an-ignored-entry"),
        pytest.param(cache_text(None), id="no-answer"),
    ],
)
def test_read_cache_refuses_a_file_of_another_shape(tmp_path: Path, text: str) -> None:
    path = tmp_path / "a.json"
    path.write_text(text)
    path.chmod(0o644)
    assert image_python.read_cache(str(path)) is None


def test_read_cache_of_a_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.json").mkdir()
    assert image_python.read_cache(str(tmp_path / "dir.json")) is None


def test_read_cache_of_a_fifo_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo, 0o644)
    assert image_python.read_cache(str(fifo)) is None


def test_read_cache_of_an_oversized_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.json"
    path.write_text(cache_text(VALID_RAW))
    path.chmod(0o644)
    monkeypatch.setattr(image_python, "CACHE_LIMIT", 20)
    assert image_python.read_cache(str(path)) is None


def test_write_cache_then_read_cache(tmp_path: Path) -> None:
    directory = tmp_path / "images"
    path = directory / "abc.json"
    image_python.write_cache(str(path), ANSWER)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(directory.stat().st_mode) & 0o022 == 0
    assert image_python.read_cache(str(path)) == ANSWER
    assert json.loads(path.read_text()) == {
        "format": image_python.CACHE_FORMAT,
        "answer": {"python": "3.12", "distributions": [["jupyter-server", "2.3.2"], ["numpy", "1.26.4"]]},
    }
    other = {"python_version": "3.11", "distributions": {"torch": "2.9.0"}}
    image_python.write_cache(str(path), other)
    assert image_python.read_cache(str(path)) == other
    assert os.listdir(directory) == ["abc.json"]  # no temporary file left


@pytest.mark.parametrize("mode", [0o775, 0o757, 0o777])
def test_write_cache_refuses_a_directory_others_can_write(tmp_path: Path, mode: int) -> None:
    directory = tmp_path / "images"
    directory.mkdir()
    directory.chmod(mode)
    with pytest.raises(OSError, match="is not a directory only its owner"):
        image_python.write_cache(str(directory / "abc.json"), ANSWER)
    assert os.listdir(directory) == []


def test_write_cache_refuses_a_linked_directory(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o755)
    (tmp_path / "images").symlink_to(real)
    with pytest.raises(OSError, match="is not a directory only its owner"):
        image_python.write_cache(str(tmp_path / "images" / "abc.json"), ANSWER)
    assert os.listdir(real) == []


# --------------------------------------------------------------------------- main()


def no_docker(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record any command the module would run, and fail the test's expectations if one is."""
    calls: list[Any] = []

    def refuse(self: Any, argv: Any, *args: Any, **kwargs: Any) -> tuple[int, str, str]:
        calls.append(argv)
        return 1, "", "no command may run"

    monkeypatch.setattr(image_python.AnsibleModule, "run_command", refuse)
    return calls


@pytest.mark.parametrize(
    "image_id",
    [
        "",
        "sha256:abc",
        "3d9a2c9c51a1c86e22206d117a40826c949c0b57d50fd5dc21ade703a78bbb03",
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 65,
        "sha512:" + "a" * 64,
        "sha256:" + "a" * 63 + "/",
        "sparkfleet-testbed/ngc-pytorch:25.11-py3",
    ],
)
def test_main_refuses_an_invalid_image_id(
    capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image_id: str
) -> None:
    calls = no_docker(monkeypatch)
    result = run(capsys, tmp_path, image_id=image_id, cache_dir=str(tmp_path / "cache"))
    assert result["failed"] is True
    assert "image_id" in result["msg"] and repr(image_id[:80]) in result["msg"]
    assert calls == [] and not (tmp_path / "cache").exists()


def test_main_reads_a_cached_answer_without_docker(
    capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = no_docker(monkeypatch)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o755)
    path = cache / (FAKE_ID.split(":", 1)[1] + ".json")
    path.write_text(cache_text(VALID_RAW))
    path.chmod(0o644)
    result = run(capsys, tmp_path, image_id=FAKE_ID, cache_dir=str(cache))
    assert calls == []
    assert result.get("failed") is not True, result
    assert result["changed"] is False and result["source"] == "cache"
    assert result["cache_file"] == str(path)
    assert result["python_version"] == "3.12" and result["distributions"] == ANSWER["distributions"]
    assert result["ignored"] == []


FAKE_DOCKER = """#!/bin/sh
printf '%s\\n' "$@" > "$FAKE_DOCKER_ARGV"
printf '%s' "$FAKE_DOCKER_OUT"
printf '%s' "$FAKE_DOCKER_ERR" >&2
exit "$FAKE_DOCKER_RC"
"""


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A docker on PATH that prints FAKE_DOCKER_OUT and exits FAKE_DOCKER_RC; returns its argv file."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "docker").write_text(FAKE_DOCKER)
    (bindir / "docker").chmod(0o755)
    argv = tmp_path / "docker-argv"
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_DOCKER_ARGV", str(argv))
    monkeypatch.setenv("FAKE_DOCKER_ERR", "")
    monkeypatch.setenv("FAKE_DOCKER_RC", "0")
    return argv


def test_main_asks_the_image_and_warns_of_ignored_entries(
    capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_docker: Path
) -> None:
    raw = {"python": "3.12", "distributions": [["numpy", "1.26.4"], ["foo bar", "1"], ["Jupyter_Server", "2.3.2"]]}
    monkeypatch.setenv("FAKE_DOCKER_OUT", "== banner ==\n" + json.dumps(raw) + "\n")
    result = run(capsys, tmp_path, image_id=FAKE_ID, cache_dir=str(tmp_path / "cache"))
    assert result.get("failed") is not True, result
    assert result["changed"] is True and result["source"] == "image"
    assert result["distributions"] == ANSWER["distributions"] and result["ignored"] == ["['foo bar', '1']"]
    assert "foo bar" in json.dumps(result.get("warnings", [])), result
    argv = fake_docker.read_text().splitlines()
    assert argv[:8] == ["run", "--rm", "--pull=never", "--network", "none", "--user", "65534:65534", "--env"]
    assert argv[argv.index("--entrypoint") + 1] == "python3" and FAKE_ID in argv
    assert image_python.read_cache(result["cache_file"]) == ANSWER


@pytest.mark.parametrize(
    ("out", "err", "rc", "named"),
    [
        ("", "Unable to find image locally\n", "125", "Unable to find image locally"),
        ("", "", "1", "no output"),
        ("not json\n", "", "0", "no output"),
        (json.dumps({"python": "3", "distributions": []}) + "\n", "", "0", "python '3' is not MAJOR.MINOR"),
        (json.dumps([1, 2]) + "\n", "", "0", "the answer is not a JSON object"),
    ],
)
def test_main_fails_when_the_image_gives_no_answer(
    capsys: pytest.CaptureFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_docker: Path,
    out: str,
    err: str,
    rc: str,
    named: str,
) -> None:
    monkeypatch.setenv("FAKE_DOCKER_OUT", out)
    monkeypatch.setenv("FAKE_DOCKER_ERR", err)
    monkeypatch.setenv("FAKE_DOCKER_RC", rc)
    result = run(capsys, tmp_path, image_id=FAKE_ID, cache_dir=str(tmp_path / "cache"))
    assert result["failed"] is True
    assert f"(exit {rc})" in result["msg"] and named in result["msg"], result["msg"]
    assert not (tmp_path / "cache").exists()


def test_main_fails_on_a_cache_dir_others_can_write(
    capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_docker: Path
) -> None:
    monkeypatch.setenv("FAKE_DOCKER_OUT", json.dumps(VALID_RAW) + "\n")
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o777)
    result = run(capsys, tmp_path, image_id=FAKE_ID, cache_dir=str(cache))
    assert result["failed"] is True and result["msg"].startswith(f"cannot write {result['cache_file']}: ")
    assert os.listdir(cache) == []


def local_image_id() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    proc = subprocess.run(
        [docker, "image", "inspect", "--format", "{{.Id}}", IMAGE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


@pytest.fixture(scope="module")
def image_id() -> str:
    found = local_image_id()
    if found is None:
        pytest.skip(f"docker or the image {IMAGE} is not available")
    return found


def test_main_against_the_real_image(capsys: pytest.CaptureFixture, tmp_path: Path, image_id: str) -> None:
    cache = tmp_path / "cache"
    cache_file = cache / (image_id.split(":", 1)[1] + ".json")

    # Check mode with no cached answer: the image is asked, nothing is written.
    checked = run(capsys, tmp_path, image_id=image_id, cache_dir=str(cache), check_mode=True)
    assert checked.get("failed") is not True, checked
    assert checked["changed"] is True and checked["source"] == "image"
    assert checked["cache_file"] == str(cache_file)
    assert not cache.exists()

    first = run(capsys, tmp_path, image_id=image_id, cache_dir=str(cache))
    assert first.get("failed") is not True, first
    assert first["changed"] is True and first["source"] == "image"
    assert first["python_version"] == "3.11"
    assert {"torch", "numpy"} <= set(first["distributions"])
    assert list(first["distributions"]) == sorted(first["distributions"])
    assert all(name == image_python.canonical(name) for name in first["distributions"])
    assert first["ignored"] == []
    assert first["distributions"] == checked["distributions"]
    assert cache_file.is_file() and stat.S_IMODE(cache_file.stat().st_mode) == 0o644

    second = run(capsys, tmp_path, image_id=image_id, cache_dir=str(cache))
    assert second["changed"] is False and second["source"] == "cache"
    assert second["python_version"] == first["python_version"]
    assert second["distributions"] == first["distributions"]


def test_main_check_mode_with_an_empty_cache_dir(capsys: pytest.CaptureFixture, tmp_path: Path, image_id: str) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o755)
    result = run(capsys, tmp_path, image_id=image_id, cache_dir=str(cache), check_mode=True)
    assert result.get("failed") is not True, result
    assert result["changed"] is True and result["source"] == "image"
    assert os.listdir(cache) == []
