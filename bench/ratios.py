#!/usr/bin/env python3
"""Ratio tables from the bench's Google Benchmark JSON (python3 standard library only).

    python3 bench/ratios.py build-bench/bench-1.json [--metric auto|cpu_time|real_time]
    python3 bench/ratios.py run1/bench-1.json run1/bench-2.json build-bench/bench-1.json ...

With one JSON, for each workload: every system's median time (the `median` aggregate when the run had
repetitions, else the single run), its spread (coefficient of variation over the repetitions), and
its ratio to the floor (handwritten, or cblas) and to LibTorch; in mlp_b* the cblas row is a bound
(the floor's matrix products alone), not a system, and so are bare_tape and bare_statement in lecture
and scalar_* (one record per op, or one statement per assignment, and nothing else: bench/bare_tape.h,
bench/bare_statement.h; their ratios are printed as bounds, not targets). Workloads with their own unit get
it: `matmul` GFLOP/s per case and chainrule's share of raw CBLAS, `scalar_*` the gradient time over
the plain-double function time (ADBench's unit), `memory` its counters. Systems that failed the
agreement check show their error instead of a time. Then the recorded environment and the issue's
targets, met or missed. With several (runs, thread counts): each target's value in every one of
them and in how many it was met, which shows the verdicts that flip between runs on a noisy
machine. Output is Markdown, ready to paste into the README.

--metric auto (the default) uses the process CPU time for a 1-thread run (the machine is shared:
CPU time does not count time spent descheduled) and wall time for a run with more threads (where
CPU time adds up the threads, and the point is the time a user waits).
"""
import argparse
import json
import sys

SYSTEM_ORDER = ["handwritten", "cblas", "chainrule_scalar", "chainrule_scalar_dot", "chainrule_tensor", "chainrule_tensor_unfused", "bare_tape",
                "bare_statement",
                "sacado", "adolc", "libtorch"]
WORKLOAD_ORDER = ["lecture", "tinyop", "mlp_b128", "mlp_b8", "mlp_b1", "cnn_b32", "matmul", "scalar_sum",
                  "scalar_logsumexp", "memory"]
FLOORS = ("handwritten", "cblas")
PEER = "libtorch"
UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
WHAT = {
    "lecture": "time per epoch (forward + backward + update), 2-3-1 network, 10 observations",
    "tinyop": "time per chain of 3,000 one-element ops (1,000 x mul, add, sigmoid) + backward",
    "mlp_b128": "time per training step, 784-256-256-10 ReLU MLP, float32, batch 128, cross-entropy, SGD",
    "mlp_b8": "time per training step, 784-256-256-10 ReLU MLP, float32, batch 8, cross-entropy, SGD",
    "mlp_b1": "time per training step, 784-256-256-10 ReLU MLP, float32, batch 1, cross-entropy, SGD",
    "cnn_b32": "time per training step, 2-conv CNN (3x3, 16 and 32 channels, max pooling) + dense, float32, "
               "batch 32 of 28x28, cross-entropy, SGD (no floor: chainrule_tensor is the reference)",
    "matmul": "square products; GFLOP/s over the table's time measure (forward 2n^3 flops; forward + "
              "backward 6n^3)",
    "scalar_sum": "gradient of sum x_i (ADBench sum_iter), N = 16384; handwritten is the plain-double "
                  "function, the others a whole gradient",
    "scalar_logsumexp": "gradient of log sum exp x_i (ADBench log_sum_exp), N = 16384; handwritten is the "
                        "plain-double function, the others a whole gradient",
    "memory": "bytes per recorded op and resident memory over 10,000 mlp_b128 steps (counters; run once)",
}
CONTEXT_KEYS = ["chainrule_revision", "threads", "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS",
                "libtorch_threads", "OPENBLAS_CORETYPE", "openblas_corename", "systems_missing"]
