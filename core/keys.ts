/**
 * Every Redis key, channel and queue name of one deployment, built in one place.
 * All live under the deployment's prefix, so two deployments (or two tests) never collide and
 * `SCAN prefix:*` finds everything one of them wrote.
 */
import { ROOM_CODE_RE } from "./names.ts";

export interface Keys {
  readonly prefix: string;
  /** BullMQ `prefix` option for every queue of this deployment. */
  readonly bullPrefix: string;

  // Nodes
  node(nodeId: string): string; // hash: the node record
  readonly nodes: string; // set of node ids
  nodeRooms(nodeId: string): string; // set of room codes placed on the node
  nodeActivity(nodeId: string): string; // string: last player activity (ms)
  nodeSeats(nodeId: string): string; // set of player-session ids holding a seat on the node (join reservations)
  nodeRoomSeats(nodeId: string): string; // hash room code -> player seats the room takes on the node (its maxPlayers, at most the capacity)
  readonly ports: string; // hash port -> nodeId (process driver / host networking allocation)

  // Gateways
  gateway(gatewayId: string): string; // hash with TTL: a live gateway replica
  readonly gateways: string; // zset gatewayId -> last heartbeat (ms)

  // Rooms
  room(code: string): string; // hash: the room record (incl. nodeId once placed)
  roomNode(code: string): string; // string: the node a room is placed on (placement; never recomputed while the room lives)
  roomPlayers(code: string): string; // hash playerId -> join order (the longest-seated player becomes host)
  roomBanned(code: string): string; // set of kicked player ids
  roomInvites(code: string): string; // set of invited player ids
  roomVotes(code: string): string; // set of player ids voting to restart (state `ending`)
  readonly lobbies: string; // set of "mode|region" pairs that have a lobby zset
  readonly rooms: string; // set of live room codes
  lobby(mode: string, region: string): string; // zset of public rooms with open seats
  readonly matchResults: string; // stream of match results
  readonly roomAbsences: string; // zset "code|playerId" -> absent since (ms): seated players with no open socket (seat reaper)
  roomPresence(code: string): string; // hash "gatewayId|playerId" -> open WebSocket count
  roomSnapshot(code: string): string; // string (bytes): the room's last snapshot from its node (session resume), TTL SNAPSHOT_TTL
  roomResume(code: string): string; // string: the room's resume count (X-Resume attempts of its players), TTL RESUME_TIMEOUT × 6
  gatewayPresence(gatewayId: string): string; // set of "code|playerId" a gateway holds sockets for (cleaned when it dies)
  readonly presenceGateways: string; // zset gatewayId -> last presence write (ms): gateways that may hold presence

  // Player sessions
  session(sessionId: string): string; // hash
  playerSession(playerId: string): string; // string: the player's current session id
  readonly sessions: string; // zset sessionId -> expiry (ms)

  // Auth
  refreshToken(tokenId: string): string; // string: playerId, single use
  seatToken(tokenId: string): string;

  // Matchmaking
  ticket(ticketId: string): string; // hash
  ticketQueue(mode: string, region: string): string; // zset ticketId -> enqueue time
  readonly ticketQueues: string; // set of "mode|region" pairs that have queues
  playerTicket(playerId: string): string; // string: the player's queued ticket id

  // Scaling
  readonly pendingJoins: string; // zset waiterId -> deadline: joins waiting for a node
  readonly scaleState: string; // hash: lastScaleUpAt, lastScaleDownAt, ...
  readonly scaleEvents: string; // list (capped): recent scaling decisions for the dashboard

  // Dashboard
  readonly historyFleet: string; // list (capped ring, newest first): JSON fleet samples (players, capacity, nodes, rooms, queue)
  historyGateway(gatewayId: string): string; // list (capped ring, newest first): one gateway's JSON samples (joins, join p99, frames)
  readonly historyGateways: string; // set of gateway ids with a history ring
  readonly historyFleetLock: string; // string with TTL: which gateway writes this interval's fleet sample
  readonly dashboardWatch: string; // string with TTL: a dashboard is open (the scheduler then samples node stats and logs)
  nodeStats(nodeId: string): string; // string with TTL: JSON CPU / memory of the node's container (from the driver)
  nodeLogs(nodeId: string): string; // string with TTL: the tail of the node's log (from the driver)

  // Fleet versions and rollouts
  readonly fleetVersions: string; // hash: active version (JSON), target version (JSON), canaryPercent, rolloutId
  rollout(id: string): string; // hash: one rollout's record
  rolloutEvents(id: string): string; // list of JSON timeline events of one rollout (capped)
  readonly rollouts: string; // zset rolloutId -> started at (ms): rollout history

  // Rate limiting
  rateLimit(scope: string, id: string, window: number): string;

  // Locks
  lock(name: string): string;

  // Pub/sub channels
  readonly nodeEventsChannel: string; // node registry changes
  readonly gatewayEventsChannel: string; // gateway replica changes
  readonly roomEventsChannel: string; // kicks, closes, host changes: the gateways act on them
  readonly templaterEventsChannel: string; // reload outcomes
  readonly templaterLast: string; // string: JSON of the last templater event (for a freshly opened dashboard)

