"""How much work one ``optimize_noise`` call may spend on the LMO family (docs/search.md)."""

from __future__ import annotations

from dataclasses import dataclass, fields

MAX_BUDGET = 10_000  # every field's upper limit: a search stays bounded (time_limit bounds it in seconds)


@dataclass(frozen=True)
class SearchBudget:
    """The LMO search's work: ``screen_top`` grid shapes calibrated per screening proxy, ``refine_starts``
    Nelder-Mead refinements (from the best calibrated shapes; 0 skips refinement), ``refine_evaluations`` shapes
    tried per refinement, each ranked by ``estimate_evaluations`` accountant evaluations (a scale estimate, not a
    calibration). Part of the search's cache key. Every field is an integer in [minimum, ``MAX_BUDGET``]."""

    screen_top: int = 3
    refine_starts: int = 1
    refine_evaluations: int = 10
    estimate_evaluations: int = 2

    def __post_init__(self):
        minimum = {"refine_starts": 0}
        for field in fields(self):
            value, low = getattr(self, field.name), minimum.get(field.name, 1)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_BUDGET:
                raise ValueError(
                    f"SearchBudget.{field.name} must be an integer in [{low}, {MAX_BUDGET}], got {value!r}"
                )

    def to_dict(self) -> dict:
        return {field.name: getattr(self, field.name) for field in fields(self)}


def check_budget(budget) -> SearchBudget:
    """``budget`` if it is a ``SearchBudget``, else ValueError."""
    if not isinstance(budget, SearchBudget):
        raise ValueError(f"budget must be a SearchBudget (e.g. SearchBudget(screen_top=3)), got {budget!r}")
    return budget
