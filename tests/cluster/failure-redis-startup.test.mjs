// Redis unreachable when a node starts: the node starts and listens anyway, /health answers 503,
// /stats.json has its cluster object with redis "down", claims are refused as unavailable (ST)
// or "tracker temporarily unavailable..." (WebTorrent), and what needs no Redis (pings) works.
// When Redis appears on that socket, the node joins by itself (within 10 s): /health 200, claims
// work, and a second node started later forms one cluster with it.

import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { describe, test } from 'node:test'
import {
  Cluster, RECOVERY_MS, assertUnavailable, clusterArgs, clusterStats, closeAll, connect, health,
  isFailure, nastyId, randomInfoHash, randomPeerId, relayEventually, stAnnounce, stAnnounceUntil,
  startNode, startRawNode, startRedis, waitAllSee, waitFor, waitHealth, wtAnnounceRaw, wtClient
} from './cluster-helpers.mjs'

describe('Redis unreachable at start-up', () => {
  test('the node starts anyway (503, claims unavailable), then joins by itself when Redis appears', async (t) => {
    const redis = await startRedis({ start: false })
    const cl = new Cluster(redis, [])
    t.after(() => cl.teardown(t))
    assert.ok(!existsSync(redis.sock), 'nothing may listen on the socket yet')

    const n0 = cl.adopt(await startRawNode({ args: clusterArgs(redis), ready: 'any' }))
    assert.equal(n0.firstHealth, 503, 'a node whose Redis is unreachable must answer /health with 503')
    assert.equal(await health(n0), 503)
    const cs = await clusterStats(n0)
    assert.equal(cs.redis, 'down', JSON.stringify(cs))
    assert.match(cs.node_id, /^[0-9a-f]{16}$/, JSON.stringify(cs))

    const st = await connect(n0, { name: 'early-st' })
    const wt = await wtClient(n0, 'early-wt', nastyId())
    const clients = [st, wt]
    try {
      await st.request({ type: 'ping' }, { type: 'pong' })
      const id = randomPeerId('early')
      assertUnavailable(await st.request({ type: 'ola', peer_id: id }, { type: 'ola' }), id)
      const IHB = nastyId()
      const f = await wtAnnounceRaw(wt, { info_hash: IHB, left: 1, event: 'started' })
      assert.ok(isFailure(f) && f['failure reason'].startsWith('tracker temporarily unavailable'),
        `a WebTorrent claim with no Redis: ${JSON.stringify(f)}`)

      // Redis appears: the node joins without anyone touching it.
      await redis.start()
      const t0 = Date.now()
      await waitHealth(n0, 200, RECOVERY_MS)
      await waitAllSee([n0], 1, RECOVERY_MS)
      t.diagnostic(`node joined ${Date.now() - t0} ms after Redis appeared`)

      // The same connections now claim.
      let ans
      await waitFor(async () => {
        ans = await st.request({ type: 'ola', peer_id: id }, { type: 'ola' })
        if (!ans.ok) assert.equal(ans.error, 'unavailable', JSON.stringify(ans))
        return ans.ok
      }, { timeoutMs: RECOVERY_MS, what: () => `the refused claim should succeed once Redis is there; last ${JSON.stringify(ans)}` })
      st.peerId = id
      const w = await wtAnnounceRaw(wt, { info_hash: IHB, left: 1, event: 'started' })
      assert.ok(!isFailure(w), JSON.stringify(w))

      // A second node, started normally, forms one cluster with it.
      const n1 = cl.adopt(await startNode(redis))
      await waitAllSee([n0, n1], 2, RECOVERY_MS)
      const other = await connect(n1, { name: 'later@n1' })
      clients.push(other)
      const taken = await other.request({ type: 'ola', peer_id: id }, { type: 'ola' })
      assert.deepEqual(taken, { type: 'ola', ok: false, peer_id: id, error: 'peer_id_taken' })
      other.peerId = randomPeerId('later')
      await other.ola(other.peerId)
      const IH = randomInfoHash()
      await stAnnounce(st, IH, { event: 'started', left: 1 })
      await stAnnounceUntil(other, IH, { event: 'started', left: 1, num_want: 50 }, (m) => m.incomplete === 2,
        { what: 'node 1 should count the peer of the node that started without Redis' })
      await relayEventually(other, st, id)
      await relayEventually(st, other, other.peerId)
    } finally {
      await closeAll(clients)
    }
  })
})
