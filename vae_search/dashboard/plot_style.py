"""The look of the study figures: a small template and a layout that fits optuna-dashboard's
box (their log-axis ticks: :func:`~vae_search.dashboard.ticks.log_ticks`).

optuna-dashboard draws a custom plotly figure in a 450 px high box and clips the rest, so every
figure is :data:`HEIGHT` high with its legend and colour bar on the right, inside that box.
"""

from __future__ import annotations

from typing import Any

HEIGHT = 450  # px: optuna-dashboard's box for a custom figure
# The look of plotly's default template in a few keys: the full template is ~6 KB of JSON per
# figure, and optuna-dashboard stores a figure as study attributes in 2 KB chunks, one storage
# write each, every time a worker refreshes it.
_AXIS = {"gridcolor": "white", "linecolor": "white", "zerolinecolor": "white", "automargin": True}
TEMPLATE = {
    "layout": {
        "font": {"color": "#2a3f5f"},
        "paper_bgcolor": "white",
        "hovermode": "closest",
        "title": {"x": 0.05},
        "xaxis": _AXIS,
        "yaxis": _AXIS,
    }
}


def fitted_layout(title: str, colorbar_title: str) -> dict[str, Any]:
    """Layout keys of a figure that fits :data:`HEIGHT`: legend top right, colour bar under
    it, both outside the plot area (plotly widens the right margin for them)."""
    return {
        # short, and left: the dashboard's tool bar takes the top right
        "title": {"text": title, "font": {"size": 13}, "x": 0.02, "y": 0.97, "yanchor": "top"},
        "height": HEIGHT,
        "margin": {"t": 64, "l": 56, "r": 10, "b": 56},
        "legend": {
            "x": 1.02,
            "xanchor": "left",
            "y": 1.0,
            "yanchor": "top",
            "font": {"size": 11},
            "tracegroupgap": 0,
        },
        "coloraxis_colorbar": {
            "title": {"text": colorbar_title, "side": "top", "font": {"size": 11}},
            "x": 1.02,
            "xanchor": "left",
            "y": 0.0,
            "yanchor": "bottom",
            "len": 0.45,
            "thickness": 12,
            "tickfont": {"size": 10},
        },
        "plot_bgcolor": "#f4f4f4",
    }
