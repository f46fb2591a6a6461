/**
 * The pools' runtime configuration: what a reload may change without a deploy, applied to every process.
 *
 * The deployed config (the file at deploy time) declares the pools; their queues and services are
 * infrastructure. POST /v2/reload reads the config again (its source: the file locally, an SSM parameter
 * on AWS), validates it as at start-up, refuses it if it changes anything but runtime fields ("needs
 * deploy"), and stores it in the table, one versioned item. Every process looks at that item now and then
 * (refreshConfig) and takes it as its config. A deploy whose config differs from the one a reload was made
 * against makes that reload void: the deployed file wins until the next reload.
 */
import { createHash } from "node:crypto";
import { type Principal, requireScope } from "./auth.ts";
import { capacityWarnings, type SchedulerConfig, schedulerConfigOf } from "./config.ts";
import type { Deps } from "./deps.ts";
import { ConflictError } from "./errors.ts";
import { canonicalJson } from "./identifiers.ts";
import { CommitConflict } from "./ports.ts";

/** A configuration a reload applied. */
export interface AppliedConfig {
  /** 1 for the first reload, then one more each. */
  version: number;
  /** The deployed config it was made against (deployedHash): another deploy voids it. */
  base: string;
  config: SchedulerConfig;
  applied_at: string;
}

/** How often a process looks for a reload: each takes a reload within this, well under a minute. */
export const CONFIG_REFRESH_SECONDS = 30;

/**
 * The fields of a pool a reload may change, and the top-level ones; anything else (a pool's name, tool,
 * account, lease, workers; the API's throttle) is infrastructure, changed by a deploy.
 */
const RUNTIME_POOL_FIELDS = [
  "max_concurrency",
  "retry",
  "allow_dangerous_flags",
  "allow_overage",
  "resume",
  "budget",
  "policy",
  "sla",
  "aging_seconds",
];
const RUNTIME_FIELDS = ["concurrency_limits"];

/** A config as paths to values, its pools by name: `pools.main.retry.base_seconds` → 30. */
function flatten(value: unknown, path: string, into: Map<string, string>): Map<string, string> {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) flatten(inner, path ? `${path}.${key}` : key, into);
  } else into.set(path, JSON.stringify(value));
  return into;
}
const pathsOf = (config: SchedulerConfig) =>
  flatten({ ...config, pools: Object.fromEntries(config.pools.map((p) => [p.name, p])) }, "", new Map());

const isRuntime = (path: string) => {
  const [top, , field] = path.split(".");
  return top === "pools"
    ? RUNTIME_POOL_FIELDS.includes(field as string)
    : RUNTIME_FIELDS.includes(top as string);
};

/** What changes from one config to another, as `path: before → after`, runtime and infrastructure apart. */
export function configChanges(from: SchedulerConfig, to: SchedulerConfig) {
  const [before, after] = [pathsOf(from), pathsOf(to)];
  const names = (c: SchedulerConfig) => new Set(c.pools.map((p) => p.name));
  const [had, has] = [names(from), names(to)];
  const infrastructure = [
    ...[...has].filter((n) => !had.has(n)).map((n) => `pool ${n} is new: its queue and workers do not exist`),
    ...[...had].filter((n) => !has.has(n)).map((n) => `pool ${n} is removed: its queue and workers remain`),
  ];
  const runtime: string[] = [];
  for (const path of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const [a, b] = [before.get(path), after.get(path)];
    const pool = path.startsWith("pools.") ? path.split(".")[1] : undefined;
    if (a === b || (pool !== undefined && !(had.has(pool) && has.has(pool)))) continue;
    const change = `${path}: ${a ?? "(none)"} → ${b ?? "(none)"}`;
    (isRuntime(path) ? runtime : infrastructure).push(change);
  }
  return { runtime, infrastructure };
}

/** A fingerprint of a config: the same config, the same hash. */
const hashOf = (config: SchedulerConfig) =>
  createHash("sha256").update(canonicalJson(config)).digest("hex").slice(0, 32);

/** Per deps (a process's): the config it was deployed with, and the reload it runs. */
const live = new WeakMap<object, { deployed: SchedulerConfig; version: number; checkedAt: number }>();
const liveOf = (deps: Pick<Deps, "config">) => {
  let state = live.get(deps);
  if (!state) {
    state = { deployed: deps.config, version: 0, checkedAt: Number.NEGATIVE_INFINITY };
    live.set(deps, state);
  }
  return state;
};

/**
 * Takes the configuration a reload applied, if any and not voided by a deploy, as `deps.config`: looked
 * up at most every `everySeconds`. A failed look is only logged: the process goes on with what it has.
 */
export async function refreshConfig(
  deps: Pick<Deps, "config" | "configs" | "clock" | "log">,
  everySeconds = CONFIG_REFRESH_SECONDS,
): Promise<void> {
  const state = liveOf(deps);
  const now = deps.clock.now().getTime();
  if (now - state.checkedAt < everySeconds * 1000) return;
  state.checkedAt = now;
  try {
    const applied = await deps.configs.appliedConfig();
    if (!applied || applied.version === state.version) return;
    state.version = applied.version;
    const voided = applied.base !== hashOf(state.deployed);
    deps.config = voided ? state.deployed : schedulerConfigOf(applied.config, "the reloaded configuration");
  } catch (err) {
    deps.log.warn("could not look for a reloaded configuration", { error: String(err) });
  }
}

export interface ReloadOutcome {
  /** What it changed, `path: before → after`; empty when the config was already this. */
  changes: string[];
  /** What the config still gets wrong (capacityWarnings). */
  warnings: string[];
}

/**
 * POST /v2/reload (admin): reads the config from its source, validates it (a ValidationError as at
 * start-up), and applies it, unless it changes the infrastructure (a ConflictError naming each change:
 * nothing is applied). Applied in one conditional write; this process takes it at once.
 */
export async function reloadConfig(
  deps: Pick<Deps, "config" | "configs" | "configSource" | "clock" | "log">,
  principal: Principal,
): Promise<ReloadOutcome> {
  requireScope(principal, "admin");
  const next = await deps.configSource.load();
  const state = liveOf(deps);
  const { infrastructure } = configChanges(state.deployed, next);
  if (infrastructure.length > 0) {
    throw new ConflictError(`config: needs deploy: ${infrastructure.join("; ")}`);
  }
  const stored = await deps.configs.appliedConfig();
  const version = (stored?.version ?? 0) + 1;
  const applied: AppliedConfig = {
    version,
    base: hashOf(state.deployed),
    config: next,
    applied_at: deps.clock.now().toISOString(),
  };
  try {
    await deps.configs.applyConfig(applied, stored?.version);
  } catch (err) {
    if (err instanceof CommitConflict)
      throw new ConflictError("config: another reload was applied at the same time");
    throw err;
  }
  const { runtime } = configChanges(deps.config, next);
  deps.config = next;
  state.version = version;
  return { changes: runtime, warnings: capacityWarnings(next) };
}
