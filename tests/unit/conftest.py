"""Make `ansible_collections.sparkfleet.spark` importable from a plain checkout.

The repository root is the collection; .collections/ansible_collections/sparkfleet/spark
links back to it. Putting .collections first on sys.path lets tests import the plugins by
their collection names, as ansible-test units would. `ansible_collections` is a namespace
package, so the collections the `ansible` package installs stay importable too.
"""

from __future__ import annotations

import sys
from pathlib import Path

COLLECTIONS_ROOT = Path(__file__).resolve().parents[2] / ".collections"

if str(COLLECTIONS_ROOT) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_ROOT))
