"""`sparkfleet status`: each host's image, venv stamp, torch/xformers and Jupyter, from set_stats."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

STATUS_PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "status.yml"


def _json(text: Any) -> dict[str, Any]:
    if isinstance(text, Mapping):
        return dict(text)
    try:
        value = json.loads(text) if isinstance(text, str) and text.strip() else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def reported(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """sparkfleet_status from the stats event's set_stats data."""
    for event in events:
        if event.get("event") == "playbook_on_stats":
            data = (event.get("event_data") or {}).get("artifact_data") or {}
            status = data.get("sparkfleet_status")
            return dict(status) if isinstance(status, Mapping) else {}
    return {}


def _short_digest(digest: str | None) -> str:
    if not digest:
        return "-"
    value = digest.split("@", 1)[-1]
    algo, _, hexpart = value.partition(":")
    return f"{algo}:{hexpart[:12]}" if hexpart else value[:19]


def _tag(reference: str | None) -> str:
    if not reference:
        return "-"
    name = reference.rsplit("/", 1)[-1]
    return name.split("@", 1)[0] if "@" in name else name


def venv_freshness(state: Mapping[str, Any], stamp: Mapping[str, Any]) -> str:
    """fresh when the venv was stamped for the image the host now has, stale otherwise."""
    image = state.get("ngc_image") or {}
    if not stamp:
        return "missing"
    if not image.get("id"):
        return "unknown"
    if stamp.get("image_id") != image.get("id"):
        return "stale"
    if image.get("repo_digest") and stamp.get("repo_digest") and stamp["repo_digest"] != image["repo_digest"]:
        return "stale"
    return "fresh"


_DIST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,98}[a-z0-9])?$")
_DIST_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_-]{0,63}$")


def shadowed_lines(value: Any) -> list[str]:
    """'NAME VENV over IMAGE' per image distribution the venv has its own copy of.

    The venv's interpreter reported them (the user's code): only entries of the exact shape
    pass, at most 100."""
    if not isinstance(value, Mapping):
        return []
    lines = []
    for name, versions in sorted(value.items())[:100]:
        if not (isinstance(name, str) and _DIST_NAME.fullmatch(name) and isinstance(versions, Mapping)):
            continue
        venv, image = versions.get("venv"), versions.get("image")
        if all(isinstance(v, str) and _DIST_VERSION.fullmatch(v) for v in (venv, image)):
            lines.append(f"{name} {venv} over {image}")
    return lines


def host_row(host: str, raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """One host's status fields (strings, '-' when unknown)."""
    if raw is None:
        return {"host": host, "reported": False}
    state, stamp = _json(raw.get("state")), _json(raw.get("stamp"))
    image = state.get("ngc_image") or {}
    # venv_info's findings: the user's venv link or stamp was altered (drift for the next run to repair).
    altered = [str(problem) for problem in raw.get("venv_problems") or []]
    versions = _json(raw.get("versions")) if raw.get("versions_rc") == 0 else {}
    versions_note = "" if raw.get("versions_rc") in (0, None) else "error"
    active = str(raw.get("jupyter") or "unknown")
    return {
        "host": host,
        "reported": True,
        "image": image.get("reference"),
        "tag": _tag(image.get("reference")),
        "image_id": image.get("id"),
        "digest": image.get("repo_digest"),
        "digest_short": _short_digest(image.get("repo_digest")),
        "venv": "altered" if altered else venv_freshness(state, stamp),
        "venv_problems": altered,
        "torch": versions.get("torch") or versions_note or "-",
        "xformers": versions.get("xformers") or versions_note or "-",
        "shadowed": shadowed_lines(versions.get("shadowed")),
        "versions_error": raw.get("versions_error") or None if versions_note else None,
        "jupyter": active,
        "jupyter_url": raw.get("jupyter_url") if active == "active" else None,
    }


def digest_splits(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per image reference that hosts run at more than one digest.

    A tag that moved during a rollout leaves hosts on different images under one name: the
    digest most hosts run is the fleet's, the others are named."""
    by_reference: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        if row.get("reported") and row.get("image") and row.get("digest"):
            by_reference.setdefault(str(row["image"]), {}).setdefault(str(row["digest"]), []).append(str(row["host"]))
    lines = []
    for reference, digests in sorted(by_reference.items()):
        if len(digests) < 2:
            continue
        ranked = sorted(digests.items(), key=lambda item: (-len(item[1]), item[0]))
        fleet_digest, fleet_hosts = ranked[0]
        for digest, hosts in ranked[1:]:
            lines.append(
                f"{', '.join(hosts)}: {reference} is {_short_digest(digest)} there, not the fleet's"
                f" {_short_digest(fleet_digest)} ({len(fleet_hosts)} host{'s' if len(fleet_hosts) != 1 else ''});"
                " the tag moved: pin ngc_image_reference by digest, or run `sparkfleet upgrade` to align them"
            )
    return lines
