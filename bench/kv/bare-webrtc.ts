/**
 * bench/kv's floor on WebRTC: a plain @roamhq/wrtc data channel with no framing of ours (no
 * simple-peer, no chunk headers, no send queue of ours). Both ends send a byte count as raw pieces
 * of the largest size the channel allows (min(256 KiB, negotiated SCTP maxMessageSize)), each a
 * view of one reused buffer (the channel copies on `send`), and only count what they receive.
 *
 * Signalling is one plain TCP connection per data channel, newline-delimited JSON, no trickle:
 * the dialer sends `{"request":n,"reply":m,"sdp":offer}` once its ICE gathering is complete, the
 * answerer `{"sdp":answer}`; the socket then stays open as long as the channel.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import wrtc from '@roamhq/wrtc';

const { RTCPeerConnection } = wrtc;
type RTCPeerConnection = InstanceType<typeof RTCPeerConnection>;

/** The largest piece sent, whatever the negotiated maximum says (a 512 KiB send kills a wrtc channel). */
const MAX_PIECE = 256 * 1024;
/** JS-counted bytes handed to the channel after which its native `bufferedAmount` is checked. */
const CHECK_AFTER = 8 * 1024 * 1024;

/** Resolves once `pc` has gathered its (host) ICE candidates. */
function gathered(pc: RTCPeerConnection): Promise<void> {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
  });
}

/** Calls `fn` with each newline-terminated line received on `sock`. */
function onLines(sock: Socket, fn: (line: string) => void): void {
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (s: string) => {
    buf += s;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      fn(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
}

/**
 * One end's sender: `send(total)` hands `total` bytes to the channel as pieces of `piece.byteLength`
 * (a reused buffer), checking the native `bufferedAmount` only after every CHECK_AFTER bytes
 * (the workloads stay below it; the check keeps a larger byte count under the channel's 16 MiB cap).
 */
class PieceSender {
  private sinceCheck = 0;

  constructor(
    private readonly dc: RTCDataChannel,
    private readonly piece: Uint8Array<ArrayBuffer>,
  ) {}

  async send(total: number): Promise<void> {
    const { dc, piece } = this;
    let left = total;
    while (left > 0) {
      if (this.sinceCheck >= CHECK_AFTER) {
        while (dc.bufferedAmount >= CHECK_AFTER / 2) await new Promise((r) => setTimeout(r, 1));
        this.sinceCheck = 0;
      }
      const n = Math.min(left, piece.byteLength);
      dc.send(n === piece.byteLength ? piece : piece.subarray(0, n));
      this.sinceCheck += n;
      left -= n;
    }
  }
}

/** The piece size a connected `pc` allows. */
function pieceSize(pc: RTCPeerConnection): number {
  return Math.min(MAX_PIECE, pc.sctp?.maxMessageSize || 65_536);
}

/**
 * The floor's server side: accepts signalling connections on 127.0.0.1; on each data channel,
 * every `request` bytes received are answered with `reply` bytes.
 */
export function listenBareWebRtc(onListening: (address: string) => void): Server {
  const server = createServer({ noDelay: true }, (sock) => {
    let pc: RTCPeerConnection | null = null;
    sock.on('error', () => sock.destroy());
    sock.on('close', () => pc?.close());
    onLines(sock, (line) => {
      if (pc) return;
      const { request, reply, sdp } = JSON.parse(line) as { request: number; reply: number; sdp: string };
      const peer = new RTCPeerConnection({ iceServers: [] });
      pc = peer;
      peer.addEventListener('datachannel', (ev) => {
        const dc = ev.channel;
        dc.binaryType = 'arraybuffer';
        const sender = new PieceSender(dc, new Uint8Array(pieceSize(peer)));
        let got = 0;
        dc.addEventListener('message', (m) => {
          got += (m.data as ArrayBuffer).byteLength;
          while (got >= request) {
            got -= request;
            void sender.send(reply);
          }
        });
      });
      void (async () => {
        await peer.setRemoteDescription({ type: 'offer', sdp });
        await peer.setLocalDescription(await peer.createAnswer());
        await gathered(peer);
        sock.write(`${JSON.stringify({ sdp: peer.localDescription?.sdp })}\n`);
      })().catch(() => sock.destroy());
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    onListening(`webrtc+tcp://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`);
  });
  return server;
}

/**
 * The floor's client side: one data channel to `listenBareWebRtc`, configured for `request`-byte
 * requests answered by `reply` bytes; one exchange in flight.
 */
export class BareWebRtcExchange {
  private waiting: (() => void) | null = null;
  private need = 0;
  private readonly sender: PieceSender;

  private constructor(
    private readonly pc: RTCPeerConnection,
    private readonly sock: Socket,
    private readonly dc: RTCDataChannel,
    private readonly request: number,
    private readonly reply: number,
  ) {
    dc.addEventListener('message', (m) => {
      this.need -= (m.data as ArrayBuffer).byteLength;
      if (this.need <= 0 && this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w();
      }
    });
    this.sender = new PieceSender(dc, new Uint8Array(pieceSize(pc)).fill(1));
  }

  /** Dials `webrtc+tcp://host:port` and resolves once the data channel is open. */
  static async open(address: string, request: number, reply: number): Promise<BareWebRtcExchange> {
    const m = /^webrtc\+tcp:\/\/([^:]+):(\d+)$/.exec(address);
    if (!m) throw new Error(`bad bare webrtc address ${address}`);
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host: m[1], port: Number(m[2]), noDelay: true });
      s.once('error', reject);
      s.once('connect', () => resolve(s));
    });
    const pc = new RTCPeerConnection({ iceServers: [] });
    const dc = pc.createDataChannel('bare');
    dc.binaryType = 'arraybuffer';
    const open = new Promise<void>((resolve, reject) => {
      dc.addEventListener('open', () => resolve());
      sock.once('close', () => reject(new Error('bare webrtc: signalling closed')));
    });
    onLines(sock, (line) => {
      const { sdp } = JSON.parse(line) as { sdp: string };
      void pc.setRemoteDescription({ type: 'answer', sdp });
    });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    sock.write(`${JSON.stringify({ request, reply, sdp: pc.localDescription?.sdp })}\n`);
    await open;
    return new BareWebRtcExchange(pc, sock, dc, request, reply);
  }

  /** Sends one request and resolves when its whole reply has arrived. */
  call(): Promise<void> {
    return new Promise((resolve) => {
      this.need = this.reply;
      this.waiting = resolve;
      void this.sender.send(this.request);
    });
  }

  close(): void {
    this.dc.close();
    this.pc.close();
    this.sock.destroy();
  }
}
