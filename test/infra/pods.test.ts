import { Match, Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { ENV } from "../../core/names.ts";
import { logicalId, synthSwitchyard } from "./fixture.ts";

const { stateless } = synthSwitchyard();
const template = Template.fromStack(stateless);
const json = template.toJSON() as {
  Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
};
const pods = stateless.pods;
if (!pods) throw new Error("the test config's container pool deploys its pods");
const fn = (id: string) => {
  const found = stateless.functions.get(id);
  if (!found) throw new Error(`no function ${id}`);
  return found;
};
/** Every statement of the policies attached to a function's role, as JSON text. */
const policiesOf = (id: string) => {
  const roleId = logicalId(fn(id).role as never);
  return Object.values(json.Resources)
    .filter((r) => r.Type === "AWS::IAM::Policy" && JSON.stringify(r.Properties.Roles).includes(roleId))
    .map((r) => JSON.stringify(r.Properties.PolicyDocument))
    .join("\n");
};

describe("container pools", () => {
  it("settle from EventBridge: stopped ECS tasks of Switchyard's groups in the cluster reach the pod events function", () => {
    template.hasResourceProperties("AWS::Events::Rule", {
      EventPattern: {
        source: ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        detail: {
          clusterArn: [{ "Fn::GetAtt": [Match.stringLikeRegexp("Cluster"), "Arn"] }],
          lastStatus: ["STOPPED"],
          group: [{ prefix: "switchyard:" }],
        },
      },
      Targets: [
        Match.objectLike({
          Arn: { "Fn::GetAtt": [logicalId(fn("PodEvents")), "Arn"] },
          RetryPolicy: { MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 21_600 },
          DeadLetterConfig: { Arn: { "Fn::GetAtt": [logicalId(pods.undelivered), "Arn"] } },
        }),
      ],
    });
  });

  it("take their dispatches with the pod launcher, reporting partial batch failures", () => {
    const queue = stateless.queues.queues.get("pods-x");
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      FunctionName: { Ref: logicalId(fn("PodLauncher")) },
      EventSourceArn: { "Fn::GetAtt": [logicalId(queue as never), "Arn"] },
      FunctionResponseTypes: ["ReportBatchItemFailures"],
    });
  });

  it("let the launcher run only the pools' own families in the cluster, and pass only the pods' two roles", () => {
    const launcher = policiesOf("PodLauncher");
    expect(launcher).toContain('"Action":"ecs:RunTask"');
    expect(launcher).toMatch(/task-definition\/switchyard-pods-x-\*:\*/);
    expect(launcher).toMatch(/"Condition":\{"ArnEquals":\{"ecs:cluster":/);
    const statements = Object.values(json.Resources)
      .filter(
        (r) =>
          r.Type === "AWS::IAM::Policy" &&
          JSON.stringify(r.Properties.Roles).includes(logicalId(fn("PodLauncher").role as never)),
      )
      .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Record<string, unknown>[] }).Statement);
    expect(statements.filter((st) => JSON.stringify(st.Action).includes("iam:PassRole"))).toEqual([
      {
        Action: "iam:PassRole",
        Condition: { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } },
        Effect: "Allow",
        Resource: [
          { "Fn::GetAtt": [logicalId(pods.executionRole), "Arn"] },
          { "Fn::GetAtt": [logicalId(pods.taskRole), "Arn"] },
        ],
      },
    ]);
  });

  it("let the API, the tick and the pod functions stop pods and read their logs; the pods' own role has no policy", () => {
    for (const id of ["Api-tasks", "Tick", "PodLauncher", "PodEvents"]) {
      const policies = policiesOf(id);
      expect(policies, id).toContain('"Action":"ecs:StopTask"');
      expect(policies, id).toContain('"Action":"logs:GetLogEvents"');
    }
    expect(policiesOf("Callbacks")).not.toContain("ecs:");
    const taskRoleId = logicalId(pods.taskRole);
    const attached = Object.values(json.Resources).filter(
      (r) => r.Type === "AWS::IAM::Policy" && JSON.stringify(r.Properties.Roles).includes(taskRoleId),
    );
    expect(attached).toEqual([]);
  });

  it("log each pool's pods to its own group with a retention, and tell every function where pods run", () => {
    const group = pods.logGroups.get("pods-x");
    expect(json.Resources[logicalId(group as never)]?.Properties.RetentionInDays).toBe(90);
    for (const [id, f] of stateless.functions) {
      const env = json.Resources[logicalId(f)]?.Properties.Environment as {
        Variables: Record<string, unknown>;
      };
      const settings = JSON.stringify(env.Variables[ENV.pods]);
      expect(settings, id).toContain("log_groups");
      expect(settings, id).toContain(logicalId(group as never));
    }
  });
});
