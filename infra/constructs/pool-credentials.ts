import { CfnOutput, Stack } from "aws-cdk-lib";
import { Secret } from "aws-cdk-lib/aws-secretsmanager";
import { NagSuppressions } from "cdk-nag";
import { Construct } from "constructs";
import { type CliPool, hasManagedWorkers, type PoolConfig } from "../../core/config.ts";
import { ENV } from "../../core/names.ts";

/** What a newcomer puts in each tool's secret: the variables its CLI reads. */
const CREDENTIAL_HINTS: Record<CliPool["tool"], string> = {
  claude: '{"ANTHROPIC_API_KEY":"sk-ant-..."} or {"CLAUDE_CODE_OAUTH_TOKEN":"..."}',
  // codex exec reads CODEX_API_KEY; it ignores OPENAI_API_KEY unless logged in with it.
  codex: '{"CODEX_API_KEY":"sk-..."}',
  gemini: '{"GEMINI_API_KEY":"..."}',
};

export interface PoolCredentialsProps {
  readonly pools: readonly PoolConfig[];
}

/** The key of an account's credentials: pools of the same tool and account share one secret. */
export const credentialsKey = (pool: Pick<CliPool, "tool" | "account">) => `${pool.tool}/${pool.account}`;

const pascal = (text: string) =>
  text
    .split(/[^A-Za-z0-9]+/)
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join("");

/** The stateful stack output holding the ARN of a pool's credentials secret. */
export const credentialsOutputName = (pool: Pick<CliPool, "tool" | "account">) =>
  `Credentials${pascal(pool.tool)}${pascal(pool.account)}`;

/**
 * One Secrets Manager secret per (tool, account) of the configured CLI pools, created holding `{}`.
 * An operator puts the account's credentials in it (a JSON object of environment variables for the CLI);
 * ECS injects it into that account's workers as SWITCHYARD_CREDENTIALS when a task starts.
 * The secrets live in the stateful stack: replacing the compute stack must not lose what was put in them.
 */
export class PoolCredentials extends Construct {
  /** `tool/account` -> its secret. */
  readonly secrets: ReadonlyMap<string, Secret>;

  constructor(scope: Construct, id: string, props: PoolCredentialsProps) {
    super(scope, id);
    // A pool only self-hosted workers serve has no use for a secret: those hold their own credentials.
    const pools = props.pools.filter(hasManagedWorkers);
    const secrets = new Map<string, Secret>();
    for (const pool of pools) {
      const key = credentialsKey(pool);
      if (secrets.has(key)) continue;
      const sharing = pools.filter((p) => credentialsKey(p) === key).map((p) => p.name);
      const secret = new Secret(this, `${pool.tool}-${pool.account}`, {
        description:
          `Switchyard: ${pool.tool} CLI credentials of account "${pool.account}" (pools ${sharing.join(", ")}). ` +
          `Put a JSON object of environment variables for the CLI, e.g. ${CREDENTIAL_HINTS[pool.tool]}. ` +
          `Workers get it as ${ENV.credentials} when they start: restart the pool's service after a change.`,
        // Created holding an empty object, never a generated string: the worker parses it as JSON.
        secretObjectValue: {},
      });
      NagSuppressions.addResourceSuppressions(secret, [
        {
          id: "AwsSolutions-SMG4",
          reason:
            "An LLM provider API key or OAuth token that only its provider can issue: Secrets Manager has no " +
            "rotation function for it. The operator rotates it at the provider and puts the new value here.",
        },
      ]);
      // A stack-level output, so that its name is readable: e.g. CredentialsClaudeMain.
      new CfnOutput(Stack.of(this), credentialsOutputName(pool), {
        description: `Secret to fill with the ${pool.tool} credentials of account "${pool.account}"`,
        value: secret.secretArn,
      });
      secrets.set(key, secret);
    }
    this.secrets = secrets;
  }
}
