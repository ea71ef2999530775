/**
 * The client side of bench/kv's TCP floor (bare-server.ts): a plain `net.Socket` that sends
 * `request` bytes and waits for `reply` bytes, one exchange in flight, with no framing of ours.
 */
import { connect, type Socket } from 'node:net';

export class BareExchange {
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
