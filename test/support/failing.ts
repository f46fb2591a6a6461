/** Faults for ports in memory: a method that fails as a throttled or conflicting AWS call would. */

/** An error shaped as the AWS SDK shapes a throttled request's. */
export const throttled = () =>
  Object.assign(new Error("Rate exceeded (injected)"), { name: "ThrottlingException", $fault: "client" });

/**
 * Makes `method` of `port` fail with `error()` for the next `times` calls whose arguments `when` picks.
 * `applied`: the call is made first and then fails, as a timeout after the write took effect. Returns
 * how many faults were injected so far.
 */
export function failing<T extends object, K extends keyof T>(
  port: T,
  method: K,
  times: number,
  when: (...args: never[]) => boolean = () => true,
  { error = throttled, applied = false }: { error?: () => Error; applied?: boolean } = {},
): { readonly injected: number } {
  const original = (port[method] as (...args: unknown[]) => unknown).bind(port);
  let injected = 0;
  (port as Record<K, unknown>)[method] = async (...args: never[]) => {
    if (injected < times && when(...args)) {
      injected++;
      if (applied) await original(...args);
      throw error();
    }
    return original(...args);
  };
  return {
    get injected() {
      return injected;
    },
  };
}
