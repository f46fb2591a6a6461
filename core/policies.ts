/**
 * Pool policies: what a pool accepts of a submission (its namespace, tags, timeout, priority and prompt
 * size). A submission a pool refuses is a 400 naming the field and the pool; a task that names only a
 * tool goes only to pools that accept it.
 */
import { type Principal, requireScope } from "./auth.ts";
import type { PoolConfig } from "./config.ts";
import type { Deps } from "./deps.ts";
import { ValidationError } from "./errors.ts";
import type { Tags } from "./fields.ts";
import type { Task } from "./records.ts";

/** What a policy looks at of a submission. */
export interface PolicySubject {
  namespace: string;
  tags: Tags;
  timeout: number;
  priority: number;
  prompt?: string;
}

/** What a stored task showed the policies when it was submitted. */
export const subjectOf = (task: Task): PolicySubject => ({
  namespace: task.namespace,
  tags: task.tags,
  timeout: task.timeout,
  priority: task.priority,
  prompt: task.prompt,
});

/** The policy's refusal of a submission (the field and why), or undefined when the pool accepts it. */
export function policyRefusal(pool: PoolConfig, subject: PolicySubject): ValidationError | undefined {
  const policy = pool.policy;
  if (!policy) return undefined;
  const refuse = (field: string, reason: string) => new ValidationError(field, `pool ${pool.name} ${reason}`);
  if (policy.namespaces && !policy.namespaces.includes(subject.namespace)) {
    return refuse("namespace", `accepts namespaces ${policy.namespaces.join(", ")}`);
  }
  for (const [key, values] of Object.entries(policy.tags ?? {})) {
    const value = subject.tags[key];
    if (value === undefined || !values.includes(value)) {
      return refuse(`tags.${key}`, `accepts tasks whose tag ${key} is one of ${values.join(", ")}`);
    }
  }
  if (policy.max_timeout !== undefined && subject.timeout > policy.max_timeout) {
    return refuse("timeout", `accepts a timeout of at most ${policy.max_timeout} s`);
  }
  if (policy.max_priority !== undefined && subject.priority > policy.max_priority) {
    return refuse("priority", `accepts a priority of at most ${policy.max_priority}`);
  }
  const promptBytes = subject.prompt === undefined ? 0 : Buffer.byteLength(subject.prompt);
  if (policy.max_prompt_bytes !== undefined && promptBytes > policy.max_prompt_bytes) {
    return refuse("prompt", `accepts a prompt of at most ${policy.max_prompt_bytes} bytes`);
  }
  return undefined;
}

/** Every pool's policy, as GET /v2/policies shows them (null: the pool accepts anything). */
export function listPolicies(deps: Pick<Deps, "config">, principal: Principal) {
  requireScope(principal, "tasks:read");
  return deps.config.pools.map((pool) => ({ pool: pool.name, tool: pool.tool, policy: pool.policy ?? null }));
}
