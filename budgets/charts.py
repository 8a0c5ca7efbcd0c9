"""How the spend charts look, the same on every chart: one colour per model (and per agent, user,
tenant…) that does not change from chart to chart, legends always, small values labelled, and
axes scaled to the data with caps drawn as marked lines rather than stretching the axis."""

from __future__ import annotations

import zlib
from decimal import Decimal
from typing import Any

from budgets.models import ModelPrice

# Ten colours far enough apart to tell neighbours in a stack (Tableau 10, reordered so the first
# few are the most distinct); the cap red is kept out of it.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7", "#bab0ac", "#17becf")
CAP_COLOUR = "#c92a2a"


def model_colours() -> dict[str, str]:
    """Every priced model's colour: its place in the sorted price list, so two Sonnet versions
    sit apart in the palette and a model is the same colour on every chart and page."""
    names = sorted(set(ModelPrice.objects.values_list("model", flat=True)))
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def colour_for(dim: str, key: Any, label: str, models: dict[str, str]) -> str:
    if dim == "model" and label in models:
        return models[label]
    # Anything else by its id (or name): stable across charts and reloads, not by its rank today.
    return PALETTE[zlib.crc32(f"{dim}:{key}".encode()) % len(PALETTE)]


def money_label(value: Decimal | float) -> str:
    value = Decimal(str(value))
    return f"${value:,.2f}" if value >= Decimal("0.01") or value == 0 else f"${value:.4f}"


def cap_line(cap: Decimal, top_of_data: float) -> tuple[dict[str, Any] | None, dict[str, Any], float]:
    """The cap as a dashed line with its amount, when it is within reach of the data; far above
    it, a note at the top says where the cap is instead of flattening the spend to nothing.
    Returns (shape or None, annotation, the y-axis top)."""
    cap_f = float(cap)
    reach = max(top_of_data * 1.25, 0.01)
    if cap_f <= reach * 1.6:
        top = max(reach, cap_f * 1.1)
        shape = {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": cap_f, "y1": cap_f,
                 "line": {"color": CAP_COLOUR, "width": 2, "dash": "dash"}}
        note = {"xref": "paper", "x": 1, "y": cap_f, "xanchor": "right", "yanchor": "bottom", "showarrow": False,
                "text": f"cap {money_label(cap)}", "font": {"color": CAP_COLOUR}}
        return shape, note, top
    share = top_of_data / cap_f * 100 if cap_f else 0
    reached = f"{share:.0f}%" if share >= 1 else "under 1%"
    note = {"xref": "paper", "yref": "paper", "x": 1, "y": 1, "xanchor": "right", "yanchor": "bottom", "showarrow": False,
            "text": f"cap {money_label(cap)} ↑ off the scale: the projection is {reached} of it", "font": {"color": CAP_COLOUR}}
    return None, note, reach
