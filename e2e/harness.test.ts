/**
 * The harness's own promises: the cluster's ready line, fault injection (crash, freeze and
 * resume, close) on real tabs, and that a crashed tab does not disturb the cluster or other tabs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Harness } from './harness.ts';

describe('e2e harness (1 node)', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ nodes: 1 });
  });
  after(async () => {
    await h?.stop();
  });

  it('reports the cluster it started', async () => {
    assert.match(h.gateway, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual(
      h.cluster.nodes.map((n) => n.id),
      ['n1'],
    );
    assert.match(h.cluster.nodes[0].addresses.webrtc, /^webrtc\+tcp:\/\//);
    assert.ok(h.cluster.adminToken.length > 0);
    assert.ok(h.browserPid);
    const health = await fetch(`${h.gateway}/health`);
    assert.deepEqual(await health.json(), { ok: true });
  });

  it("serves its own lab page to its tabs, under the policy of the gateway's pages", async () => {
    assert.equal((await fetch(`${h.gateway}/lab`)).status, 404); // not the gateway's
    const policy = (await fetch(`${h.gateway}/`)).headers.get('content-security-policy');
    const page = await h.openPage({ path: '/health' });
    try {
      const res = await page.goto(`${h.gateway}/lab`);
      assert.equal(res?.status(), 200);
      assert.equal(await res?.headerValue('content-security-policy'), policy);
      await page.waitForFunction(() => typeof (window as { tabshardLab?: unknown }).tabshardLab === 'object');
      assert.deepEqual(h.errors.get(page) ?? [], []);
    } finally {
      await page.close();
    }
  });

  it('crashes, freezes and resumes, and closes tabs; the cluster keeps serving', async () => {
    const [a, b, c] = await h.openPages(3);
    const connect = (p: typeof a) =>
      p.evaluate(
        (adminToken) =>
          (window as unknown as { tabshardLab: { connect(o: object): Promise<unknown> } }).tabshardLab.connect({
            adminToken,
          }),
        h.cluster.adminToken,
      );
    await Promise.all([connect(a), connect(b), connect(c)]);
    await h.crashPage(a);
    const resume = await h.freezePage(b);
    // While frozen, the page runs nothing: a push started now completes only after the resume.
    let done = false;
    const frozenPush = b
      .evaluate(() =>
        (
          window as unknown as { tabshardLab: { push(t: string, k: number[], v: number[]): Promise<void> } }
        ).tabshardLab.push('sum-sparse', [78], [1]),
      )
      .then(() => {
        done = true;
      });
    const ping = await fetch(`${h.gateway}/health`); // the cluster is not stuck meanwhile
    assert.equal(ping.status, 200);
    assert.equal(done, false);
    await resume();
    await frozenPush;
    assert.equal(await b.evaluate(() => 1 + 1), 2);
    await h.closePage(c);
    assert.ok(c.isClosed());
    const sum = await b.evaluate(async () => {
      const lab = (
        window as unknown as {
          tabshardLab: {
            push(t: string, k: number[], v: number[]): Promise<void>;
            pull(t: string, k: number[]): Promise<number[]>;
          };
        }
      ).tabshardLab;
      await lab.push('sum-sparse', [77], [3]);
      return lab.pull('sum-sparse', [77]);
    });
    assert.deepEqual(sum, [3]);
    await b.close();
  });
});
