"""Shared test settings.

The models under test are tiny (R <= 100, batches of a few hundred): one CPU thread is as fast
as two for them and far faster when the machine is busy, so every test, and every subprocess a
test starts (CLI runs, papermill kernels), uses one thread.
"""

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
# `--step auto` reads and writes measured compile costs (fwbook.core.stepcost): tests keep theirs
# in a file of their own, so they neither depend on nor change the user's cache
if "FWBOOK_STEP_COSTS" not in os.environ:
    import atexit
    import shutil
    import tempfile

    _costs = tempfile.mkdtemp(prefix="fwbook-tests-")
    atexit.register(shutil.rmtree, _costs, True)
    os.environ["FWBOOK_STEP_COSTS"] = os.path.join(_costs, "step_costs.json")

import torch  # noqa: E402

torch.set_num_threads(1)
