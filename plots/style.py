"""How the study looks: the paper's method colours, metric labels and axis scales."""

from __future__ import annotations

METHOD_ORDER = ("regular", "robust", "adversarial", "langevin")
METHOD_COLORS = {"regular": "tab:blue", "robust": "tab:red", "adversarial": "tab:green",
                 "langevin": "tab:purple"}
METHOD_LABELS = {"regular": "regular", "robust": "robust (smoothed)",
                 "adversarial": "adversarial (PGD)", "langevin": "Langevin"}
METHOD_MARKERS = {"regular": "o", "robust": "s", "adversarial": "^", "langevin": "D"}

ACCURACY_METRICS = ("clean_accuracy", "worst_case_accuracy", "mean_accuracy", "pgd_accuracy")
LIPSCHITZ_METRICS = ("lipschitz_lower", "lipschitz_search", "lipschitz_upper")
METRIC_ORDER = ACCURACY_METRICS + LIPSCHITZ_METRICS
METRIC_LABELS = {
    "clean_accuracy": "clean accuracy",
    "worst_case_accuracy": "worst-case accuracy (ball samples)",
    "mean_accuracy": "mean accuracy (ball samples)",
    "pgd_accuracy": "PGD accuracy (L∞)",
    "lipschitz_lower": "Lipschitz lower bound (gradient norm)",
    "lipschitz_search": "Lipschitz estimate (pattern search)",
    "lipschitz_upper": "Lipschitz upper bound (spectral norms)",
}


def is_log_metric(metric: str) -> bool:
    return metric.startswith("lipschitz")


_SWEPT_MARKERS = "osD^vP*X<>"


def method_color(method: str) -> str:
    """A method's color; `robust lr=0.1` (a swept study's curve) takes its method's."""
    return METHOD_COLORS.get(method.partition(" ")[0], "tab:gray")


def method_marker(method: str) -> str:
    """A method's marker; the curves of one method's swept values differ by marker."""
    _, _, values = method.partition(" ")
    if not values:
        return METHOD_MARKERS.get(method, "x")
    return _SWEPT_MARKERS[sum(map(ord, values)) % len(_SWEPT_MARKERS)]


def ordered_methods(methods: list[str]) -> list[str]:
    known = [m for m in METHOD_ORDER if m in methods]
    return known + sorted(m for m in methods if m not in METHOD_ORDER)


def ordered_metrics(metrics: list[str]) -> list[str]:
    known = [m for m in METRIC_ORDER if m in metrics]
    return known + sorted(m for m in metrics if m not in METRIC_ORDER)
