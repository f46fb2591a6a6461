/**
 * `npm run scale`: replays the per-task load `npm run bench` recorded (bench/results/profile.json) at a
 * target rate with a realistic mix, against AWS's published limits (bench/scale-model.ts). Prints the
 * hottest keys and resources and writes bench/results/scale.json. See README, "Scale".
 *
 * Knobs (environment): SCALE_TASKS_PER_SECOND (default 1000), SCALE_SECONDS (measured, default 60).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { API_THROTTLE_DEFAULT } from "../core/config.ts";
import { PRICES } from "./prices.ts";
import { DEFAULT_MIX, type LoadProfile, simulate } from "./scale-model.ts";

const ROOT = resolve(import.meta.dirname, "..");
const read = <T>(file: string): T =>
  JSON.parse(readFileSync(resolve(ROOT, "bench/results", file), "utf8")) as T;
const profile = read<LoadProfile>("profile.json");
const bench = read<{ usd_per_million_tasks: number; pricing: { lambda_billed_ms: number } }>("latest.json");
const rate = Number(process.env.SCALE_TASKS_PER_SECOND ?? 1000);
const apiThrottleRps = API_THROTTLE_DEFAULT.rate_per_second;

const started = performance.now();
const result = simulate(profile, rate, {
  measureSeconds: Number(process.env.SCALE_SECONDS ?? 60),
  lambdaMs: bench.pricing.lambda_billed_ms,
  apiThrottleRps,
});

// A heartbeat's price: its write units and its queue request (the visibility extension).
const beat = profile.heartbeat;
const beatWru = beat.reduce((n, r) => n + Object.values(r.write_units).reduce((a, b) => a + b, 0), 0);
const beatSqs = beat.filter((r) => r.request.includes(" SQS ")).reduce((n, r) => n + r.per_task, 0);
const beatUsdPerMillion =
  beatWru * PRICES.dynamodb.usd_per_million_wru + beatSqs * PRICES.sqsFifo.usd_per_million_requests;
const usd = bench.usd_per_million_tasks + result.heartbeats_per_task * beatUsdPerMillion;

const out = {
  ...result,
  usd_per_million_tasks: Math.round(usd * 100) / 100,
  usd_per_million_tasks_note:
    `the benchmark's plain task ($${bench.usd_per_million_tasks}) plus ${result.heartbeats_per_task} heartbeats ` +
    `of ${Math.round(beatWru * 10) / 10} WRU and ${beatSqs} SQS request each (run times ${DEFAULT_MIX.runSeconds.join("–")} s, log-uniform)`,
  profile_date: profile.date,
};
writeFileSync(resolve(ROOT, "bench/results/scale.json"), `${JSON.stringify(out, null, 2)}\n`);

console.log(`\nSwitchyard at ${rate} tasks/s (${result.simulated_seconds} simulated seconds)\n`);
console.log(`  max_partition_utilization  ${out.max_partition_utilization}`);
console.log(
  `  usd_per_million_tasks      ${out.usd_per_million_tasks} (with ${result.heartbeats_per_task} heartbeats a task)\n`,
);
console.log("  hottest keys and resources (busiest second / limit):");
for (const h of out.hottest)
  console.log(`  ${h.utilization.toFixed(3).padStart(7)}  ${h.kind.padEnd(28)} ${h.key}`);
console.log(`\n  wrote bench/results/scale.json in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
