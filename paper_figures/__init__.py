"""One script per figure (``figN_name.py`` with ``main(cache, output)``), plotting from the
cached results of ``stability reproduce``; ``style`` holds the shared look."""

FIGURES = ("fig1_section41", "fig2_boundary", "fig3_baselines", "fig4_overflow", "fig5_budget",
           "fig6_traces", "fig7_hindsight", "fig8_region", "fig9_regime", "fig10_section42")
FIGURES += ("fig11_limit_cycles", "fig12_work_conserving", "fig13_throughput_optimal",
            "fig14_competitive")  # the neighbouring papers (issue 15)
FIGURES += ("fig15_adaptive",)  # issue 12
