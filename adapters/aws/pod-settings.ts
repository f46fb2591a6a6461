import * as z from "zod";

/** Where a stack's pods run and log: SWITCHYARD_PODS, JSON, written by the CDK stack. */
export const podSettingsSchema = z.object({
  cluster: z.string(),
  subnets: z.array(z.string()),
  security_groups: z.array(z.string()),
  execution_role_arn: z.string(),
  task_role_arn: z.string(),
  /** Pool name -> its log group. */
  log_groups: z.record(z.string(), z.string()),
  region: z.string(),
});
export type PodSettings = z.infer<typeof podSettingsSchema>;
