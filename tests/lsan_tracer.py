"""Runs a command again when LeakSanitizer's tracer crashed at its exit.

Under the sanitizer build, LeakSanitizer's own tracer can crash while PoCL's
worker threads wind down at exit ("Tracer caught signal 11", "LeakSanitizer
has encountered a fatal error"). That is no report about the program: the
command runs once or twice more. A sanitizer report, or the same crash three
times, is returned as it is.
"""
import subprocess
import sys

FATAL = "LeakSanitizer has encountered a fatal error"
REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer: detected memory leaks", "runtime error")


def tracer_crashed(stderr):
    return FATAL in stderr and not any(r in stderr for r in REPORTS)


def run(cmd, tries=3, **kwargs):
    """subprocess.run(cmd, **kwargs) with text output captured; returns (rc, stdout, stderr)."""
    for attempt in range(tries):
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, **kwargs)
        if not tracer_crashed(p.stderr) or attempt == tries - 1:
            return p.returncode, p.stdout, p.stderr
        print("note: LeakSanitizer's tracer crashed at the exit of %s; running it again" % cmd[0])
        sys.stdout.flush()
