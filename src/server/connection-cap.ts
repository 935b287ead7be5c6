// Open connections of the block server, capped overall and per client address below the process's fd limit (issue
// 10 point 14: ~1,100 idle connections under `ulimit -n 1024` left the box answering nothing). A new connection over
// a cap first closes the longest-idle connection (no request in progress: a keep-alive one, or one that never sent
// a request) of that address, or of anyone for the overall cap; with none idle it is closed at once. The owner
// (an address allowed /status and /metrics) has a few connections beyond the caps, answered only on those routes,
// so the owner can always see what is going on. Used by block-server.ts.

import type { Socket } from 'node:net';
import { sourceKey } from '../util/address-policy.js';

export interface ConnectionCapLimits {
  maxConnections: number;
  maxConnectionsPerAddress: number;
  /** Connections beyond the caps for the owner's /status and /metrics only (0: none). */
  ownerConnections: number;
}

export interface ConnectionCapStats {
  /** Connections open now (owner slots included), and of them on owner slots. */
  connections: number;
  ownerConnections: number;
  /** Connections closed at once because every cap was full and nothing was idle. */
  refusedConnections: number;
  /** Idle connections closed to make room for a new one. */
  idleClosed: number;
}

interface Entry {
  /** Its source (sourceKey: the address, or an IPv6 address's /64). */
  address: string;
  /** Requests in progress on it (pipelined ones each count). */
  busy: number;
  owner: boolean;
}

export class ConnectionCap {
  private readonly entries = new Map<Socket, Entry>();
  /** Idle connections, longest idle first (re-inserted when they become idle). */
  private readonly idle = new Set<Socket>();
  private readonly perAddress = new Map<string, number>();
  private regular = 0;
  private owners = 0;
  private refused = 0;
  private idleClosed = 0;

  constructor(
    private readonly limits: ConnectionCapLimits,
    private readonly isOwner: (address: string) => boolean,
  ) {}

  /** A new connection: admitted (closing an idle one first if a cap is full), on an owner slot, or destroyed. */
  open(socket: Socket): void {
    const remote = socket.remoteAddress ?? 'unknown';
    // Per source: an IPv6 client is its /64 (one host is handed a whole /64 and could spread over it).
    const address = sourceKey(remote);
    const l = this.limits;
    const fits =
      ((this.perAddress.get(address) ?? 0) < l.maxConnectionsPerAddress || this.closeIdle((e) => !e.owner && e.address === address)) &&
      (this.regular < l.maxConnections || this.closeIdle((e) => !e.owner));
    let owner = false;
    if (!fits) {
      owner = l.ownerConnections > 0 && this.isOwner(remote) && (this.owners < l.ownerConnections || this.closeIdle((e) => e.owner));
      if (!owner) {
        this.refused++;
        socket.destroy();
        return;
      }
    }
    this.entries.set(socket, { address, busy: 0, owner });
    this.idle.add(socket);
    if (owner) this.owners++;
    else {
      this.regular++;
      this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    }
    socket.once('close', () => this.forget(socket));
  }

  /** True if the connection is on an owner slot: only /status and /metrics are answered on it. */
  onOwnerSlot(socket: Socket): boolean {
    return this.entries.get(socket)?.owner === true;
  }

  /** A request started on the connection. */
  busy(socket: Socket): void {
    const e = this.entries.get(socket);
    if (e === undefined) return;
    e.busy++;
    this.idle.delete(socket);
  }

  /** A request on the connection ended (its response finished or was cut). */
  done(socket: Socket): void {
    const e = this.entries.get(socket);
    if (e === undefined || e.busy === 0) return;
    if (--e.busy === 0) this.idle.add(socket);
  }

  stats(): ConnectionCapStats {
    return { connections: this.entries.size, ownerConnections: this.owners, refusedConnections: this.refused, idleClosed: this.idleClosed };
  }

  /** Close the longest-idle connection that `which` accepts; false if there is none. */
  private closeIdle(which: (e: Entry) => boolean): boolean {
    for (const socket of this.idle) {
      const e = this.entries.get(socket)!;
      if (!which(e)) continue;
      this.forget(socket); // counted free now: 'close' comes later
      this.idleClosed++;
      socket.destroy();
      return true;
    }
    return false;
  }

  private forget(socket: Socket): void {
    const e = this.entries.get(socket);
    if (e === undefined) return;
    this.entries.delete(socket);
    this.idle.delete(socket);
    if (e.owner) {
      this.owners--;
      return;
    }
    this.regular--;
    const n = (this.perAddress.get(e.address) ?? 1) - 1;
    if (n === 0) this.perAddress.delete(e.address);
    else this.perAddress.set(e.address, n);
  }
}
