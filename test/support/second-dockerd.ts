/**
 * A second Docker engine on this machine for the chaos suite: its own unix socket, data root,
 * exec root (so its own managed containerd) and pid file, with a bridge of its own and
 * `--iptables=false` so it does not fight the machine's engine over docker0 or iptables (an engine
 * started with `--bridge=none` deletes the host's docker0). Nodes run with host networking,
 * so no bridge is needed. The node image is copied in with `docker save | docker load`.
 *
 * `kill()` takes the host away as a crash would: every container of the engine SIGKILLed, then the
 * engine and its containerd SIGKILLed. `start()` brings it back on the same data root.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import Docker from "dockerode";
import { waitFor } from "./services.ts";

export interface SecondDockerd {
  /** `unix:///…/docker.sock`, as DOCKER_HOSTS lists it. */
  host: string;
  socket: string;
  docker: Docker;
  root: string;
  /** The engine is up and answers its container API. */
  start(): Promise<void>;
  /** Every container SIGKILLed, then the engine and its containerd SIGKILLed. */
  kill(): Promise<void>;
  /** A clean engine restart (SIGTERM, wait, start again). */
  restart(): Promise<void>;
  /** Stops the engine and removes its roots. */
  stop(): Promise<void>;
}

function pidsOf(pattern: RegExp): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8").replace(/\0/g, " ");
      if (pattern.test(cmd)) out.push(Number(d));
    } catch {}
  }
  return out;
}

export async function startSecondDockerd(image: string): Promise<SecondDockerd> {
  // Short: a unix socket path is limited to 108 bytes.
  const root = mkdtempSync("/tmp/fg-d2-");
  const socket = join(root, "docker.sock");
  const execRoot = join(root, "exec");
  // A bridge of its own (interface names are at most 15 characters), made before the engine starts.
  const bridge = `fgd2${root.slice(-6).replace(/[^A-Za-z0-9]/g, "")}`.slice(0, 15);
  const octet = 10 + Math.floor(Math.random() * 200);
  const ip = (args: string[]) => Bun.spawnSync(["ip", ...args], { stdout: "ignore", stderr: "pipe" });
  if (ip(["link", "show", bridge]).exitCode !== 0) {
    for (const args of [["link", "add", bridge, "type", "bridge"], ["addr", "add", `10.231.${octet}.1/24`, "dev", bridge], ["link", "set", bridge, "up"]]) {
      const r = ip(args);
      if (r.exitCode !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.toString()}`);
    }
  }
  let proc: Subprocess | undefined;
  let starts = 0;
  const docker = new Docker({ socketPath: socket });
  const answers = async () => {
    try {
      await docker.listContainers({ limit: 1 });
      return true;
    } catch {
      return false;
    }
  };
  const self: SecondDockerd = {
    host: `unix://${socket}`,
    socket,
    docker,
    root,
    async start() {
      // A SIGKILLed engine leaves its pid file, which the next start refuses ("pid file found").
      rmSync(join(root, "docker.pid"), { force: true });
      proc = Bun.spawn(
        [
          "dockerd",
          "--host", `unix://${socket}`,
          "--data-root", join(root, "data"),
          "--exec-root", execRoot,
          "--pidfile", join(root, "docker.pid"),
          // Its own bridge, never `--bridge=none`: an engine started with no bridge deletes the
          // host's `docker0` (seen here: the machine engine's bridge-mode containers then fail).
          "--bridge", bridge,
          "--iptables=false",
          "--ip-masq=false",
          "--containerd-namespace", "fgchaos2",
          "--containerd-plugins-namespace", "fgchaos2-plugins",
        ],
        { stdout: "ignore", stderr: Bun.file(join(root, `dockerd-${++starts}.log`)), detached: true },
      );
      const p = proc;
      await waitFor(
        async () => {
          if (p.exitCode !== null) throw new Error(`the second dockerd exited ${p.exitCode}: ${readFileSync(join(root, `dockerd-${starts}.log`), "utf8").slice(-1_000)}`);
          return answers();
        },
        60_000,
        "the second dockerd to answer",
        200,
      );
    },
    async kill() {
      for (const c of await docker.listContainers().catch(() => [])) await docker.getContainer(c.Id).kill().catch(() => {});
      proc?.kill("SIGKILL");
      await proc?.exited;
      // Its managed containerd (and any shim) run from its exec root.
      for (const pid of pidsOf(new RegExp(execRoot.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")))) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
      }
      await waitFor(() => pidsOf(new RegExp(execRoot.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&"))).length === 0, 10_000, "the second engine's containerd gone", 100);
      // Else the next start finds the pid file, takes the pid (dead, or already another process's)
      // for a running containerd and waits for its socket until it gives up.
      rmSync(join(execRoot, "containerd", "containerd.pid"), { force: true });
    },
    async restart() {
      proc?.kill("SIGTERM");
      await Promise.race([proc?.exited, Bun.sleep(20_000)]);
      if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await proc?.exited;
      await self.start();
    },
    async stop() {
      if (proc && proc.exitCode === null && proc.signalCode === null) {
        for (const c of await docker.listContainers({ all: true }).catch(() => [])) await docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
        proc.kill("SIGTERM");
        await Promise.race([proc.exited, Bun.sleep(20_000)]);
        if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
        await proc.exited;
      }
      for (const pid of pidsOf(new RegExp(execRoot.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")))) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
      }
      // Overlay mounts of a killed engine may linger under its data root.
      Bun.spawnSync(["sh", "-c", `grep -o ' ${root}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
      rmSync(root, { recursive: true, force: true });
      ip(["link", "del", bridge]);
    },
  };
  await self.start();
  // The node image: docker save (first engine) | docker load (this one).
  const load = Bun.spawnSync(["sh", "-c", `docker save ${image} | docker -H unix://${socket} load -q`], { stdout: "pipe", stderr: "pipe" });
  if (load.exitCode !== 0) {
    await self.stop();
    throw new Error(`loading ${image} into the second engine failed: ${load.stderr.toString()}`);
  }
  return self;
}
