// Redis goes away and comes back on the same socket, in two ways: SIGTERM without persistence
// (Redis comes back empty: the nodes must put their state back by themselves) and SIGKILL with an
// append-only file (Redis comes back with the old state). While it is away, every node keeps
// serving its local peers (pings, announces answered from local swarms, ST relays between two
// peers of one node), refuses new claims with a retryable error (ST "unavailable" with
// retry_after_ms, WebTorrent "tracker temporarily unavailable..."), and /health answers 503. Once
// it is back, within 10 s and without any client doing anything: /health 200, Redis "up", every
// node counts every node's peers again, cross-node relays work, claims work and IDs held before the
// outage are still protected (and reclaimable with their tokens).

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  PROPAGATION_MS, RECOVERY_MS, assertUnavailable, barrier, clusterStats, closeAll, connect,
  isFailure, nastyId, peerIds, randomInfoHash, randomPeerId, relayEventually, sleep, stAnnounce,
  stAnnounceUntil, startCluster, waitAllSee, waitFor, waitHealth, wtAnnounceRaw, wtClient
} from './cluster-helpers.mjs'

const VARIANTS = [
  { name: 'SIGTERM, no persistence (Redis comes back empty)', signal: 'SIGTERM', persist: false },
  { name: 'SIGKILL, append-only file (Redis comes back with the old state)', signal: 'SIGKILL', persist: true }
]

