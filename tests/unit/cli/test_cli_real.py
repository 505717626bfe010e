"""End to end: the real ansible-runner, through sparkfleet's wrapper, on a local connection.

The demo project (fixtures/project) writes files under a tmp dir; host c is unreachable.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import DEMO_PROJECT, demo_inventory

from sparkfleet import upgrade
from sparkfleet.cli import main


@pytest.fixture(autouse=True)
def demo_project(monkeypatch):
    monkeypatch.setenv("SPARKFLEET_PLAYBOOK_DIR", str(DEMO_PROJECT))


def test_drift_fix_then_clean_with_history(tmp_path: Path, capsys):
    (tmp_path / "a.conf").write_text("port = 80\nname = demo\n")
    inventory = str(demo_inventory(tmp_path))
    history = tmp_path / "state" / "drift.jsonl"
    base = ["drift", "-i", inventory, "--history", str(history)]

    assert main(base) == 2
    out = capsys.readouterr().out
    assert "a  drift (3 tasks would change)" in out
    assert "    demo : Write the demo config\n      -port = 80\n      +port = 8080\n" in out
    assert (tmp_path / "a.conf").read_text() == "port = 80\nname = demo\n"  # check mode changed nothing

    assert main([*base, "--fix"]) == 2
    out = capsys.readouterr().out
    assert "a  fixed (3 tasks corrected)" in out
    assert "Fixed drift on 2 of 2 hosts (a, b)." in out
    assert (tmp_path / "a.conf").read_text() == "port = 8080\nname = demo\n"

    assert main([*base, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [h["state"] for h in report["hosts"]] == ["clean", "clean"]

    records = [json.loads(line) for line in history.read_text().splitlines()]
    assert [(r["fix"], r["exit_code"]) for r in records] == [(False, 2), (True, 2), (False, 0)]
    assert records[0]["hosts"]["a"]["changes"][0] == {"role": "demo", "task": "Write the demo config"}
    assert records[1]["hosts"]["a"]["state"] == "fixed"


def test_provision_keeps_going_past_an_unreachable_host(tmp_path: Path, capsys):
    inventory = str(demo_inventory(tmp_path, unreachable=True))
    assert main(["provision", "-i", inventory]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["host", "ok", "changed", "failed", "unreachable", "time"]
    assert out[1].split()[:5] == ["a", "3", "3", "0", "0"]
    assert out[3].split()[:5] == ["c", "0", "0", "0", "1"]
    assert out[4].startswith("c: unreachable: Failed to connect to the host via ssh")
    assert out[-1] == "Converged 2 of 3 hosts."
    assert (tmp_path / "b.conf").exists()


def test_upgrade_stops_at_the_failed_batch(tmp_path: Path, capsys):
    inventory = demo_inventory(tmp_path, fail_on=("b",))
    data = json.loads(inventory.read_text())
    data["sparks"]["hosts"]["d"] = dict(data["sparks"]["hosts"]["a"])
    # The inventory names the new image first (the inventory is the fleet's record).
    data["sparks"]["vars"]["ngc_image_reference"] = "nvcr.io/nvidia/pytorch:25.12-py3"
    inventory.write_text(json.dumps(data))
    code = main(["upgrade", "-i", str(inventory), "--image", "nvcr.io/nvidia/pytorch:25.12-py3", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [(h["host"], h["result"], h["batch"]) for h in report["hosts"]] == [
        ("a", "upgraded", 1),
        ("b", "failed", 2),
        ("d", "untouched", None),
    ]
    assert report["stopped_at_batch"] == 2
    assert not (tmp_path / "d.conf").exists()  # untouched means untouched


def test_status_reads_the_hosts(tmp_path: Path, capsys, monkeypatch):
    # status.yml reads the venv through sparkfleet.spark.venv_info: the checkout is the collection.
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", str(Path(__file__).resolve().parents[3] / ".collections"))
    image_id, old_id = "sha256:" + "1" * 64, "sha256:" + "0" * 64
    image = {"reference": "nvcr.io/nvidia/pytorch:25.11-py3", "id": image_id, "repo_digest": "r@sha256:ab12"}
    build = "venv-20250101T000000Z-0000aaaa"
    for host, stamp_id in (("a", image_id), ("b", old_id)):
        (tmp_path / f"{host}.state.json").write_text(json.dumps({"ngc_image": image}))
        venv = tmp_path / f"{host}.project" / ".venvs" / build
        venv.mkdir(parents=True)
        stamp = {
            "image_id": stamp_id,
            "repo_digest": None,
            "python_version": "3.12.3",
            "lock_hash": "sha256:" + "3" * 64,
            "wheels": [],
            # Host b's user rewrote the stamp: its venv_id no longer names the build.
            "venv_id": build if host == "a" else "x\nExecStartPre=/bin/true",
        }
        (venv / "sparkfleet-stamp.json").write_text(json.dumps(stamp))
        (tmp_path / f"{host}.project" / ".venv").symlink_to(f".venvs/{build}")
    inventory = str(demo_inventory(tmp_path, unreachable=True, status=True))
    assert main(["status", "-i", inventory]) == 1
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["host", "image", "digest", "venv", "torch", "xformers", "jupyter", "url"]
    assert rows[1][:4] == ["a", "pytorch:25.11-py3", "sha256:ab12", "fresh"]
    assert rows[2][:4] == ["b", "pytorch:25.11-py3", "sha256:ab12", "altered"]
    assert rows[3] == ["c", "unreachable"]


def test_upgrade_refuses_an_image_the_inventory_does_not_name(tmp_path: Path, capsys):
    """Nothing runs on any host; the message names the hosts, their image and the line to change."""
    inventory = demo_inventory(tmp_path)
    group_vars = tmp_path / "group_vars" / "sparks"
    group_vars.mkdir(parents=True)
    (group_vars / "image.yml").write_text(
        "---\n# the fleet's image\nngc_image_reference: example.org/nvidia/pytorch:25.10-py3\n"
    )
    code = main(["upgrade", "-i", str(inventory), "--image", "example.org/nvidia/pytorch:25.11-py3"])
    err = capsys.readouterr().err
    assert code == 64
    assert "the inventory names example.org/nvidia/pytorch:25.10-py3 for a, b" in err
    assert f"{group_vars / 'image.yml'}:3" in err
    assert "set `ngc_image_reference: example.org/nvidia/pytorch:25.11-py3` in " in err
    assert not list(tmp_path.glob("*.conf"))  # no host ran site.yml

    # Once the line says so, the same command rolls out (and a rollback is the same two steps).
    (group_vars / "image.yml").write_text("ngc_image_reference: example.org/nvidia/pytorch:25.11-py3\n")
    assert main(["upgrade", "-i", str(inventory), "--image", "example.org/nvidia/pytorch:25.11-py3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [h["result"] for h in report["hosts"]] == ["upgraded", "upgraded"]


def test_the_default_image_is_the_roles():
    defaults = (Path(__file__).resolve().parents[3] / "roles" / "ngc_image" / "defaults" / "main.yml").read_text()
    assert f"\nngc_image_reference: {upgrade.DEFAULT_IMAGE}\n" in defaults
