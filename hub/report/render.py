"""Write an after-action report as Markdown and self-contained HTML, with PNG plots beside them.

The report is first laid out as a list of blocks (headings, paragraphs, tables, lists, images),
then written out twice, so the Markdown and the HTML always say the same. The HTML has its
CSS inline and refers to the plots by relative file name, so the folder can be copied, zipped or
committed as it is. Plots are drawn with matplotlib's Agg backend: no display needed.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from pathlib import Path
from typing import Callable, Iterable

from hub.abort.wording import plain
from hub.masking import mask_secrets, mask_url
from hub.report.build import Report, format_value

PLOTS = ("traffic.png", "latency.png", "steady_state.png")
FORMATS = ("md", "html")


# ---- time ---------------------------------------------------------------------------------------
def clock(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(float(epoch), dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def hms(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(float(epoch), dt.timezone.utc).strftime("%H:%M:%S")


def span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else (f"{m}m {s:02d}s" if m else f"{s}s")


def since(report: Report, epoch: float | None) -> str:
    start = report.experiment.get("started_at") or (report.phases[0]["start"] if report.phases else None)
    if epoch is None or start is None:
        return ""
    delta = float(epoch) - float(start)
    sign = "-" if delta < 0 else "+"
    m, s = divmod(int(round(abs(delta))), 60)
    return f"T{sign}{m:02d}:{s:02d}"


def pct(value: float | None) -> str:
    return format_value("error_rate", None if value is None else float(value))


def ms(value: float | None) -> str:
    return "-" if value is None else f"{float(value):.0f} ms"


# ---- the document -----------------------------------------------------------------------------
class Doc:
    """Blocks: ("h", level, text), ("p", text), ("table", headers, rows), ("ul", items),
    ("ol", items), ("todo", items), ("img", file, alt). Text may use **bold** and `code`."""

    def __init__(self) -> None:
        self.blocks: list[tuple] = []

    def h(self, level: int, text: str):
        self.blocks.append(("h", level, text))

    def p(self, text: str):
        self.blocks.append(("p", text))

    def table(self, headers: list[str], rows: Iterable[list]):
        self.blocks.append(("table", headers, [[str(c) for c in r] for r in rows]))

    def ul(self, items: list[str]):
        self.blocks.append(("ul", items))

    def ol(self, items: list[str]):
        self.blocks.append(("ol", items))

    def todo(self, items: list[str]):
        self.blocks.append(("todo", items))

    def img(self, file: str, alt: str):
        self.blocks.append(("img", file, alt))


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Doc) -> str:
    out: list[str] = []
    for block in doc.blocks:
        kind = block[0]
        if kind == "h":
            out.append("#" * block[1] + " " + block[2])
        elif kind == "p":
            out.append(block[1])
        elif kind == "table":
            headers, rows = block[1], block[2]
            out.append("| " + " | ".join(_md_cell(h) for h in headers) + " |")
            out.append("|" + "|".join("---" for _ in headers) + "|")
            out.extend("| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows)
        elif kind in ("ul", "ol", "todo"):
            for i, item in enumerate(block[1], 1):
                bullet = {"ul": "-", "ol": f"{i}.", "todo": "- [ ]"}[kind]
                out.append(f"{bullet} {item}")
        elif kind == "img":
            out.append(f"![{block[2]}]({block[1]})")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _inline(text: str) -> str:
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #1f2328; line-height: 1.5; }
h1 { border-bottom: 2px solid #d0d7de; padding-bottom: .3rem; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; margin-top: 2.2rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .92rem; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
tr:nth-child(even) td { background: #fbfbfc; }
td strong { color: #b42318; }
code { background: #f6f8fa; padding: .1rem .3rem; border-radius: 4px; font-size: .9em; }
img { max-width: 100%; border: 1px solid #d0d7de; border-radius: 4px; margin: .5rem 0; }
ul.todo { list-style: none; padding-left: 1rem; }
ul.todo li::before { content: "\\2610  "; }
"""


