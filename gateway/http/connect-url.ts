/**
 * The one builder of the WebSocket URL a client is told to open (joins, room joins, matches).
 * PUBLIC_URL when set (the edge's public address); otherwise the scheme and Host the client used
 * for this request — so a client that came through the HAProxy edge is sent back through it, never
 * straight to a gateway's own port.
 */
export function connectUrl(publicUrl: string | undefined, request: Request, roomCode: string, seatToken?: string): string {
  let base: string;
  if (publicUrl) base = publicUrl.replace(/\/+$/, "");
  else {
    const u = new URL(request.url);
    const forwarded = request.headers.get("x-forwarded-proto");
    const proto = forwarded === "https" || forwarded === "http" ? `${forwarded}:` : u.protocol;
    base = `${proto}//${request.headers.get("host") ?? u.host}`;
  }
  const seat = seatToken ? `&seat=${encodeURIComponent(seatToken)}` : "";
  return `${base.replace(/^http/, "ws")}/v1/connect?room=${encodeURIComponent(roomCode)}${seat}`;
}
