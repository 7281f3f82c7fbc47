#!/usr/bin/env python3
"""Ratio tables from the bench's Google Benchmark JSON (python3 standard library only).

    python3 bench/ratios.py build-bench/bench.json [--metric cpu_time|real_time]

For each workload: every system's median time (the `median` aggregate when the run had
repetitions, else the single run), its spread (coefficient of variation over the repetitions), and
its ratio to the hand-written floor and to LibTorch. Systems that failed the agreement check show
their error instead of a time. Then the recorded environment and the issue's targets, met or missed.
Output is Markdown, ready to paste into the README.
"""
import argparse
import json
import sys

SYSTEM_ORDER = ["handwritten", "cblas", "chainrule_scalar", "chainrule_tensor", "sacado", "adolc", "libtorch"]
WORKLOAD_ORDER = ["lecture", "tinyop", "mlp_b128", "mlp_b8", "mlp_b1", "matmul", "scalar_sum",
                  "scalar_logsumexp", "memory"]
FLOOR = "handwritten"
PEER = "libtorch"
UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
WHAT = {
    "lecture": "time per epoch (forward + backward + update), 2-3-1 network, 10 observations",
    "tinyop": "time per chain of 3,000 one-element ops (1,000 x mul, add, sigmoid) + backward",
}
CONTEXT_KEYS = ["chainrule_revision", "threads", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "libtorch_threads",
                "OPENBLAS_CORETYPE", "openblas_corename", "systems_missing"]


def order_key(order, name):
    return (order.index(name) if name in order else len(order), name)


def fmt_time(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_ratio(r):
    return f"{r:.3g}x" if r is not None else "-"


def load(path, metric):
    """Returns ({workload: {system: row}}, context). A row: seconds, cv, per_op, error."""
    with open(path) as f:
        data = json.load(f)
    rows = {}
    for b in data.get("benchmarks", []):
        name = b.get("run_name", b["name"])
        workload, _, system = name.partition("/")
        system = system.split("/")[0]
        row = rows.setdefault(workload, {}).setdefault(system, {})
        if b.get("error_occurred"):
            row["error"] = b.get("error_message", "error")
            continue
        scale = UNITS[b.get("time_unit", "ns")]
        kind = b.get("aggregate_name") if b.get("run_type") == "aggregate" else "iteration"
        if kind == "median" or (kind == "iteration" and "median" not in row):
            row["seconds"] = b[metric] * scale
            if "per_op" in b:
                row["per_op"] = b["per_op"]
            if kind == "median":
                row["median"] = True
        elif kind == "cv":
            row["cv"] = b[metric]
    return rows, data.get("context", {})


def table(workload, systems):
    out = []
    floor = systems.get(FLOOR, {}).get("seconds")
    peer = systems.get(PEER, {}).get("seconds")
    has_per_op = any("per_op" in r for r in systems.values())
    head = ["system", "time"] + (["per op"] if has_per_op else []) + ["spread (cv)", f"vs {FLOOR}", f"vs {PEER}"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|")
    for system in sorted(systems, key=lambda s: order_key(SYSTEM_ORDER, s)):
        r = systems[system]
        if "error" in r:
            cells = [system, "error: " + r["error"]] + [""] * (len(head) - 2)
        else:
            t = r.get("seconds")
            cells = [system, fmt_time(t)]
            if has_per_op:
                cells.append(fmt_time(r["per_op"]) if "per_op" in r else "-")
            cells.append(f"{100 * r['cv']:.1f}%" if "cv" in r else "-")
            cells.append(fmt_ratio(t / floor if floor else None))
            cells.append(fmt_ratio(t / peer if peer else None))
        out.append("| " + " | ".join(cells) + " |")
    return out


# The targets: (description, function of the rows returning (value text, met) or None).
def seconds(rows, workload, system, key="seconds"):
    return rows.get(workload, {}).get(system, {}).get(key)


def ratio_target(workload, system, other, limit, text):
    def check(rows):
        a, b = seconds(rows, workload, system), seconds(rows, workload, other)
        if a is None or b is None:
            return None
        return f"{a / b:.3g}x", a / b <= limit
    return text, check


def per_op_target(workload, system, limit_seconds, text):
    def check(rows):
        v = seconds(rows, workload, system, "per_op")
        if v is None:
            return None
        return fmt_time(v), v <= limit_seconds
    return text, check


TARGETS = [
    ratio_target("lecture", "chainrule_scalar", "handwritten", 3.0,
                 "lecture: chainrule_scalar within 3x of handwritten"),
    ratio_target("lecture", "chainrule_scalar", "sacado", 1.0,
                 "lecture: chainrule_scalar faster than sacado (ratio < 1)"),
    ratio_target("lecture", "chainrule_scalar", "libtorch", 1 / 40,
                 "lecture: chainrule_scalar more than 40x faster than libtorch (ratio <= 0.025)"),
    ratio_target("lecture", "chainrule_tensor", "libtorch", 0.1,
                 "lecture: chainrule_tensor at most 1/10 of libtorch"),
    per_op_target("tinyop", "chainrule_tensor", 100e-9, "tinyop: chainrule_tensor at most 100 ns per op"),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json")
    parser.add_argument("--metric", choices=["cpu_time", "real_time"], default="cpu_time")
    args = parser.parse_args()
    rows, context = load(args.json, args.metric)
    if not rows:
        sys.exit(f"ratios.py: no benchmarks in {args.json}")

    reps = "median of the repetitions" if any(r.get("median") for s in rows.values() for r in s.values()) \
        else "single run"
    print(f"Times are {reps}, {args.metric.replace('_', ' ')}; lower is better.\n")
    for workload in sorted(rows, key=lambda w: order_key(WORKLOAD_ORDER, w)):
        print(f"**{workload}**: {WHAT.get(workload, '')}\n")
        print("\n".join(table(workload, rows[workload])))
        print()

    print("Environment (the same for every system):\n")
    for key in CONTEXT_KEYS:
        if key in context:
            print(f"- {key}: {context[key]}")
    for key in ("host_name", "num_cpus", "mhz_per_cpu", "load_avg", "date"):
        if key in context:
            print(f"- {key}: {context[key]}")
    if "library_build_type" in context:
        print(f"- Google Benchmark library build: {context['library_build_type']} (Debian's package)")
    load_avg, cpus = context.get("load_avg"), context.get("num_cpus")
    if load_avg and cpus and load_avg[0] > cpus:
        print(f"- **warning**: the load average ({load_avg[0]:.1f}) exceeded the {cpus} CPUs during the run: "
              "absolute times are inflated; ratios measured in the same run are the useful figures")
    print()

    print("Targets (issue 2 / issue 5):\n")
    for text, check in TARGETS:
        result = check(rows)
        if result is None:
            print(f"- {text}: not measured")
        else:
            value, met = result
            print(f"- {text}: {value}, **{'met' if met else 'MISSED'}**")


if __name__ == "__main__":
    main()
