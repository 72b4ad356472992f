"""The archive trend chart's grade labels: each year's labels are read, never printed over one
another, however close the points (two forms at the same rate, a point at the top)."""

from __future__ import annotations

from itertools import combinations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

from evaluation.archive import charts
from evaluation.fonts import matplotlib_font_family


def test_labels_of_one_year_never_overlap() -> None:
    fig = Figure(figsize=(8.4, 4.2), dpi=110)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    fig.subplots_adjust(left=0.08, right=0.97, top=0.9, bottom=0.26)
    ax.set_xlim(2019.5, 2022.5)
    ax.set_ylim(0, 108)
    grades = {
        2020: [(83.3, "好", "#000"), (83.3, "优秀", "#444"), (100.0, "优秀", "#888")],
        2021: [(100.0, "优秀", "#000"), (96.0, "称职", "#444")],
        2022: [(50.0, "不称职", "#000"), (47.0, "基本称职", "#444"), (20.0, "差", "#888")],
    }
    charts._grade_labels(
        ax, grades, FontProperties(family=matplotlib_font_family(), size=8.5), fig.get_figheight()
    )
    canvas.draw()
    renderer = canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_text()]
    assert len(labels) == 8
    boxes = [t.get_window_extent(renderer) for t in labels]
    for a, b in combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)
    # and every label stays inside the chart
    frame = ax.get_window_extent(renderer)
    assert all(frame.y0 - 2 <= box.y0 and box.y1 <= frame.y1 + 2 for box in boxes)
