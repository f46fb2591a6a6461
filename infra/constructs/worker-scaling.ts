import { Duration } from "aws-cdk-lib";
import { AdjustmentType, type ScalingInterval } from "aws-cdk-lib/aws-applicationautoscaling";
import { MathExpression, Stats } from "aws-cdk-lib/aws-cloudwatch";
import type { FargateService } from "aws-cdk-lib/aws-ecs";
import type { Queue } from "aws-cdk-lib/aws-sqs";
import type { PoolConfig } from "../../core/config.ts";

/**
 * Scale-out steps on the number of visible messages (runs admitted but not yet claimed by a worker):
 * roughly one more worker per `slots` waiting messages, in at most 5 steps, never more than `max` at once.
 * Below one message there is no step (no alarm): scale-in is a separate, slower policy.
 */
export function scaleOutSteps(max: number, slots: number): ScalingInterval[] {
  const count = Math.max(2, Math.min(max, 5));
  return Array.from({ length: count }, (_, i) => ({ lower: i * slots + 1, change: Math.min(i + 1, max) }));
}

/** How the pool services scale in: one worker at a time, after this long without any work. */
export const SCALE_IN = { idlePeriod: Duration.minutes(5), idlePeriods: 6, cooldown: Duration.minutes(5) };
/** Time for a new worker to start and take work before another scale-out step (image pull included). */
export const SCALE_OUT_COOLDOWN = Duration.minutes(3);

/**
 * A pool service scales between the pool's worker.min and worker.max on its queue: out in steps on the
 * messages waiting, in one worker at a time after a long idle spell.
 */
export function scaleOnQueue(service: FargateService, queue: Queue, worker: PoolConfig["worker"]): void {
  const scaling = service.autoScaleTaskCount({ minCapacity: worker.min, maxCapacity: worker.max });
  if (worker.max > 0) {
    const period = Duration.minutes(1);
    const visible = queue.metricApproximateNumberOfMessagesVisible({
      period,
      statistic: Stats.MAXIMUM,
    });
    scaling.scaleOnMetric("ScaleOut", {
      metric: visible,
      scalingSteps: scaleOutSteps(worker.max, worker.slots),
      adjustmentType: AdjustmentType.CHANGE_IN_CAPACITY,
      cooldown: SCALE_OUT_COOLDOWN,
      evaluationPeriods: 1,
    });
    // Scale in one worker at a time once nothing was waiting and nothing was taken for 30 minutes.
    // The queue cannot see running jobs (a worker deletes the message when it claims the run): a worker
    // holding jobs protects its task from scale-in (ECS task protection), and one stopped anyway (a
    // protection that could not be set) drains and hands its runs back.
    scaling.scaleOnMetric("ScaleIn", {
      metric: new MathExpression({
        expression: "visible + received",
        usingMetrics: {
          visible: queue.metricApproximateNumberOfMessagesVisible({
            period: SCALE_IN.idlePeriod,
            statistic: Stats.MAXIMUM,
          }),
          received: queue.metricNumberOfMessagesReceived({
            period: SCALE_IN.idlePeriod,
            statistic: Stats.SUM,
          }),
        },
        period: SCALE_IN.idlePeriod,
        label: "messages waiting or taken",
      }),
      scalingSteps: [
        { upper: 0, change: -1 },
        { lower: 0, change: 0 },
      ],
      adjustmentType: AdjustmentType.CHANGE_IN_CAPACITY,
      cooldown: SCALE_IN.cooldown,
      evaluationPeriods: SCALE_IN.idlePeriods,
    });
  }
}
