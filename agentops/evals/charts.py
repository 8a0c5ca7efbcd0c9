"""Plotly figures for the evals pages, built here and drawn by static/js/charts.js (CSP-safe)."""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go

_LAYOUT = {"margin": {"l": 50, "r": 10, "t": 30, "b": 40}, "height": 300, "legend": {"orientation": "h", "y": -0.25},
           "font": {"family": "system-ui, sans-serif", "size": 12}, "paper_bgcolor": "#fff", "plot_bgcolor": "#fff"}


def pass_rate_figure(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Pass rate per prompt version over time: one line per suite, each point labelled with its version;
    regressions drawn in red."""
    if not history:
        return None
    fig = go.Figure()
    for suite in sorted({h["suite"] for h in history}):
        rows = [h for h in history if h["suite"] == suite]
        fig.add_trace(go.Scatter(
            x=[h["at"] for h in rows], y=[h["pass_pct"] for h in rows], mode="lines+markers+text", name=suite,
            text=[f"v{h['version']}" for h in rows], textposition="top center",
            marker={"size": 9, "color": ["#c92a2a" if h["regression"] else "#3b5bdb" for h in rows]},
            hovertext=[f"eval run {h['id']}: v{h['version']} {h['pass_pct']:.1f}%" for h in rows], hoverinfo="text",
        ))
    fig.update_layout(yaxis={"range": [0, 105], "ticksuffix": "%"}, title={"text": "Pass rate per prompt version"}, **_LAYOUT)
    return json.loads(fig.to_json())
