// Real clients across the nodes of a CLUSTER: a redis-server and two sigtracker nodes in cluster
// mode (cluster-tracker.mjs), and real clients each talking to ONE node only, never the same one:
//
// - WebTorrent 2.x and 3.x in headless Chromium (browser-harness.mjs): the seeder announces only
//   to one node, the leecher's magnet names only the other; the file must arrive whole (SHA-256).
//   2.x seeds on node 0 and fetches from node 1, 3.x the other way round, so offers and answers
//   cross the cluster in both directions.
// - Two bittorrent-tracker Node clients (node-harness.mjs), seeder on node 0 and leecher on node 1,
//   must meet over WebRTC and exchange a message each way.
//
// Before the leecher starts, the test waits until the leecher's node counts the seeder (a scrape
// there): propagation between nodes is asynchronous, and a leecher whose announce came first would
// have nobody to offer to until its next announce (120 s later). Afterwards /stats.json must show
// frames delivered both ways between the nodes (remote_in/remote_out).
//
// Needs SIGTRACKER_BIN: against the reference stand-in (no cluster mode) every test is skipped.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { FILE_SIZE, VERSIONS, runBrowserTransfer, startWeb } from './browser-harness.mjs'
import { CLUSTER_SKIP, startClusterTracker } from './cluster-tracker.mjs'
import { runNodePair } from './node-harness.mjs'

const TRANSFER_TIMEOUT_MS = 45000

let cluster
let web
before(async () => {
  if (CLUSTER_SKIP) return
  cluster = await startClusterTracker({ nodes: 2 })
  web = await startWeb()
})
after(async () => {
  if (web) await web.stop()
  if (cluster) await cluster.stop()
})

/** The remote_in/remote_out counters of every node. */
async function remoteCounters () {
  return Promise.all(cluster.nodes.map(async (_, i) => {
    const c = await cluster.stats(i)
    return { remote_in: c.remote_in, remote_out: c.remote_out }
  }))
}

/** Asserts that both nodes delivered frames to and got frames from the other since `before`. */
async function assertCrossed (before, why) {
  const now = await remoteCounters()
  for (const i of [0, 1]) {
    assert.ok(now[i].remote_out > before[i].remote_out && now[i].remote_in > before[i].remote_in,
      `node ${i} should have delivered frames to and received frames from the other node: ` +
      `before ${JSON.stringify(before)}, after ${JSON.stringify(now)}${why()}`)
  }
}

VERSIONS.forEach((version, k) => {
  const [s, l] = k % 2 === 0 ? [0, 1] : [1, 0] // seeder's node, leecher's node
  test(`cluster: ${version.name}: a browser on node ${l} fetches a file seeded by a browser on node ${s}`,
    { skip: CLUSTER_SKIP, timeout: TRANSFER_TIMEOUT_MS + 45000 }, async (t) => {
      const seedUrl = cluster.nodes[s].url
      const fetchUrl = cluster.nodes[l].url
      t.diagnostic(`seeder → node ${s} ${seedUrl}; leecher → node ${l} ${fetchUrl}`)
      const before = await remoteCounters()
      let waited = 0
      const r = await runBrowserTransfer({
        origin: web.origin,
        trackerUrl: seedUrl,
        leecherTrackerUrl: fetchUrl,
        version,
        timeoutMs: TRANSFER_TIMEOUT_MS,
        async beforeFetch (seeded) {
          // The seeder is in the swarm as both nodes see it.
          const t0 = Date.now()
          await cluster.waitSwarm(s, seeded.infoHash, { complete: 1, incomplete: 0 })
          await cluster.waitSwarm(l, seeded.infoHash, { complete: 1, incomplete: 0 })
          waited = Date.now() - t0
        }
      })
      const why = () => `\n--- page logs ---\n${r.log.join('\n')}\n--- cluster logs ---\n${cluster.logs()}`
      assert.ok(!r.error, `${r.error}${why()}`)
      const { seeded, got } = r
      assert.ok(seeded.version.startsWith(version.major), `wrong webtorrent version ${seeded.version}`)
      assert.deepEqual(seeded.announce, [seedUrl], `the seeder must announce only to node ${s}${why()}`)
      assert.ok(!got.error, `${got.error}${why()}`)
      t.diagnostic(`node ${l} counted the seeder ${waited} ms after the seed; webtorrent ${got.version}: ` +
        `${got.length} bytes in ${got.ms} ms after add (with browser start-up: ${r.elapsedMs} ms)`)
      assert.deepEqual(got.announce, [fetchUrl], `the leecher must announce only to node ${l}${why()}`)
      assert.equal(got.length, FILE_SIZE, `wrong length${why()}`)
      assert.equal(got.sha256, seeded.sha256, `SHA-256 of the received file differs${why()}`)
      await assertCrossed(before, why)
    })
})

test('cluster: node bittorrent-tracker clients on two nodes exchange a message over WebRTC',
  { skip: CLUSTER_SKIP, timeout: 90000 }, async (t) => {
    const [a, b] = cluster.nodes
    t.diagnostic(`seeder → node 0 ${a.url}; leecher → node 1 ${b.url}`)
    const before = await remoteCounters()
    const r = await runNodePair({
      url: a.url,
      leecherUrl: b.url,
      windowMs: 45000,
      beforeLeecher: async ({ infoHash }) => {
        await cluster.waitSwarm(1, infoHash, { complete: 1, incomplete: 0 })
      }
    })
    t.diagnostic(`done after ${r.doneMs} ms (total ${r.elapsedMs} ms)`)
    const why = () => `\n${r.transcript}\n--- cluster logs ---\n${cluster.logs()}`
    assert.ok(!r.error, `${r.error}${why()}`)
    assert.ok(r.seederAnnounced, `seeder got no announce response${why()}`)
    assert.ok(r.leecherAnnounced, `leecher got no announce response${why()}`)
    assert.ok(r.leecherGot, `leecher did not receive "${r.seederMsg}"${why()}`)
    assert.ok(r.seederGot, `seeder did not receive "${r.leecherMsg}"${why()}`)
    await assertCrossed(before, why)
  })
