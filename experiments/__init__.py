"""Experiments of the reproduction, one module per experiment (see ``experiments.run``).

Each module has ``NAME``, ``TITLE``, ``FIGURE`` (its script in ``paper_figures``),
``compute(ctx) -> results`` (runs simulations and theory, writes ``<cache>/<NAME>.json``)
and ``verify(results) -> [Check]`` (rows of VERIFICATION.md, from the results alone); an
experiment may add ``overview(results) -> [markdown lines]``, the report's opening section.
"""

EXPERIMENTS = ("section41", "boundary", "baselines", "overflow", "budget", "traces", "hindsight",
               "region", "regime", "section42")
EXPERIMENTS += ("ao_limit_cycles", "nie_stability", "ldp_throughput", "jaillet_competitive",
                "kong_svf", "feng_nonclairvoyant")  # the neighbouring papers (issue 15)
EXPERIMENTS += ("adaptive",)  # adaptive and prediction-aware flow control (issue 12)
"""Experiment names in the order they run and appear in the report."""
