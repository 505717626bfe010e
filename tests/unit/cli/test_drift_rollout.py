"""A host on another image than the inventory's is a pending rollout: reported, never fixed by drift."""

from __future__ import annotations

import pytest

from sparkfleet import drift
from sparkfleet.events import HostResult, TaskChange

NEW = "nvcr.io/nvidia/pytorch:25.12-py3"
OLD = "nvcr.io/nvidia/pytorch:25.11-py3"
PULL = TaskChange("sparkfleet.spark.ngc_image", f"Pull {NEW}", [])
STATE = TaskChange(
    "sparkfleet.spark.ngc_image",
    "Write the image to the host state file",
    [
        '-    "id": "sha256:aaaa",',
        f'-    "reference": "{OLD}",',
        '-    "repo_digest": "nvcr.io/nvidia/pytorch@sha256:aaaa"',
        '+    "id": "",',
        f'+    "reference": "{NEW}",',
        '+    "repo_digest": ""',
    ],
)
DIGEST_ONLY = TaskChange(
    "sparkfleet.spark.ngc_image",
    "Write the image to the host state file",
    [
        '-    "id": "sha256:aaaa",',
        f'-    "reference": "{NEW}",',
        '-    "repo_digest": ""',
        '+    "id": "sha256:aaaa",',
        f'+    "reference": "{NEW}",',
        '+    "repo_digest": "nvcr.io/nvidia/pytorch@sha256:aaaa"',
    ],
)
FIRST_STATE = TaskChange(
    "sparkfleet.spark.ngc_image",
    "Write the image to the host state file",
    ['+    "id": "sha256:bbbb",', f'+    "reference": "{NEW}",'],
)
RUNTIME = TaskChange("sparkfleet.spark.nvidia_toolkit", "Report the runtime nvidia-ctk would add (check mode)", [])


def result(host: str, *changes: TaskChange) -> HostResult:
    return HostResult(host, ok=10, changed=len(changes), changes=list(changes))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ((PULL, STATE), {"runs": OLD, "inventory": NEW}),
        ((PULL,), {"runs": None, "inventory": NEW}),
        ((RUNTIME,), None),
        # The new image is already on the host (pulled by a stopped rollout): the state file says
        # the host runs another one.
        ((STATE,), {"runs": OLD, "inventory": NEW}),
        ((STATE, RUNTIME), {"runs": OLD, "inventory": NEW}),
        # A digest recorded anew, or a state file made for the first time, is ordinary drift.
        ((DIGEST_ONLY,), None),
        ((FIRST_STATE,), None),
        ((TaskChange("sparkfleet.spark.jupyter", f"Pull {NEW}", []),), None),
    ],
)
def test_image_rollout_is_read_from_the_pull_and_the_state_file(changes, expected):
    assert drift.image_rollout(result("a", *changes)) == expected


def test_a_stopped_rollout_is_reported_and_left_to_upgrade():
    check = {
        "upgraded": result("upgraded"),
        "untouched": result("untouched", PULL, STATE, RUNTIME),
        "drifted": result("drifted", RUNTIME),
    }
    # --fix converges only the ordinary drift.
    assert drift.fixable_hosts(check) == ["drifted"]
    fixed = {"drifted": HostResult("drifted", ok=10, changed=1, changes=[RUNTIME])}
    verdicts = {v.host: v for v in drift.assess(check, fix=fixed)}
    assert verdicts["upgraded"].state == drift.CLEAN
    assert verdicts["drifted"].state == drift.FIXED
    pending = verdicts["untouched"]
    assert pending.state == drift.ROLLOUT and pending.image == {"runs": OLD, "inventory": NEW}
    assert pending.as_dict()["image"] == {"runs": OLD, "inventory": NEW}
    assert f"runs {OLD}, the inventory names {NEW}" in pending.errors[0]
    assert f"`sparkfleet upgrade --image {NEW}`" in pending.errors[0]
    assert f"set ngc_image_reference back to {OLD} and run `sparkfleet upgrade --image {OLD}`" in pending.errors[0]
    assert drift.exit_code(list(verdicts.values())) == 2
    text = drift.summary(list(verdicts.values()))
    assert "image rollout pending on untouched (not fixed by --fix" in text
    assert f"sparkfleet upgrade --image {NEW}" in text
    report = drift.render_text(list(verdicts.values()))
    assert "untouched  rollout (3 tasks would change)" in report


def test_a_moved_tag_is_a_rollout_of_the_same_reference():
    state = TaskChange(
        "sparkfleet.spark.ngc_image",
        "Write the image to the host state file",
        [
            '-    "id": "sha256:aaaa",',
            f'-    "reference": "{NEW}",',
            '+    "id": "sha256:bbbb",',
            f'+    "reference": "{NEW}",',
        ],
    )
    # Pulled by a run whose tag had moved, or pulled already and only recorded: the same verdict.
    for changes in ((PULL, state), (state,)):
        verdict = drift.assess({"a": result("a", *changes)})[0]
        assert verdict.state == drift.ROLLOUT and verdict.image == {"runs": NEW, "inventory": NEW}
    assert verdict.errors == [
        f"the tag of {NEW} names another digest in the registry than the one this host runs:"
        f" roll the new digest out with `sparkfleet upgrade --image {NEW}`"
    ]
