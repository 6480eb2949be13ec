// Scrapes and completions across nodes: complete/incomplete count every node's peers, and
// "downloaded" (completions, kept in Redis) reads the same from every node, in both dialects. It
// survives a node being stopped and restarted, and a brand-new node reads it too. (The change is
// asynchronous, so reads are polled.)

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, test } from 'node:test'
import {
  PROPAGATION_MS, binToHex, closeAll, connect, nastyId, randomInfoHash, randomPeerId, stAnnounce,
  stScrapeUntil, startCluster, waitFor, wtAnnounce, wtClient, wtScrape
} from './cluster-helpers.mjs'

// --db-flush 1: if completions are written to Redis in batches, a batch goes every second.
const ARGS = ['--min-interval', '0', '--db-flush', '1']
// A completion may wait for a flush, then for propagation.
const DOWNLOADED_MS = PROPAGATION_MS + 2000

async function scraper (node, name) {
  const c = await connect(node, { name: `${name}@${node.port}` })
  await c.ola(randomPeerId(name))
  return c
}

describe('scrape and completions across nodes', () => {
  test('counts and "downloaded" read the same from every node, in both dialects', async (t) => {
    const cl = await startCluster({ t, nodes: 3, args: ARGS })
    const [n0, n1, n2] = cl.nodes
    const IH = randomBytes(20).toString('latin1') // WebTorrent form
    const HEX = binToHex(IH)
    const NEVER = randomInfoHash()
    const clients = []
    try {
      // Node 0: an ST peer completes. Node 1: an ST leecher and an ST peer that completes.
      // Node 2: a WebTorrent peer completes, a WebTorrent leecher stays.
      const p0 = await scraper(n0, 'sc0')
      const p1 = await scraper(n1, 'sc1')
      const q1 = await scraper(n1, 'sc1q')
      const w2 = await wtClient(n2, 'scW2', nastyId())
      const l2 = await wtClient(n2, 'scL2', nastyId())
      clients.push(p0, p1, q1, w2, l2)
      await stAnnounce(p0, HEX, { event: 'started', left: 10 })
      await stAnnounce(p1, HEX, { event: 'started', left: 10 })
      await stAnnounce(q1, HEX, { event: 'started', left: 10 })
      await wtAnnounce(w2, { info_hash: IH, left: 10, event: 'started' })
      await wtAnnounce(l2, { info_hash: IH, left: 10, event: 'started' })
      await stAnnounce(p0, HEX, { event: 'completed', left: 0 })
      await stAnnounce(q1, HEX, { event: 'completed', left: 0 })
      await wtAnnounce(w2, { info_hash: IH, left: 0, event: 'completed' })
      // A repeated "completed" in the same membership does not count again (on any node).
      await stAnnounce(p0, HEX, { event: 'completed', left: 0 })

      const want = { complete: 3, incomplete: 2, downloaded: 3 }
      const zero = { complete: 0, incomplete: 0, downloaded: 0 }
      for (const [name, cli] of [['node 0', p0], ['node 1', p1], ['node 2', await scraper(n2, 'sc2s')]]) {
        if (!clients.includes(cli)) clients.push(cli)
        const files = await stScrapeUntil(cli, HEX, want, { timeoutMs: DOWNLOADED_MS, what: `(ST) from ${name}` })
        assert.deepEqual(files[HEX], want)
        const other = await cli.request({ type: 'scrape', info_hashes: [NEVER] }, { type: 'scrape' })
        assert.deepEqual(other.files[NEVER], zero, 'an infohash nobody announced reads zeros')
      }
      // WebTorrent scrape on node 2, and on node 0 from a connection that never announced.
      const fresh = await wtClient(n0, 'scFresh', nastyId())
      clients.push(fresh)
      for (const cli of [l2, fresh]) {
        let last
        await waitFor(async () => {
          last = (await wtScrape(cli, IH))[IH]
          return JSON.stringify(last) === JSON.stringify(want)
        }, { timeoutMs: DOWNLOADED_MS, what: () => `${cli.name}: WebTorrent scrape should read ${JSON.stringify(want)}; last ${JSON.stringify(last)}` })
      }
      // Announce answers count every node's peers too.
      const ans = await stAnnounce(p1, HEX, { left: 10, num_want: 50 })
      assert.equal(ans.complete, 3, JSON.stringify(ans))
      assert.equal(ans.incomplete, 2, JSON.stringify(ans))
    } finally {
      await closeAll(clients)
    }
  })

  test('"downloaded" survives a node restart and is read by a brand-new node', async (t) => {
    const cl = await startCluster({ t, nodes: 3, args: ARGS })
    const [n0, n1, n2] = cl.nodes
    const IH = randomInfoHash()
    const keep = [] // clients that stay connected (nodes 0 and 2)
    const gone = [] // clients of node 1
    try {
      const a = await scraper(n0, 'rsA')
      const c = await scraper(n2, 'rsC')
      keep.push(a, c)
      await stAnnounce(a, IH, { event: 'started', left: 5 })
      await stAnnounce(a, IH, { event: 'completed', left: 0 })
      await stAnnounce(c, IH, { event: 'started', left: 5 })
      // Node 1: two completions and a leecher, then node 1 stops right away (SIGTERM): whatever
      // it had not written yet must be written by its shutdown.
      for (let i = 0; i < 3; i++) {
        const p = await scraper(n1, `rsB${i}`)
        gone.push(p)
        await stAnnounce(p, IH, { event: 'started', left: 5 })
        if (i < 2) await stAnnounce(p, IH, { event: 'completed', left: 0 })
      }
      await n1.stopChecked()
      for (const p of gone) {
        assert.deepEqual(await p.next({ type: 'bye' }), { type: 'bye', reason: 'shutdown' })
        assert.equal((await p.closed).code, 1001)
      }

      // Nodes 0 and 2: node 1's peers are gone from the counts, its completions are not.
      const after = { complete: 1, incomplete: 1, downloaded: 3 }
      for (const cli of keep) {
        await stScrapeUntil(cli, IH, after, { timeoutMs: DOWNLOADED_MS + cl.nodeTimeout * 1000, what: 'after node 1 stopped' })
      }

      // Node 1 again (same flags; a restart): it reads the completions and sees the live peers.
      await n1.start()
      const b = await scraper(n1, 'rsB-again')
      keep.push(b)
      await stScrapeUntil(b, IH, after, { timeoutMs: DOWNLOADED_MS, what: 'from the restarted node 1' })

      // A brand-new node reads the same.
      const n3 = await cl.addNode()
      const d = await scraper(n3, 'rsD')
      keep.push(d)
      await stScrapeUntil(d, IH, after, { timeoutMs: DOWNLOADED_MS, what: 'from a new node 3' })

      // A completion on the new node counts everywhere.
      await stAnnounce(d, IH, { event: 'completed', left: 0 })
      const later = { complete: 2, incomplete: 1, downloaded: 4 }
      for (const cli of [a, b, c, d]) {
        await stScrapeUntil(cli, IH, later, { timeoutMs: DOWNLOADED_MS, what: 'after a completion on node 3' })
      }
    } finally {
      await closeAll(keep, gone)
    }
  })
})
