/**
 * The gateway over TLS (`--tls-cert/--tls-key`), with a certificate made for the test (openssl,
 * self-signed for 127.0.0.1): the API answers on https and its cluster reply gives wss relay
 * addresses; a headless Node worker that trusts the certificate (NODE_EXTRA_CA_CERTS) trains the
 * job through https, the wss session and wss signalling; a worker-page tab over https (Chromium
 * told to accept the test certificate) works too. Plain http to the TLS port gets no page.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Harness, runWorkerCli } from './harness.ts';

const dir = mkdtempSync(join(tmpdir(), 'tabshard-tls-'));
const cert = join(dir, 'cert.pem');
const key = join(dir, 'key.pem');

/** GET over https trusting only the test certificate; the parsed JSON body. */
function getJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca: readFileSync(cert) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString()));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.once('error', reject);
    req.end();
  });
}

describe('the gateway over TLS', { timeout: 240_000 }, () => {
  let h: Harness;
  before(async () => {
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
        ...['-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'],
        ...['-addext', 'subjectAltName=IP:127.0.0.1'],
      ],
      { stdio: 'ignore' },
    );
    h = await Harness.start({
      startArgs: ['--shards', '4', '--iterations', '3', '--tls-cert', cert, '--tls-key', key],
      chromiumArgs: ['--ignore-certificate-errors'],
    });
  });
  after(async () => {
    await h?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers on https, and hands out wss relay addresses', async () => {
    assert.match(h.gateway, /^https:\/\/127\.0\.0\.1:\d+$/);
    const info = (await getJson(`${h.gateway}/api/jobs/1/cluster`)) as {
      addresses: Record<string, { ws: string; webrtc: string }>;
    };
    for (const a of Object.values(info.addresses)) {
      assert.match(a.ws, /^wss:\/\/127\.0\.0\.1:\d+\/relay\/n\d\/data$/);
      assert.match(a.webrtc, /^webrtc\+wss:\/\/127\.0\.0\.1:\d+\/relay\/n\d\/signal$/);
    }
    // Plain http to the same port is not served.
    await assert.rejects(fetch(`${h.gateway.replace('https:', 'http:')}/api/jobs`));
  });

  it('a Node worker trusting the certificate and a tab over https train the job', async () => {
    const page = await h.openPage({ path: '/?job=1' });
    const worker = runWorkerCli(h.gateway, [], { NODE_EXTRA_CA_CERTS: cert });
    try {
      assert.equal(await worker.exit, 0);
      const hello = worker.line('worker')!;
      assert.deepEqual(Object.values(hello.routes as object), ['webrtc', 'webrtc', 'webrtc']);
      await h.waitForEvent((ev) => ev.event === 'metric' && ev.iteration === 2, 60_000);
      const audit = (await getJson(`${h.gateway}/api/jobs/1/audit`)) as Record<string, number>;
      assert.deepEqual([audit.tasks, audit.once, audit.missing, audit.more], [12, 12, 0, 0]);
      const tab = (await page.evaluate(() => (globalThis as unknown as { tabshard: unknown }).tabshard)) as {
        transports: Record<string, string>;
        worker?: number;
      };
      assert.deepEqual(Object.values(tab.transports), ['webrtc', 'webrtc', 'webrtc'], 'the tab reached every node');
      assert.ok(tab.worker !== undefined, 'the tab opened its wss session');
    } finally {
      worker.kill();
    }
  });
});
