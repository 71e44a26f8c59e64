"""Run every benchmark in one go, print one summary table, write ``bench/results/summary.json``.

    python -m bench [--quick]

Each part also prints its own table as it finishes. ``--quick`` shrinks every part (fewer runs,
lower concurrency) to check that the suite works; its figures are not the ones to quote.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from bench import (
    RESULTS,
    approval_latency,
    caching,
    fanout,
    fanout_workers,
    history_growth,
    pattern_fanout,
    resume,
    throughput,
    tracing,
)


async def main(quick: bool) -> dict[str, Any]:
    started = time.perf_counter()
    levels = [1, 20] if quick else [1, 50, 200, 1000]
    summary: dict[str, Any] = {}
    summary["throughput"] = await throughput.main(
        steps=5 if quick else 10, levels=levels, rounds=1 if quick else 2
    )
    summary["fanout"] = await fanout.main(agents=100 if quick else 1_000, steps=3, latency=1.0)
    summary["fanout_workers"] = await fanout_workers.main(
        agents=100 if quick else 500, steps=3, latency=1.0, counts=[1, 2] if quick else [1, 2, 4]
    )
    summary["pattern_fanout"] = await pattern_fanout.main(
        rounds=1 if quick else 3, latency=0.5, wide=20 if quick else 100
    )
    summary["history_growth"] = await history_growth.main(steps=10 if quick else 20)
    summary["resume"] = await resume.main([10] if quick else [10, 100, 1000])
    summary["approval_latency"] = await approval_latency.main(runs=6 if quick else 20)
    summary["caching"] = await caching.main(steps=10 if quick else 50)
    summary["tracing"] = await tracing.main(
        steps=10 if quick else 20, levels=[1, 20], rounds=1 if quick else 3
    )

    print("\n=== summary " + "=" * 66)
    table = summary["throughput"]
    print("per-step time and throughput (ratio: AgentWorkflow / bare Temporal, same run)")
    print(
        f"{'runs at once':>14}{'agent ms/step':>15}{'bare ms/step':>14}{'latency':>9}"
        f"{'agent steps/s':>15}{'bare steps/s':>14}{'thruput':>9}{'LangGraph/s':>13}"
    )
    for level in levels:
        agent, bare = table["AgentWorkflow"][level], table["bare Temporal"][level]
        ratios = table["AgentWorkflow vs bare"][level]
        langgraph = table.get("LangGraph+SQLite", {}).get(level, {}).get("steps_per_s")
        print(
            f"{level:>14}{agent['ms_per_step']:>15.1f}{bare['ms_per_step']:>14.1f}"
            f"{ratios['latency_ratio']:>8.2f}x{agent['steps_per_s']:>15.1f}"
            f"{bare['steps_per_s']:>14.1f}{ratios['throughput_ratio']:>8.2f}x"
            f"{langgraph if langgraph is not None else float('nan'):>13.1f}"
        )
    print("\n".join(table["side_by_side"]))
    print("  " + "\n  ".join(table["differences"]))
    f = summary["fanout"]
    print(
        f"{f['agents']} agents, {f['steps']} model calls of {f['model_latency_s']} s: "
        f"wall {f['wall_s']:.1f} s vs ideal {f['ideal_s']:.1f} s ({f['wall_over_ideal']:.2f}x)"
    )
    w = summary["fanout_workers"]
    print(
        f"{w['agents']} agents on worker processes, wall (x ideal) and heartbeat timeouts: "
        + ", ".join(
            f"{c['workers']} workers {c['wall_s']:.1f} s ({c['wall_over_ideal']:.2f}x) "
            f"{c['heartbeat_timeouts']} hb"
            for c in w["by_workers"]
        )
    )
    p = summary["pattern_fanout"]
    print(
        f"ParallelAgentsWorkflow: 4 branches {p['four_branches_s']:.2f} s vs slowest alone "
        f"{p['slowest_alone_s']:.2f} s ({p['four_over_alone']:.2f}x); {p['wide_branches']} "
        f"branches {p['wide_s']:.2f} s ({p['wide_over_alone']:.2f}x)"
    )
    growth = summary["history_growth"]
    print(
        "history bytes/step, 1k -> 200k-token conversation: offload "
        + " -> ".join(f"{v:.0f}" for v in growth["offload"].values())
        + "; no offload "
        + " -> ".join(f"{v:.0f}" for v in growth["no offload"].values())
    )
    print(
        "resume after kill -9: "
        + ", ".join(f"{n} steps done {s:.1f} s" for n, s in summary["resume"].items())
    )
    print(
        "approval latency (decision -> tool start, median ms): "
        + ", ".join(f"{k} {v['median_ms']:.1f}" for k, v in summary["approval_latency"].items())
    )
    c = summary["caching"]
    on = c["settings"]["conversation"]["mean_usd_per_step"]
    print(
        f"billed input cost per step over {c['steps']} steps, Anthropic caching off / on: "
        f"${c['settings']['off']['mean_usd_per_step']:.4f} / ${on:.4f} "
        f"({c['ratio_off_over']['conversation']:.2f}x)"
    )
    t = summary["tracing"]["levels"]
    print(
        "tracing on / off, ms per step: "
        + ", ".join(
            f"{n} at once {row['on']['ms_per_step']:.1f} / {row['off']['ms_per_step']:.1f} "
            f"({row['latency_ratio']:.2f}x)"
            for n, row in t.items()
        )
        + f"; {t[1]['spans_per_run']:.0f} spans a run"
    )
    print(f"total bench time {time.perf_counter() - started:.0f} s")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
