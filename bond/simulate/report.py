"""The `bond simulate` report: tables for people, one JSON object with --json."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson


def print_report(
    report: dict[str, Any],
    *,
    as_json: bool,
    table: Callable[[dict[str, Any]], list[str]] | None = None,
) -> None:
    """One JSON object, or the tables: the households canary's unless `table` gives others."""
    if as_json:
        print(orjson.dumps(report, option=orjson.OPT_SERIALIZE_NUMPY).decode())
        return
    for line in (table or lines)(report):
        print(line)


def lines(report: dict[str, Any]) -> list[str]:
    q = report["quality"]
    out = [
        f"households {report['households']}  sessions {report['sessions']}  "
        f"conversions {report['conversions']}  difficulty {report['difficulty']}  "
        f"seed {report['seed']}",
    ]
    if "ingest" in report:
        ingest, stitch = report["ingest"], report["stitch_latency_ms"]
        out += [
            f"ingest: {report['events']} events, {ingest['events_per_s']} events/s, "
            f"batch of 500 p50 {ingest['batch_p50_ms']} ms p99 {ingest['batch_p99_ms']} ms",
            f"stitch (identify batch acked -> applied by the worker): p50 {stitch['p50_ms']} ms "
            f"p99 {stitch['p99_ms']} ms over {stitch['batches']} batches; worker caught up "
            f"{report['worker_catch_up_s']} s after the last batch; total {report['total_s']} s",
            f"worker: {report['worker_cpu_s']} CPU-seconds, "
            f"{report['worker_events_per_cpu_s']} events per CPU-second",
        ]
    if "model_update_ms" in report:
        u = report["model_update_ms"]
        out.append(
            f"model update per session: p50 {u['p50']} ms p99 {u['p99']} ms; refits "
            f"{u['refits']} (mean {u['refit_mean']} ms, p99 {u['refit_p99']} ms); household "
            f"processor {report['hook_us_per_event']} us of CPU per event, refits included"
        )
    out += ["", f"attribution of conversions after the time split ({q['conversions_scored']}):"]
    out.append(
        "| households | n | accuracy | most-active baseline | random | macro-F1 | ARI | ECE "
        "| Brier | members exact |"
    )
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    counts = q["member_count"].get("by_size", {})
    rows = [("all", q["overall"], q["ari"].get("overall"), q["member_count"].get("exact"))]
    rows += [
        (f"size {size}", stats, q["ari"].get(size), counts.get(size, {}).get("exact"))
        for size, stats in q["by_size"].items()
    ]
    for name, s, ari, exact in rows:
        if not s.get("n"):
            continue
        out.append(
            f"| {name} | {s['n']} | {percent(s['accuracy'])} | {percent(s['baseline_accuracy'])} "
            f"| {percent(s['random_accuracy'])} | {s['macro_f1']:.3f} | {_num(ari)} "
            f"| {s['ece']:.3f} | {s['brier']:.3f} | {percent(exact)} |"
        )
    out += ["", "reliability (confidence of the chosen member):"]
    out.append("| confidence | n | mean confidence | accuracy |")
    out.append("| --- | --- | --- | --- |")
    out += [
        f"| {r['bin']} | {r['n']} | {r['mean_confidence']:.3f} | {r['accuracy']:.3f} |"
        for r in q["reliability"]
    ]
    out += ["", "cold start (all conversions, by the account's sessions seen before it):"]
    out.append("| sessions seen | n | accuracy |")
    out.append("| --- | --- | --- |")
    out += [
        f"| {c['sessions_seen']} | {c['n']} | {percent(c['accuracy'])} |" for c in q["cold_start"]
    ]
    d = q["drift"]
    settled = d["after_settled_account"]
    out += [
        "",
        f"household changes detected within 3 weeks: joins {d['joins']['detected']}/"
        f"{d['joins']['changes']} (median delay {d['joins']['median_delay_days']} days), leaves "
        f"{d['leaves']['detected']}/{d['leaves']['changes']} (median delay "
        f"{d['leaves']['median_delay_days']} days); false alarms {d['false_alarms']} "
        f"({d['false_alarms_per_household_month']} per household-month)",
        f"of them after the account's first {settled['sessions_before']} sessions: joins "
        f"{settled['joins']['detected']}/{settled['joins']['changes']}, leaves "
        f"{settled['leaves']['detected']}/{settled['leaves']['changes']}",
        f"member count: mean abs error {q['member_count'].get('mean_abs_error')}, signed "
        f"{q['member_count'].get('mean_signed_error')}",
    ]
    return out


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
