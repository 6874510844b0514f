// A TCP proxy for failure tests, in front of the shared PostgreSQL or Redis (which must never be stopped): it can
// cut connections (reset them and refuse new ones), restore itself on the same port, stall them, silence one once it
// sends a given query, lose the answer to one, delay every chunk, or answer every Redis command with an error reply
// itself.
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** Counts the complete RESP commands (arrays of bulk strings) in `buf` from `start`; returns [commands, bytes used]. */
function respCommands(buf: Buffer): [number, number] {
  let n = 0;
  let at = 0;
  for (;;) {
    const head = buf.indexOf('\r\n', at);
    if (head < 0 || buf[at] !== 0x2a /* '*' */) return [n, at];
    const items = Number(buf.toString('latin1', at + 1, head));
    let p = head + 2;
    let complete = true;
    for (let i = 0; i < items; i++) {
      const lenEnd = buf.indexOf('\r\n', p);
      if (lenEnd < 0) {
        complete = false;
        break;
      }
      const len = Number(buf.toString('latin1', p + 1, lenEnd));
      p = lenEnd + 2 + len + 2;
      if (p > buf.length) {
        complete = false;
        break;
      }
    }
    if (!complete) return [n, at];
    n++;
    at = p;
  }
}

export class TcpProxy {
  #target: { host: string; port: number };
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  #stalled = false;
  readonly #held = new Set<() => void>();
  readonly #frozen = new Set<{ value: boolean }>();
  #delayMs = 0;
  #errorReply: string | undefined;
  #silenceOn: { marker: string; done: () => void } | undefined;
  #loseAnswerTo: { markers: readonly string[]; done: () => void } | undefined;
  port = 0;

  constructor(target: { host: string; port: number }) {
    this.#target = target;
  }

  /** A proxy in front of the host and port of `url`; `proxied(url)` is the same URL through the proxy. */
  static async for(url: string, defaultPort: number): Promise<TcpProxy> {
    const u = new URL(url);
    const proxy = new TcpProxy({ host: u.hostname, port: Number(u.port || defaultPort) });
    await proxy.start();
    return proxy;
  }

  /** New connections go to `url`'s host and port from now on (a name that moved); open ones stay where they lead. */
  retarget(url: string, defaultPort: number): void {
    const u = new URL(url);
    this.#target = { host: u.hostname, port: Number(u.port || defaultPort) };
  }

  proxied(url: string): string {
    const u = new URL(url);
    u.host = `127.0.0.1:${this.port}`;
    return u.href;
  }

  async start(): Promise<void> {
    const server = createServer((client) => this.#accept(client));
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  #accept(client: Socket): void {
    const upstream = connect(this.#target);
    const frozen = { value: false };
    this.#frozen.add(frozen);
    client.on('close', () => this.#frozen.delete(frozen));
    for (const s of [client, upstream]) {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    let pending = Buffer.alloc(0);
    /** Set once this connection's client sent loseAnswerTo's markers: the server's next chunk resets the client instead. */
    let answerLost: (() => void) | undefined;
    /** How many of loseAnswerTo's markers this connection's client has sent, in their order. */
    let markersSent = 0;
    const forward = (from: Socket, to: Socket, fromClient: boolean) => {
      // While stalled, chunks are held here (as a partition holds them in flight): delivered on unstall() if the
      // connection is still there, lost with it otherwise.
      const held: Buffer[] = [];
      const release = () => {
        for (const chunk of held.splice(0)) if (!to.destroyed) to.write(chunk);
      };
      this.#held.add(release);
      from.on('close', () => {
        held.length = 0;
        this.#held.delete(release);
      });
      from.on('data', (chunk: Buffer) => {
        const silence = this.#silenceOn;
        if (fromClient && silence && chunk.includes(silence.marker)) {
          this.#silenceOn = undefined;
          frozen.value = true;
          silence.done();
        }
        const lose = this.#loseAnswerTo;
        if (fromClient && lose && chunk.includes(lose.markers[markersSent]!)) markersSent++;
        if (lose && markersSent === lose.markers.length) {
          this.#loseAnswerTo = undefined;
          answerLost = lose.done;
        }
        if (!fromClient && answerLost) {
          client.resetAndDestroy();
          answerLost();
          answerLost = undefined;
          return;
        }
        if (frozen.value) return;
        if (this.#stalled) {
          held.push(chunk);
          return;
        }
        if (fromClient && this.#errorReply !== undefined) {
          // Answer each whole command with the error reply; nothing reaches the server.
          pending = Buffer.concat([pending, chunk]);
          const [n, used] = respCommands(pending);
          pending = pending.subarray(used);
          if (n > 0) client.write(`-${this.#errorReply}\r\n`.repeat(n));
          return;
        }
        if (this.#delayMs > 0) setTimeout(() => to.destroyed || to.write(chunk), this.#delayMs);
        else to.write(chunk);
      });
    };
    forward(client, upstream, true);
    forward(upstream, client, false);
  }

  /** Resets every connection and refuses new ones until restore(). */
  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server) {
      server.close();
      for (const s of this.#sockets) s.destroy();
      await once(server, 'close');
    }
  }

  /** Listens again on the same port (nothing to do when it is listening: a test's `finally` may call it twice). */
  async restore(): Promise<void> {
    if (!this.#server) await this.start();
  }

  /** Resets open connections but keeps accepting new ones (a server restart, seen from the client). */
  reset(): void {
    for (const s of this.#sockets) s.destroy();
  }

  /** Connections stay open but nothing gets through, either way, until unstall(). */
  stall(): void {
    this.#stalled = true;
  }

  unstall(): void {
    this.#stalled = false;
    for (const release of this.#held) release();
  }

  /**
   * The connections open now go silent for good, without a reset (what a NAT or load balancer does when it drops an
   * idle flow): what either side sends is lost. New connections work.
   */
  freezeOpen(): void {
    for (const f of this.#frozen) f.value = true;
  }

  /**
   * The next connection whose client sends `marker` goes silent for good from that chunk on, without a reset (a NAT
   * dropping a flow right after its handshake). Resolves once that has happened.
   */
  silenceOn(marker: string): Promise<void> {
    return new Promise((done) => (this.#silenceOn = { marker, done }));
  }

  /**
   * The next connection whose client sends `markers` (in that order, e.g. a statement and then its transaction's
   * COMMIT, so another transaction's COMMIT on the same client does not match) has the last one delivered, but the
   * server's answer never arrives: the client's connection is reset instead (a failover or a network blip right after
   * a COMMIT reached the server). Resolves once that has happened.
   */
  loseAnswerTo(...markers: [string, ...string[]]): Promise<void> {
    return new Promise((done) => (this.#loseAnswerTo = { markers, done }));
  }

  /** Every chunk (both ways) is passed on this much later (0: at once). */
  delay(ms: number): void {
    this.#delayMs = ms;
  }

  /** Redis only: every command is answered with `-<reply>` by the proxy (undefined: pass through again). */
  replyErrors(reply: string | undefined): void {
    this.#errorReply = reply;
  }

  async close(): Promise<void> {
    await this.cut();
  }
}
