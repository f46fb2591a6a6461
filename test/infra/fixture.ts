import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, type CfnElement, Stack } from "aws-cdk-lib";
import type { IConstruct } from "constructs";
import { isCliPool } from "../../core/config.ts";
import { ENV } from "../../core/names.ts";
import { FEATURE_FLAGS } from "../../infra/secure-defaults.ts";
import { addSwitchyardStacks } from "../../infra/switchyard.ts";
import { loadSchedulerConfig, parseSchedulerConfig } from "../../runtime/scheduler-config.ts";

/**
 * Pools that differ from scheduler.config.yaml, so the stacks provably follow the config they get: worker
 * sizes and scaling differ per pool, gamma shares alpha's account (tool claude, account a), and pods-x runs
 * container jobs.
 */
const TEST_CONFIG = `
pools:
  - name: alpha
    tool: claude
    account: a
    max_concurrency: 1
    lease_seconds: 90
    worker: { cpu: 512, memory: 1024, min: 0, max: 3, slots: 2 }
  - name: beta-2
    tool: codex
    account: b
    max_concurrency: 2
    worker: { cpu: 2048, memory: 4096, min: 1, max: 4 }
  - { name: gamma, tool: claude, account: a, max_concurrency: 1 }
  - { name: pods-x, tool: container, max_concurrency: 2, lease_seconds: 60 }
`;
export const testConfig = parseSchedulerConfig(TEST_CONFIG);
/** The test config's CLI pools: those with a worker service. */
export const cliPools = testConfig.pools.filter(isCliPool);

export interface SynthOptions {
  deletionProtection?: boolean;
  workers?: boolean;
  /** The scheduler config's text (default: the test config), or its file. */
  configText?: string;
  configFile?: string;
}

/**
 * Both stacks, with asset bundling skipped (the standard context switch) and asset staging off, so tests
 * stay fast: no Lambda bundle is built, and the worker image's build context is fingerprinted but not
 * copied. No Docker image is ever built at synth.
 */
export function synthSwitchyard(options: SynthOptions = {}) {
  const app = new App({
    context: { ...FEATURE_FLAGS, "aws:cdk:bundling-stacks": [], "aws:cdk:disable-asset-staging": true },
  });
  const { configText = TEST_CONFIG, configFile = written(configText), ...rest } = options;
  const config = loadSchedulerConfig({ [ENV.schedulerConfig]: configFile });
  const stacks = addSwitchyardStacks(app, { config, configFile, ...rest });
  return { app, ...stacks };
}

/** A config text as a file of its own. */
function written(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), "switchyard-synth-")), "scheduler.config.yaml");
  writeFileSync(file, text);
  return file;
}

/** The template logical ID of a construct's CloudFormation resource. */
export const logicalId = (construct: IConstruct) =>
  Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);
