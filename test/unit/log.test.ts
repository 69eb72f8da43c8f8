import { describe, expect, test } from "bun:test";
import { createLogger, resolveLogFormat } from "../../core/log.ts";

function capture() {
  const lines: string[] = [];
  return { lines, sink: (l: string) => lines.push(l) };
}

describe("pino logger", () => {
  test("JSON by default off a terminal: level, ISO time, component and ids as fields", () => {
    const c = capture();
    const log = createLogger("gateway", "info", { sink: c.sink });
    log.info("player joined", { room: "ABCD", node: "n-1", player: "p-9" });
    log.debug("not shown at info");
    expect(c.lines).toHaveLength(1);
    const o = JSON.parse(c.lines[0]!) as Record<string, unknown>;
    expect(o).toMatchObject({ level: "info", component: "gateway", msg: "player joined", room: "ABCD", node: "n-1", player: "p-9" });
    expect(new Date(o.time as string).toISOString()).toBe(o.time as string);
    expect(o).not.toHaveProperty("pid");
  });

  test("child components nest, and one `component` key per line", () => {
    const c = capture();
    createLogger("scheduler", "debug", c.sink).child("jobs").child("drain").debug("draining", { node: "n-2" });
    expect(c.lines).toHaveLength(1);
    expect(c.lines[0]!.match(/"component"/g)).toHaveLength(1);
    expect(JSON.parse(c.lines[0]!)).toMatchObject({ level: "debug", component: "scheduler:jobs:drain", node: "n-2" });
  });

  test("errors in any field keep their type, message and code", () => {
    const c = capture();
    const err = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    createLogger("templater", "info", c.sink).error("reload failed", { err, cause: new TypeError("bad") });
    const o = JSON.parse(c.lines[0]!) as { err: Record<string, unknown>; cause: Record<string, unknown>; level: string };
    expect(o.level).toBe("error");
    expect(o.err).toMatchObject({ type: "Error", message: "connect ECONNREFUSED", code: "ECONNREFUSED" });
    expect(o.cause).toMatchObject({ type: "TypeError", message: "bad" });
  });

  test("LOG_FORMAT=pretty: human lines with the component, message and fields, no JSON", () => {
    const c = capture();
    createLogger("gateway", "info", { sink: c.sink, format: "pretty", colorize: false }).child("relay").warn("upstream closed", { room: "WXYZ" });
    const text = c.lines.join("\n");
    expect(text).toContain("WARN");
    expect(text).toContain("[gateway:relay] upstream closed");
    expect(text).toContain('room: "WXYZ"');
    expect(() => JSON.parse(c.lines[0]!)).toThrow();
  });

  test("auto picks pretty on a terminal and JSON otherwise", () => {
    expect(resolveLogFormat("auto", true)).toBe("pretty");
    expect(resolveLogFormat("auto", false)).toBe("json");
    expect(resolveLogFormat("json", true)).toBe("json");
    expect(resolveLogFormat("pretty", false)).toBe("pretty");
    const c = capture();
    createLogger("x", "info", { sink: c.sink, format: "auto", tty: true, colorize: false }).info("hello");
    expect(c.lines.join("\n")).toContain("[x] hello");
  });

  test("a process writes JSON to a piped stdout by default", async () => {
    const code = `import { createLogger } from ${JSON.stringify(new URL("../../core/log.ts", import.meta.url).pathname)}; createLogger("probe").info("up", { gateway: "g-1" });`;
    const proc = Bun.spawn([process.execPath, "-e", code], { stdout: "pipe", stderr: "pipe" });
    const out = await new Response(proc.stdout).text();
    expect(await proc.exited).toBe(0);
    expect(JSON.parse(out.trim())).toMatchObject({ level: "info", component: "probe", msg: "up", gateway: "g-1" });
  });
});
