/**
 * The CONTRACT frame rate through a real gateway to a real echo node: a per-connection token bucket
 * (WS_RATE_LIMIT per second, bursts up to WS_RATE_BURST). A burst above it is slowed (the client's
 * socket is paused, TCP pushes back) and every frame arrives; only a client that stays above the
 * rate for WS_RATE_GRACE is closed 4029.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { closedWithin, openSocket, startTestGateway, startTestNode, type TestGateway, type TestNode } from "../support/gateway-fixtures.ts";
import { need, testRedis, type TestRedis } from "../support/services.ts";

describe.skipIf(!need("redis"))("relay frame rate (token bucket)", () => {
  let tr: TestRedis | undefined;
  let gw: TestGateway | undefined;
  let node: TestNode | undefined;

  afterEach(async () => {
    await gw?.stop();
    await node?.stop();
    await tr?.cleanup();
    gw = node = tr = undefined;
  });

  async function start(rate: number, burst: number, graceSeconds: number): Promise<TestGateway> {
    tr = testRedis("gwrate");
    gw = await startTestGateway(tr.prefix, { wsRateLimit: rate, wsRateBurst: burst, wsRateGraceMs: graceSeconds * 1000 });
    node = await startTestNode(gw.deps, { roomMode: "echo" });
    return gw;
  }

  test("500 frames at once with the default limits (200/s, burst 400) all arrive, in order; slowed, not closed", async () => {
    const g = await start(200, 0, 5); // 0: the default burst, twice the rate
    const s = openSocket(`${g.wsUrl}/v1/connect?room=rate-burst`, ["bearer", await g.token()]);
    await s.opened;
    // Let the upstream open first, so the burst meets the bucket rather than the pre-open queue.
    s.ws.send("ready");
    await s.waitMessages(1);
    const t0 = performance.now();
    for (let i = 0; i < 500; i++) s.ws.send(`f${i}`);
    await s.waitMessages(501, 10_000);
    const elapsed = performance.now() - t0;
    expect(s.messages.slice(1)).toEqual(Array.from({ length: 500 }, (_, i) => `f${i}`));
    // 400 from the bucket (the "ready" frame took one), the rest only as tokens come back at
    // 200/s: about half a second. Without the pause the echo comes back in a few ms.
    expect(elapsed).toBeGreaterThan(400);
    expect(s.ws.readyState).toBe(WebSocket.OPEN);
    // Past the episode the client is back to normal: a frame goes through at once.
    await Bun.sleep(100);
    s.ws.send("after");
    await s.waitMessages(502);
    expect(s.messages[501]).toBe("after");
    s.ws.close(1000);
    expect((await closedWithin(s)).code).toBe(1000);
  });

  test("a sustained flood is slowed to the rate, then closed 4029 once WS_RATE_GRACE has passed above it", async () => {
    const rate = 100;
    const burst = 200;
    const grace = 1;
    const g = await start(rate, burst, grace);
    const s = openSocket(`${g.wsUrl}/v1/connect?room=rate-flood`, ["bearer", await g.token()]);
    await s.opened;
    s.ws.send("ready");
    await s.waitMessages(1);
    let closedAt = -1;
    void s.closed.then(() => (closedAt = performance.now()));
    const t0 = performance.now();
    let sent = 0;
    // Bounded: at most 8 s and 200,000 frames; keeps ~256 KiB in the client's buffer (TCP pushes back).
    while (closedAt < 0 && performance.now() - t0 < 8000 && sent < 200_000) {
      while (s.ws.readyState === WebSocket.OPEN && s.ws.bufferedAmount < 256 * 1024 && sent < 200_000) {
        s.ws.send(`flood-${sent++}`);
      }
      await Bun.sleep(5);
    }
    const c = await closedWithin(s, 3000);
    expect(c.code).toBe(4029);
    expect(c.reason).toContain("WS_RATE_LIMIT");
    const lasted = closedAt - t0;
    // The episode starts once the 200-frame burst is spent (at once, for this flood): closed after
    // the grace, and not much later.
    expect(lasted).toBeGreaterThanOrEqual(grace * 1000 - 50);
    expect(lasted).toBeLessThan(grace * 1000 + 2000);
    // Slowed while it lasted: the node saw about burst + rate × time frames, not the whole flood.
    const echoed = s.messages.length - 1;
    expect(echoed).toBeLessThanOrEqual(burst + (rate * lasted) / 1000 + 50);
    expect(sent).toBeGreaterThan(echoed * 2);
    // Every frame the node did get came back in order.
    expect(s.messages.slice(1)).toEqual(Array.from({ length: echoed }, (_, i) => `flood-${i}`));
  });

  test("a client at the rate is never closed", async () => {
    const g = await start(100, 0, 0.5);
    const s = openSocket(`${g.wsUrl}/v1/connect?room=rate-steady`, ["bearer", await g.token()]);
    await s.opened;
    // 80 frames/s for 2 s (4× the grace), in 10 ms steps: under the rate all the way.
    const total = 160;
    const t0 = performance.now();
    for (let i = 0; i < total; i++) {
      s.ws.send(`s${i}`);
      const due = t0 + ((i + 1) * 1000) / 80;
      const wait = due - performance.now();
      if (wait > 0) await Bun.sleep(wait);
    }
    await s.waitMessages(total, 5000);
    expect(s.messages).toEqual(Array.from({ length: total }, (_, i) => `s${i}`));
    expect(s.ws.readyState).toBe(WebSocket.OPEN);
    s.ws.close(1000);
  });
});
