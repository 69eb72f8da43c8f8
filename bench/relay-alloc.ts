/**
 * `bun bench/relay-alloc.ts` — what the relay's per-frame hot path allocates, counted by JSC
 * itself: each case runs in a child process with `BUN_JSC_logGC=1`, which logs every collection
 * with the bytes allocated since the previous one and its pause. Bytes per frame = the bytes the
 * collections reported ÷ frames (the last, uncollected cycle is not counted: a lower bound for
 * small figures); GCs and pauses per million frames.
 *
 * Cases (64-byte payloads):
 *   up: Buffer per frame     client → node, the old encode (`encodeClientFrame`: a Buffer per frame)
 *                            handed to a socket's `write` (a stand-in that reads it and takes it all);
 *   up: reused buffer        the same, encoded into one reused buffer (`encodeClientFrameInto`) and
 *                            written with `write(buf, 0, len)` (what UpstreamSocket does now);
 *   down: text, view + TextDecoder   node → client, the old text path: `FrameParser.push` of chunks
 *                            of 100 frames, a view of the chunk per message decoded by TextDecoder;
 *   down: text, checked in place     the new one: small text validated in place and decoded straight
 *                            from the chunk (the string is all that is left: `ws.send` needs it);
 *   down: binary             a view per message (what `ws.send` needs: the floor).
 * Bounded: a fixed number of frames per case; every child and socket ends.
 */
import { clientFrameLength, encodeClientFrame, encodeClientFrameInto, FrameParser, RandomMasks, type FrameSink } from "../gateway/ws/ws-frame.ts";

const FRAMES = 2_000_000;
const PAYLOAD = 64;

const CASES = ["up: Buffer per frame", "up: reused buffer", "down: text, view + TextDecoder", "down: text, checked in place", "down: binary"] as const;
type Case = (typeof CASES)[number];

async function runCase(c: Case): Promise<void> {
  const masks = new RandomMasks();
  const text = "x".repeat(PAYLOAD);
  if (c.startsWith("up")) {
    // A stand-in for the socket that reads what it is given (so nothing can be optimised away) and
    // takes it all: the figure is the encode and the write call, not the kernel.
    let checksum = 0;
    const sock = {
      write(b: Uint8Array, offset = 0, length = b.length): number {
        checksum += b[offset]! + b[offset + length - 1]!;
        return length;
      },
    };
    const scratch = Buffer.allocUnsafe(64 * 1024);
    const old = c === "up: Buffer per frame";
    for (let i = 0; i < FRAMES; i++) {
      if (old) sock.write(encodeClientFrame(1, text, PAYLOAD, masks));
      else {
        const len = encodeClientFrameInto(scratch, 1, text, PAYLOAD, masks);
        sock.write(scratch, 0, len);
      }
    }
    if (checksum === 0) throw new Error("nothing written");
    return;
  }
  const binary = c === "down: binary";
  // The old text path (a view of the chunk per message, decoded by TextDecoder) is still the one
  // for chunks that are not Buffers and for text above 4 KiB: a plain Uint8Array chunk takes it.
  const viaView = c === "down: text, view + TextDecoder";
  const one = Buffer.alloc(2 + PAYLOAD);
  one[0] = 0x80 | (binary ? 2 : 1);
  one[1] = PAYLOAD;
  one.fill(0x61, 2);
  const joined = Buffer.concat(Array.from({ length: 100 }, () => one));
  const chunk = viaView ? new Uint8Array(joined) : joined;
  let n = 0;
  const sinkObj: FrameSink = {
    text: () => void n++,
    binary: () => void n++,
    ping() {},
    pong() {},
    closeFrame() {},
    violation: (code, reason) => {
      throw new Error(`${code} ${reason}`);
    },
  };
  const parser = new FrameParser(1024 * 1024);
  for (let done = 0; done < FRAMES; done += 100) parser.push(chunk, sinkObj);
  if (n !== FRAMES) throw new Error(`parsed ${n} of ${FRAMES}`);
}

function summarise(log: string): { gcs: number; bytes: number; maxMs: number; totalMs: number } {
  let gcs = 0;
  let maxMs = 0;
  let totalMs = 0;
  let bytes = 0;
  for (const m of log.matchAll(/bytes allocated this cycle: (\d+)/g)) bytes += Number(m[1]);
  for (const m of log.matchAll(/: START [^\n]*? p=([\d.]+)ms/g)) {
    const ms = Number(m[1]);
    gcs++;
    totalMs += ms;
    if (ms > maxMs) maxMs = ms;
  }
  return { gcs, bytes, maxMs, totalMs };
}

const which = process.argv[2];
if (which) {
  await runCase(which as Case);
  process.exit(0);
}

console.log(`${FRAMES.toLocaleString()} frames of ${PAYLOAD} B per case (client frame ${clientFrameLength(PAYLOAD)} B); JSC's GC log (BUN_JSC_logGC=1)`);
console.log("| case | bytes allocated / frame | GCs / million frames | GC pause max ms | GC pause total ms | wall ms |");
console.log("|---|---|---|---|---|---|");
for (const c of CASES) {
  const t0 = performance.now();
  const p = Bun.spawn([process.execPath, import.meta.path, c], { env: { ...process.env, BUN_JSC_logGC: "1" }, stdout: "pipe", stderr: "pipe" });
  const kill = setTimeout(() => p.kill("SIGKILL"), 120_000);
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  await p.exited;
  clearTimeout(kill);
  const wall = performance.now() - t0;
  if (p.exitCode !== 0) {
    console.log(`| ${c} | failed (exit ${p.exitCode}): ${(out + err).split("\n").filter((l) => !l.includes("GC")).slice(-3).join(" ")} |`);
    continue;
  }
  const s = summarise(out + err);
  console.log(`| ${c} | ${(s.bytes / FRAMES).toFixed(1)} | ${((s.gcs * 1e6) / FRAMES).toFixed(1)} | ${s.maxMs.toFixed(2)} | ${s.totalMs.toFixed(1)} | ${wall.toFixed(0)} |`);
}
