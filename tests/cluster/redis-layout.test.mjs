// What cluster mode keeps in Redis for peer IDs, checked from Redis itself: each node's IDs are
// fields of its own small hashes st:ids:<node_id>:<bucket> (bucket = FNV-1a of the ID's bytes mod
// 1,024, the same on every node), whose value is the holder's slot and generation (8 bytes) and,
// for an ST ID, the 16-byte hash of its reclaim token (never the token). A node that stops
// (SIGTERM) or dies (SIGKILL, after --node-timeout) leaves no ID record behind, and a corrupt
// record is claimable rather than fatal.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  SLOW, closeAll, clusterStats, connect, killNode, randomPeerId, respCommand, startCluster, waitFor, wtAnnounceRaw,
  wtClient, nastyId
} from './cluster-helpers.mjs'

const BUCKETS = 1024

/** The bucket of an ID's bytes, as src/cluster/cluster_redis.c computes it. */
function bucketOf (bytes) {
  let h = 2166136261
  for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0
  return h % BUCKETS
}

const field = (redis, node, idBytes) =>
  respCommand(redis.sock, ['HGET', `st:ids:${node}:${bucketOf(idBytes)}`, idBytes], { buffers: true })

async function idKeys (redis, node) {
  const keys = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.command('SCAN', cursor, 'MATCH', `st:ids:${node}:*`, 'COUNT', '1000')
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  return keys
}

describe('peer IDs in Redis', () => {
  test('an ID is one field of its node\'s bucket; stopped and killed nodes leave none', async (t) => {
    const cl = await startCluster({ t, nodes: 3, args: ['--min-interval', '0'] })
    const [n0, n1, n2] = cl.nodes
    const ids = []
    for (const n of cl.nodes) ids.push((await clusterStats(n)).node_id)
    const clients = []
    try {
      // An ST ID on node 0: 8 bytes of slot and generation, then the token's 16-byte hash.
      const a = await connect(n0, { name: 'layoutA@n0' })
      clients.push(a)
      const stId = randomPeerId('lay')
      const ola = await a.request({ type: 'ola', peer_id: stId }, { type: 'ola' })
      assert.equal(ola.ok, true, JSON.stringify(ola))
      const v = await field(cl.redis, ids[0], Buffer.from(stId))
      assert.ok(Buffer.isBuffer(v), `no record for ${stId} in node 0's bucket`)
      assert.equal(v.length, 24, `record of ${v.length} bytes`)
      assert.ok(!v.includes(Buffer.from(ola.token, 'hex')), 'Redis must not hold the token itself')
      for (const other of [ids[1], ids[2]]) assert.equal(await field(cl.redis, other, Buffer.from(stId)), null)

      // A WebTorrent ID (20 bytes, any byte value) on node 1: slot and generation only.
      const wtId = nastyId()
      const w = await wtClient(n1, 'layoutW', wtId)
      clients.push(w)
      const ans = await wtAnnounceRaw(w, { info_hash: nastyId(), left: 5, event: 'started' })
      assert.ok(!('failure reason' in ans), JSON.stringify(ans))
      const wv = await field(cl.redis, ids[1], Buffer.from(wtId, 'latin1'))
      assert.ok(Buffer.isBuffer(wv) && wv.length === 8, `WebTorrent record: ${wv?.toString('hex')}`)

      // A corrupt record (too short to name a holder) in a live node's bucket counts as held by
      // nobody: the ID is claimable, and the claim removes the corrupt record.
      const b = await connect(n2, { name: 'layoutB@n2' })
      clients.push(b)
      const victim = randomPeerId('cor')
      await respCommand(cl.redis.sock, ['HSET', `st:ids:${ids[0]}:${bucketOf(Buffer.from(victim))}`, victim, 'x'])
      const took = await b.request({ type: 'ola', peer_id: victim }, { type: 'ola' })
      assert.equal(took.ok, true, `a corrupt record should not block a claim: ${JSON.stringify(took)}`)
      assert.equal((await field(cl.redis, ids[2], Buffer.from(victim)))?.length, 24)
      assert.equal(await field(cl.redis, ids[0], Buffer.from(victim)), null, 'the corrupt record should be gone')

      assert.ok((await idKeys(cl.redis, ids[1])).length > 0)
      assert.ok((await idKeys(cl.redis, ids[2])).length > 0)

      // An orderly stop drops the node's records at once.
      await closeAll(w)
      const bPeer = await connect(n1, { name: 'layoutD@n1' })
      clients.push(bPeer)
      assert.equal((await bPeer.request({ type: 'ola', peer_id: randomPeerId('stop') }, { type: 'ola' })).ok, true)
      await n1.stopChecked()
      assert.deepEqual(await idKeys(cl.redis, ids[1]), [], 'a stopped node left ID records')

      // A killed node's records are dropped once another node's heartbeat finds it dead.
      await killNode(n2)
      await waitFor(async () => (await idKeys(cl.redis, ids[2])).length === 0,
        { timeoutMs: (cl.nodeTimeout + 3) * 1000 * SLOW, what: 'a killed node\'s ID records should be dropped' })
      // Node 0's own records stay.
      assert.equal((await field(cl.redis, ids[0], Buffer.from(stId)))?.length, 24)
    } finally {
      await closeAll(clients)
    }
  })
})
