"""Run every cleanjoin benchmark and write ``benchmarks/RESULTS.md`` plus PNG plots.

    ./run bench                 # full sizes (tens of minutes on 2 cores)
    ./run bench --quick         # small sizes, to check the machinery

Every figure is a ratio against a baseline measured in the same run, on the same data.
The file is produced by this command, never written by hand.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import bench_audit, bench_dp, bench_flow, bench_guard, bench_tokenize
from benchmarks._common import HERE, bar_plot, line_plot, machine

SIZES = {
    "full": {"tokenize": 2_000_000, "guard": 2_000_000, "dp": [1_000_000, 5_000_000],
             "audit": 100_000, "scaling": [1_000_000, 10_000_000], "connect": 1_000_000,
             "flow": [300_000, 3_000_000]},
    "quick": {"tokenize": 100_000, "guard": 100_000, "dp": [50_000], "audit": 5_000,
              "scaling": [50_000, 200_000], "connect": 50_000, "flow": [50_000]},
}
FLOW_GOAL, FLOW_DP_GOAL = 1.5, 2.5  # issue 22: × the bare notebook flow on the same rows


def _seconds(results: list[dict[str, Any]], variant: str, rows: int | None = None) -> float:
    for r in results:
        if r["variant"] == variant and (rows is None or r["rows"] == rows):
            return float(r["seconds"])
    raise KeyError(variant)


def _table(results: list[dict[str, Any]], baseline: str) -> list[str]:
    lines = ["| variant | rows | seconds | × baseline |", "|---|---:|---:|---:|"]
    for r in results:
        base = _seconds(results, baseline, r["rows"])
        lines.append(f"| {r['variant']} | {r['rows']:,} | {r['seconds']:.2f} | "
                     f"{r['seconds'] / base:.2f} |")
    lines.append(f"\nBaseline: `{baseline}` (× baseline = seconds / baseline seconds).")
    return lines


def _goal(ok: bool, text: str) -> str:
    return f"- {'✅ met' if ok else '❌ not met'}: {text}"


def _sections(text: str) -> list[tuple[str, list[str]]]:
    """Markdown split at its ``## `` headings: (heading or "" for the preamble, lines)."""
    out: list[tuple[str, list[str]]] = [("", [])]
    for line in text.splitlines():
        if line.startswith("## "):
            out.append((line, []))
        out[-1][1].append(line)
    return out


