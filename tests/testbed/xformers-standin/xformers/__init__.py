"""TEST STAND-IN for xformers: importable, reports how it was built, computes nothing."""

import json

from xformers._build_info import BUILD_INFO

__version__ = "0.0.33+standin"
build_info = json.loads(BUILD_INFO)
