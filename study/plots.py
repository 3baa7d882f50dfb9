"""Figures for the Admin tab and reports: metric-vs-score scatter with the fit, leaderboard.

Built on ``matplotlib.figure.Figure`` directly (no pyplot state), so several Gradio
workers can draw at once.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from study.analysis import Analysis


def scatter(analysis: Analysis, metric: str, level: str = "stimulus") -> Figure:
    fig = Figure(figsize=(5.2, 4.0), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    corr = next((c for c in analysis.correlations if c.metric == metric and c.level == level), None)
    if (metric, level) not in analysis.points or corr is None:
        ax.text(0.5, 0.5, f"no data for {metric} ({level})", ha="center", va="center")
        ax.set_axis_off()
        return fig
    x, y, labels = analysis.points[(metric, level)]
    if level == "condition":
        rows = {r.item: r for r in analysis.scores if r.level == "condition" and r.model == "bt-davidson"}
        lo = np.array([y[i] - rows[lab].ci_low for i, lab in enumerate(labels)])
        hi = np.array([rows[lab].ci_high - y[i] for i, lab in enumerate(labels)])
        ax.errorbar(x, y, yerr=[np.maximum(lo, 0), np.maximum(hi, 0)], fmt="o", ms=5, capsize=3, color="#1f77b4")
        for xi, yi, lab in zip(x, y, labels, strict=True):
            ax.annotate(lab, (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    else:
        ax.scatter(x, y, s=14, alpha=0.7, color="#1f77b4")
    xs = np.linspace(float(np.min(x)), float(np.max(x)), 200)
    ax.plot(xs, corr.fit(xs), color="#d62728", lw=1.5, label=f"{corr.fit.kind} fit")
    ax.set_xlabel(metric + (" (centred per source)" if level == "stimulus" else ""))
    ax.set_ylabel("BT–Davidson score" + (" (centred per source)" if level == "stimulus" else ""))
    ax.set_title(f"{metric}: SRCC {corr.srcc:.2f}  KRCC {corr.krcc:.2f}  PLCC {corr.plcc:.2f}  (n={corr.n})",
                 fontsize=9)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return fig


def leaderboard(analysis: Analysis, model: str = "bt-davidson") -> Figure:
    rows = analysis.leaderboard(model)[::-1]
    fig = Figure(figsize=(5.2, max(2.0, 0.35 * len(rows) + 1)), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    if not rows:
        ax.text(0.5, 0.5, "no votes yet", ha="center", va="center")
        ax.set_axis_off()
        return fig
    yy = np.arange(len(rows))
    sc = np.array([r.score for r in rows])
    err = np.array([[max(r.score - r.ci_low, 0) for r in rows], [max(r.ci_high - r.score, 0) for r in rows]])
    err = np.nan_to_num(err)
    ax.barh(yy, sc, xerr=err, color="#4c72b0", capsize=3)
    ax.set_yticks(yy, [r.item for r in rows], fontsize=8)
    ax.axvline(0, color="k", lw=0.8)
    unit = "JOD" if model == "thurstone-v" else "log-odds"
    ax.set_xlabel(f"quality score ({model}, {unit}; 95% CI over raters)")
    ax.grid(axis="x", alpha=0.3)
    return fig