def to_html(doc: Doc, title: str) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{html.escape(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>"]
    for block in doc.blocks:
        kind = block[0]
        if kind == "h":
            out.append(f"<h{block[1]}>{_inline(block[2])}</h{block[1]}>")
        elif kind == "p":
            out.append(f"<p>{_inline(block[1])}</p>")
        elif kind == "table":
            out.append("<table><thead><tr>" + "".join(f"<th>{_inline(h)}</th>" for h in block[1]) + "</tr></thead><tbody>")
            out.extend("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in block[2])
            out.append("</tbody></table>")
        elif kind in ("ul", "ol", "todo"):
            tag = "ol" if kind == "ol" else "ul"
            cls = ' class="todo"' if kind == "todo" else ""
            out.append(f"<{tag}{cls}>" + "".join(f"<li>{_inline(i)}</li>" for i in block[1]) + f"</{tag}>")
        elif kind == "img":
            out.append(f'<p><img src="{html.escape(block[1])}" alt="{html.escape(block[2])}"></p>')
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


# ---- the report's content ---------------------------------------------------------------------
def _verdict_cell(verdict: str) -> str:
    return "**BREACHED**" if verdict == "BREACHED" else verdict


def _summary(report: Report) -> str:
    e, d = report.experiment, report.definition
    status = e.get("status", "?")
    bits = []
    if status == "aborted":
        bits.append(f"The experiment was **aborted** ({e.get('abort_reason') or 'no reason given'}).")
    elif status == "completed":
        bits.append("The experiment ran to completion.")
    else:
        bits.append(f"The experiment is still **{status}**; this report shows what was stored so far.")
    measured = {m.name for m in report.measurements}
    breached = sorted({m.name for m in report.breaches})
    if breached:
        where = ", ".join(f"{n} (in {', '.join(m.phase for m in report.breaches if m.name == n)})" for n in breached)
        bits.append(f"{len(breached)} of {len(measured)} steady-state measurements left their tolerance: {where}. "
                    "The hypothesis did not hold as written.")
    elif measured:
        bits.append(f"All {len(measured)} steady-state measurements stayed within tolerance where they were measured.")
    for f in report.faults:
        top = next(iter(_attributed(report, f, "regression")), None)
        if top:
            bits.append(f"Fault {f['fault_id']} ({f['action']} on {f['target']}) hurt route `{top['route']}` most: "
                        f"error rate {pct(top['baseline_error_rate'])} to {pct(top['fault_error_rate'])}, "
                        f"p95 {ms(top['baseline_p95_ms'])} to {ms(top['fault_p95_ms'])}.")
    fired = report.abort_rules_fired
    if fired:
        bits.append(f"Abort rules fired: {', '.join(fired)}.")
    bits.append(f"{len(report.surprises)} surprise(s) were written down and {len(report.follow_ups)} follow-up item(s) "
                "come out of the run.")
    if d.get("expected_outcome"):
        pass
    return " ".join(bits)


def layout(report: Report, plots: dict[str, str]) -> Doc:
    e, d = report.experiment, report.definition
    doc = Doc()
    title = e.get("title") or d.get("title") or report.experiment_id
    doc.h(1, f"After-action report: {title}")
    env = d.get("environment") or {}
    doc.table(["", ""], [
        ["Experiment", f"`{report.experiment_id}`"],
        ["Status", e.get("status", "")],
        ["Environment", f"{env.get('name', '-')} ({env.get('kind', '-')}, risk {env.get('risk', '-')})"
                        + (f", approved by {env['approver']}" if env.get("approver") else "")],
        ["Started", f"{clock(e.get('started_at'))} by {e.get('started_by') or '-'}"
                    + (" (forced: prerequisites not all done)" if e.get("forced_start") else "")],
        ["Ended", f"{clock(e.get('ended_at'))}" + (f", after {span(float(e['ended_at']) - float(e['started_at']))}"
                                                    if e.get("ended_at") and e.get("started_at") else "")],
        ["Tags", ", ".join(d.get("tags", [])) or "-"],
    ])
    doc.h(2, "Summary")
    doc.p(_summary(report))
    if e.get("summary"):
        doc.p(f"Summary written at completion by {e.get('completed_by') or 'the team'}: \"{e['summary']}\"")

    doc.h(2, "Scenario and hypothesis")
    doc.p(f"**Scenario.** {(d.get('scenario') or '-').strip()}")
    doc.p(f"**Hypothesis.** {(d.get('hypothesis') or '-').strip()}")
    doc.p(f"**Expected outcome.** {(d.get('expected_outcome') or '-').strip()}")
    targets = d.get("targets") or {}
    doc.ul([f"{k}: {', '.join(f'`{v}`' for v in vals)}" for k, vals in targets.items() if vals] or ["no targets"])
    if d.get("participants"):
        doc.p("**Who was there.** " + "; ".join(f"{p['name']} ({p['role']})" for p in d["participants"]) + ".")
    if report.prerequisites:
        doc.p("**Prerequisites** as recorded: the latest check of each before the start (and whether the plan "
              "had it done already).")
        doc.table(["prerequisite", "owner", "checked", "by, when", "note", "done in the plan"],
                  [[p["item"], p["owner"] or "-",
                    "not checked" if p["done"] is None else ("done" if p["done"] else "NOT done"),
                    f"{p['checked_by'] or '-'}, {clock(p['checked_at'])}" if p["checked_at"] is not None else "-",
                    p["note"] or "-", "yes" if p["planned"] else "no"] for p in report.prerequisites])

    doc.h(2, "Expected versus actual")
    doc.p("Every steady-state measurement of the definition, per phase: its tolerance (what was expected), the value "
          "measured from the stored telemetry (what happened), the number of samples and the verdict.")
    if "steady_state.png" in plots:
        doc.img(plots["steady_state.png"], "Expected versus actual per steady-state measurement and phase")
    doc.table(["measurement", "SLI", "phase", "expected", "actual", "samples", "verdict"],
              [[m.name, m.sli, m.phase, m.expected, format_value(m.sli, m.value), m.samples, _verdict_cell(m.verdict)]
               for m in report.measurements])
    notes = sorted({f"{m.name}: {m.note}" for m in report.measurements if m.note and m.value is not None})
    if notes:
        doc.p("Notes on the measurements:")
        doc.ul(notes)

    doc.h(2, "Traffic, errors and latency")
    if "traffic.png" in plots:
        doc.p(f"Requests and failed requests over time (buckets of {report.bucket_seconds:.0f} s, shadow legs left out), "
              "phases shaded, faults marked in red.")
    if report.sources_counted:
        left_out = sorted(set(report.sources_stored.split(", ")) - set(report.sources_counted.split(", ")) - {""})
        doc.p(f"Request legs counted here and below: from {report.sources_counted}"
              + (f" ({', '.join(left_out)} legs of the same traffic left out, not counted twice)." if left_out else "."))
        doc.img(plots["traffic.png"], "Request rate and error rate over time, phases shaded, faults marked")
    if report.per_phase:
        doc.table(["phase", "requests", "errors", "error rate", "p50", "p95", "p99", "error rate vs baseline",
                   "p99 vs baseline"],
                  [[r["phase"], r["requests"], r["errors"], pct(r["error_rate"]), ms(r["p50_ms"]), ms(r["p95_ms"]),
                    ms(r["p99_ms"]),
                    "-" if r["error_rate_change"] is None else f"{r['error_rate_change'] * 100:+.2f} pp",
                    "-" if r["p99_ratio"] is None else f"x{float(r['p99_ratio']):.2f}"] for r in report.per_phase])
    else:
        doc.p("No request legs were placed on this experiment.")
    if "latency.png" in plots:
        doc.img(plots["latency.png"], "Latency p50 and p99 per phase against the baseline")

    doc.h(2, "Timeline")
    doc.p("Times in UTC; T+mm:ss counts from the start of the experiment.")
    doc.table(["time", "since start", "what", "detail", "who"],
              [[hms(t["t"]), since(report, t["t"]), t["what"], t["detail"] or "-", t["actor"] or "-"]
               for t in report.timeline])

    doc.h(2, "Faults and what each changed")
    if not report.faults:
        doc.p("No fault was recorded in this experiment.")
    for f in report.faults:
        end = f"until {hms(f['end'])} ({span(float(f['end']) - float(f['start']))})" if f.get("end") else "never removed"
        params = f.get("parameters") or ""
        params = "" if params in ("", "{}", "null") else f", parameters {params}"
        doc.h(3, f"{f['fault_id']}: {f['action']} on {f['target']}")
        doc.p(f"Injected at {hms(f['start'])} ({since(report, f['start'])}) by {f['injected_by'] or '-'} with "
              f"{f['injector'] or '-'}, {end}{params}.")
        rows = [r for r in report.attribution.get(f["fault_id"], [])]
        worse, better = _attributed(report, f, "regression"), _attributed(report, f, "improvement")
        headers = ["rank", "route", "requests (baseline / fault)", "error rate (baseline -> fault)",
                   "p95 (baseline -> fault)", "effect size"]

        def table(ranked):
            doc.table(headers, [[r["rank"], f"`{r['route']}`", f"{r['baseline_requests'] or 0} / {r['fault_requests']}",
                                 f"{pct(r['baseline_error_rate'])} -> {pct(r['fault_error_rate'])}",
                                 f"{ms(r['baseline_p95_ms'])} -> {ms(r['fault_p95_ms'])}",
                                 f"{float(r['effect_size']):.2f}"] for r in ranked[:8]])
        if worse:
            top = worse[0]
            doc.p(f"Most harmed: route `{top['route']}` (error rate {pct(top['baseline_error_rate'])} in the baseline, "
                  f"{pct(top['fault_error_rate'])} while the fault was active; p95 {ms(top['baseline_p95_ms'])} to "
                  f"{ms(top['fault_p95_ms'])}). Routes that got worse (more errors or a higher p95), ranked by "
                  "effect size, largest first:")
            table(worse)
        elif any(r.get("effect_size") is not None for r in rows):
            doc.p("No route got worse (more errors or a higher p95) while the fault was active.")
        else:
            doc.p("Not enough requests on either side (baseline and while the fault was active) to say what it changed.")
        if better:
            doc.p("Routes that got better while the fault was active (fewer errors or a lower p95), listed apart:")
            table(better)
        thin = [r["route"] for r in rows if r.get("effect_size") is None]
        if thin:
            doc.p("Too few requests to compare: " + ", ".join(f"`{r}`" for r in thin[:10]) + ".")
    doc.p("Effect size: the larger of Cohen's h between the error rates and ln(p95 ratio), baseline phase against "
          "the time the fault was active, taken in the direction of the change: harm for the routes that got worse, "
          "gain for those that got better (saved question `fault-attribution`).")

    doc.h(2, "Abort decisions")
    conditions = d.get("abort_conditions") or []
    if report.alerts:
        doc.table(["time", "rule", "severity", "status", "observed", "threshold", "samples", "top contributors",
                   "message"],
                  [[hms(a["time"]), a["rule"], a["severity"], a["status"],
                    "-" if a["observed"] is None else f"{float(a['observed']):.4g}",
                    f"{a['comparison']} {float(a['threshold']):.4g}", a["samples"], _contributors(a["top_contributors"]),
                    a["message"]] for a in report.alerts])
        if report.actions:
            doc.p("What was done about them:")
            doc.ul([f"{hms(a['time'])} {a['action']}: {'ok' if a['ok'] else 'FAILED'}"
                    + (f" ({a['message']})" if a["action"] == "halt" and a.get("message") else "")
                    + (f" ({mask_url(a['url'])})" if a.get("url") else "")
                    + (f", HTTP {a['status_code']}" if a.get("status_code") else "")
                    + (f", {a['latency_ms']:.0f} ms" if a.get("latency_ms") is not None else "")
                    + (f", {a['error']}" if a.get("error") else "")
                    for a in report.actions])
    else:
        doc.p(f"No abort rule fired. The definition had {len(conditions)} abort condition(s)"
              + (": " + "; ".join(f"{c['name']} ({c['measurement']} {c['comparison']} {c['threshold']} over "
                                 f"{c['window']}, {c.get('severity', 'abort')})" for c in conditions) if conditions else "")
              + ".")
    if report.outside_alerts:
        doc.p("Recorded outside the run (before its start or after its end), so nothing was done about them: "
              + "; ".join(f"{hms(a['time'])} {a['rule']} {a['status']}" for a in report.outside_alerts) + ".")
    if e.get("status") == "aborted":
        doc.p(f"The experiment was aborted by {e.get('aborted_by') or '-'} at {clock(e.get('ended_at'))}: "
              f"{e.get('abort_reason') or 'no reason given'}.")
    elif e.get("status") == "completed":
        doc.p("Nobody aborted the experiment; it was completed.")

    doc.h(2, "Shadow comparison")
    shadow = report.shadow
    if not shadow["available"]:
        doc.p(f"Shadow comparison was not in this experiment: {shadow['message']}.")
        if any(m.sli == "shadow_mismatch_rate" and m.value is not None for m in report.measurements):
            doc.p("The shadow mismatch measurement above compares shadow legs with their primary legs directly "
                  "(status and response hash), which needs no pairing.")
    else:
        first = shadow["routes"][0]
        doc.p(f"Route `{first['route']}` differed most: {first['differing']} of {first['pairs']} shadow responses "
              f"differed from the primary's ({pct(first['mismatch_rate'])}); pairs whose primary failed (no answer, "
              f"5xx) say nothing about the shadow and are counted apart.")
        doc.table(["route", "pairs", "differing", "mismatch rate", "primary failed", "outcomes"],
                  [[f"`{r['route']}`", r["pairs"], r["differing"], pct(r["mismatch_rate"]), r.get("primary_failed", 0),
                    ", ".join(r["outcomes"]) if isinstance(r["outcomes"], list) else r["outcomes"]]
                   for r in shadow["routes"]])

    doc.h(2, "Surprises")
    if report.surprises:
        for n in report.surprises:
            doc.p(f"**{n['text']}** ({hms(n['time'])}, {since(report, n['time'])}, phase {n['phase'] or '-'}, "
                  f"noted by {n['actor']})")
            doc.ul([f"Expected: {n['expected'] or '-'}", f"Actual: {n['actual'] or '-'}"]
                   + ([f"Tags: {', '.join(n['tags'])}"] if n["tags"] else []))
    else:
        doc.p("Nobody wrote down a surprise.")
    observations = [n for n in report.notes if n["note_kind"] != "surprise"]
    if observations:
        doc.h(3, "Other observations")
        doc.ul([f"{hms(n['time'])} ({n['phase'] or '-'}) {n['actor']}: {n['text']}"
                + (f" [{', '.join(n['tags'])}]" if n["tags"] else "") for n in observations])

    doc.h(2, "Follow-ups")
    if report.follow_ups:
        doc.p("Notes tagged `follow-up`, every surprise, and every breached tolerance become an item to act on:")
        doc.todo([f"{f['text']} ({f['why']}" + (f", {f['actor']}" if f["actor"] else "") + ")"
                  for f in report.follow_ups])
    else:
        doc.p("None: no surprise, no note tagged `follow-up`, no breached tolerance.")

    doc.h(2, "How this report was made")
    doc.p(f"Generated by `hub report {report.experiment_id}` at {clock(dt.datetime.now(dt.timezone.utc).timestamp())} "
          f"from the hub's tables in database `{report.database}` (requests, experiment_events and its views, alerts, "
          "otel_traces). A request failed when its status was 0 or >= 500 or it carried an error, as the abort judge "
          "counts it; shadow legs are left out of request counts. Request rate is requests in the phase divided by "
          "the phase's length. The same numbers are one `hub questions ask` away: error-rate-by-phase, "
          "fault-attribution, shadow-differences, alerts, timeline, audit.")
    return doc


def _attributed(report, fault: dict, direction: str) -> list[dict]:
    """A fault's attribution rows of one direction (regression, improvement), in rank order."""
    return [r for r in report.attribution.get(fault["fault_id"], [])
            if r.get("direction") == direction and r.get("effect_size") is not None]


def _contributors(raw) -> str:
    try:
        items = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return str(raw)
    if not items:
        return "-"
    out = []
    for item in items[:3]:
        if isinstance(item, dict):
            label = item.get("route") or item.get("backend") or item.get("gateway") or "?"
            share = item.get("share") or item.get("error_rate") or item.get("errors")
            share = share if share is not None else item.get("value")
            out.append(f"{label}" + (f" ({plain(share)})" if isinstance(share, (int, float)) else ""))
        else:
            out.append(str(item))
    return ", ".join(out)


# ---- plots ----------------------------------------------------------------------------------
_PHASE_COLOURS = ("#dbeafe", "#fde68a", "#fecaca", "#d1fae5", "#e9d5ff", "#fed7aa")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_traffic(report: Report, path: Path) -> bool:
    fig = traffic_figure(report)
    if fig is None:
        return False
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return True


#: Points between two lanes of labels (a 9-point label and its gap).
_LANE_POINTS = 11


def _lanes(fig, labels: list, step: float, others: Iterable = ()) -> None:
    """Moves each annotation (in order, offset in points) by whole lanes of ``step`` points until it
    overlaps none placed before it nor ``others``: labels of short phases or faults close together
    stack instead of overlapping."""
    renderer = fig.canvas.get_renderer()
    placed = [o.get_window_extent(renderer) for o in others]
    for label in labels:
        dx, dy = label.xyann
        for lane in range(len(labels) + 1):
            label.xyann = (dx, dy + lane * step)
            box = label.get_window_extent(renderer)
            if not any(box.overlaps(p) for p in placed):
                break
        placed.append(box)


def traffic_figure(report: Report):
    """The traffic plot's figure (None without data): request and failed-request rates above, error
    rate below, phases shaded and named above the plot, faults marked; no two labels overlap."""
    if not report.series:
        return None
    plt = _plt()
    t0 = float(report.experiment.get("started_at") or report.series[0]["t"])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.6), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    last = max([r["t"] for r in report.series] + [p["end"] for p in report.phases])
    unit, div = ("seconds", 1.0) if last - t0 < 300 else ("minutes", 60.0)
    xs = [(r["t"] - t0) / div for r in report.series]
    rate = [r["requests"] / report.bucket_seconds for r in report.series]
    err = [r["errors"] / report.bucket_seconds for r in report.series]
    share = [100 * r["errors"] / r["requests"] if r["requests"] else 0 for r in report.series]
    top.step(xs, rate, where="post", color="#1d4ed8", label="requests/s")
    top.step(xs, err, where="post", color="#dc2626", label="failed requests/s")
    top.set_ylabel("requests per second")
    bottom.step(xs, share, where="post", color="#dc2626")
    bottom.set_ylabel("error rate (%)")
    bottom.set_xlabel(f"{unit} since the experiment started")
    for tol in (m.max for m in report.measurements if m.sli == "error_rate" and m.max is not None):
        bottom.axhline(tol * 100, color="#7f1d1d", linestyle="--", linewidth=1)
        bottom.annotate(f"tolerance {tol * 100:g}%", (xs[0], tol * 100), textcoords="offset points", xytext=(2, 3),
                        fontsize=8, color="#7f1d1d")
        break
    phase_labels, fault_labels = [], []
    for i, p in enumerate(report.phases):
        a, b = (p["start"] - t0) / div, (p["end"] - t0) / div
        for ax in (top, bottom):
            ax.axvspan(a, b, color=_PHASE_COLOURS[i % len(_PHASE_COLOURS)], alpha=0.6, zorder=0, linewidth=0)
        phase_labels.append(top.annotate(p["phase"], ((a + b) / 2, 1.0), xycoords=("data", "axes fraction"),
                                         textcoords="offset points", xytext=(0, 2), ha="center", va="bottom",
                                         fontsize=9, fontweight="bold"))
    for f in report.faults:
        a = (float(f["start"]) - t0) / div
        b = (float(f["end"]) - t0) / div if f.get("end") else None
        for ax in (top, bottom):
            ax.axvline(a, color="#b91c1c", linewidth=1.5)
            if b is not None:
                ax.axvline(b, color="#b91c1c", linewidth=1, linestyle=":")
                ax.axvspan(a, b, facecolor="none", edgecolor="#b91c1c", hatch="//", alpha=0.25, linewidth=0)
        fault_labels.append(top.annotate(f"fault {f['fault_id']}", (a, 0.97), xycoords=("data", "axes fraction"),
                                         xytext=(3, 0), textcoords="offset points", fontsize=8, color="#b91c1c",
                                         va="top"))
        if b is not None:
            fault_labels.append(top.annotate("removed", (b, 0.97), xycoords=("data", "axes fraction"), xytext=(3, 0),
                                             textcoords="offset points", fontsize=8, color="#b91c1c", va="top"))
    top.set_ylim(bottom=0, top=max(max(rate) * 1.35, 1))  # room above the traffic for the fault labels
    bottom.set_ylim(bottom=0, top=max(max(share) * 1.15, 5))
    # the legend sits right of the plot, where no phase or fault label goes
    top.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), borderaxespad=0, fontsize=8, framealpha=0.9)
    for ax in (top, bottom):
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(f"{report.experiment_id}: traffic and errors", fontsize=11)
    fault_labels.sort(key=lambda label: label.xy[0])
    for _ in range(2):  # the layout moves the axes to make room for the stacked labels: place them again
        fig.tight_layout()
        for label in phase_labels + fault_labels:
            label.xyann = (label.xyann[0], 2 if label in phase_labels else 0)
        _lanes(fig, phase_labels, _LANE_POINTS)
        _lanes(fig, fault_labels, -_LANE_POINTS)
    return fig


