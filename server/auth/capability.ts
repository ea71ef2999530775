/**
 * Capabilities on the data plane (PROTOCOL.md §6.2, docs/architecture.md "Trust"): the scheduler
 * signs, with each lease, a short-lived capability naming (job, worker, task, attempt, the tables
 * and keys of the task, expiry); a read capability names (job, worker, expiry). Server nodes
 * verify a capability once, when a worker presents it on a connection (CAP), and then check each
 * push and read against what the connection was granted.
 *
 * Ed25519 signatures (node:crypto): the cluster's signer keeps the private key; nodes get only
 * the public key (in the manager's RING install), so a node can check capabilities but never
 * mint one. The token is `base64url(claims JSON) "." base64url(signature over the first part's
 * ASCII)`, at most MAX_CAPABILITY_CHARS characters. Workers treat it as opaque.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { TabshardError } from '../../shared/errors.ts';

/** Longest capability token accepted (a task capability with a few tables is ~250 characters). */
export const MAX_CAPABILITY_CHARS = 2048;

/** How many tables one task capability may name. */
export const MAX_CAPABILITY_TABLES = 64;

/**
 * One table a task may push to, and which of its keys: `keys` names a key set the manager
 * installed on the nodes (KEYSET, e.g. the shard's working set), `range` a key range
 * [begin, end); neither: any key of the table.
 */
export interface TableGrant {
  id: number;
  keys?: number;
  range?: [number, number];
}

/** May push to `tables` under stamps (worker, task, attempt, any seq) until `exp`; may read the job. */
export interface TaskClaims {
  kind: 'task';
  job: number;
  worker: number;
  task: number;
  attempt: number;
  tables: TableGrant[];
  /** Expiry, ms since the Unix epoch. */
  exp: number;
}

/** May PULL and SUBSCRIBE any table of `job` until `exp`. */
export interface ReadClaims {
  kind: 'read';
  job: number;
  worker: number;
  exp: number;
}

export type Claims = TaskClaims | ReadClaims;

const u32 = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 0xffffffff;
const key = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 2 ** 52;

function invalid(detail: string): never {
  throw new TabshardError('TS_ERR_CAPABILITY_INVALID', detail);
}

function parseTable(x: unknown): TableGrant {
  if (typeof x !== 'object' || x === null) invalid('a table grant is an object');
  const o = x as Record<string, unknown>;
  if (!u32(o.id)) invalid('a table grant names its table id');
  const g: TableGrant = { id: o.id };
  if (o.keys !== undefined) {
    if (!u32(o.keys)) invalid('keys is a key-set id (u32)');
    g.keys = o.keys;
  }
  if (o.range !== undefined) {
    const r = o.range;
    if (!Array.isArray(r) || r.length !== 2 || !key(r[0]) || !key(r[1]) || r[0] >= r[1])
      invalid('range is [begin, end) with begin < end ≤ 2^52');
    if (g.keys !== undefined) invalid('a table grant has keys or range, not both');
    g.range = [r[0], r[1]];
  }
  return g;
}

/** Checks the shape of decoded claims (TS_ERR_CAPABILITY_INVALID if anything is off). */
export function parseClaims(x: unknown): Claims {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) invalid('claims are an object');
  const o = x as Record<string, unknown>;
  if (o.v !== 1) invalid('unknown capability version');
  if (!u32(o.job) || !u32(o.worker)) invalid('job and worker are u32');
  if (!Number.isSafeInteger(o.exp) || (o.exp as number) < 0) invalid('exp is ms since the epoch');
  const exp = o.exp as number;
  if (o.kind === 'read') return { kind: 'read', job: o.job, worker: o.worker, exp };
  if (o.kind !== 'task') invalid('kind is "task" or "read"');
  if (!u32(o.task) || o.task === 0 || !u32(o.attempt)) invalid('task (≥ 1) and attempt are u32');
  if (!Array.isArray(o.tables) || o.tables.length > MAX_CAPABILITY_TABLES) invalid('tables is a list of table grants');
  const tables = o.tables.map(parseTable);
  return { kind: 'task', job: o.job, worker: o.worker, task: o.task, attempt: o.attempt, tables, exp };
}

const b64u = (b: Uint8Array | Buffer): string => Buffer.from(b).toString('base64url');

/** Holds the cluster's private key: signs capabilities (the scheduler's side). */
export class CapabilitySigner {
  private constructor(private readonly key: KeyObject) {}

  static generate(): CapabilitySigner {
    return new CapabilitySigner(generateKeyPairSync('ed25519').privateKey);
  }

  /** A signer from a PKCS#8 DER private key, base64 (a key kept across restarts). */
  static fromPrivateKey(pkcs8: string): CapabilitySigner {
    return new CapabilitySigner(createPrivateKey({ key: Buffer.from(pkcs8, 'base64'), format: 'der', type: 'pkcs8' }));
  }

  /** The private key, PKCS#8 DER, base64. */
  privateKey(): string {
    return this.key.export({ format: 'der', type: 'pkcs8' }).toString('base64');
  }

  /** The public key the nodes verify with: SPKI DER, base64 (RING install's `capabilityKey`). */
  publicKey(): string {
    return createPublicKey(this.key).export({ format: 'der', type: 'spki' }).toString('base64');
  }

  sign(claims: Claims): string {
    const body = b64u(Buffer.from(JSON.stringify({ v: 1, ...claims }), 'utf8'));
    return `${body}.${b64u(sign(null, Buffer.from(body, 'ascii'), this.key))}`;
  }
}

/** Checks capabilities with the cluster's public key (the nodes' side). */
export class CapabilityVerifier {
  private readonly key: KeyObject;

  /** `spki`: the signer's `publicKey()` (TS_ERR_INVALID_ARGUMENT if it is not an Ed25519 key). */
  constructor(readonly spki: string) {
    try {
      this.key = createPublicKey({ key: Buffer.from(spki, 'base64'), format: 'der', type: 'spki' });
    } catch (err) {
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'capabilityKey is not an SPKI public key', { cause: err });
    }
    if (this.key.asymmetricKeyType !== 'ed25519')
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', 'capabilityKey must be an Ed25519 key');
  }

  /**
   * The claims of `token` if its signature verifies and it has not expired at `now` (ms since
   * the epoch): TS_ERR_CAPABILITY_INVALID (shape, signature), TS_ERR_CAPABILITY_EXPIRED.
   */
  verify(token: unknown, now: number): Claims {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_CAPABILITY_CHARS)
      invalid(`a capability is a string of at most ${MAX_CAPABILITY_CHARS} characters`);
    const dot = token.indexOf('.');
    if (dot <= 0 || dot !== token.lastIndexOf('.')) invalid('a capability is body.signature');
    const body = token.slice(0, dot);
    const sig = Buffer.from(token.slice(dot + 1), 'base64url');
    if (sig.length !== 64 || !verify(null, Buffer.from(body, 'ascii'), this.key, sig))
      invalid('signature does not verify');
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      invalid('claims are not JSON');
    }
    const claims = parseClaims(json);
    if (claims.exp <= now) throw new TabshardError('TS_ERR_CAPABILITY_EXPIRED', `expired ${now - claims.exp} ms ago`);
    return claims;
  }
}
