"""A module's main() run as Ansible runs it: arguments in, the JSON it prints out."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args


def run_main(main: Callable[[], None], capsys: pytest.CaptureFixture, tmp_path: Path, **args: Any) -> tuple[dict, str]:
    """(the result, the raw stdout); check_mode= and diff= become Ansible's internal flags."""
    internal = {"_ansible_remote_tmp": str(tmp_path / "remote-tmp")}
    for flag in ("check_mode", "diff"):
        if flag in args:
            internal[f"_ansible_{flag}"] = args.pop(flag)
    with patch_module_args({**args, **internal}), pytest.raises(SystemExit):
        main()
    out = capsys.readouterr().out
    return json.loads(out), out
