/**
 * The error registry: one error class, stable `TS_ERR_*` codes.
 * Tests and clients branch on `code`, never on message text. Every code is listed in README.md.
 */

/** code → [default message, HTTP status used when the error crosses the REST API]. */
export const ERRORS = {
  TS_ERR_INVALID_ARGUMENT: ['invalid argument', 400],
  TS_ERR_FRAME_TRUNCATED: ['frame is shorter than its header or segments claim', 400],
  TS_ERR_FRAME_VERSION: ['unsupported protocol version', 400],
  TS_ERR_FRAME_TYPE: ['unknown message type', 400],
  TS_ERR_FRAME_MALFORMED: ['malformed frame', 400],
  TS_ERR_FRAME_TOO_LARGE: ['frame exceeds the maximum frame size', 413],
  TS_ERR_KEYS_UNSORTED: ['keys must be sorted ascending and unique', 400],
  TS_ERR_KEY_OUT_OF_RANGE: ['key outside the table key space', 400],
  TS_ERR_VALUE_LENGTH: ['value count does not match keys x value length', 400],
  TS_ERR_NON_FINITE: ['pushed values must be finite', 400],
  TS_ERR_UNKNOWN_JOB: ['unknown job', 404],
  TS_ERR_UNKNOWN_TABLE: ['unknown table', 404],
  TS_ERR_UNKNOWN_SHARD: ['unknown shard of the job', 404],
  TS_ERR_UNKNOWN_UPDATER: ['unknown updater', 400],
  TS_ERR_TABLE_EXISTS: ['table already exists with a different definition', 409],
  TS_ERR_UNAUTHORIZED: ['the admin token is missing (Authorization: Bearer <token>)', 401],
  TS_ERR_FORBIDDEN: ['this connection may not do that (admin token missing or wrong)', 403],
  TS_ERR_NOT_OWNER: ['this server node does not own the requested key range', 421],
  TS_ERR_LEASE_EXPIRED: ['push from an attempt whose lease has expired', 409],
  TS_ERR_PUSH_TOO_OLD: ['push sequence number is below the de-duplication window', 409],
  TS_ERR_NOT_LEASED: ['the task is not leased to this worker at this attempt', 409],
  TS_ERR_JOB_DONE: ['the job is done or stopped', 410],
  TS_ERR_RING_EMPTY: ['the ring has no server nodes', 503],
  TS_ERR_MESSAGE_TOO_LARGE: ['message exceeds the transport maximum', 413],
  TS_ERR_TRANSPORT_CLOSED: ['connection closed', 503],
  TS_ERR_CONNECT_FAILED: ['could not connect', 503],
  TS_ERR_TIMEOUT: ['operation timed out', 504],
  TS_ERR_UNKNOWN_TIMESTAMP: ['unknown or already collected timestamp', 400],
  TS_ERR_SUBSCRIPTION_LIMIT: ['too many subscriptions or subscribed keys on this connection', 429],
  TS_ERR_KEYS_NOT_CACHED: ['the key list named by this hash is not cached on this connection', 409],
  TS_ERR_CHECKPOINT_IO: ['a checkpoint file could not be written or read', 500],
  TS_ERR_CHECKPOINT_CORRUPT: ['a checkpoint file fails its size or checksum check', 500],
  TS_ERR_CAPABILITY_REQUIRED: ['this request needs a capability from the scheduler that covers it', 403],
  TS_ERR_CAPABILITY_INVALID: ['the capability does not verify', 403],
  TS_ERR_CAPABILITY_EXPIRED: ['the capability has expired', 403],
  TS_ERR_KEYS_OUTSIDE_TASK: ['keys or table outside the task the capability names', 403],
  TS_ERR_PUSH_BOUND: ['pushed values exceed the table bound', 400],
  TS_ERR_LEASE_LIMIT: ['this worker holds as many leases as it may', 429],
  TS_ERR_TASK_NOT_APPLIED: ["the task's pushes are not all applied: receipts missing, forged or short", 409],
  TS_ERR_RATE_LIMITED: ['too many requests or connections from this client', 429],
  TS_ERR_BAD_ORIGIN: ['the request comes from a page of another origin', 403],
  TS_ERR_INTERNAL: ['internal error', 500],
} as const satisfies Record<string, readonly [string, number]>;

export type ErrorCode = keyof typeof ERRORS;

/** The one error class of tabshard. */
export class TabshardError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    const [message, status] = ERRORS[code];
    super(detail ? `${message}: ${detail}` : message, options);
    this.name = 'TabshardError';
    this.code = code;
    this.status = status;
  }
}

/** True when `code` is a registered error code (used when decoding an error frame). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

/** Wraps any thrown value into a TabshardError, keeping codes that are already ours. */
export function toTabshardError(err: unknown, fallback: ErrorCode = 'TS_ERR_INTERNAL'): TabshardError {
  if (err instanceof TabshardError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new TabshardError(fallback, detail, { cause: err });
}

/** The codes of a request that got no answer: no connection, the connection lost, or no reply in time. */
const UNANSWERED: ReadonlySet<string> = new Set(['TS_ERR_CONNECT_FAILED', 'TS_ERR_TRANSPORT_CLOSED', 'TS_ERR_TIMEOUT']);

/** True when `err` says the request got no answer (the peer may be alive, or not); false for a peer's refusal. */
export function unanswered(err: unknown): boolean {
  return err instanceof TabshardError && UNANSWERED.has(err.code);
}
