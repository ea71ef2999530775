/**
 * ICE servers for WebRTC peers behind NAT (docs/architecture.md §12): STUN URLs as given, and
 * TURN URLs with time-limited credentials derived from a secret shared with the TURN server —
 * the scheme coturn implements as `use-auth-secret` (the "TURN REST API" draft,
 * draft-uberti-behave-turn-rest): username `<expiry, Unix seconds>:<user>`, password
 * base64(HMAC-SHA1(secret, username)). The TURN server recomputes the password and refuses a
 * username whose expiry has passed, so a page is never given a lasting password.
 */
import { createHmac } from 'node:crypto';
import { TabshardError } from '../../shared/errors.ts';

/** What RTCPeerConnection's `iceServers` takes. */
export interface IceServer {
  urls: string;
  username?: string;
  credential?: string;
}

/** Default life of minted TURN credentials. */
export const DEFAULT_TURN_TTL_S = 3600;

/** The credentials a TURN server with `static-auth-secret = secret` accepts for `user` until `expiry` (Unix s). */
export function turnCredential(secret: string, user: string, expiry: number): { username: string; credential: string } {
  const username = `${expiry}:${user}`;
  return { username, credential: createHmac('sha1', secret).update(username).digest('base64') };
}

const ICE_URL = /^(stun|stuns|turn|turns):[A-Za-z0-9.[\]:-]+(\?transport=(udp|tcp))?$/;

/**
 * Parses `--ice-servers` (comma-separated `stun:host:port`, `turn:host:port[?transport=udp|tcp]`,
 * `turns:…`); TS_ERR_INVALID_ARGUMENT naming the first bad one, or a TURN URL without a secret.
 */
export function parseIceUrls(flag: string, secret: string | undefined): string[] {
  const urls = flag
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u.length > 0);
  for (const u of urls)
    if (!ICE_URL.test(u))
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `--ice-servers: ${u} is not a stun:, turn: or turns: URL`);
  if (!secret && urls.some((u) => u.startsWith('turn')))
    throw new TabshardError('TS_ERR_INVALID_ARGUMENT', '--ice-servers: a TURN URL needs --turn-secret');
  return urls;
}

/** The ICE servers of a cluster: hands each peer its list, TURN entries with fresh credentials. */
export class IceConfig {
  constructor(
    readonly urls: readonly string[],
    private readonly secret: string | undefined,
    private readonly ttlS = DEFAULT_TURN_TTL_S,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether there is anything to hand out. */
  get empty(): boolean {
    return this.urls.length === 0;
  }

  /** The list for one peer (`user` names it in the TURN server's log), valid `ttlS` from now. */
  servers(user: string): IceServer[] {
    const expiry = Math.floor(this.now() / 1000) + this.ttlS;
    return this.urls.map((urls) =>
      urls.startsWith('turn') && this.secret ? { urls, ...turnCredential(this.secret, user, expiry) } : { urls },
    );
  }
}
