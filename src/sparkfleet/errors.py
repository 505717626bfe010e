"""Errors the CLI reports in one line, with the exit code they map to."""

from __future__ import annotations

# Exit codes (see `sparkfleet --help`).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_DRIFT = 2
# sysexits.h EX_USAGE: argparse's own 2 would collide with "drift found".
EXIT_USAGE = 64


class SparkfleetError(Exception):
    """Something the user can fix; printed as one line, never as a traceback."""

    exit_code = EXIT_FAILED


class UsageError(SparkfleetError):
    """Bad arguments or inventory."""

    exit_code = EXIT_USAGE