def merged(old: str, new: list[str]) -> list[str]:
    """``old`` RESULTS.md with the sections of ``new`` put in place (same heading) or
    appended; the preamble and the closing line are ``new``'s."""
    fresh = _sections("\n".join(new))
    by_heading = {h: lines for h, lines in fresh if h}
    lines: list[str] = list(fresh[0][1])
    earlier = next((ln for ln in old.splitlines() if ln.startswith("Produced by")), None)
    if earlier is not None:
        kept = ", ".join(h[3:] for h, _ in _sections(old)[1:] if h not in by_heading)
        lines += [f"Only the sections it measured come from this run; the others ({kept}) are "
                  f"kept from the earlier run: {earlier}", ""]
    for heading, body in _sections(old)[1:]:
        if heading in by_heading:
            lines += by_heading.pop(heading)
        else:
            lines += [ln for ln in body if not ln.startswith("Total benchmark wall time")]
    for heading, body in fresh[1:]:
        if heading in by_heading:
            lines += body
    return lines


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median threshold-flow ratio (the lower middle one of an even count),
    with every run's ratios under ``"runs"``."""
    ordered = sorted(runs, key=lambda f: f["ratios"]["threshold_flow"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["runs"] = [f["ratios"] for f in runs]
    return chosen


def _flow_section(flows: list[dict[str, Any]]) -> list[str]:
    """The cleanjoin-vs-bare-notebook section: one ratio table per size, the goals, and the
    profile of each run when it was taken."""
    md = ["## The flow as users feel it: cleanjoin vs the bare notebook flow", "",
          "Same provider and consumer rows (generated once, stored as Parquet) for both flows, "
          "in one fresh process per size. The bare notebook flow: `sha2` tokens → Delta; join, "
          "group-by, `record_count >= 100`, Delta write; it runs before and after the "
          "cleanjoin flow and its mean is the baseline. The cleanjoin threshold flow: both "
          "sides tokenized with audit (`write_tokens`), the guarded run under the policy, "
          "the contract review, the Delta write and their audit entries.", ""]
    for f in flows:
        md += [bench_flow.ratio_table(f), ""]
        r = f["ratios"]
        runs = f.get("runs") or []
        if len(runs) > 1:
            md += [f"{len(runs)} fresh processes at {f['rows']:,} rows; the table is the run of "
                   "median threshold-flow ratio (of an even count, the lower middle one). Each run's paired ratios (its cleanjoin flow ÷ "
                   "its own bare notebook flow), threshold / with DP: "
                   + ", ".join(f"{x['threshold_flow']:.2f}× / {x['threshold_flow_with_dp']:.2f}×"
                               for x in runs) + ".", ""]
        md += [_goal(r["threshold_flow"] <= FLOW_GOAL,
                     f"whole threshold flow ≤ {FLOW_GOAL}× the bare notebook at {f['rows']:,} "
                     f"rows: {r['threshold_flow']:.2f}×"),
               _goal(r["threshold_flow_with_dp"] <= FLOW_DP_GOAL,
                     f"with the DP release and the ledger ≤ {FLOW_DP_GOAL}× at {f['rows']:,} "
                     f"rows: {r['threshold_flow_with_dp']:.2f}×"), ""]
        if "profile_table" in f:
            md += [f"Profile of the cleanjoin flow at {f['rows']:,} rows (`--profile`):", "",
                   f["profile_table"], ""]
    return md


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (machinery check)")
    parser.add_argument("--only", default="tokenize,guard,dp,audit,scaling,connect,flow",
                        help="comma-separated sections to run")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--rows", type=int, help="rows for tokenize and guard")
    parser.add_argument("--dp-rows", help="comma-separated provider rows for the DP benchmark")
    parser.add_argument("--scaling-rows", help="comma-separated provider rows (small,large)")
    parser.add_argument("--connect-rows", type=int, help="provider rows for classic vs Connect")
    parser.add_argument("--flow-rows",
                        help="comma-separated provider rows for cleanjoin vs the bare notebook")
    parser.add_argument("--flow-repeat", type=int, default=1,
                        help="fresh processes per size for cleanjoin vs the bare notebook "
                             "(the median run is reported, every run's ratios listed)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the sections of the existing results file that this run "
                             "does not measure")
    parser.add_argument("--profile", action="store_true",
                        help="profile the full-flow runs: each step's wall time and Spark jobs")
    args = parser.parse_args(argv)
    sizes = dict(SIZES["quick" if args.quick else "full"])
    if args.rows:
        sizes["tokenize"] = sizes["guard"] = args.rows
    if args.dp_rows:
        sizes["dp"] = [int(x) for x in args.dp_rows.split(",")]
    if args.scaling_rows:
        sizes["scaling"] = [int(x) for x in args.scaling_rows.split(",")]
    if args.connect_rows:
        sizes["connect"] = args.connect_rows
    if args.flow_rows:
        sizes["flow"] = [int(x) for x in args.flow_rows.split(",")]
    only = set(args.only.split(","))
    out = Path(args.out)
    plots = out.parent / "plots"
    info = machine()
    load_start = os.getloadavg()[0]
    print("machine:", ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    command = "./run bench " + " ".join(argv if argv is not None else sys.argv[1:])
    started = time.perf_counter()
    md: list[str] = [
        "# cleanjoin benchmark results",
        "",
        f"Produced by `{command}` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC "
        "(do not edit by hand).",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()) + ". Spark `local[2]`.",
        "Each variant runs once, timed, after an untimed warm-up run (tokenize, guard: every "
        "variant on the same input; DP: on the same input up to 1M rows; audit: small; the flow "
        "runs cold, in a fresh process per size), except the guarded query: median of 5 "
        "interleaved timed rounds after the warm-up, every round shown; "
        "outputs are forced with the `noop` sink or materialized.",
        "",
    ]

    spark = None
    if only & {"tokenize", "guard", "dp"}:
        from cleanjoin.session import local_spark

        spark = local_spark(app_name="cleanjoin-bench")

    if "tokenize" in only:
        print(f"[bench] tokenize, {sizes['tokenize']:,} PANs", flush=True)
        res = bench_tokenize.run(spark, rows=sizes["tokenize"])
        tok = _seconds(res, "cleanjoin_tokenize")
        udf = _seconds(res, "python_udf_same_spec")
        sha = _seconds(res, "raw_sha2")
        md += ["## Tokenize (1% of PANs carry non-ASCII dirt)", "", *_table(res, "raw_sha2"), "",
               _goal(udf / tok >= 3.0, f"issue 3: ≥ 3× faster than the same-spec Python UDF: "
                     f"{udf / tok:.2f}×"),
               _goal(tok / sha <= 4.0, f"issue 3: ≤ 4× raw sha2: {tok / sha:.2f}×"),
               _goal(udf / tok >= 2.5, f"issue 8: ≥ 2.5× faster than the same-spec Python UDF: "
                     f"{udf / tok:.2f}×"),
               _goal(tok / sha <= 3.0, f"issue 8: ≤ 3× raw sha2: {tok / sha:.2f}×"), "",
               "![tokenize](plots/tokenize.png)", ""]
        bar_plot(plots / "tokenize.png", f"Tokenize {sizes['tokenize']:,} PANs (× raw sha2)",
                 [r["variant"] for r in res], [r["seconds"] / sha for r in res], "× raw sha2")

    if "guard" in only:
        print(f"[bench] guarded query, {sizes['guard']:,} provider rows", flush=True)
        res = bench_guard.run(spark, rows=sizes["guard"])
        hand = _seconds(res, "hand_written_correct")
        ratio = _seconds(res, "guarded") / hand
        guarded = next(r for r in res if r["variant"] == "guarded")
        rounds = "; ".join(f"{r['variant']} {', '.join(f'{t:.2f}' for t in r['runs'])}"
                           for r in res)
        per_round = ", ".join(f"{x:.2f}" for x in guarded["x_hand_written_rounds"])
        md += ["## Guarded join and aggregate", "", *_table(res, "hand_written_correct"), "",
               f"Seconds are medians of {len(res[0]['runs'])} interleaved timed rounds "
               f"(each round: every variant once). Rounds (s): {rounds}.", "",
               f"Guarded ÷ hand-written within each round: {per_round} (median "
               f"{guarded['x_hand_written_paired']:.2f}×).", "",
               _goal(ratio <= 1.3, f"guarded ≤ 1.3× the hand-written correct query: "
                     f"{ratio:.2f}× (ratio of the medians; median of the per-round ratios "
                     f"{guarded['x_hand_written_paired']:.2f}×)"), "",
               "![guard](plots/guard.png)", ""]
        bar_plot(plots / "guard.png", f"Guarded query, {sizes['guard']:,} rows (× hand-written)",
                 [r["variant"] for r in res], [r["seconds"] / hand for r in res], "× hand-written")

    if "dp" in only:
        res_all: list[dict[str, Any]] = []
        for rows in sizes["dp"]:
            print(f"[bench] DP aggregate, {rows:,} provider rows", flush=True)
            res_all += bench_dp.run(spark, rows=rows)
        md += ["## Differentially private aggregate", "", *_table(res_all, "cleanjoin_dp"), ""]
        for rows in sizes["dp"]:
            speed = _seconds(res_all, "pipeline_dp_rdd", rows) / _seconds(res_all, "cleanjoin_dp",
                                                                          rows)
            md.append(_goal(speed >= 8, f"≥ 8× faster than pipeline_dp on SparkRDDBackend at "
                            f"{rows:,} rows: {speed:.2f}×"))
        md += ["", "![dp](plots/dp.png)", ""]
        first = sizes["dp"][0]
        sub = [r for r in res_all if r["rows"] == first]
        base = _seconds(sub, "cleanjoin_dp")
        bar_plot(plots / "dp.png", f"DP aggregate, {first:,} rows (× cleanjoin DP)",
                 [r["variant"] for r in sub], [r["seconds"] / base for r in sub], "× cleanjoin DP")

    if spark is not None:
        spark.stop()

    if "audit" in only:
        print(f"[bench] audit verification, {sizes['audit']:,} entries", flush=True)
        res = bench_audit.run(None, rows=sizes["audit"])
        md += ["## Audit log: offline verification (standard library only)", "",
               *_table(res, "baseline_parse"), "",
               f"- `cleanjoin audit verify` of {sizes['audit']:,} entries: "
               f"{_seconds(res, 'verify_file'):.1f} s", ""]

    flows: dict[str, dict[str, Any]] = {}
    if "scaling" in only:
        for rows in sizes["scaling"]:
            print(f"[bench] full flow (classic, fresh process), {rows:,} provider rows", flush=True)
            flows[f"classic-{rows}"] = bench_flow.measure(rows, connect=False,
                                                          profile=args.profile)
            if args.profile:
                print(flows[f"classic-{rows}"]["profile_table"], flush=True)
        small, big = sizes["scaling"][0], sizes["scaling"][-1]
        t_small = flows[f"classic-{small}"]["seconds"]
        t_big = flows[f"classic-{big}"]["seconds"]
        md += ["## Scaling: the full flow (`cleanjoin.demo.run_flow`), classic", "",
               "| provider rows | seconds | JVM peak RSS (MiB) | Python peak RSS (MiB) |",
               "|---:|---:|---:|---:|"]
        for rows in sizes["scaling"]:
            f = flows[f"classic-{rows}"]
            md.append(f"| {rows:,} | {f['seconds']:.1f} | {f['jvm_peak_mib']:.0f} | "
                      f"{f['python_peak_mib']:.0f} |")
        data_x, time_x = big / small, t_big / t_small
        md += ["", _goal(time_x <= 1.1 * data_x, f"{data_x:.0f}× data in ≤ {1.1 * data_x:.0f}× "
                         f"time: {time_x:.2f}×"), "", "![scaling](plots/scaling.png)", ""]
        line_plot(plots / "scaling.png", "Full flow: seconds vs provider rows",
                  [float(r) for r in sizes["scaling"]],
                  {"classic": [flows[f"classic-{r}"]["seconds"] for r in sizes["scaling"]]},
                  "provider rows", "seconds")
        if args.profile:
            for rows in sizes["scaling"]:
                md += [f"Profile of the flow at {rows:,} rows (`--profile`):", "",
                       flows[f"classic-{rows}"]["profile_table"], ""]

    if "connect" in only:
        rows = sizes["connect"]
        print(f"[bench] full flow classic vs Spark Connect, {rows:,} rows", flush=True)
        classic = flows.get(f"classic-{rows}") or bench_flow.measure(rows, connect=False)
        connect = bench_flow.measure(rows, connect=True)
        md += ["## Classic vs Spark Connect: the full flow", "",
               "| mode | provider rows | seconds | × classic |", "|---|---:|---:|---:|",
               f"| classic | {rows:,} | {classic['seconds']:.1f} | 1.00 |",
               f"| Spark Connect | {rows:,} | {connect['seconds']:.1f} | "
               f"{connect['seconds'] / classic['seconds']:.2f} |", "",
               "Step times (s), classic / Connect:", ""]
        for step, secs in classic["steps"].items():
            md.append(f"- {step}: {secs:.1f} / {connect['steps'].get(step, float('nan')):.1f}")
        md += ["", "![connect](plots/connect.png)", ""]
        bar_plot(plots / "connect.png", f"Full flow, {rows:,} rows", ["classic", "Spark Connect"],
                 [classic["seconds"], connect["seconds"]], "seconds")

    if "flow" in only:
        runs = []
        for rows in sizes["flow"]:
            print(f"[bench] cleanjoin vs the bare notebook flow, {rows:,} rows", flush=True)
            measured = [flows[f"classic-{rows}"]] if f"classic-{rows}" in flows else []
            while len(measured) < max(args.flow_repeat, 1):
                measured.append(bench_flow.measure(rows, connect=False, profile=args.profile))
                print(bench_flow.ratio_table(measured[-1]), flush=True)
            f = median_run(measured)
            print(bench_flow.ratio_table(f), flush=True)
            if args.profile:
                print(f["profile_table"], flush=True)
            runs.append(f)
        md += _flow_section(runs)

    md.append(f"Total benchmark wall time: {time.perf_counter() - started:.0f} s. Load average "
              f"(1 min) at start / end: {load_start:.1f} / {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} cores (above the core count, other work shared the machine).")
    if args.merge and out.exists():
        md = merged(out.read_text(encoding="utf-8"), md)
    out.write_text("\n".join(md) + "\n", encoding="utf-8")
    print(f"[bench] wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
