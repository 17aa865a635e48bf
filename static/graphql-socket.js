// A minimal graphql-transport-ws client: one WebSocket, many operations, reconnection.
//
// The protocol, as the graphql-ws project's PROTOCOL.md defines it:
//   client → connection_init {payload}   server → connection_ack
//   client → subscribe {id, payload}      server → next {id, payload} … complete {id}
//                                         server → error {id, payload: [GraphQLError]}
//   client → complete {id} stops one operation; ping ⇄ pong either way.
//
// Operations outlive the socket: after a reconnect every running subscription is sent
// again, so a page subscribes once and keeps receiving across network blips.

const PROTOCOL = "graphql-transport-ws";

// Close codes after which trying again cannot help: the server said no to us.
const FINAL_CLOSE_CODES = new Map([
  [4400, "the server could not understand a message"],
  [4401, "the socket was not acknowledged"],
  [4403, "the key was refused: unknown, revoked, or not allowed here"],
  [4409, "an operation id was reused"],
]);

const PING_EVERY_MS = 15000;
const SILENCE_LIMIT_MS = 40000; // no message at all for this long: the link is dead
const ACK_TIMEOUT_MS = 10000;

export class GraphQLSocket {
  // url: ws(s)://host/graphql; authorization: "Bearer <key>";
  // onState(state, detail, closeCode): "connecting" | "live" | "retrying" | "closed" | "refused".
  constructor(url, authorization, onState) {
    this.url = url;
    this.authorization = authorization;
    this.onState = onState || (() => {});
    this.operations = new Map(); // id → {payload, sink}
    this.nextId = 1;
    this.attempt = 0;
    this.socket = null;
    this.acknowledged = false;
    this.stopped = false;
    this.timers = { retry: 0, ping: 0, ack: 0 };
    this.lastHeard = 0;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  // Stops for good: no reconnect, every operation ends.
  stop() {
    this.stopped = true;
    this.clearTimers();
    for (const [id, operation] of this.operations) {
      if (this.acknowledged) this.send({ id, type: "complete" });
      operation.sink.complete?.();
    }
    this.operations.clear();
    if (this.socket) this.socket.close(1000, "bye");
    this.socket = null;
    this.onState("closed", "");
  }

  // Runs a query, mutation or subscription; sink = {next(result), error(errors), complete()}.
  // Returns a function that stops it.
  subscribe(query, variables, sink) {
    const id = String(this.nextId++);
    const payload = { query, variables: variables || {} };
    this.operations.set(id, { payload, sink });
    if (this.acknowledged) this.send({ id, type: "subscribe", payload });
    return () => {
      if (!this.operations.delete(id)) return;
      if (this.acknowledged) this.send({ id, type: "complete" });
    };
  }

  // One query's answer as a promise: the data, or a rejection with the errors.
  request(query, variables) {
    return new Promise((resolve, reject) => {
      let settled = false;
      const stop = this.subscribe(query, variables, {
        next: (result) => {
          settled = true;
          stop();
          if (result.errors && result.errors.length) reject(new OperationError(result.errors));
          else resolve(result.data);
        },
        error: (errors) => { settled = true; reject(new OperationError(errors)); },
        complete: () => { if (!settled) reject(new OperationError([{ message: "no answer" }])); },
      });
    });
  }

  open() {
    this.clearTimers();
    this.acknowledged = false;
    this.onState("connecting", this.attempt ? `attempt ${this.attempt + 1}` : "");
    let socket;
    try {
      socket = new WebSocket(this.url, PROTOCOL);
    } catch (error) {
      this.retry(String(error));
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.lastHeard = Date.now();
      this.send({ type: "connection_init", payload: { authorization: this.authorization } });
      this.timers.ack = setTimeout(() => this.drop("no acknowledgement"), ACK_TIMEOUT_MS);
    };
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = (event) => {
      if (socket !== this.socket) return; // an earlier socket, already replaced
      this.socket = null;
      this.acknowledged = false;
      this.clearTimers();
      if (this.stopped) return;
      const final = FINAL_CLOSE_CODES.get(event.code);
      if (final) {
        this.stopped = true;
        this.onState("refused", `${final} (${event.code}${event.reason ? " " + event.reason : ""})`, event.code);
        return;
      }
      this.retry(event.code === 1006 ? "connection lost" : `closed ${event.code} ${event.reason}`.trim());
    };
  }

  receive(raw) {
    this.lastHeard = Date.now();
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      this.drop("unreadable message");
      return;
    }
    const operation = message.id ? this.operations.get(message.id) : undefined;
    switch (message.type) {
      case "connection_ack":
        clearTimeout(this.timers.ack);
        this.acknowledged = true;
        this.attempt = 0;
        // Operations started while away go out now; ones started from onState go out themselves.
        for (const [id, { payload }] of this.operations) this.send({ id, type: "subscribe", payload });
        this.timers.ping = setInterval(() => this.keepAlive(), PING_EVERY_MS);
        this.onState("live", "");
        break;
      case "ping":
        this.send({ type: "pong" });
        break;
      case "pong":
        break;
      case "next":
        operation?.sink.next?.(message.payload);
        break;
      case "error":
        this.operations.delete(message.id);
        operation?.sink.error?.(message.payload);
        break;
      case "complete":
        this.operations.delete(message.id);
        operation?.sink.complete?.();
        break;
      default:
        this.drop(`unexpected message ${message.type}`);
    }
  }

  keepAlive() {
    if (Date.now() - this.lastHeard > SILENCE_LIMIT_MS) {
      this.drop("no answer to ping");
      return;
    }
    this.send({ type: "ping" });
  }

  // Gives up on this socket and tries again.
  drop(reason) {
    const socket = this.socket;
    this.socket = null;
    this.acknowledged = false;
    this.clearTimers();
    if (socket) socket.close(4000, reason.slice(0, 100));
    if (!this.stopped) this.retry(reason);
  }

  // Exponential backoff with jitter: 1 s, 2 s, 4 s … at most 30 s.
  retry(reason) {
    const delay = Math.min(30000, 1000 * 2 ** this.attempt) * (0.75 + Math.random() * 0.5);
    this.attempt += 1;
    this.onState("retrying", `${reason}; retrying in ${Math.round(delay / 1000)} s`);
    this.timers.retry = setTimeout(() => this.open(), delay);
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  clearTimers() {
    clearTimeout(this.timers.retry);
    clearInterval(this.timers.ping);
    clearTimeout(this.timers.ack);
  }
}

// GraphQL errors of one operation, with their codes (extensions.code) kept.
export class OperationError extends Error {
  constructor(errors) {
    super((errors || []).map((e) => e.message).join("; ") || "operation failed");
    this.errors = errors || [];
    this.codes = this.errors.map((e) => e.extensions?.code).filter(Boolean);
  }
}
