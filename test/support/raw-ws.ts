/**
 * A WebSocket client on a bare TCP socket, for tests that need control a WebSocket object does not
 * give: stop reading (`socket.pause()`) to build backpressure, and see every byte the gateway sends.
 */
import { randomBytes } from "node:crypto";
import { connect as tcpConnect, type Socket } from "node:net";

export interface RawWebSocket {
  socket: Socket;
  /** The HTTP response head of the upgrade ("HTTP/1.1 101 ..." when it succeeded). */
  handshake: string;
}

/**
 * Opens `/v1/connect?room=<room>` on 127.0.0.1:`port` with a bearer token; every byte after the
 * upgrade response (frames, unparsed) goes to `onBytes`, including bytes that arrived with it.
 */
export function rawConnect(port: number, room: string, token: string, onBytes: (b: Buffer) => void): Promise<RawWebSocket> {
  const socket = tcpConnect(port, "127.0.0.1");
  let head = "";
  return new Promise<RawWebSocket>((resolve, reject) => {
    socket.once("error", reject);
    socket.on("data", (c: Buffer) => {
      if (head.includes("\r\n\r\n")) return onBytes(c);
      head += c.toString("latin1");
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      const rest = Buffer.from(head.slice(end + 4), "latin1");
      head = head.slice(0, end + 4);
      if (rest.length) onBytes(rest);
      resolve({ socket, handshake: head });
    });
    socket.write(
      `GET /v1/connect?room=${room} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: bearer, ${token}\r\n\r\n`,
    );
  });
}

/** A masked binary client frame (RFC 6455: 7-bit, 16-bit or 64-bit length). */
export function clientFrame(payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const len = payload.length;
  let head: Buffer;
  if (len < 126) head = Buffer.from([0x82, 0x80 | len]);
  else if (len < 65536) head = Buffer.from([0x82, 0x80 | 126, len >> 8, len & 0xff]);
  else {
    head = Buffer.alloc(10);
    head[0] = 0x82;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, mask, body]);
}
