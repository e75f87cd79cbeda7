"""The report's traffic plot: short phases next to each other and a short fault give labels that
would sit on top of each other; no two texts of the figure overlap (phase names, fault and
removal marks, legend, title, axis labels and ticks)."""

from __future__ import annotations

import itertools

from hub.report.build import Report
from hub.report.render import traffic_figure

T0 = 1_765_000_000.0


def report(phases, faults) -> Report:
    series = [{"t": T0 + 5 * i, "requests": 500 + (i % 3), "errors": 200 if 12 <= i < 14 else 3} for i in range(26)]
    return Report(experiment_id="patient-api-db-failover", database="hub",
                  experiment={"started_at": T0, "title": "Patients ride out a database outage"}, definition={},
                  phases=[{"phase": n, "start": T0 + a, "end": T0 + b} for n, a, b in phases], per_phase=[],
                  measurements=[], series=series, bucket_seconds=5.0,
                  faults=[{"fault_id": f, "start": T0 + a, "end": T0 + b} for f, a, b in faults], attribution={},
                  alerts=[], actions=[], timeline=[], notes=[], shadow={"available": False, "message": ""})


def texts(fig):
    out = [fig._suptitle]
    for ax in fig.axes:
        out += [*ax.texts, ax.xaxis.label, ax.yaxis.label]
        for axis, (low, high) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            # the labels of the ticks drawn (a locator also gives ticks beyond the limits)
            out += [label for tick, label in zip(axis.get_ticklocs(), axis.get_ticklabels()) if low <= tick <= high]
        legend = ax.get_legend()
        if legend is not None:
            out.append(legend)
    return [t for t in out if t is not None and t.get_visible() and (not hasattr(t, "get_text") or t.get_text())]


def test_no_two_labels_of_the_traffic_plot_overlap():
    fig = traffic_figure(report(
        phases=[("baseline", 0, 55), ("injection", 55, 62), ("observation", 62, 68), ("recovery", 68, 130)],
        faults=[("db-down", 58, 61), ("cache-flush", 60, 64)]))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text() if hasattr(t, "get_text") else "legend", t.get_window_extent(renderer)) for t in texts(fig)]
    assert {"baseline", "injection", "observation", "recovery", "fault db-down", "fault cache-flush", "removed",
            "legend", "patient-api-db-failover: traffic and errors"} <= {name for name, _ in boxes}
    overlapping = [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2) if box_a.overlaps(box_b)]
    assert overlapping == []
    # every label stays inside the figure
    width, height = fig.canvas.get_width_height()
    assert all(0 <= box.x0 and box.x1 <= width and 0 <= box.y0 and box.y1 <= height for _, box in boxes)
