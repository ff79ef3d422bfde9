"""The benchmarks' view of their server processes: which are whose children, and their CPU."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bond.bench.processes import children_of, cpu_seconds

_BURN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"


def test_a_child_is_found_and_its_cpu_counted() -> None:
    child = subprocess.Popen([sys.executable, "-c", _BURN + "input()"], stdin=subprocess.PIPE)
    try:
        assert child.pid in children_of(os.getpid())
        used = 0.0
        while used < 0.25:  # it burns 0.3 s, then waits for its input
            assert child.poll() is None
            used = cpu_seconds(child.pid) or 0.0
            time.sleep(0.02)
        assert used < 5
    finally:
        child.communicate(b"\n")
    assert child.pid not in children_of(os.getpid())


def test_a_process_that_is_gone_has_no_cpu() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert cpu_seconds(child.pid) is None