describe('Redis stopped and restarted', () => {
  for (const v of VARIANTS) {
    test(v.name, async (t) => {
      const cl = await startCluster({ t, nodes: 3, persist: v.persist, args: ['--min-interval', '0'] })
      const { redis } = cl
      const [n0, n1, n2] = cl.nodes
      const IH = randomInfoHash()
      const a1 = await connect(n0, { name: 'a1@n0' })
      const a2 = await connect(n0, { name: 'a2@n0' })
      const b1 = await connect(n1, { name: 'b1@n1' })
      const c1 = await connect(n2, { name: 'c1@n2' })
      const peers = [a1, a2, b1, c1]
      const extra = []
      try {
        for (const p of peers) {
          p.peerId = randomPeerId(p.name.slice(0, 2))
          p.token = (await p.ola(p.peerId)).token
          await stAnnounce(p, IH, { event: 'started', left: 5 })
        }
        const everyone = peers.map((p) => p.peerId)
        const whole = (p) => (m) => m.incomplete === 4 && JSON.stringify(peerIds(m)) === JSON.stringify(everyone.filter((id) => id !== p.peerId).sort())
        for (const p of [a1, b1, c1]) {
          await stAnnounceUntil(p, IH, { left: 5, num_want: 50 }, whole(p), { what: 'before the outage: the whole swarm' })
        }
        await cl.ready(3)

        // Redis goes away.
        if (v.signal === 'SIGKILL') await redis.kill()
        else await redis.stop()
        const t0 = Date.now()
        for (const node of cl.nodes) await waitHealth(node, 503, PROPAGATION_MS)
        for (const node of cl.nodes) {
          let last
          await waitFor(async () => {
            last = await clusterStats(node)
            return last.redis === 'down'
          }, { what: () => `cluster.redis should be "down" on port ${node.port}; last ${JSON.stringify(last)}` })
        }

        // Local service goes on.
        for (const p of peers) await barrier(p)
        const local = await stAnnounce(a1, IH, { left: 5, num_want: 50 })
        assert.ok(peerIds(local).includes(a2.peerId), `during the outage, node 0 should still list its own peer a2: ${JSON.stringify(local)}`)
        await stAnnounce(c1, IH, { left: 5, num_want: 50 })
        a1.sendJson({ type: 'offer', to: a2.peerId, payload: { during: 'outage' } })
        assert.deepEqual(await a2.next({ type: 'offer' }), { type: 'offer', from: a1.peerId, payload: { during: 'outage' } },
          'a relay between two peers of one node must work while Redis is down')
        a2.sendJson({ type: 'answer', to: a1.peerId, payload: 'back' })
        assert.deepEqual(await a1.next({ type: 'answer' }), { type: 'answer', from: a2.peerId, payload: 'back' })

        // New claims are refused with a retryable error.
        const newcomer = await connect(n1, { name: 'newcomer@n1' })
        extra.push(newcomer)
        newcomer.peerId = randomPeerId('new')
        assertUnavailable(await newcomer.request({ type: 'ola', peer_id: newcomer.peerId }, { type: 'ola' }), newcomer.peerId)
        const wtNew = await wtClient(n2, 'wtNew', nastyId())
        extra.push(wtNew)
        const IHB = nastyId()
        const f = await wtAnnounceRaw(wtNew, { info_hash: IHB, left: 5, event: 'started' })
        assert.ok(isFailure(f), `a WebTorrent claim while Redis is down must fail: ${JSON.stringify(f)}`)
        assert.deepEqual(Object.keys(f), ['action', 'info_hash', 'failure reason'])
        assert.ok(f['failure reason'].startsWith('tracker temporarily unavailable'),
          `failure reason should start with "tracker temporarily unavailable": ${JSON.stringify(f)}`)

        // Keep Redis away for at least 1.5 s (reconnect attempts must fail a few times).
        await sleep(Math.max(0, 1500 - (Date.now() - t0)))
        await redis.start()
        const t1 = Date.now()

        // Back without any client doing anything.
        for (const node of cl.nodes) await waitHealth(node, 200, RECOVERY_MS)
        await waitAllSee(cl.nodes, 3, Math.max(1000, RECOVERY_MS - (Date.now() - t1)))
        for (const p of [a1, b1, c1]) {
          await stAnnounceUntil(p, IH, { left: 5, num_want: 50 }, whole(p),
            { timeoutMs: Math.max(1000, RECOVERY_MS - (Date.now() - t1)), what: 'after Redis came back: the whole swarm on every node' })
        }
        t.diagnostic(`outage ${t1 - t0} ms; cluster whole again ${Date.now() - t1} ms after Redis restarted`)

        // Cross-node relays.
        await relayEventually(b1, a1, a1.peerId)
        await relayEventually(c1, b1, b1.peerId)
        await relayEventually(a2, c1, c1.peerId, { type: 'candidate' })

        // Claims work again: the refused ones, on the same connections.
        const ok = await newcomer.request({ type: 'ola', peer_id: newcomer.peerId }, { type: 'ola' })
        assert.equal(ok.ok, true, `a claim after Redis came back: ${JSON.stringify(ok)}`)
        const w = await wtAnnounceRaw(wtNew, { info_hash: IHB, left: 5, event: 'started' })
        assert.ok(!isFailure(w), `a WebTorrent claim after Redis came back: ${JSON.stringify(w)}`)

        // IDs held through the outage are still protected on every other node...
        const thief = await connect(n2, { name: 'thief@n2' })
        extra.push(thief)
        const stolen = await thief.request({ type: 'ola', peer_id: b1.peerId }, { type: 'ola' })
        assert.deepEqual(stolen, { type: 'ola', ok: false, peer_id: b1.peerId, error: 'peer_id_taken' },
          'node 2 gave away an ID that node 1 held through the Redis outage (the claims were not restored in Redis)')
        // ... and reclaimable with the token issued before the outage, from another node.
        const re = await thief.request({ type: 'ola', peer_id: a1.peerId, token: a1.token }, { type: 'ola' })
        assert.equal(re.ok, true, `a1's pre-outage token should reclaim its ID on node 2: ${JSON.stringify(re)}`)
        assert.deepEqual(await a1.next({ type: 'bye' }), { type: 'bye', reason: 'replaced' })
        assert.equal((await a1.closed).code, 1000)
        thief.peerId = a1.peerId
        await relayEventually(b1, thief, a1.peerId)
        const sc = await waitFor(async () => {
          const files = (await b1.request({ type: 'scrape', info_hashes: [IH] }, { type: 'scrape' })).files
          return files[IH].incomplete === 3 && files[IH]
        }, { what: 'a1 left with its reclaim: 3 leechers' })
        assert.equal(sc.complete, 0)
      } finally {
        await closeAll(peers, extra)
      }
    })
  }
})
