import { z } from "zod";
import { LIMITS, listTasksQuerySchema } from "./schemas.ts";
import { RUN_STATUSES, TASK_STATUSES } from "./status.ts";

/** The query strings and small bodies of the HTTP routes; submissions and tenants are in schemas.ts. */

export const listTasksQuery = listTasksQuerySchema.extend({ status: z.enum(TASK_STATUSES).optional() });

export const listRunsQuery = z.strictObject({
  task_id: z.uuid().optional(),
  status: z.enum(RUN_STATUSES).optional(),
  size: z.coerce.number().int().min(1).max(LIMITS.pageSize).default(20),
  cursor: z.string().max(LIMITS.cursorLength).optional(),
  tenant: z.string().max(LIMITS.labelLength).optional(),
});

export const taskEventsQuery = z.strictObject({
  size: z.coerce.number().int().min(1).max(LIMITS.pageSize).default(50),
  cursor: z.string().max(LIMITS.cursorLength).optional(),
});

export const taskLogQuery = z.strictObject({ run_id: z.string().max(LIMITS.runIdLength).optional() });

/** A year either way. */
export const reorderBody = z.strictObject({
  priority_offset: z.number().int().min(-31_536_000).max(31_536_000),
});

export const dispatcherStatusQuery = z.strictObject({
  tenant: z.string().max(LIMITS.labelLength).optional(),
});
