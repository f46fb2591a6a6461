/** Where the local stack, tests and the benchmark hook into AWS SDK clients. */

export interface MiddlewareStackLike {
  add(
    middleware: unknown,
    options: { step: "initialize" | "build"; name: string; priority: "high" | "low" },
  ): void;
}

/** The middleware stacks of the clients, each once: a DynamoDB document client shares its client's. */
export function middlewareStacks(clients: Iterable<unknown>): MiddlewareStackLike[] {
  const stacks = new Set<MiddlewareStackLike>();
  for (const client of clients) {
    const stack = (client as { middlewareStack?: MiddlewareStackLike }).middlewareStack;
    if (stack) stacks.add(stack);
  }
  return [...stacks];
}
