import { describe, expect, it } from "vitest";
import { submitTaskSchema } from "../../core/requests.ts";

const ok = (body: object) => submitTaskSchema.parse({ prompt: "hi", tool: "claude", ...body });
const firstIssue = (body: object) => {
  const result = submitTaskSchema.safeParse({ prompt: "hi", tool: "claude", ...body });
  if (result.success) throw new Error("expected a validation error");
  const issue = result.error.issues[0];
  return { path: issue?.path.join("."), message: issue?.message };
};

describe("submit schema", () => {
  it("applies the defaults", () => {
    expect(ok({})).toMatchObject({
      priority: 5,
      max_attempts: 3,
      timeout: 3600,
      namespace: "default",
      tags: {},
      input_files: [],
      output_files: [],
    });
  });

  it("accepts prior as an alias of priority", () => {
    expect(ok({ prior: 9 }).priority).toBe(9);
    expect(ok({ prior: "2" }).priority).toBe(2);
    expect(firstIssue({ priority: 3, prior: 4 }).path).toBe("prior");
  });

  it("keeps priority within 1–9", () => {
    expect(firstIssue({ priority: 0 }).path).toBe("priority");
    expect(firstIssue({ priority: 10 }).path).toBe("priority");
    expect(firstIssue({ priority: 2.5 }).path).toBe("priority");
  });

  it("parses tags given as an object or as a k=v string", () => {
    expect(ok({ tags: { team: "a" } }).tags).toEqual({ team: "a" });
    expect(ok({ tags: "team=a, env=prod" }).tags).toEqual({ team: "a", env: "prod" });
    expect(ok({ tags: "expr=a=b" }).tags).toEqual({ expr: "a=b" });
    expect(firstIssue({ tags: "novalue" }).path).toBe("tags");
  });

  it("takes timeout as a number or a numeric string", () => {
    expect(ok({ timeout: 600 }).timeout).toBe(600);
    expect(ok({ timeout: "600" }).timeout).toBe(600);
    expect(firstIssue({ timeout: "ten" }).path).toBe("timeout");
    expect(firstIssue({ timeout: 0 }).path).toBe("timeout");
  });

  it("refuses input file paths that escape the work dir", () => {
    for (const name of ["../x", "/etc/passwd", "a/../../b", "a\\b", "a//b"]) {
      expect(firstIssue({ input_files: [{ name, content: "" }] }).path).toBe("input_files.0.name");
    }
    expect(ok({ input_files: [{ name: "src/a.ts", content: "x" }] }).input_files).toHaveLength(1);
  });

  it("names unknown fields and wrong enum values", () => {
    expect(firstIssue({ colour: "red" }).message).toContain("colour");
    expect(firstIssue({ tool: "bard" }).path).toBe("tool");
  });

  it("needs a tool or a pool, and a prompt", () => {
    const noTool = submitTaskSchema.safeParse({ prompt: "x" });
    expect(noTool.success).toBe(false);
    expect(submitTaskSchema.safeParse({ tool: "claude" }).success).toBe(false);
    expect(submitTaskSchema.safeParse({ pool: "claude-main", prompt: "x" }).success).toBe(true);
  });

  it("refuses control characters in names", () => {
    expect(firstIssue({ name: "bad\u0000name" }).path).toBe("name");
  });
});
