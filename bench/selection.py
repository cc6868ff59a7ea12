"""Pattern selection: does the recommended pattern run as fast as the best one, do learned
estimates come close to the agents' true durations, and does a run adapt to a capacity drop?

Everything runs on the virtual clock (``VirtualClock`` + ``VirtualBackend``): no agent is
called; the agents' true behaviour lives only in the backend's callbacks
(``selection_common``). Three parts, each in its own module:

1. Selection (``selection_suite``, workflows in ``selection_workflows``): six workflows; is
   the recommended pattern within 5 % of the best on at least 5 of 6?
2. Estimates (``selection_estimates``): are the estimates learned from 5 runs within 10 % of
   the agents' true medians?
3. Capacity drop (``selection_capacity``): does a run that adapts to its pool being halved
   mid-run come within 1.1x of the best pattern that does not adapt?
"""

from __future__ import annotations

from typing import Any

from selection_capacity import capacity_bench
from selection_estimates import estimates_bench
from selection_suite import suite_bench


def bench(quick: bool) -> tuple[dict[str, Any], str]:
    suite, suite_text = suite_bench(quick)
    estimates, est_text = estimates_bench(quick)
    capacity, cap_text = capacity_bench()
    figures: dict[str, Any] = {
        "within_5pct": suite["within_5pct"],
        "workflows": suite["workflows"],
        "estimate_max_error": estimates["estimate_max_error"],
        "estimate_mean_error": estimates["estimate_mean_error"],
        "capacity_ratio": capacity["capacity_ratio"],
        "suite": {k: v for k, v in suite.items() if k != "workflows"},
        "estimates": estimates,
        "capacity": capacity,
    }
    return figures, suite_text + "\n" + est_text + "\n" + cap_text
