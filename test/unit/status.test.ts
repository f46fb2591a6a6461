import { describe, expect, it } from "vitest";
import { ConflictError } from "../../core/errors.ts";
import { assertTransition, TERMINAL_STATUSES } from "../../core/status.ts";

describe("task state machine", () => {
  it("allows the lifecycle of a one-shot task", () => {
    expect(() => assertTransition("queued", "dispatched")).not.toThrow();
    expect(() => assertTransition("dispatched", "running")).not.toThrow();
    expect(() => assertTransition("running", "succeeded")).not.toThrow();
  });

  it("refuses illegal moves with a 409 conflict", () => {
    expect(() => assertTransition("succeeded", "running")).toThrow(ConflictError);
    expect(() => assertTransition("queued", "running")).toThrow(/cannot go from queued to running/);
    expect(() => assertTransition("canceled", "canceled")).toThrow(ConflictError);
  });

  it("knows the terminal statuses", () => {
    expect([...TERMINAL_STATUSES].sort()).toEqual(["canceled", "completed", "failed", "succeeded"]);
  });
});
