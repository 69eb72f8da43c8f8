import { describe, expect, test } from "bun:test";
import { chooseRegion, decodeRanking, encodeRanking, homeRegion, knownRegions, scaleUpRegion, latenciesProblem, openRegions, rankRegions, type RankInput } from "../../model/placement/region-choice.ts";

const known = new Set(["us", "eu", "ap"]);
const base: RankInput = { known, home: "us", maxRttMs: 150 };

describe("rankRegions", () => {
  const cases: Array<[string, Partial<RankInput>, string, string[]]> = [
    ["no region, no latencies: home", {}, "us", []],
    ["the token's region without latencies", { claim: "eu" }, "eu", []],
    ["the body's region beats the claim", { requested: "ap", claim: "eu" }, "ap", []],
    ["lowest round trip first, fallbacks nearest first", { latencies: { eu: 90, us: 20, ap: 140 } }, "us", ["eu", "ap"]],
    ["latencies beat the token's claim", { claim: "eu", latencies: { eu: 90, us: 20 } }, "us", ["eu"]],
    ["a body region is the first choice even when farther", { requested: "eu", latencies: { eu: 90, us: 20 } }, "eu", ["us"]],
    ["a fallback above MAX_REGION_RTT is never offered", { latencies: { us: 20, eu: 151, ap: 150 } }, "us", ["ap"]],
    ["the best region is kept even above MAX_REGION_RTT (it is the best there is)", { latencies: { us: 300, eu: 400 } }, "us", []],
    ["unknown regions in latencies are ignored", { latencies: { mars: 1, eu: 30 } }, "eu", []],
    ["an unknown requested region falls back to the measured best", { requested: "mars", latencies: { eu: 30 } }, "eu", []],
    ["an unknown claim and nothing else: home", { claim: "mars" }, "us", []],
    ["negative and non-finite round trips are ignored", { latencies: { eu: -1, ap: Number.NaN, us: 50 } }, "us", []],
    ["ties break by name", { latencies: { us: 40, eu: 40 } }, "eu", ["us"]],
    ["MAX_REGION_RTT 0: no fallback", { maxRttMs: 0, latencies: { us: 10, eu: 20 } }, "us", []],
  ];
  test.each(cases)("%s", (_name, over, best, fallbacks) => {
    expect(rankRegions({ ...base, ...over })).toEqual({ best, fallbacks });
  });
});

describe("openRegions and chooseRegion", () => {
  const ranking = { best: "us", fallbacks: ["eu", "ap"] };
  const cases: Array<[string, number, string[], string | undefined]> = [
    ["before the wait only the best region, which has room", 0, ["us", "eu"], "us"],
    ["before the wait a full best region gives nothing (ask for a node there and wait)", 4999, ["eu", "ap"], undefined],
    ["at the wait the next-best region with room", 5000, ["ap", "eu"], "eu"],
    ["after the wait the best region is still preferred", 9000, ["us", "eu", "ap"], "us"],
    ["after the wait, skip a full fallback", 9000, ["ap"], "ap"],
    ["nowhere with room", 9000, [], undefined],
  ];
  test.each(cases)("%s", (_name, waited, withRoom, want) => {
    expect(chooseRegion(ranking, (r) => withRoom.includes(r), waited, 5000)).toBe(want);
  });

  test("a region beyond MAX_REGION_RTT is never chosen, however long the wait", () => {
    const r = rankRegions({ ...base, latencies: { us: 20, eu: 400 } });
    expect(openRegions(r, 1e9, 5000)).toEqual(["us"]);
    expect(chooseRegion(r, (x) => x === "eu", 1e9, 5000)).toBeUndefined();
  });

  test("REGION_FALLBACK_WAIT 0 opens the fallbacks at once", () => {
    expect(openRegions(ranking, 0, 0)).toEqual(["us", "eu", "ap"]);
  });
});

describe("encoding", () => {
  test("round trip", () => {
    for (const r of [{ best: "us", fallbacks: [] }, { best: "us", fallbacks: ["eu", "ap"] }]) expect(decodeRanking(encodeRanking(r))).toEqual(r);
  });
  test.each([[""], [null], [undefined], [",,"]])("%p decodes to undefined", (s) => {
    expect(decodeRanking(s)).toBeUndefined();
  });
});

describe("latenciesProblem", () => {
  const bad: unknown[] = [null, [], "us", 5, { us: "20" }, { us: -1 }, { us: Infinity }, { us: 60_001 }, { "u s": 10 }, Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`r${i}`, 1]))];
  test.each(bad.map((b) => [b]))("rejects %p", (v) => {
    expect(latenciesProblem(v)).toBeString();
  });
  test.each([[{}], [{ us: 0 }], [{ us: 20.5, eu: 90 }]])("accepts %p", (v) => {
    expect(latenciesProblem(v)).toBeUndefined();
  });
});

test("knownRegions: the DOCKER_HOSTS regions and the nodes' regions (REGION when no host names one)", () => {
  expect([...knownRegions({ region: "local", dockerHostRegions: ["eu", "us", "eu"] }, ["ap", ""])].sort()).toEqual(["ap", "eu", "us"]);
  expect([...knownRegions({ region: "local", dockerHostRegions: ["local"] })]).toEqual(["local"]);
  expect([...knownRegions({ region: "local", dockerHostRegions: [] })]).toEqual(["local"]);
});

test.each([
  [{ region: "local", dockerHostRegions: ["local"] }, "local"],
  [{ region: "us", dockerHostRegions: ["eu", "us"] }, "us"],
  [{ region: "local", dockerHostRegions: ["eu", "us"] }, "eu"],
  [{ region: "local", dockerHostRegions: [] }, "local"],
])("homeRegion %p → %p", (config, want) => {
  expect(homeRegion(config)).toBe(want);
});

describe("scaleUpRegion", () => {
  const node = (region: string, players: number, state: "ready" | "starting" = "ready") => ({ state, region, capacity: 10, players, reservedSeats: 0 });
  const cfg = { region: "us", dockerHostRegions: ["us", "eu"] };
  test.each([
    ["one region: it", { region: "local", dockerHostRegions: ["local"] }, [node("local", 9)], "local"],
    ["the busier region", cfg, [node("us", 2), node("eu", 9)], "eu"],
    ["ties go home", cfg, [node("us", 5), node("eu", 5)], "us"],
    ["no nodes anywhere: home", cfg, [], "us"],
    ["starting nodes do not count as capacity", cfg, [node("us", 1), node("eu", 0, "starting")], "us"],
    ["a region listed twice counts once", { region: "local", dockerHostRegions: ["eu", "eu", "ap"] }, [node("ap", 8), node("eu", 1)], "ap"],
  ] as const)("%s", (_name, config, nodes, want) => {
    expect(scaleUpRegion(nodes, config)).toBe(want);
  });
});
