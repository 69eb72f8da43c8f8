/**
 * The client side of the RFC 6455 opening handshake, pure: the request the relay writes to a node,
 * and the check of the node's answer (101, Upgrade/Connection, Sec-WebSocket-Accept from our key,
 * and no extension or subprotocol we did not offer).
 */

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** The longest handshake answer accepted: a node's 101 is a few hundred bytes. */
export const MAX_HANDSHAKE_RESPONSE_BYTES = 16 * 1024;

/** A fresh Sec-WebSocket-Key: 16 random bytes, base64. */
export function newWebSocketKey(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Buffer.from(b).toString("base64");
}

/** The Sec-WebSocket-Accept a server must answer to `key`. */
export function acceptFor(key: string): string {
  return new Bun.CryptoHasher("sha1").update(key + WS_GUID).digest("base64");
}

/** Header names and values must not be able to end the header block or smuggle one in. */
function headerSafe(s: string): boolean {
  return !/[\r\n\0]/.test(s);
}

/**
 * The GET upgrade request. Throws on a header name or value that could break the request
 * (CR, LF or NUL), so a caller's bad value never reaches the wire.
 */
export function handshakeRequest(host: string, port: number, path: string, key: string, headers: Record<string, string>): string {
  if (!headerSafe(path) || /\s/.test(path)) throw new Error("invalid request path");
  let out = `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`;
  for (const name in headers) {
    const value = headers[name]!;
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || !headerSafe(value)) throw new Error(`invalid header ${JSON.stringify(name)}`);
    out += `${name}: ${value}\r\n`;
  }
  return out + "\r\n";
}

/** The verdict on a complete response head (everything before the blank line). */
export type HandshakeVerdict = { ok: true } | { ok: false; reason: string };

/** Checks the server's response head (status line and headers, without the final CRLF CRLF). */
export function checkHandshakeResponse(head: string, key: string): HandshakeVerdict {
  const lines = head.split("\r\n");
  const status = /^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? "");
  if (!status) return { ok: false, reason: "not an HTTP/1.1 response" };
  if (status[1] !== "101") return { ok: false, reason: `node answered ${status[1]}` };
  const h = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    if (colon <= 0) return { ok: false, reason: "malformed header line" };
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    // Repeated headers combine with commas (RFC 9110 §5.3).
    h.set(name, h.has(name) ? `${h.get(name)}, ${value}` : value);
  }
  if (h.get("upgrade")?.toLowerCase() !== "websocket") return { ok: false, reason: "missing Upgrade: websocket" };
  const connection = (h.get("connection") ?? "").toLowerCase().split(",").map((s) => s.trim());
  if (!connection.includes("upgrade")) return { ok: false, reason: "missing Connection: Upgrade" };
  if (h.get("sec-websocket-accept") !== acceptFor(key)) return { ok: false, reason: "wrong Sec-WebSocket-Accept" };
  // We offered no extension (no compression: a byte-exact relay) and no subprotocol.
  if (h.has("sec-websocket-extensions")) return { ok: false, reason: "node chose an extension that was not offered" };
  if (h.has("sec-websocket-protocol")) return { ok: false, reason: "node chose a subprotocol that was not offered" };
  return { ok: true };
}
