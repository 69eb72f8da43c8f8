/**
 * deploy/: the Prometheus rules pass `promtool check rules` and their unit tests
 * (`promtool test rules`: each alert fires on its series and stays quiet on a healthy fleet); the
 * compose file passes Debian's `docker-compose config` (skipped only where the distribution has no
 * such package) and names the services the issue asks for; the systemd units point at the
 * executables the image builder compiles; the Grafana dashboard is well-formed JSON whose queries
 * are valid PromQL to promtool. (That every metric it queries exists in a real scrape is checked
 * by test/e2e/metrics-scrape.test.ts.)
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IN_CI } from "../support/services.ts";
import { grafanaExprs } from "../support/metric-queries.ts";

const ROOT = join(import.meta.dir, "..", "..");
const DEPLOY = join(ROOT, "deploy");
const have = (cmd: string) => Bun.which(cmd) !== null;

function run(cmd: string[], env: Record<string, string> = {}): { code: number; out: string } {
  const r = Bun.spawnSync(cmd, { cwd: ROOT, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
}

if (IN_CI && !have("promtool")) throw new Error("promtool (Debian package prometheus) is required under CI");

describe.skipIf(!have("promtool"))("Prometheus rules", () => {
  test("promtool check rules passes and finds every alert the issue lists", () => {
    const r = run(["promtool", "check", "rules", join(DEPLOY, "prometheus/alerts.yml")]);
    expect(r.out).toContain("SUCCESS");
    expect(r.code).toBe(0);
    const text = readFileSync(join(DEPLOY, "prometheus/alerts.yml"), "utf8");
    for (const alert of ["FleetgateJoinErrorRate", "FleetgateAllNodesDown", "FleetgateFrequentScaling", "FleetgateJoinLatencyHigh", "FleetgateNoCapacity"]) {
      expect(text).toContain(`alert: ${alert}`);
    }
  });

  test("promtool test rules: each alert fires on its series and not on a healthy fleet", () => {
    const r = run(["promtool", "test", "rules", join(DEPLOY, "prometheus/alerts.test.yml")]);
    expect(r.out).toContain("SUCCESS");
    expect(r.code).toBe(0);
  });

  test("a broken rule is refused (the check can fail)", () => {
    const dir = mkdtempSync(join(tmpdir(), "fg-rules-"));
    try {
      writeFileSync(join(dir, "bad.yml"), "groups:\n  - name: x\n    rules:\n      - alert: Bad\n        expr: sum(rate(fleetgate_joins_total[5m]) > \n");
      expect(run(["promtool", "check", "rules", join(dir, "bad.yml")]).code).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the Prometheus config and every Grafana query parse", () => {
    expect(run(["promtool", "check", "config", join(DEPLOY, "prometheus/prometheus.yml")]).code).toBe(0);
    const dashboard = JSON.parse(readFileSync(join(DEPLOY, "grafana/fleetgate.json"), "utf8")) as { title: string; panels: unknown[] };
    expect(dashboard.title).toBe("fleetgate");
    const exprs = grafanaExprs(dashboard);
    expect(exprs.length).toBeGreaterThan(15);
    // promtool has no bare "parse this query": wrap every query as a recording rule and check that.
    const dir = mkdtempSync(join(tmpdir(), "fg-grafana-"));
    try {
      const rules = exprs.map((e, i) => `      - record: fleetgate:grafana_query_${i}\n        expr: ${JSON.stringify(e.replace(/\$\{?\w+\}?/g, "1m"))}`).join("\n");
      writeFileSync(join(dir, "q.yml"), `groups:\n  - name: grafana\n    rules:\n${rules}\n`);
      const r = run(["promtool", "check", "rules", join(dir, "q.yml")]);
      expect(r.out).toContain(`SUCCESS: ${exprs.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const composeAvailable = have("docker-compose");
if (IN_CI && !composeAvailable && /Candidate: [0-9]/.test(run(["apt-cache", "policy", "docker-compose"]).out)) {
  throw new Error("docker-compose has a Debian package here and is required under CI (scripts/test.ts installs it)");
}

describe.skipIf(!composeAvailable)("docker-compose.yml", () => {
  const file = join(DEPLOY, "docker-compose.yml");
  const env = { JWT_SECRET: "compose-check-secret-0123456789", HAPROXY_STATS_PASSWORD: "compose-check" };

  test("docker-compose config accepts it and it has Redis with AOF, two gateways, two schedulers, the templater", () => {
    const r = run(["docker-compose", "-f", file, "config"], env);
    expect(r.code).toBe(0);
    const services = run(["docker-compose", "-f", file, "config", "--services"], env).out.split("\n").filter(Boolean).sort();
    expect(services).toEqual(["gateway-1", "gateway-2", "redis", "scheduler-1", "scheduler-2", "templater"]);
    expect(r.out).toContain("--appendonly");
    expect(r.out).toMatch(/image: fleetgate-templater:latest/);
    // The two replicas of a kind must not collide on the host network.
    expect(r.out).toContain("PORT: '3000'");
    expect(r.out).toContain("PORT: '3001'");
  });

  test("refuses to run without a JWT secret (the check can fail)", () => {
    const r = run(["docker-compose", "-f", file, "config", "-q"], { JWT_SECRET: "", HAPROXY_STATS_PASSWORD: "x" });
    expect(r.code).not.toBe(0);
    expect(r.out).toContain("JWT_SECRET");
  });
});

test("systemd units run the executables the image builder makes, with the shared environment file", () => {
  const dir = join(DEPLOY, "systemd");
  const units = readdirSync(dir).filter((f) => f.endsWith(".service"));
  expect(units.sort()).toEqual(["fleetgate-gateway@.service", "fleetgate-scheduler@.service", "fleetgate-templater.service"]);
  const builder = readFileSync(join(DEPLOY, "build-images.ts"), "utf8");
  for (const u of units) {
    const text = readFileSync(join(dir, u), "utf8");
    expect(text).toContain("EnvironmentFile=/etc/fleetgate/fleetgate.env");
    const exec = /^ExecStart=\/usr\/local\/bin\/(\S+)$/m.exec(text)?.[1];
    expect(exec).toBeDefined();
    expect(builder).toContain(`binary: "${exec}"`);
  }
});
