"""fwbook: the reproducible companion to Ba et al. (2016), *Using Fast Weights to Attend to the Recent Past*.

The package in layers; each imports only the layers below it (``tests/test_layers.py`` checks):

``core``         the paper and nothing else: the associative-retrieval data (``data``), the
                 fast-weights model (``fast_weights``: Eq. 1-4 and the layer-normalised inner
                 loop), the controls (``controls``), ``models`` (``ModelConfig``,
                 ``build_model``, ``variant``), THE training loop (``train``), THE run-record
                 format (``records``).
``experiments``  what gets trained, by name: the grids and profiles (``grids``, ``table1``,
                 ``ablations``, ``fair``, ``fair_cap``, ``attention_runs``), resumable sweeps on local
                 processes or Ray (``sweep``, ``sweep_ray``), THE seed statistics (``stats``).
``rl``           the Catch game and the actor-critic agents of Section 4.4.
``perf``         benchmarks: throughput, time to accuracy, floating-point work, fast paths.
``chapters``     one module per book chapter (``ch01_memory`` ... ``ch08_agents``): its figures,
                 tables and computed prose; a chapter module never imports another.
``cli``          ``fwbook train | bench | sweep | book | attention | catch``, and the book build.

Direction: ``core <- experiments <- {rl, perf} <- chapters <- cli``.
"""

__version__ = "0.1.0"
