/**
 * The client side of bench/kv's floor (bare-server.ts): on TCP a plain `net.Socket` that sends
 * `request` bytes and waits for `reply` bytes, one exchange in flight, with no framing of ours;
 * on WebRTC a plain data channel doing the same (bare-webrtc.ts). `openBare` picks by address.
 */
import { connect, type Socket } from 'node:net';
import { BareWebRtcExchange } from './bare-webrtc.ts';

/** One request/reply pair of byte counts over the floor. */
export interface Bare {
  /** Sends one request and resolves when its whole reply has arrived. */
  call(): Promise<void>;
  close(): void;
}

/** Opens the floor at `address` (`tcp://…` or `webrtc+tcp://…`) for `request`/`reply` bytes. */
export function openBare(address: string, request: number, reply: number): Promise<Bare> {
  return address.startsWith('webrtc+')
    ? BareWebRtcExchange.open(address, request, reply)
    : BareExchange.open(address, request, reply);
}

export class BareExchange implements Bare {
  private waiting: (() => void) | null = null;
  private need = 0;
  private readonly message: Buffer;

  private constructor(
    private readonly sock: Socket,
    request: number,
    private readonly reply: number,
  ) {
    this.message = Buffer.alloc(request, 1);
    sock.on('data', (chunk: Buffer) => {
      this.need -= chunk.byteLength;
      if (this.need <= 0 && this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w();
      }
    });
  }

  /** Connects to `tcp://host:port` and configures `request`/`reply` sizes for this connection. */
  static open(address: string, request: number, reply: number): Promise<BareExchange> {
    const m = /^tcp:\/\/([^:]+):(\d+)$/.exec(address);
    if (!m) throw new Error(`bad bare address ${address}`);
    return new Promise((resolve, reject) => {
      const sock = connect({ host: m[1], port: Number(m[2]), noDelay: true });
      sock.once('error', reject);
      sock.once('connect', () => {
        const config = Buffer.alloc(8);
        config.writeUInt32LE(request, 0);
        config.writeUInt32LE(reply, 4);
        sock.write(config);
        resolve(new BareExchange(sock, request, reply));
      });
    });
  }

  /** Sends one request and resolves when its whole reply has arrived. */
  call(): Promise<void> {
    return new Promise((resolve) => {
      this.need = this.reply;
      this.waiting = resolve;
      this.sock.write(this.message);
    });
  }

  close(): void {
    this.sock.destroy();
  }
}
