/**
 * The WebSocket dialer (`ws://host:port/path`, `wss://…`): one tabshard message per binary
 * WebSocket message (see `shared/transport/websocket.ts`). The WebSocket implementation is
 * passed in: `globalThis.WebSocket` in the browser, the `ws` package's `WebSocket` in Node.
 */
import { TabshardError } from '../../shared/errors.ts';
import type { Conn, Dialer } from '../../shared/transport/types.ts';
import { type WebSocketLike, WsConn, type WsTuning } from '../../shared/transport/websocket.ts';

/** A WebSocket constructor (the browser's or `ws`'s). */
export type WebSocketCtor = new (url: string) => WebSocketLike;

export interface WsDialerOptions extends WsTuning {
  /** Limit on sent and received messages (default DEFAULT_MAX_MESSAGE). */
  maxMessage?: number;
  /** `dial` rejects with TS_ERR_CONNECT_FAILED when the socket is not open by then (default 10 000 ms). */
  timeoutMs?: number;
}

/** Opens WebSocket connections. */
export class WsDialer implements Dialer {
  readonly kind = 'ws' as const;

  constructor(
    private readonly WebSocket: WebSocketCtor,
    private readonly opts: WsDialerOptions = {},
  ) {}

  /** Resolves once the socket is open; rejects with TS_ERR_CONNECT_FAILED (or TS_ERR_INVALID_ARGUMENT for a bad address). */
  dial(address: string): Promise<Conn> {
    if (!/^wss?:\/\/[^/\s]+(\/\S*)?$/.test(address))
      return Promise.reject(new TabshardError('TS_ERR_INVALID_ARGUMENT', `bad ws address ${address}`));
    return new Promise((resolve, reject) => {
      let ws: WebSocketLike;
      try {
        ws = new this.WebSocket(address);
      } catch (err) {
        reject(new TabshardError('TS_ERR_CONNECT_FAILED', `${address}: ${String(err)}`, { cause: err }));
        return;
      }
      ws.binaryType = 'arraybuffer';
      let settled = false;
      const fail = (detail: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        try {
          ws.close();
        } catch {
          // not open yet
        }
        reject(new TabshardError('TS_ERR_CONNECT_FAILED', `${address}: ${detail}`));
      };
      const timer = setTimeout(() => fail('timed out'), this.opts.timeoutMs ?? 10_000);
      ws.addEventListener('close', (ev) => fail(`closed with ${ev.code} ${ev.reason}`));
      ws.addEventListener('error', () => fail('error'));
      ws.addEventListener('open', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(new WsConn(ws, { ...this.opts, remote: address }));
      });
    });
  }
}
