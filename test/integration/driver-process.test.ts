import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ProcessDriver } from "../../scheduler/drivers/process-driver.ts";
import { runDriverConformance } from "../support/driver-conformance.ts";

const stateDir = join(tmpdir(), `fg-process-driver-${crypto.randomUUID().slice(0, 8)}`);

runDriverConformance("process (Bun.spawn)", () => new ProcessDriver({ fleet: "conformance", stateDir }), {
  readyTimeoutMs: 5000,
  cleanup: async () => rmSync(stateDir, { recursive: true, force: true }),
});
