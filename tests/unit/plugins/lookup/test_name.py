"""sparkfleet.spark.name: the shared names, from their one definition, as roles read them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleLookupError
from ansible_collections.sparkfleet.spark.plugins.lookup.name import LookupModule
from ansible_collections.sparkfleet.spark.plugins.module_utils import _names, _venv_builder

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "filter"))
from through_ansible import ansible_bin, run_ansible


@pytest.mark.parametrize(
    ("terms", "kwargs", "expected"),
    [
        (["state_file"], {}, ["/var/lib/sparkfleet/state.json"]),
        (["image_info_dir", "state_dir"], {}, ["/var/lib/sparkfleet/images", "/var/lib/sparkfleet"]),
        (["stamp_file", "venvs_dir", "venv_link"], {}, ["sparkfleet-stamp.json", ".venvs", ".venv"]),
        (["jupyter_unit"], {"project": "spark-project"}, ["sparkfleet-jupyter-spark-project"]),
        (["project_path"], {"home": "/home/spark", "project": "p"}, ["/home/spark/p"]),
        (["project_path"], {"home": "/home/spark/", "project": "p", "project_dir": ""}, ["/home/spark/p"]),
        (["project_path"], {"home": "/home/spark", "project": "p", "project_dir": "/srv/p"}, ["/srv/p"]),
        (["stamp_path"], {"project_dir": "/home/spark/p"}, ["/home/spark/p/.venv/sparkfleet-stamp.json"]),
    ],
)
def test_names(terms, kwargs, expected) -> None:
    assert LookupModule().run(terms, {}, **kwargs) == expected


@pytest.mark.parametrize(
    ("terms", "kwargs", "message"),
    [
        (["no_such_name"], {}, "unknown name 'no_such_name'; known: "),
        (["state_file"], {"project": "x"}, "state_file takes no arguments"),
        (["jupyter_unit"], {}, "jupyter_unit: "),
        (["project_path"], {"home": "/h", "nope": "x"}, "project_path: "),
    ],
)
def test_bad_lookups_say_why(terms, kwargs, message) -> None:
    with pytest.raises(AnsibleLookupError, match=message.replace("(", r"\(")):
        LookupModule().run(terms, {}, **kwargs)


def test_the_builder_owns_the_venv_names() -> None:
    assert _names.STAMP_FILE is _venv_builder.STAMP_FILE
    assert _names.VENVS_DIR is _venv_builder.VENVS_DIR


def test_each_shared_name_is_written_once_in_the_product() -> None:
    """Role tasks, vars, defaults and templates, playbooks, the CLI, bench and module code name
    these only through _names or the builder (documentation strings aside)."""
    repo = Path(__file__).resolve().parents[4]
    files = [f for f in repo.glob("roles/*/*/*") if f.parent.name != "meta" and f.suffix in (".yml", ".j2")]
    files += [*repo.glob("plugins/module_utils/*.py"), *repo.glob("src/sparkfleet/**/*.py")]
    files += [*repo.glob("src/sparkfleet/**/*.yml"), *repo.glob("playbooks/*.yml"), *repo.glob("bench/*.py")]
    code = {f: f.read_text(encoding="utf-8") for f in files if f.is_file()}
    for module in repo.glob("plugins/modules/*.py"):
        text = module.read_text(encoding="utf-8")
        code[module] = text[text.index('RETURN = r"""') :].split('"""', 2)[2]  # the code after the docs
    found = {
        literal: sorted(str(f.relative_to(repo)) for f, text in code.items() if literal in text)
        for literal in ("sparkfleet-stamp.json", "sparkfleet-jupyter-", "/var/lib/sparkfleet/images")
    }
    assert found == {
        "sparkfleet-stamp.json": ["plugins/module_utils/_venv_builder.py"],
        "sparkfleet-jupyter-": ["plugins/module_utils/_names.py"],
        "/var/lib/sparkfleet/images": [],
    }


@pytest.mark.skipif(ansible_bin("ansible") is None, reason="no ansible CLI")
def test_through_ansible(tmp_path: Path) -> None:
    msg = (
        "{{ [lookup('sparkfleet.spark.name', 'state_file'),"
        " lookup('sparkfleet.spark.name', 'jupyter_unit', project=name),"
        " lookup('sparkfleet.spark.name', 'project_path', home='/home/spark', project=name,"
        " project_dir='')] | to_json }}"
    )
    done = run_ansible(
        [
            str(ansible_bin("ansible")),
            "localhost",
            "-c",
            "local",
            "-m",
            "ansible.builtin.debug",
            "-a",
            json.dumps({"msg": msg}),
            "-e",
            "name=lab",
        ],
        tmp_path,
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="true",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.oneline",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("localhost |"))
    assert json.loads(json.loads(line.split(" => ", 1)[1])["msg"]) == [
        "/var/lib/sparkfleet/state.json",
        "sparkfleet-jupyter-lab",
        "/home/spark/lab",
    ]
