import os

from hypothesis import HealthCheck, settings

# CI runs a fixed, derandomized set of examples; locally, HYPOTHESIS_PROFILE=dev explores more.
settings.register_profile("ci", derandomize=True, max_examples=150, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], database=None)
settings.register_profile("dev", max_examples=600, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
