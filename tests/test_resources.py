"""Process and host memory from /proc: the figures psutil gives, without loading psutil."""

from __future__ import annotations

import subprocess
import sys

import psutil

from cachewatch import procfs
from cachewatch.analysis import resources


def test_proc_reads_what_psutil_reads() -> None:
    read = resources.read_proc()
    assert read is not None
    rss, total, available = read
    host = psutil.virtual_memory()
    assert total == host.total
    assert abs(available - host.available) < 0.05 * host.total  # the host moves meanwhile
    assert abs(rss - psutil.Process().memory_info().rss) < 8 * 2**20
    assert resources.read_psutil()[1] == host.total


def test_a_forked_child_reads_its_own_process() -> None:
    """The kept /proc/self/statm named the parent: a child opens its own."""
    import os

    assert resources.read_proc() is not None
    parent_fd = procfs.kept_descriptor(resources._STATM)
    assert parent_fd is not None
    assert os.readlink(f"/proc/self/fd/{parent_fd}") == f"/proc/{os.getpid()}/statm"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report where its statm points, then leave at once
        try:
            resources.read_proc()
            fd = procfs.kept_descriptor(resources._STATM)
            assert fd is not None
            os.write(write, os.readlink(f"/proc/self/fd/{fd}").encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        seen = pipe.read().decode()
    os.waitpid(pid, 0)
    assert seen == f"/proc/{pid}/statm"


def test_memory_usage_shares() -> None:
    usage = resources.memory_usage(in_process_cache_bytes=1024.0, cache_bytes=2048.0)
    assert usage is not None
    assert usage.process_share == 1024.0 / usage.process_rss_bytes
    assert usage.host_share == 2048.0 / usage.host_total_bytes
    assert usage.host_available_ratio is not None and 0 < usage.host_available_ratio <= 1


def test_the_kib_of_a_field_and_a_missing_one() -> None:
    text = b"MemTotal:       16384 kB\nMemFree:         1024 kB\n"
    assert resources._kib(text, b"MemTotal:") == 16384.0
    try:
        resources._kib(text, b"MemAvailable:")
    except ValueError:
        pass
    else:
        raise AssertionError("a missing field must raise ValueError")


def test_serve_loads_no_module_that_only_other_modes_need() -> None:
    """psutil, PyYAML, bcrypt and the demo stay unloaded until a mode needs them."""
    code = (
        "import sys\n"
        "import cachewatch.cli.main, cachewatch.cli.run, cachewatch.cli.lifecycle\n"
        "import cachewatch.sources.redis\n"
        "from cachewatch.analysis.resources import memory_usage\n"
        "assert memory_usage(0.0, 0.0) is not None\n"
        "print(sorted(m for m in ('psutil', 'yaml', 'bcrypt', 'cachewatch.demo', 'difflib',"
        " 'requests', 'cachetools') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.stdout.decode().strip() == "[]", done.stderr.decode()