def plot_latency(report: Report, path: Path) -> bool:
    rows = [r for r in report.per_phase if r["phase"] != "(no phase)"]
    if not rows:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    names = [r["phase"] for r in rows]
    xs = range(len(rows))
    p50 = [float(r["p50_ms"] or 0) for r in rows]
    p99 = [float(r["p99_ms"] or 0) for r in rows]
    ax.bar([x - 0.2 for x in xs], p50, width=0.4, color="#60a5fa", label="p50")
    ax.bar([x + 0.2 for x in xs], p99, width=0.4, color="#1e3a8a", label="p99")
    for x, a, b in zip(xs, p50, p99):
        ax.annotate(f"{a:.0f}", (x - 0.2, a), ha="center", va="bottom", fontsize=8)
        ax.annotate(f"{b:.0f}", (x + 0.2, b), ha="center", va="bottom", fontsize=8)
    base = next((r for r in rows if r.get("is_baseline")), rows[0])
    ax.axhline(float(base["p50_ms"] or 0), color="#60a5fa", linestyle="--", linewidth=1, label="baseline p50")
    ax.axhline(float(base["p99_ms"] or 0), color="#1e3a8a", linestyle="--", linewidth=1, label="baseline p99")
    for m in report.measurements:
        if m.sli == "latency_p99" and m.max is not None:
            ax.axhline(m.max, color="#b91c1c", linestyle=":", linewidth=1.2, label=f"tolerance p99 ({m.max:g} ms)")
            break
    ax.set_xticks(list(xs), names)
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"{report.experiment_id}: latency per phase against the baseline", fontsize=11)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, axis="y", alpha=0.3)
    limits = [m.max for m in report.measurements if m.sli == "latency_p99" and m.max is not None][:1]
    ax.set_ylim(0, max(p99 + [float(base["p99_ms"] or 0)] + limits) * 1.2 or 1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_steady_state(report: Report, path: Path) -> bool:
    names: list[str] = []
    for m in report.measurements:
        if m.name not in names:
            names.append(m.name)
    if not names:
        return False
    plt = _plt()
    cols = min(3, len(names))
    rows_n = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.3 * rows_n), squeeze=False)
    colours = {"within": "#16a34a", "BREACHED": "#dc2626", "not measured": "#9ca3af"}
    for ax, name in zip([a for row in axes for a in row], names):
        ms_ = [m for m in report.measurements if m.name == name]
        sli = ms_[0].sli
        if all(m.value is None for m in ms_):
            ax.text(0.5, 0.5, "not measured:\n" + ms_[0].note.replace(" in this phase", ""), ha="center", va="center", fontsize=8, wrap=True,
                    color="#4b5563", transform=ax.transAxes)
        scale = 100 if sli.endswith("_rate") and sli != "request_rate" else 1
        unit = {100: "%"}.get(scale, " ms" if sli.startswith("latency") else "/s" if sli == "request_rate" else "")
        values = [(m.value or 0) * scale for m in ms_]
        ax.bar(range(len(ms_)), values, color=[colours[m.verdict] for m in ms_])
        top = max(values + [(ms_[0].max or 0) * scale, (ms_[0].min or 0) * scale]) or 1
        for x, m in enumerate(ms_):
            label = "n/a" if m.value is None else format_value(sli, m.value)
            ax.annotate(label, (x, values[x]), ha="center", va="bottom", fontsize=8)
        if ms_[0].max is not None:
            ax.axhline(ms_[0].max * scale, color="#7f1d1d", linestyle="--", linewidth=1)
            ax.axhspan(ms_[0].max * scale, top * 1.3, color="#fee2e2", alpha=0.6, zorder=0)
        if ms_[0].min is not None:
            ax.axhline(ms_[0].min * scale, color="#7f1d1d", linestyle="--", linewidth=1)
            ax.axhspan(0, ms_[0].min * scale, color="#fee2e2", alpha=0.6, zorder=0)
        ax.set_ylim(0, top * 1.3)
        ax.set_xticks(range(len(ms_)), [m.phase for m in ms_], fontsize=8, rotation=20)
        ax.set_title(f"{name} ({sli})\nexpected {ms_[0].expected}", fontsize=9)
        ax.set_ylabel(unit.strip() or sli, fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    for ax in [a for row in axes for a in row][len(names):]:
        ax.axis("off")
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(color=c, label=v) for v, c in colours.items()]
               + [Patch(color="#fee2e2", label="outside tolerance")], loc="lower center", ncol=4, fontsize=8,
               frameon=False)
    fig.suptitle(f"{report.experiment_id}: expected (tolerance) versus actual, per phase", fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ---- writing ----------------------------------------------------------------------------------
def write_report(report: Report, out_dir: Path | str, formats: Iterable[str] = FORMATS,
                 progress: Callable[[str], None] | None = None) -> list[Path]:
    """Write the plots, then ``report.md`` and/or ``report.html`` into ``out_dir``; the files written."""
    say = progress or (lambda _line: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    plots: dict[str, str] = {}
    for name, draw in (("traffic.png", plot_traffic), ("latency.png", plot_latency),
                       ("steady_state.png", plot_steady_state)):
        say(f"drawing {name}")
        if draw(report, out / name):
            plots[name] = name
            written.append(out / name)
    doc = layout(report, plots)
    formats = list(formats)
    # Secrets (webhook URLs, tokens) never reach the files, wherever in the report they came from.
    if "md" in formats:
        (out / "report.md").write_text(mask_secrets(to_markdown(doc)), encoding="utf-8")
        written.append(out / "report.md")
    if "html" in formats:
        title = f"After-action report: {report.experiment.get('title') or report.experiment_id}"
        (out / "report.html").write_text(mask_secrets(to_html(doc, title)), encoding="utf-8")
        written.append(out / "report.html")
    return written
