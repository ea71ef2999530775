import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERRORS } from './errors.ts';

describe('error registry', () => {
  it('README lists every registered code with its HTTP status and default message, in registry order', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const rows = [...readme.matchAll(/^\| `(TS_ERR_[A-Z_]+)` \| (\d+) \| (.*) \|$/gm)].map((m) => [
      m[1],
      Number(m[2]),
      m[3],
    ]);
    const want = Object.entries(ERRORS).map(([code, [message, status]]) => [code, status, message]);
    assert.deepEqual(rows, want);
  });

  it('PROTOCOL.md §9 lists every registered code with its default message and HTTP status, in registry order', () => {
    const protocol = readFileSync(new URL('../PROTOCOL.md', import.meta.url), 'utf8');
    const rows = [...protocol.matchAll(/^\| `(TS_ERR_[A-Z_]+)` \| (.*?) \| (\d+) \| .* \|$/gm)].map((m) => [
      m[1],
      Number(m[3]),
      m[2],
    ]);
    const want = Object.entries(ERRORS).map(([code, [message, status]]) => [code, status, message]);
    assert.deepEqual(rows, want);
  });
});
