"""Session-wide settings of the test run (every test folder).

JAX's persistent compilation cache, shared by the whole run: the pytest workers and the
``setwise train`` subprocesses of the resume tests compile the same tiny models again and
again (the same XLA computation for every new Python closure, in every process), and on this
2-core machine compilation is most of the JAX tests' time. The workers run with the XLA
flags that ``setwise train --threads 1`` sets in its subprocesses, so both find each other's
entries (the flags are part of the cache key). A cache never changes a result: an entry is
the executable the same computation compiles to. ``JAX_COMPILATION_CACHE_DIR`` already set
(or ``SETWISE_TEST_JAX_CACHE=0``) leaves all of this alone.
"""

from __future__ import annotations

import os
import shutil
import tempfile

#: What ``setwise.tasks.train.set_threads("jax", 1)`` puts in ``XLA_FLAGS``.
ONE_THREAD = "--xla_cpu_multi_thread_eigen=False intra_op_parallelism_threads=1"
_MADE = "SETWISE_TEST_JAX_CACHE_MADE"


def pytest_configure(config):
    if os.environ.get("SETWISE_TEST_JAX_CACHE") == "0":
        return
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        # the controller makes it; xdist workers inherit the environment
        os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="setwise-jax-")
        os.environ[_MADE] = os.environ["JAX_COMPILATION_CACHE_DIR"]
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.3")
    if "XLA_FLAGS" not in os.environ:
        os.environ["XLA_FLAGS"] = ONE_THREAD


def pytest_unconfigure(config):
    made = os.environ.get(_MADE)
    if made and not hasattr(config, "workerinput"):  # the controller cleans up
        shutil.rmtree(made, ignore_errors=True)
