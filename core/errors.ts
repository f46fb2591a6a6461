/** Typed domain errors. Each carries the API error code; only functions/_shared maps codes to HTTP statuses. */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export const ERROR_CODES = {
  validation: "1001",
  taskNotFound: "1002",
  runNotFound: "1003",
  poolNotFound: "1004",
  insufficientResources: "1005",
  templateNotFound: "1006",
  conflict: "1007",
  unauthorized: "1008",
  forbidden: "1009",
  rateLimited: "1010",
  payloadTooLarge: "1011",
  /** An unknown route or method (404). */
  routeNotFound: "1012",
  /** An unknown tenant or API key id (404). */
  tenantNotFound: "1013",
  /** An unknown worker id (404). */
  workerNotFound: "1014",
  /** An unknown workflow, node, edge or workflow run (404). */
  workflowNotFound: "1015",
  system: "2001",
  database: "2002",
  compute: "2003",
} as const;
export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

export class ValidationError extends DomainError {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(ERROR_CODES.validation, field ? `${field}: ${reason}` : reason);
  }
}
export class NotFoundError extends DomainError {}
export const taskNotFound = (uuid: string) =>
  new NotFoundError(ERROR_CODES.taskNotFound, `task ${uuid} not found`);
export const runNotFound = (runId: string) =>
  new NotFoundError(ERROR_CODES.runNotFound, `instance ${runId} not found`);
export const poolNotFound = (pool: string) =>
  new NotFoundError(ERROR_CODES.poolNotFound, `pool ${pool} not found`);
export const routeNotFound = (method: string, path: string) =>
  new NotFoundError(ERROR_CODES.routeNotFound, `no route for ${method} ${path}`);

export class ConflictError extends DomainError {
  constructor(message: string) {
    super(ERROR_CODES.conflict, message);
  }
}
export class InsufficientResourcesError extends DomainError {
  constructor(message: string) {
    super(ERROR_CODES.insufficientResources, message);
  }
}
/** Past a tenant's `max_queued_tasks`: clears as queued work starts (a workflow's node waits for it). */
export class QueuedQuotaError extends InsufficientResourcesError {}
export class UnauthorizedError extends DomainError {
  constructor(message = "missing or invalid API key") {
    super(ERROR_CODES.unauthorized, message);
  }
}
export class ForbiddenError extends DomainError {
  constructor(message: string) {
    super(ERROR_CODES.forbidden, message);
  }
}
/** Past a per-tenant limit of a time window: the client may retry once the window has passed. */
export class RateLimitedError extends DomainError {
  constructor(
    message: string,
    /** Whole seconds until the next window (functions/_shared sends it as Retry-After). */
    readonly retryAfterSeconds: number,
  ) {
    super(ERROR_CODES.rateLimited, message);
  }
}
export class PayloadTooLargeError extends DomainError {
  constructor(limitBytes: number) {
    super(ERROR_CODES.payloadTooLarge, `body: larger than ${limitBytes} bytes`);
  }
}
