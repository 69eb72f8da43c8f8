/**
 * Fixtures for scheduler tests: node records, fleet snapshots and a tiny in-memory NodeDriver
 * (no processes, no ports) for unit tests of the jobs.
 */
import type { NodeRecord } from "../../core/types.ts";
import type { DriverNodeInfo, NodeDriver, NodeHandle, NodeSpec } from "../../scheduler/drivers/driver.ts";
import type { FleetSnapshot } from "../../scheduler/policy/desired-nodes.ts";

export const T0 = 1_700_000_000_000;

export function nodeRec(id: string, over: Partial<NodeRecord> = {}): NodeRecord {
  return {
    id,
    state: "ready",
    host: "127.0.0.1",
    port: 9000,
    region: "local",
    capacity: 1,
    maxRooms: 100,
    rooms: 0,
    players: 0,
    token: "tok",
    driver: "memory",
    ref: id,
    dockerHost: "",
    startedAt: T0,
    lastSeenAt: T0,
    stateChangedAt: T0,
    lastActivityAt: T0,
    stoppedAt: 0,
    healthFailures: 0,
    requestId: "r",
    ...over,
  };
}

export function snapshot(over: Partial<FleetSnapshot> = {}): FleetSnapshot {
  return { nodes: [], pendingJoins: 0, pendingStarts: 0, floor: 0, lastScaleUpAt: 0, lastScaleDownAt: 0, ...over };
}

interface MemInstance {
  spec: NodeSpec;
  running: boolean;
  startedAt: number;
  starts: number;
}

/**
 * A NodeDriver that only remembers what it was asked. `failStarts` makes the next N starts throw;
 * `calls` records every call in order.
 */
export class MemoryDriver implements NodeDriver {
  readonly kind = "memory";
  readonly instances = new Map<string, MemInstance>();
  readonly calls: string[] = [];
  failStarts = 0;

  async start(spec: NodeSpec): Promise<NodeHandle> {
    this.calls.push(`start ${spec.nodeId}`);
    if (this.failStarts > 0) {
      this.failStarts--;
      throw new Error("memory driver: start failed on purpose");
    }
    const cur = this.instances.get(spec.nodeId);
    if (cur) {
      if (!cur.running) cur.starts++;
      cur.running = true;
    } else this.instances.set(spec.nodeId, { spec, running: true, startedAt: Date.now(), starts: 1 });
    return this.handle(spec.nodeId, spec.port);
  }

  async stop(nodeId: string, _graceMs: number): Promise<void> {
    this.calls.push(`stop ${nodeId}`);
    const cur = this.instances.get(nodeId);
    if (cur) cur.running = false;
  }

  async remove(nodeId: string): Promise<void> {
    this.calls.push(`remove ${nodeId}`);
    this.instances.delete(nodeId);
  }

  async list(): Promise<DriverNodeInfo[]> {
    return [...this.instances.keys()].map((id) => this.info(id)).filter((i): i is DriverNodeInfo => i !== undefined);
  }

  async inspect(nodeId: string): Promise<DriverNodeInfo | undefined> {
    return this.info(nodeId);
  }

  async logs(): Promise<string> {
    return "";
  }

  async close(): Promise<void> {}

  private handle(nodeId: string, port: number): NodeHandle {
    return { nodeId, driver: this.kind, ref: `mem-${nodeId}`, host: "127.0.0.1", port, dockerHost: "" };
  }

  private info(nodeId: string): DriverNodeInfo | undefined {
    const i = this.instances.get(nodeId);
    if (!i) return undefined;
    return { ...this.handle(nodeId, i.spec.port), running: i.running, exitCode: i.running ? undefined : 0, startedAt: i.startedAt };
  }
}