# Keys of a benchmark entry that are not user counters.
STANDARD_KEYS = {"name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
                 "repetition_index", "threads", "aggregate_name", "aggregate_unit", "iterations", "real_time",
                 "cpu_time", "time_unit", "items_per_second", "bytes_per_second", "error_occurred",
                 "error_message", "label"}


def order_key(order, name):
    return (order.index(name) if name in order else len(order), name)


def fmt_time(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_ratio(r):
    return f"{r:.3g}x" if r is not None else "-"


def fmt_number(v):
    return f"{v:.6g}"


def split_name(run_name):
    """'matmul/cblas/f32_n64_forward/process_time' -> ('matmul', 'cblas', 'f32_n64_forward')."""
    parts = run_name.split("/")
    workload, system = parts[0], parts[1] if len(parts) > 1 else ""
    rest = [p for p in parts[2:] if p not in ("process_time", "real_time", "manual_time")
            and not p.startswith(("iterations:", "repeats:", "min_time:", "threads:"))]
    return workload, system, "/".join(rest)


def load(path, metric):
    """Returns ({workload: {variant: {system: row}}}, context). A row: seconds, cv, counters, error."""
    with open(path) as f:
        data = json.load(f)
    context = data.get("context", {})
    if metric == "auto":
        metric = "cpu_time" if str(context.get("threads", "1")) == "1" else "real_time"
    rows = {}
    for b in data.get("benchmarks", []):
        workload, system, variant = split_name(b.get("run_name", b["name"]))
        row = rows.setdefault(workload, {}).setdefault(variant, {}).setdefault(system, {})
        if b.get("error_occurred"):
            row["error"] = b.get("error_message", "error")
            continue
        scale = UNITS[b.get("time_unit", "ns")]
        kind = b.get("aggregate_name") if b.get("run_type") == "aggregate" else "iteration"
        if kind == "median" or (kind == "iteration" and "median" not in row):
            row["seconds"] = b[metric] * scale
            row["counters"] = {k: v for k, v in b.items()
                               if k not in STANDARD_KEYS and isinstance(v, (int, float))}
            if kind == "median":
                row["median"] = True
        elif kind == "cv":
            row["cv"] = b[metric]
    return rows, context, metric


def floor_of(systems):
    for f in FLOORS:
        if "seconds" in systems.get(f, {}):
            return f
    return None


def markdown(head, lines):
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return out


def time_table(workload, systems):
    """The standard table: time, spread, ratio to the floor and to LibTorch."""
    floor = floor_of(systems)
    floor_s = systems[floor]["seconds"] if floor else None
    peer = systems.get(PEER, {}).get("seconds")
    scalar = workload.startswith("scalar_")
    has_per_op = any("per_op" in r.get("counters", {}) for r in systems.values())
    head = ["system", "time"] + (["per op"] if has_per_op else []) + ["spread (cv)"]
    head.append("gradient / function" if scalar else f"vs {floor or 'floor'}")
    if peer:
        head.append(f"vs {PEER}")
    lines = []
    for system in sorted(systems, key=lambda s: order_key(SYSTEM_ORDER, s)):
        r = systems[system]
        name = f"{system} (the function)" if scalar and system == floor else system
        if system == "cblas" and workload.startswith("mlp_"):
            name = "cblas (the step's products only: a bound)"
        if "error" in r:
            lines.append([name, "error: " + r["error"]] + [""] * (len(head) - 2))
            continue
        t = r.get("seconds")
        cells = [name, fmt_time(t)]
        if has_per_op:
            per_op = r.get("counters", {}).get("per_op")
            cells.append(fmt_time(per_op) if per_op is not None else "-")
        cells.append(f"{100 * r['cv']:.1f}%" if "cv" in r else "-")
        cells.append(fmt_ratio(t / floor_s if floor_s else None))
        if peer:
            cells.append(fmt_ratio(t / peer))
        lines.append(cells)
    return markdown(head, lines)


def row_gflops(r):
    """flops per iteration over the row's time (the table's metric); None without them."""
    flops = r.get("counters", {}).get("flops")
    return flops / r["seconds"] / 1e9 if flops and r.get("seconds") else None


def gflops(rows, variant, system):
    return row_gflops(rows.get("matmul", {}).get(variant, {}).get(system, {}))


def matmul_table(variants):
    """One line per case: each system's time and GFLOP/s, and chainrule's share of CBLAS's rate."""
    systems = sorted({s for v in variants.values() for s in v}, key=lambda s: order_key(SYSTEM_ORDER, s))
    head = ["case"]
    for s in systems:
        head += [f"{s} time", f"{s} GFLOP/s"]
    head.append("chainrule_tensor / cblas (GFLOP/s)")
    lines = []
    for variant, by_system in variants.items():
        cells = [variant]
        for s in systems:
            r = by_system.get(s, {})
            if "error" in r:
                cells += ["error: " + r["error"], ""]
            elif "seconds" in r:
                g = row_gflops(r)
                cells += [fmt_time(r["seconds"]), f"{g:.1f}" if g is not None else "-"]
            else:
                cells += ["-", "-"]
        a, b = row_gflops(by_system.get("chainrule_tensor", {})), row_gflops(by_system.get("cblas", {}))
        cells.append(f"{100 * a / b:.0f}%" if a and b else "-")
        lines.append(cells)
    return markdown(head, lines)


def memory_table(variants):
    """One line per measurement: its system and its counters."""
    lines = []
    for variant, by_system in variants.items():
        for system in sorted(by_system, key=lambda s: order_key(SYSTEM_ORDER, s)):
            r = by_system[system]
            if "error" in r:
                lines.append([variant, system, "error: " + r["error"]])
                continue
            counters = ", ".join(f"{k} = {fmt_number(v)}" for k, v in sorted(r.get("counters", {}).items()))
            lines.append([variant, system, counters])
    return markdown(["measurement", "system", "counters"], lines)


# The targets: (description, function of the rows returning (value text, met) or None).
def seconds(rows, workload, system, variant=""):
    return rows.get(workload, {}).get(variant, {}).get(system, {}).get("seconds")


def counter(rows, workload, system, variant, name):
    return rows.get(workload, {}).get(variant, {}).get(system, {}).get("counters", {}).get(name)


def ratio_target(workload, system, other, limit, text):
    def check(rows):
        a, b = seconds(rows, workload, system), seconds(rows, workload, other)
        if a is None or b is None:
            return None
        return f"{a / b:.3g}x", a / b <= limit
    return text, check


def mlp_target(workload, limit):
    """chainrule_tensor (the fused step) against libtorch, with the unfused step (backward, then
    step) and the bound beside it: the step's products alone (mlp_b*/cblas: the floor's eight
    products), a share of libtorch's step that a system issuing the same products to OpenBLAS
    cannot go below."""
    text, ratio = ratio_target(workload, "chainrule_tensor", "libtorch", limit,
                               f"{workload}: chainrule_tensor at most {limit}x libtorch")

    def check(rows):
        result = ratio(rows)
        products, peer = seconds(rows, workload, "cblas"), seconds(rows, workload, "libtorch")
        if result is None or products is None:
            return result
        value, met = result
        unfused = seconds(rows, workload, "chainrule_tensor_unfused")
        beside = f"unfused: {unfused / peer:.3g}x; " if unfused is not None else ""
        return f"{value} ({beside}products alone: {products / peer:.3g}x)", met
    return text, check


def per_op_target(workload, system, limit_seconds, text):
    def check(rows):
        v = counter(rows, workload, system, "", "per_op")
        if v is None:
            return None
        return fmt_time(v), v <= limit_seconds
    return text, check


def matmul_target(variant, share):
    def check(rows):
        a, b = gflops(rows, variant, "chainrule_tensor"), gflops(rows, variant, "cblas")
        if not a or not b:
            return None
        return f"{100 * a / b:.0f}% ({a:.1f} / {b:.1f} GFLOP/s)", a / b >= share
    return f"matmul {variant}: chainrule_tensor at least {100 * share:.0f}% of raw CBLAS", check


def counter_target(workload, system, variant, name, limit, text, unit=""):
    def check(rows):
        v = counter(rows, workload, system, variant, name)
        if v is None:
            return None
        return f"{fmt_number(v)}{unit}", abs(v) <= limit
    return text, check


TARGETS = [
    ratio_target("lecture", "chainrule_scalar", "handwritten", 3.0,
                 "lecture: chainrule_scalar within 3x of handwritten"),
    ratio_target("lecture", "chainrule_scalar", "sacado", 1.0,
                 "lecture: chainrule_scalar faster than sacado (ratio < 1)"),
    ratio_target("lecture", "chainrule_scalar", "libtorch", 1 / 40,
                 "lecture: chainrule_scalar more than 40x faster than libtorch (ratio <= 0.025)"),
    ratio_target("lecture", "chainrule_scalar_dot", "handwritten", 3.0,
                 "lecture: chainrule_scalar_dot (one dot node per neuron) within 3x of handwritten"),
    ratio_target("lecture", "chainrule_scalar_dot", "libtorch", 1 / 40,
                 "lecture: chainrule_scalar_dot more than 40x faster than libtorch (ratio <= 0.025)"),
    ratio_target("lecture", "chainrule_tensor", "libtorch", 0.1,
                 "lecture: chainrule_tensor at most 1/10 of libtorch"),
    per_op_target("tinyop", "chainrule_tensor", 100e-9, "tinyop: chainrule_tensor at most 100 ns per op"),
    mlp_target("mlp_b128", 0.8),
    mlp_target("mlp_b8", 0.5),
    mlp_target("mlp_b1", 0.5),
] + [matmul_target(f"{dtype}_n{n}_{p}", 0.9) for dtype in ("f32", "f64") for n in (256, 1024)
     for p in ("forward", "forward_backward")] + [
    ratio_target("scalar_sum", "chainrule_scalar", "handwritten", 3.0,
                 "scalar_sum: chainrule_scalar gradient / function at most 3x"),
    ratio_target("scalar_sum", "chainrule_scalar", "sacado", 1.0, "scalar_sum: chainrule_scalar below sacado"),
    ratio_target("scalar_sum", "chainrule_scalar", "adolc", 1.0, "scalar_sum: chainrule_scalar below adolc"),
    ratio_target("scalar_logsumexp", "chainrule_scalar", "handwritten", 2.0,
                 "scalar_logsumexp: chainrule_scalar gradient / function at most 2x"),
    ratio_target("scalar_logsumexp", "chainrule_scalar", "sacado", 1.0,
                 "scalar_logsumexp: chainrule_scalar below sacado"),
    ratio_target("scalar_logsumexp", "chainrule_scalar", "adolc", 1.0,
                 "scalar_logsumexp: chainrule_scalar below adolc"),
    ratio_target("scalar_sum", "chainrule_tensor", "handwritten", 3.0,
                 "scalar_sum: chainrule_tensor gradient / function at most 3x"),
    ratio_target("scalar_sum", "chainrule_tensor", "sacado", 1.0, "scalar_sum: chainrule_tensor below sacado"),
    ratio_target("scalar_logsumexp", "chainrule_tensor", "handwritten", 2.0,
                 "scalar_logsumexp: chainrule_tensor gradient / function at most 2x"),
    ratio_target("scalar_logsumexp", "chainrule_tensor", "sacado", 1.0,
                 "scalar_logsumexp: chainrule_tensor below sacado"),
    # 32.05: the tape adds a record or two per million ops beside the ops' own (its blocks).
    counter_target("memory", "chainrule_scalar", "binary_op", "tape_bytes_per_op", 32.05,
                   "memory: at most 32 bytes (tape) per recorded binary Scalar op", " B"),
    counter_target("memory", "chainrule_tensor", "mlp_b128_rss", "rss_growth_MiB", 1.0,
                   "memory: resident memory flat over 10,000 mlp_b128 steps (growth after step 1 <= 1 MiB)",
                   " MiB"),
]

# Not targets: what one record per op costs by itself (bare_tape, a bound with none of chainrule's
# safety; bench/bare_tape.h), what chainrule_scalar pays above it, and what one statement per
# assignment costs by itself (bare_statement, bench/bare_statement.h: expression templates).
def bound_ratio(workload, system, other, text):
    def check(rows):
        a, b = seconds(rows, workload, system), seconds(rows, workload, other)
        return fmt_ratio(a / b) if a and b else None
    return text, check


BOUNDS = [bound_ratio(w, s, o, f"{w}: {s} / {o}") for w in ("lecture", "scalar_sum", "scalar_logsumexp")
          for s, o in (("bare_tape", "handwritten"), ("chainrule_scalar", "bare_tape"),
                       ("bare_statement", "handwritten"))]


def across_runs(paths, metric):
    """One line per target: its value in each JSON and in how many it was met. On a noisy machine a
    verdict near its threshold flips between runs; this shows which ones do."""
    runs = []
    for path in paths:
        rows, context, _ = load(path, metric)
        runs.append((f"{path} ({context.get('threads', '?')} thr)", rows))
    head = ["target"] + [name for name, _ in runs] + ["met in"]
    lines = []
    for text, check in TARGETS:
        results = [check(rows) for _, rows in runs]
        measured = [r for r in results if r is not None]
        met = sum(1 for r in measured if r[1])
        cells = [text] + [f"{r[0]}{'' if r[1] else ' (missed)'}" if r else "-" for r in results]
        lines.append(cells + [f"{met} of {len(measured)}" if measured else "-"])
    print("\n".join(markdown(head, lines)))
    print("\nBounds (not targets):\n")
    lines = [[text] + [check(rows) or "-" for _, rows in runs] for text, check in BOUNDS]
    print("\n".join(markdown(["ratio"] + [name for name, _ in runs], lines)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", nargs="+", help="one JSON: its tables and verdicts; several: each target across them")
    parser.add_argument("--metric", choices=["auto", "cpu_time", "real_time"], default="auto")
    args = parser.parse_args()
    if len(args.json) > 1:
        across_runs(args.json, args.metric)
        return
    rows, context, metric = load(args.json[0], args.metric)
    if not rows:
        sys.exit(f"ratios.py: no benchmarks in {args.json[0]}")

    reps = "median of the repetitions" if any(r.get("median") for w in rows.values() for v in w.values()
                                               for r in v.values()) else "single run"
    threads = context.get("threads", "?")
    print(f"{threads} thread(s). Times are {reps}, {metric.replace('_', ' ')}; lower is better.\n")
    for workload in sorted(rows, key=lambda w: order_key(WORKLOAD_ORDER, w)):
        print(f"**{workload}**: {WHAT.get(workload, '')}\n")
        variants = rows[workload]
        if workload == "matmul":
            print("\n".join(matmul_table(variants)))
        elif workload == "memory":
            print("\n".join(memory_table(variants)))
        else:
            for variant, systems in variants.items():
                if variant:
                    print(f"*{variant}*\n")
                print("\n".join(time_table(workload, systems)))
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

    print(f"Targets (issue 2 / issue 5), {threads} thread(s):\n")
    for text, check in TARGETS:
        result = check(rows)
        if result is None:
            print(f"- {text}: not measured")
        else:
            value, met = result
            print(f"- {text}: {value}, **{'met' if met else 'MISSED'}**")
    print(f"\nBounds (not targets; bare_tape is one record per op and nothing else, bare_statement one statement per assignment), {threads} thread(s):\n")
    for text, check in BOUNDS:
        print(f"- {text}: {check(rows) or 'not measured'}")


if __name__ == "__main__":
    main()
