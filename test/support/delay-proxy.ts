/**
 * A TCP proxy that holds every byte coming back from its target for a set delay — a stand-in for
 * distance, since this machine's kernel has no `netem`. Put one in front of a region's gateway and
 * that region's ping URL (and anything else through it) answers `delayMs` later. The delay can be
 * changed while it runs.
 */
import type { Socket, TCPSocketListener } from "bun";

export interface DelayProxy {
  readonly port: number;
  readonly url: string;
  /** Added to every answer, ms; change it at any time. */
  delayMs: number;
  stop(): void;
}

interface ClientState {
  up: Socket<undefined> | undefined;
  pending: Uint8Array[];
  closed: boolean;
}

export function startDelayProxy(targetPort: number, delayMs: number, targetHost = "127.0.0.1"): DelayProxy {
  const proxy: { delayMs: number } = { delayMs };
  const open = new Set<Socket<ClientState>>();
  const server: TCPSocketListener<ClientState> = Bun.listen<ClientState>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(client) {
        client.data = { up: undefined, pending: [], closed: false };
        open.add(client);
        Bun.connect({
          hostname: targetHost,
          port: targetPort,
          socket: {
            open(up) {
              if (client.data.closed) return void up.end();
              client.data.up = up;
              for (const c of client.data.pending) up.write(c);
              client.data.pending = [];
            },
            data(_up, chunk) {
              const copy = new Uint8Array(chunk);
              setTimeout(() => {
                if (!client.data.closed) client.write(copy);
              }, proxy.delayMs);
            },
            close() {
              setTimeout(() => client.end(), proxy.delayMs);
            },
            error() {
              client.end();
            },
          },
        }).catch(() => client.end());
      },
      data(client, chunk) {
        const copy = new Uint8Array(chunk);
        if (client.data.up) client.data.up.write(copy);
        else client.data.pending.push(copy);
      },
      close(client) {
        client.data.closed = true;
        open.delete(client);
        client.data.up?.end();
      },
      error(client) {
        client.end();
      },
    },
  });
  return {
    port: server.port,
    url: `http://127.0.0.1:${server.port}`,
    get delayMs() {
      return proxy.delayMs;
    },
    set delayMs(v: number) {
      proxy.delayMs = v;
    },
    stop() {
      for (const c of open) c.end();
      server.stop(true);
    },
  };
}
