// SIGHUP in cluster mode: a reload keeps the node in the cluster, applies new limits, and an
// access list that starts refusing a swarm removes that node's peers from it, which every other
// node's mirror follows (counts exact everywhere); the other nodes' peers stay until their own
// node reloads.

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import {
  binToHex, closeAll, clusterStats, isFailure, nastyId, randomInfoHash, startCluster, stats,
  stAnnounce, stPeer, stScrapeUntil, waitFor, waitHealth, wtAnnounce, wtClient
} from './cluster-helpers.mjs'

const dir = mkdtempSync(path.join(os.tmpdir(), 'sigtracker-cluster-reload-'))
after(() => rmSync(dir, { recursive: true, force: true }))

async function reload (node) {
  const before = (await stats(node)).config_reloads
  node.child.kill('SIGHUP')
  await waitFor(async () => (await stats(node)).config_reloads === before + 1,
    { what: `node ${node.port} reloaded` })
}

describe('reload in cluster mode', () => {
  test('a denylist reload removes the node\'s own peers; every mirror follows', async (t) => {
    const deny = path.join(dir, 'deny.txt')
    const conf = path.join(dir, 'node.conf')
    writeFileSync(deny, '# nothing yet\n')
    writeFileSync(conf, '[tracker]\nmin-interval = 0\nmax-numwant = 50\n')
    const cl = await startCluster({ t, nodes: 2, args: ['--config', conf, '--denylist', deny] })
    await cl.ready()
    const [n0, n1] = cl.nodes
    const IH = randomBytes(20).toString('latin1')
    const HEX = binToHex(IH)
    const KEEP = randomInfoHash()
    // Node 0: an ST leecher and a WebTorrent seeder in IH. Node 1: an ST leecher in IH and KEEP.
    const a0 = await stPeer(n0, 'a0')
    const w0 = await wtClient(n0, 'w0', nastyId())
    const b1 = await stPeer(n1, 'b1')
    await stAnnounce(a0, HEX, { event: 'started', left: 5 })
    await wtAnnounce(w0, { info_hash: IH, left: 0, event: 'started' })
    await stAnnounce(b1, HEX, { event: 'started', left: 5 })
    await stAnnounce(b1, KEEP, { event: 'started', left: 5 })
    await stScrapeUntil(b1, HEX, { complete: 1, incomplete: 2, downloaded: 0 }, { what: 'before' })
    await stScrapeUntil(a0, KEEP, { complete: 0, incomplete: 1, downloaded: 0 }, { what: 'before' })

    // Node 0 reloads with IH denied (and a new limit): its two peers leave IH.
    writeFileSync(deny, `${HEX}\n`)
    writeFileSync(conf, '[tracker]\nmin-interval = 0\nmax-numwant = 1\n')
    await reload(n0)
    const s0 = await stats(n0)
    assert.equal(s0.access_list.removed_peers, 2)
    assert.equal(s0.peers, 0)
    assert.equal(s0.cluster.redis, 'up')
    await waitHealth(n0, 200)
    const f = await w0.next(isFailure)
    assert.equal(f.info_hash, IH)
    const e = await a0.next({ type: 'error' })
    assert.equal(e.code, 'torrent_not_allowed')
    // Node 1 has not reloaded: it still serves IH, and its mirror lost node 0's peers.
    await stScrapeUntil(b1, HEX, { complete: 0, incomplete: 1, downloaded: 0 }, { what: 'after node 0 reloaded' })
    await waitFor(async () => (await clusterStats(n1)).peers === 2, { what: 'node 1 counts 2 peers cluster-wide' })
    // Node 0 mirrors node 1's peer in IH still (its node did not remove it), and refuses IH itself.
    await waitFor(async () => (await clusterStats(n0)).peers === 2, { what: 'node 0 counts 2 peers cluster-wide' })
    const refused = await a0.request({ type: 'announce', info_hash: HEX, event: 'started' }, { type: 'error' })
    assert.equal(refused.code, 'torrent_not_allowed')
    // The new max-numwant applies on node 0: one peer at most in an answer.
    const k = await stAnnounce(a0, KEEP, { event: 'started', left: 5, num_want: 10 })
    assert.equal(k.peers.length, 1)

    // Node 1 reloads too: IH is empty everywhere, KEEP keeps its two peers.
    await reload(n1)
    await waitFor(async () => (await clusterStats(n0)).peers === 2 && (await clusterStats(n1)).peers === 2,
      { what: 'both nodes count the 2 KEEP peers only' })
    await stScrapeUntil(a0, KEEP, { complete: 0, incomplete: 2, downloaded: 0 }, { what: 'KEEP after both reloaded' })
    assert.equal((await stats(n1)).access_list.removed_peers, 1)
    await waitHealth(n1, 200)
    await closeAll(a0, w0, b1)
  })

  test('a broken file on one node changes nothing there; the cluster keeps working', async (t) => {
    const conf = path.join(dir, 'broken.conf')
    writeFileSync(conf, '[tracker]\nmin-interval = 0\n')
    const cl = await startCluster({ t, nodes: 2, args: ['--config', conf] })
    await cl.ready()
    const [n0, n1] = cl.nodes
    writeFileSync(conf, '[tracker]\nmin-interval = soon\n')
    const before = (await stats(n0)).config_reload_failures
    n0.child.kill('SIGHUP')
    await waitFor(async () => (await stats(n0)).config_reload_failures === before + 1, { what: 'refused' })
    assert.match(n0.stderr, /reload refused: .*broken\.conf:2: key min-interval wants a whole number/)
    const IH = randomInfoHash()
    const p = await stPeer(n0, 'p')
    const q = await stPeer(n1, 'q')
    await stAnnounce(p, IH, { event: 'started', left: 1 })
    await stAnnounce(q, IH, { event: 'started', left: 1 })
    await stScrapeUntil(p, IH, { complete: 0, incomplete: 2, downloaded: 0 })
    await closeAll(p, q)
  })
})
