/**
 * Feature hashing for the text applications (docs/architecture.md §10): lower-cased word tokens hashed
 * with murmur3 into a key space of 2^keyBits, merged into one sparse row with sorted unique keys.
 * Pure; runs in Node and in the browser, so a tab can featurise text exactly as the job did.
 */
import { TabshardError } from '../errors.ts';
import { hashString } from '../hash.ts';

/** Word tokens: a letter, digit or '$' followed by 1-24 letters, digits, '$', '_', "'" or '-'. */
const TOKEN_RE = /[a-z0-9$][a-z0-9$_'-]{1,24}/g;

/** Appends the lower-cased word tokens of `text` to `out` (each prefixed by `prefix`). */
export function tokenize(text: string, out: string[] = [], prefix = ''): string[] {
  for (const m of text.toLowerCase().matchAll(TOKEN_RE)) out.push(prefix + m[0]);
  return out;
}

export interface HashOptions {
  /** Keys are in [0, 2^keyBits); 1..32. */
  keyBits: number;
  /** murmur3 seed (part of the job's definition: another seed is another feature space). */
  hashSeed: number;
  /** 'binary': 1 per distinct token; 'logtf': 1 + ln(count). Then the row is L2-normalised. */
  values: 'binary' | 'logtf';
  /** Adds the bias feature (value 1, after normalisation) at `biasKey(keyBits, hashSeed)`. */
  bias: boolean;
}

/** A sparse row: sorted unique keys and one value per key. */
export interface SparseRow {
  keys: Float64Array;
  values: Float32Array;
}

/** Hash key of `token` in a key space of 2^keyBits. */
export function hashKey(token: string, keyBits: number, hashSeed: number): number {
  const h = hashString(token, hashSeed);
  return keyBits >= 32 ? h : h % 2 ** keyBits;
}

/** Key of the bias feature (a token no tokenizer output can equal). */
export function biasKey(keyBits: number, hashSeed: number): number {
  return hashKey('\u0000bias', keyBits, hashSeed);
}

/**
 * Hashes `tokens` into one L2-normalised sparse row. Tokens whose hashes collide add up, as in
 * any hashing trick; the bias feature is added after normalisation (so it always weighs 1).
 */
export function hashFeatures(tokens: readonly string[], opts: HashOptions): SparseRow {
  const { keyBits, hashSeed } = opts;
  if (!Number.isInteger(keyBits) || keyBits < 1 || keyBits > 32)
    throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `keyBits must be an integer in [1, 32], got ${keyBits}`);
  const counts = new Map<number, number>();
  for (const t of tokens) {
    const k = hashKey(t, keyBits, hashSeed);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  const keys = Float64Array.from(counts.keys()).sort();
  const values = new Float64Array(keys.length);
  let norm = 0;
  for (let i = 0; i < keys.length; i++) {
    const c = counts.get(keys[i])!;
    const v = opts.values === 'binary' ? 1 : 1 + Math.log(c);
    values[i] = v;
    norm += v * v;
  }
  norm = Math.sqrt(norm);
  if (norm > 0) for (let i = 0; i < values.length; i++) values[i] /= norm;
  if (!opts.bias) return { keys, values: Float32Array.from(values) };
  const b = biasKey(keyBits, hashSeed);
  return addToRow({ keys, values: Float32Array.from(values) }, b, 1);
}

/** The row with `value` added at `key` (inserted in order when absent). */
function addToRow(row: SparseRow, key: number, value: number): SparseRow {
  const n = row.keys.length;
  let at = 0;
  while (at < n && row.keys[at] < key) at++;
  if (at < n && row.keys[at] === key) {
    row.values[at] += value;
    return row;
  }
  const keys = new Float64Array(n + 1);
  const values = new Float32Array(n + 1);
  keys.set(row.keys.subarray(0, at));
  values.set(row.values.subarray(0, at));
  keys[at] = key;
  values[at] = value;
  keys.set(row.keys.subarray(at), at + 1);
  values.set(row.values.subarray(at), at + 1);
  return { keys, values };
}
