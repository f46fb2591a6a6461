import { App, type CfnElement, Stack } from "aws-cdk-lib";
import type { IConstruct } from "constructs";
import { parseSchedulerConfig } from "../../core/config.ts";
import { FEATURE_FLAGS } from "../../infra/secure-defaults.ts";
import { addSwitchyardStacks } from "../../infra/switchyard.ts";

/** Two pools that differ from scheduler.config.yaml, so the stacks provably follow the config they get. */
export const testConfig = parseSchedulerConfig(`
pools:
  - { name: alpha, tool: claude, account: a, max_concurrency: 1, lease_seconds: 90 }
  - { name: beta-2, tool: codex, account: b, max_concurrency: 2 }
`);

/** Both stacks, with asset bundling skipped (the standard context switch) so tests stay fast. */
export function synthSwitchyard(options: { deletionProtection?: boolean } = {}) {
  const app = new App({ context: { ...FEATURE_FLAGS, "aws:cdk:bundling-stacks": [] } });
  const stacks = addSwitchyardStacks(app, {
    config: testConfig,
    configFile: "unused-when-not-bundling.yaml",
    ...options,
  });
  return { app, ...stacks };
}

/** The template logical ID of a construct's CloudFormation resource. */
export const logicalId = (construct: IConstruct) =>
  Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);
