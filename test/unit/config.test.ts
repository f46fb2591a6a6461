import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { mockClient } from "aws-sdk-client-mock";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../core/errors.ts";
import {
  loadSchedulerConfig,
  parseSchedulerConfig,
  ssmConfigSource,
} from "../../runtime/scheduler-config.ts";

const pool = "pools:\n  - { name: p1, tool: claude, account: main, max_concurrency: 2 }\n";

describe("scheduler config", () => {
  it("fills pool defaults", () => {
    const [p] = parseSchedulerConfig(pool).pools;
    expect(p).toMatchObject({ name: "p1", lease_seconds: 120, allow_dangerous_flags: false });
    expect(p?.retry).toEqual({ base_seconds: 30, max_seconds: 300 });
  });

  it("names the file and field of an error", () => {
    const bad = "pools:\n  - { name: P1, tool: claude, account: main, max_concurrency: 2 }\n";
    expect(() => parseSchedulerConfig(bad, "my.yaml")).toThrow(/my\.yaml: pools\.0\.name: must match/);
    expect(() => parseSchedulerConfig("pools: [", "x.yaml")).toThrow(ValidationError);
    expect(() => parseSchedulerConfig(`${pool}${pool.slice(7)}`)).toThrow(/unique/);
    expect(() => parseSchedulerConfig(pool.replace("claude", "bard"))).toThrow(/pools\.0\.tool/);
  });

  it("takes concurrency limits of a tool or a model, and names any other scope", () => {
    const limits = 'concurrency_limits: { "tool:claude": 3, "model:gpt-4": 2 }\n';
    expect(parseSchedulerConfig(`${limits}${pool}`).concurrency_limits).toEqual({
      "tool:claude": 3,
      "model:gpt-4": 2,
    });
    expect(parseSchedulerConfig(pool).concurrency_limits).toEqual({});
    expect(() => parseSchedulerConfig(`concurrency_limits: { "team:x": 2 }\n${pool}`, "c.yaml")).toThrow(
      /c\.yaml: concurrency_limits\.team:x: must be tool:<claude\|codex\|gemini\|container> or model:<name>/,
    );
    expect(() => parseSchedulerConfig(`concurrency_limits: { "tool:bard": 2 }\n${pool}`)).toThrow(
      /tool:bard/,
    );
    expect(() => parseSchedulerConfig(`concurrency_limits: { "tool:codex": 0 }\n${pool}`)).toThrow(
      /concurrency_limits\.tool:codex/,
    );
  });

  it("reads the file SCHEDULER_CONFIG points at", () => {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    writeFileSync(join(dir, "c.yaml"), pool);
    expect(loadSchedulerConfig({ SCHEDULER_CONFIG: join(dir, "c.yaml") }).pools[0]?.name).toBe("p1");
  });

  it("accepts the repository's own config", () => {
    expect(loadSchedulerConfig({}).pools.length).toBeGreaterThan(0);
  });

  it("reads a reload's config from its SSM parameter, with the same errors", async () => {
    const ssm = mockClient(SSMClient);
    try {
      ssm.on(GetParameterCommand, { Name: "/switchyard/config" }).resolves({ Parameter: { Value: pool } });
      expect((await ssmConfigSource("/switchyard/config").load()).pools[0]?.name).toBe("p1");
      expect(ssm.commandCalls(GetParameterCommand).map((c) => c.args[0].input)).toEqual([
        { Name: "/switchyard/config" },
      ]);
      ssm.on(GetParameterCommand).resolves({ Parameter: { Value: pool.replace("p1", "P1") } });
      await expect(ssmConfigSource("/switchyard/config").load()).rejects.toThrow(
        /\/switchyard\/config: pools\.0\.name: must match/,
      );
    } finally {
      ssm.restore();
    }
  });
});
