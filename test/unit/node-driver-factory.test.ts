import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testConfig } from "../../core/config.ts";
import { createNodeDriver, fleetName } from "../../scheduler/drivers/create-driver.ts";
import { stopGraceMs } from "../../scheduler/drivers/driver.ts";

describe("fleetName", () => {
  const cases: Array<[string, string]> = [
    ["fleetgate", "fleetgate"],
    ["prod:eu", "prod-eu"],
    ["fgtest-x.y_z", "fgtest-x.y_z"],
    [":::", "fleetgate"],
    ["-lead", "lead"],
    ["a".repeat(80), "a".repeat(63)],
  ];
  for (const [prefix, want] of cases) test(`${prefix.slice(0, 20)} → ${want.slice(0, 20)}`, () => expect(fleetName(prefix)).toBe(want));
});

describe("stopGraceMs", () => {
  test("drain deadline + close grace + margin", () => {
    expect(stopGraceMs(5)).toBe(7000);
    expect(stopGraceMs(0.25, 0)).toBe(1250);
  });
});

describe("createNodeDriver", () => {
  const dataDir = join(tmpdir(), `fg-factory-${crypto.randomUUID().slice(0, 8)}`);
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  test("NODE_DRIVER=process: a ProcessDriver for the prefix's fleet", async () => {
    const d = await createNodeDriver(testConfig({ nodeDriver: "process", dataDir, redisPrefix: "p:1" }));
    expect(d.kind).toBe("process");
    expect(await d.list()).toEqual([]);
  });

  test("NODE_DRIVER=docker: a DockerDriver (no engine call until used)", async () => {
    const d = await createNodeDriver(testConfig({ nodeDriver: "docker", dataDir, dockerHosts: ["tcp://127.0.0.1:1"] }));
    expect(d.kind).toBe("docker");
  });

  test("NODE_DRIVER=auto without a reachable engine: processes", async () => {
    const d = await createNodeDriver(testConfig({ nodeDriver: "auto", dataDir, dockerHosts: ["tcp://127.0.0.1:1"] }));
    expect(d.kind).toBe("process");
  });
});
