"""Make `ansible_collections.sparkfleet.spark` importable from a plain checkout.

The repository root is the collection; .collections/ansible_collections/sparkfleet/spark
links back to it. Putting .collections first on sys.path lets tests import the plugins by
their collection names, as ansible-test units would. `ansible_collections` is a namespace
package, so the collections the `ansible` package installs stay importable too.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

COLLECTIONS_ROOT = Path(__file__).resolve().parents[2] / ".collections"

if str(COLLECTIONS_ROOT) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_ROOT))


@pytest.fixture(autouse=True)
def _fresh_module_warnings() -> Iterator[None]:
    """Each test runs its module as a fresh process would: no warnings left from an earlier test
    (AnsibleModule keeps them process-wide and reports each text once), module-side mode."""
    from ansible.module_utils import _internal
    from ansible.module_utils.common import warnings

    # Importing a controller-side package (the filter plugins' tests do) switches module_utils
    # into controller mode, where warnings go to the display instead of the module's result.
    controller = _internal.is_controller
    _internal.is_controller = False
    warnings._global_warnings.clear()
    yield
    warnings._global_warnings.clear()
    _internal.is_controller = controller
