import { describe, expect, test } from "bun:test";
import { DriverError } from "../../scheduler/drivers/driver.ts";
import { classify, demuxDockerLogs, engineAddresses, pickEngine } from "../../scheduler/drivers/docker-driver.ts";
import { parseLdd } from "../../node/image.ts";

describe("pickEngine: the engine with the fewest running fleet containers", () => {
  const cases: Array<[string, Array<number | undefined>, number]> = [
    ["one engine", [5], 0],
    ["fewest wins", [3, 1, 2], 1],
    ["ties go to the first listed", [2, 2, 2], 0],
    ["unreachable engines are skipped", [undefined, 4, 1], 2],
    ["unreachable with fewer is still skipped", [3, undefined], 0],
    ["none reachable", [undefined, undefined], -1],
    ["no engines", [], -1],
  ];
  for (const [name, counts, want] of cases) test(name, () => expect(pickEngine(counts)).toBe(want));
});

describe("classify: engine errors as DriverErrors", () => {
  const err = (statusCode: number | undefined, message: string) => Object.assign(new Error(message), statusCode === undefined ? {} : { statusCode });
  const cases: Array<[string, Error, boolean]> = [
    ["missing image", err(404, "No such image: x:y"), false],
    ["bad request", err(400, "invalid reference format"), false],
    ["engine 500", err(500, "driver failed programming external connectivity: port is already allocated"), true],
    ["connection refused", err(undefined, "connect ECONNREFUSED 127.0.0.1:1"), true],
  ];
  for (const [name, e, retryable] of cases)
    test(name, () => {
      const d = classify(e, "op");
      expect(d).toBeInstanceOf(DriverError);
      expect(d.retryable).toBe(retryable);
      expect(d.message).toStartWith("op: ");
    });
});

describe("demuxDockerLogs", () => {
  test("a frame cut short keeps what arrived", () => {
    const head = Buffer.alloc(8);
    head[0] = 1;
    head.writeUInt32BE(10, 4);
    expect(demuxDockerLogs(Buffer.concat([head, Buffer.from("abc")]))).toBe("abc");
  });
});

describe("parseLdd", () => {
  test("library paths and the loader, not the vDSO", () => {
    const out = [
      "\tlinux-vdso.so.1 (0x00007ffd)",
      "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fa0)",
      "\t/lib64/ld-linux-x86-64.so.2 (0x00007fa1)",
      "\tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007fa2)",
      "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fa0)",
    ].join("\n");
    expect(parseLdd(out)).toEqual(["/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libm.so.6", "/lib64/ld-linux-x86-64.so.2"]);
  });
});

describe("engineAddresses: where nodes bind and where they are dialled", () => {
  const cases: Array<[string, string, string | undefined, string | undefined, { bind: string; advertise: string }]> = [
    ["unix://default", "127.0.0.1", undefined, undefined, { bind: "127.0.0.1", advertise: "127.0.0.1" }],
    ["unix://wildcard", "0.0.0.0", undefined, undefined, { bind: "0.0.0.0", advertise: "127.0.0.1" }],
    ["tcp://10.0.0.7:2375", "127.0.0.1", undefined, undefined, { bind: "0.0.0.0", advertise: "10.0.0.7" }],
    ["tcp://10.0.0.7:2375", "127.0.0.1", "10.0.0.7", undefined, { bind: "10.0.0.7", advertise: "10.0.0.7" }],
    ["https://docker-b.internal:2376", "127.0.0.1", undefined, "b.lan", { bind: "0.0.0.0", advertise: "b.lan" }],
  ];
  for (const [url, bind, over, adv, want] of cases)
    test(`${url} (bind ${bind}${over ? `, override ${over}` : ""})`, () => {
      const u = url.startsWith("unix://") ? "unix:///var/run/docker.sock" : url;
      expect(engineAddresses(u, bind, over, adv)).toEqual(want);
    });
});
