import { describe, expect, test } from "bun:test";
import { ConfigError, loadConfig, parseDockerHosts } from "../../core/config.ts";

describe("DOCKER_HOSTS with regions", () => {
  test.each([
    ["unix:///var/run/docker.sock", [{ url: "unix:///var/run/docker.sock", region: "home" }]],
    [
      "eu=unix:///var/run/docker.sock, us=tcp://10.0.0.5:2375",
      [
        { url: "unix:///var/run/docker.sock", region: "eu" },
        { url: "tcp://10.0.0.5:2375", region: "us" },
      ],
    ],
    [
      "us=unix:///var/run/docker.sock,eu=unix:///var/run/docker.sock,tcp://h:2375",
      [
        { url: "unix:///var/run/docker.sock", region: "us" },
        { url: "unix:///var/run/docker.sock", region: "eu" },
        { url: "tcp://h:2375", region: "home" },
      ],
    ],
  ])("%p", (raw, hosts) => {
    expect(parseDockerHosts(raw, "home")).toEqual({ hosts, problems: [] });
  });

  test.each([["b@d=unix:///x"], ["eu=ftp://x"], ["eu=unix:///x,eu=unix:///x"], ["nonsense"]])("%p is refused", (raw) => {
    expect(parseDockerHosts(raw, "home").problems.length).toBeGreaterThan(0);
  });

  test("loadConfig: URLs and their regions in order; REGION for entries without one", () => {
    const c = loadConfig({ REGION: "eu", DOCKER_HOSTS: "us=unix:///var/run/docker.sock,unix:///other.sock" });
    expect(c.dockerHosts).toEqual(["unix:///var/run/docker.sock", "unix:///other.sock"]);
    expect(c.dockerHostRegions).toEqual(["us", "eu"]);
    expect(c.gatewayRegion).toBe("eu");
    expect(c.maxRegionRttMs).toBe(150);
    expect(c.gatewayWorkers).toBeGreaterThanOrEqual(1);
  });

  test("bad region settings fail at start", () => {
    expect(() => loadConfig({ GATEWAY_REGION: "a b", MAX_REGION_RTT: "-1", GATEWAY_WORKERS: "0", REGION: "x|y" })).toThrow(ConfigError);
  });
});