  // Queues (BullMQ queue names; the prefix is bullPrefix)
  readonly queues: {
    readonly scaleUp: string;
    readonly drain: string;
    readonly reap: string;
    readonly wake: string;
    readonly autoscale: string;
    readonly matchmaker: string;
    readonly rollout: string;
  };
}

/** Room codes (core/names.ts) are checked before any key is built from one. */
export { ROOM_CODE_RE };
const ID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

function safe(kind: string, id: string, re: RegExp = ID_RE): string {
  if (!re.test(id)) throw new Error(`unsafe ${kind} in Redis key: ${JSON.stringify(id).slice(0, 80)}`);
  return id;
}

export function createKeys(prefix: string): Keys {
  const p = `${prefix}:`;
  return Object.freeze({
    prefix,
    bullPrefix: `${prefix}:bull`,

    node: (id: string) => `${p}node:${safe("node id", id)}`,
    nodes: `${p}nodes`,
    nodeRooms: (id: string) => `${p}node:${safe("node id", id)}:rooms`,
    nodeSeats: (id: string) => `${p}node:${safe("node id", id)}:seats`,
    nodeRoomSeats: (id: string) => `${p}node:${safe("node id", id)}:room-seats`,
    nodeActivity: (id: string) => `${p}node:${safe("node id", id)}:activity`,
    ports: `${p}ports`,

    gateway: (id: string) => `${p}gateway:${safe("gateway id", id)}`,
    gateways: `${p}gateways`,

    room: (code: string) => `${p}room:${safe("room code", code, ROOM_CODE_RE)}`,
    roomNode: (code: string) => `${p}room:${safe("room code", code, ROOM_CODE_RE)}:node`,
    roomPlayers: (code: string) => `${p}room:${safe("room code", code, ROOM_CODE_RE)}:players`,
    roomBanned: (code: string) => `${p}room:${safe("room code", code, ROOM_CODE_RE)}:banned`,
    roomInvites: (code: string) => `${p}room:${safe("room code", code, ROOM_CODE_RE)}:invites`,
    roomVotes: (code: string) => `${p}room:${safe("room code", code, ROOM_CODE_RE)}:votes`,
    lobbies: `${p}lobbies`,
    rooms: `${p}rooms`,
    lobby: (mode: string, region: string) => `${p}lobby:${safe("mode", mode)}:${safe("region", region)}`,
    matchResults: `${p}stream:match-results`,
    roomAbsences: `${p}room-absences`,
    roomPresence: (code: string) => `${p}room:${safe("room code", code, ROOM_CODE_RE)}:presence`,
    roomSnapshot: (code: string) => `${p}room:${safe("room code", code, ROOM_CODE_RE)}:snapshot`,
    roomResume: (code: string) => `${p}room:${safe("room code", code, ROOM_CODE_RE)}:resume`,
    gatewayPresence: (id: string) => `${p}gateway:${safe("gateway id", id)}:presence`,
    presenceGateways: `${p}presence-gateways`,

    session: (id: string) => `${p}session:${safe("session id", id)}`,
    playerSession: (playerId: string) => `${p}player:${safe("player id", playerId)}:session`,
    sessions: `${p}sessions`,

    refreshToken: (id: string) => `${p}refresh:${safe("token id", id)}`,
    seatToken: (id: string) => `${p}seat:${safe("token id", id)}`,

    ticket: (id: string) => `${p}ticket:${safe("ticket id", id)}`,
    ticketQueue: (mode: string, region: string) => `${p}tickets:${safe("mode", mode)}:${safe("region", region)}`,
    ticketQueues: `${p}tickets:queues`,
    playerTicket: (playerId: string) => `${p}player:${safe("player id", playerId)}:ticket`,

    pendingJoins: `${p}pending-joins`,
    scaleState: `${p}scale:state`,
    scaleEvents: `${p}scale:events`,

    historyFleet: `${p}history:fleet`,
    historyGateway: (id: string) => `${p}history:gateway:${safe("gateway id", id)}`,
    historyGateways: `${p}history:gateways`,
    historyFleetLock: `${p}history:fleet:lock`,
    dashboardWatch: `${p}dashboard:watch`,
    nodeStats: (id: string) => `${p}node:${safe("node id", id)}:stats`,
    nodeLogs: (id: string) => `${p}node:${safe("node id", id)}:logs`,

    fleetVersions: `${p}fleet:versions`,
    rollout: (id: string) => `${p}rollout:${safe("rollout id", id)}`,
    rolloutEvents: (id: string) => `${p}rollout:${safe("rollout id", id)}:events`,
    rollouts: `${p}rollouts`,

    rateLimit: (scope: string, id: string, window: number) => `${p}rl:${safe("scope", scope)}:${safe("rate id", id)}:${window}`,

    lock: (name: string) => `${p}lock:${safe("lock", name)}`,

    nodeEventsChannel: `${p}events:nodes`,
    gatewayEventsChannel: `${p}events:gateways`,
    roomEventsChannel: `${p}events:rooms`,
    templaterEventsChannel: `${p}events:templater`,
    templaterLast: `${p}templater:last`,

    queues: Object.freeze({
      scaleUp: "scale-up",
      drain: "drain",
      reap: "reap",
      wake: "wake",
      autoscale: "autoscale",
      matchmaker: "matchmaker",
      rollout: "rollout",
    }),
  });
}
