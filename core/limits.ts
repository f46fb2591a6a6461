/**
 * Per-tenant limits: the request rate (every authenticated request, in functions/_shared/http.ts) and the
 * submission quotas (in submitTask). The admin key is not limited.
 *
 * Rates are fixed one-minute windows counted in the store: one conditional `ADD count 1` on an item keyed
 * by (counter, minute), refused once the count reaches the limit. That is one write per counted request
 * and no read, it is exact across every Lambda container and the local stack alike, and the window items
 * expire by TTL. The price of fixed windows: a client may spend a window's limit at its end and the next
 * window's at once after, so a burst can reach twice the limit across a boundary.
 */
import { limitsOf, type Principal, type TenantLimits } from "./auth.ts";
import type { Deps } from "./deps.ts";
import { InsufficientResourcesError, RateLimitedError } from "./errors.ts";

export const RATE_WINDOW_SECONDS = 60;
/** Window items outlive their window by this much before DynamoDB's TTL may delete them. */
const WINDOW_RETENTION_SECONDS = 300;

/** The fixed window `now` falls in: its start (the counter item's key) and the seconds until the next. */
export function rateWindow(now: Date) {
  const windowMs = RATE_WINDOW_SECONDS * 1000;
  const startMs = Math.floor(now.getTime() / windowMs) * windowMs;
  const endMs = startMs + windowMs;
  return {
    start: new Date(startMs).toISOString(),
    /** Whole seconds to the next window, at least 1: the Retry-After of a refusal. */
    retryAfterSeconds: Math.max(1, Math.ceil((endMs - now.getTime()) / 1000)),
    /** Epoch seconds, the TTL attribute of the counter item. */
    expiresAt: Math.floor(endMs / 1000) + WINDOW_RETENTION_SECONDS,
  };
}

/** Takes one unit of `counter` in the current window, or throws a 429 that says when to retry. */
async function take(
  deps: Pick<Deps, "store" | "clock">,
  counter: string,
  limit: number,
  refusal: (retryAfterSeconds: number) => string,
): Promise<void> {
  const window = rateWindow(deps.clock.now());
  if (await deps.store.takeRateToken(counter, window.start, limit, window.expiresAt)) return;
  throw new RateLimitedError(refusal(window.retryAfterSeconds), window.retryAfterSeconds);
}

const tenantLimits = (principal: Extract<Principal, { kind: "tenant" }>): TenantLimits =>
  principal.limits ?? limitsOf(undefined);

/**
 * Counts one request of a tenant key against `rate_limit_per_minute` (429, code 1010, past it). This is
 * one DynamoDB write per authenticated tenant request; the admin and public routes are not counted.
 */
export async function countRequest(deps: Pick<Deps, "store" | "clock">, principal: Principal): Promise<void> {
  if (principal.kind !== "tenant") return;
  const limit = tenantLimits(principal).rate_limit_per_minute;
  await take(
    deps,
    `requests#${principal.tenantId}`,
    limit,
    (retry) => `rate limit: at most ${limit} requests per minute for this tenant; retry after ${retry} s`,
  );
}

/**
 * The submission quotas of a tenant key, checked when a submission would create a task (not for an
 * idempotent replay, which creates nothing):
 * - `max_queued_tasks`: a 409, code 1005 (resources insufficient). It clears when queued work starts or is
 *   canceled, which no clock can promise, so it is not a 429 with a Retry-After.
 * - `max_submissions_per_minute`: a 429, code 1010, with Retry-After.
 * The queued count is a COUNT query on the tenant's queued tasks that stops at the quota, so its cost never
 * grows past that many index entries: exact, with no counter that every transition in and out of `queued`
 * would have to keep right. It is a check, not a reservation: submissions racing each other may pass the
 * quota by as many as run at once. The admin key is not limited.
 */
export async function checkSubmissionQuotas(
  deps: Pick<Deps, "store" | "clock">,
  principal: Principal,
): Promise<void> {
  if (principal.kind !== "tenant") return;
  const limits = tenantLimits(principal);
  const queued = await deps.store.countTasks(principal.tenantId, "queued", limits.max_queued_tasks);
  if (queued >= limits.max_queued_tasks) {
    throw new InsufficientResourcesError(
      `max_queued_tasks: the tenant's quota of ${limits.max_queued_tasks} queued tasks is reached; ` +
        "wait for queued work to start, or cancel some",
    );
  }
  const perMinute = limits.max_submissions_per_minute;
  await take(
    deps,
    `submissions#${principal.tenantId}`,
    perMinute,
    (retry) =>
      `max_submissions_per_minute: the tenant's quota of ${perMinute} submissions per minute is used; retry after ${retry} s`,
  );
}
