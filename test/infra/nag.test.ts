import { Aspects } from "aws-cdk-lib";
import { Annotations, Match, Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import { describe, expect, it } from "vitest";
import { synthSwitchyard } from "./fixture.ts";

const { app, stateful, stateless } = synthSwitchyard();
Aspects.of(app).add(new AwsSolutionsChecks());
const stacks = [stateful, stateless];

/** The only rules we accept suppressing; each suppression must say why. */
const ALLOWED = [
  "AwsSolutions-L1",
  "AwsSolutions-IAM4",
  "AwsSolutions-IAM5",
  "AwsSolutions-APIG4",
  "AwsSolutions-COG4",
  "AwsSolutions-SMG4",
];
/** Rules whose suppression must name the exact findings (appliesTo), never the whole rule. */
const SCOPED = ["AwsSolutions-IAM4", "AwsSolutions-IAM5"];

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
      const suppressions = Object.values(
        Template.fromStack(stack).toJSON().Resources as Record<string, unknown>,
      )
        .flatMap(
          (r) => (r as { Metadata?: { cdk_nag?: { rules_to_suppress: Suppression[] } } }).Metadata?.cdk_nag,
        )
        .flatMap((nag) => nag?.rules_to_suppress ?? []);
      for (const s of suppressions) {
        expect(ALLOWED).toContain(s.id);
        expect(s.reason.length, s.id).toBeGreaterThanOrEqual(80);
        if (SCOPED.includes(s.id)) expect(s.applies_to?.length, s.id).toBeGreaterThan(0);
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
