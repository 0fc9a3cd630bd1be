"""Shared test settings.

The models under test are tiny (R <= 100, batches of a few hundred): one CPU thread is as fast
as two for them and far faster when the machine is busy, so every test, and every subprocess a
test starts (CLI runs, papermill kernels), uses one thread.
"""

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import torch  # noqa: E402

torch.set_num_threads(1)
