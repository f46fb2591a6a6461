import { ConflictError } from "./errors.ts";
import { CommitConflict } from "./ports.ts";

/**
 * Runs a read-decide-write step again when its conditional write lost a race, re-reading fresh
 * state each time. After `tries` lost races the caller gets a 409.
 */
export async function retryOnConflict<T>(step: () => Promise<T>, tries = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (err) {
      if (!(err instanceof CommitConflict)) throw err;
      if (attempt >= tries) throw new ConflictError("the record changed concurrently; try again");
    }
  }
}
