import { Aspects } from "aws-cdk-lib";
import { Annotations, Match, Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import { describe, expect, it } from "vitest";
import { synthSwitchyard } from "./fixture.ts";

const { app, stateful, stateless } = synthSwitchyard();
Aspects.of(app).add(new AwsSolutionsChecks());
const stacks = [stateful, stateless];

/** The only rules we accept suppressing; each suppression must say why (the reasons are in infra/). */
const ALLOWED = [
  "AwsSolutions-L1",
  "AwsSolutions-IAM4",
  "AwsSolutions-IAM5",
  "AwsSolutions-APIG4",
  "AwsSolutions-COG4",
  // The admin key, the callback signing key and the pool accounts' credentials: nothing to rotate against.
  "AwsSolutions-SMG4",
  // Worker task definitions: the plain environment holds resource names only; credentials are secrets.
  "AwsSolutions-ECS2",
  // The cluster: Container Insights is billed per metric even when idle; it follows the account setting.
  "AwsSolutions-ECS4",
  // The events relay's on-failure queue is itself a dead-letter destination.
  "AwsSolutions-SQS3",
];
/** Rules whose suppression must name the exact findings (appliesTo), never the whole rule. */
const SCOPED = ["AwsSolutions-IAM4", "AwsSolutions-IAM5"];
/** Rules suppressed whole on a resource: only on resources of these types. */
const ON_TYPES: Record<string, string[]> = {
  "AwsSolutions-SMG4": ["AWS::SecretsManager::Secret"],
  "AwsSolutions-ECS2": ["AWS::ECS::TaskDefinition"],
  "AwsSolutions-ECS4": ["AWS::ECS::Cluster"],
  "AwsSolutions-SQS3": ["AWS::SQS::Queue"],
};

interface Suppression {
  id: string;
  reason: string;
  applies_to?: unknown[];
}

describe.each(stacks.map((stack) => [stack.stackName, stack] as const))(
  "cdk-nag AwsSolutions on %s",
  (_, stack) => {
    const annotations = Annotations.fromStack(stack);

    it("has no unsuppressed errors", () => {
      const errors = annotations.findError("*", Match.stringLikeRegexp("AwsSolutions-.*"));
      expect(errors.map((e) => `${e.id}: ${String(e.entry.data).split(":")[0]}`)).toEqual([]);
    });

    it("keeps suppressions few, scoped and explained", () => {
      const resources = Object.values(
        Template.fromStack(stack).toJSON().Resources as Record<
          string,
          { Type: string; Metadata?: { cdk_nag?: { rules_to_suppress: Suppression[] } } }
        >,
      );
      const suppressions = resources.flatMap((r) =>
        (r.Metadata?.cdk_nag?.rules_to_suppress ?? []).map((s) => ({ ...s, type: r.Type })),
      );
      for (const s of suppressions) {
        expect(ALLOWED).toContain(s.id);
        expect(s.reason.length, s.id).toBeGreaterThanOrEqual(80);
        if (SCOPED.includes(s.id)) expect(s.applies_to?.length, s.id).toBeGreaterThan(0);
        if (ON_TYPES[s.id]) expect(ON_TYPES[s.id], s.id).toContain(s.type);
      }
    });
  },
);

it("really ran the checks (a non-error finding is reported)", () => {
  // The WAF rule is a warning we accept for now; seeing it proves the aspect ran over the stateless stack.
  const warnings = Annotations.fromStack(stateless).findWarning(
    "*",
    Match.stringLikeRegexp("AwsSolutions-APIG3"),
  );
  expect(warnings).toHaveLength(1);
});
