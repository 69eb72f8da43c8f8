import { describe, expect, test } from "bun:test";
import { mergeTraffic, parseFleetSamples, parseNodeStats, type GatewaySample } from "../../model/dashboard-history.ts";
import { dockerStats } from "../../scheduler/drivers/docker-driver.ts";

const g = (gateway: string, at: number, o: Partial<GatewaySample> = {}): GatewaySample => ({ at, gateway, seconds: 5, joins: 0, joinsFailed: 0, joinP99: null, frames: 0, connections: 0, ...o });

describe("mergeTraffic", () => {
  const cases: Array<{ name: string; samples: GatewaySample[]; want: ReturnType<typeof mergeTraffic> }> = [
    { name: "nothing", samples: [], want: [] },
    {
      name: "two gateways in one slot: rates summed, worst p99",
      samples: [g("a", 10_100, { joins: 10, frames: 500, joinP99: 0.2, connections: 3 }), g("b", 9_900, { joins: 5, joinsFailed: 5, frames: 1000, joinP99: 0.9, connections: 4 })],
      want: [{ at: 10_000, joinsPerSec: 3, failedPerSec: 1, joinP99: 0.9, framesPerSec: 300, connections: 7 }],
    },
    {
      name: "slots in time order; a gateway with no joins has no p99",
      samples: [g("a", 15_000, { frames: 50 }), g("a", 5_000, { joins: 5, joinP99: 0.1 })],
      want: [
        { at: 5_000, joinsPerSec: 1, failedPerSec: 0, joinP99: 0.1, framesPerSec: 0, connections: 0 },
        { at: 15_000, joinsPerSec: 0, failedPerSec: 0, joinP99: null, framesPerSec: 10, connections: 0 },
      ],
    },
    { name: "uneven interval: per its own seconds", samples: [g("a", 5_000, { seconds: 2, frames: 10 })], want: [{ at: 5_000, joinsPerSec: 0, failedPerSec: 0, joinP99: null, framesPerSec: 5, connections: 0 }] },
  ];
  for (const c of cases) test(c.name, () => expect(mergeTraffic(c.samples, 5_000)).toEqual(c.want));
});

test("fleet samples: malformed skipped, oldest first, unknown fields ignored", () => {
  const s = parseFleetSamples([JSON.stringify({ at: 2, players: 5, nodes: { ready: 2, bad: "x" }, extra: 1 }), "{", "null", JSON.stringify({ at: 1 })]);
  expect(s.map((x) => x.at)).toEqual([1, 2]);
  expect(s[1]!.nodes).toEqual({ ready: 2 });
  expect(s[0]!.players).toBe(0);
});

test("node stats parse", () => {
  expect(parseNodeStats(null)).toBeUndefined();
  expect(parseNodeStats("nope")).toBeUndefined();
  expect(parseNodeStats(JSON.stringify({ at: 1, cpuPercent: 3, memoryBytes: 9 }))).toEqual({ at: 1, cpuPercent: 3, memoryBytes: 9, memoryLimitBytes: null });
});

describe("dockerStats (as `docker stats` computes)", () => {
  test("CPU share times online CPUs; memory without inactive page cache; real limit kept", () => {
    const s = dockerStats(
      {
        cpu_stats: { cpu_usage: { total_usage: 3_000_000 }, system_cpu_usage: 20_000_000, online_cpus: 2 },
        precpu_stats: { cpu_usage: { total_usage: 1_000_000 }, system_cpu_usage: 10_000_000 },
        memory_stats: { usage: 50_000_000, limit: 100_000_000, stats: { inactive_file: 10_000_000 } },
      },
      7,
    );
    expect(s).toEqual({ at: 7, cpuPercent: 40, memoryBytes: 40_000_000, memoryLimitBytes: 100_000_000 });
  });
  test("first reading without precpu, cgroup v1 cache, no limit", () => {
    const s = dockerStats({ cpu_stats: { cpu_usage: { total_usage: 5, percpu_usage: [1, 2, 3, 4] }, system_cpu_usage: 0 }, memory_stats: { usage: 100, limit: 2 ** 63, stats: { cache: 30 } } }, 1);
    expect(s).toEqual({ at: 1, cpuPercent: 0, memoryBytes: 70, memoryLimitBytes: null });
  });
});
