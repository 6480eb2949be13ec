// Redis stalled (SIGSTOP): its sockets stay open but nothing is answered. Nodes must never wait on
// Redis to serve their local peers: during a 3 s stall, already identified peers get their pong,
// their announce answer and relays between two peers of one node within 100 ms (measured
// repeatedly). After SIGCONT everything works across nodes again. A longer stall is reported:
// /health 503 and cluster.redis "stalled", then 200/"up" once Redis answers again.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  LOCAL_LATENCY_MS, PROPAGATION_MS, RECOVERY_MS, clusterStats, closeAll, connect, health, peerIds,
  randomInfoHash, randomPeerId, relayEventually, sleep, stAnnounce, stAnnounceUntil, startCluster,
  waitAllSee, waitFor, waitHealth
} from './cluster-helpers.mjs'

const STALL_MS = 3000

async function timed (fn) {
  const t0 = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - t0) / 1e6
}

/** Two nodes; p1, p2 on node 0 and q1 on node 1, all in one swarm, seen whole from both nodes. */
async function setup (t) {
  const cl = await startCluster({ t, nodes: 2, args: ['--min-interval', '0'] })
  const [n0, n1] = cl.nodes
  const IH = randomInfoHash()
  const p1 = await connect(n0, { name: 'p1@n0' })
  const p2 = await connect(n0, { name: 'p2@n0' })
  const q1 = await connect(n1, { name: 'q1@n1' })
  const peers = [p1, p2, q1]
  for (const p of peers) {
    p.peerId = randomPeerId(p.name.slice(0, 2))
    await p.ola(p.peerId)
    await stAnnounce(p, IH, { event: 'started', left: 5 })
  }
  for (const p of [p1, q1]) {
    await stAnnounceUntil(p, IH, { left: 5, num_want: 50 }, (m) => m.incomplete === 3, { what: 'the whole swarm before the stall' })
  }
  await cl.ready(2)
  return { cl, n0, n1, IH, p1, p2, q1, peers }
}

/** Checks the cluster works across nodes again after a stall. */
async function assertRecovered (t, { cl, n1, IH, p1, p2, q1 }, tResume) {
  for (const node of cl.nodes) await waitHealth(node, 200, RECOVERY_MS)
  await waitAllSee(cl.nodes, 2, RECOVERY_MS)
  await relayEventually(q1, p1, p1.peerId, { timeoutMs: RECOVERY_MS })
  await relayEventually(p2, q1, q1.peerId, { timeoutMs: RECOVERY_MS })
  for (const p of [p1, q1]) {
    await stAnnounceUntil(p, IH, { left: 5, num_want: 50 }, (m) => m.incomplete === 3 && m.peers.length === 2,
      { timeoutMs: RECOVERY_MS, what: 'the whole swarm after the stall' })
  }
  // Claims work, and cross-node uniqueness holds.
  const fresh = await connect(n1, { name: 'fresh@n1' })
  try {
    const id = randomPeerId('fresh')
    const ok = await fresh.request({ type: 'ola', peer_id: p1.peerId }, { type: 'ola' })
    assert.deepEqual(ok, { type: 'ola', ok: false, peer_id: p1.peerId, error: 'peer_id_taken' },
      'after the stall, node 1 must still refuse an ID held on node 0')
    const mine = await fresh.request({ type: 'ola', peer_id: id }, { type: 'ola' })
    assert.equal(mine.ok, true, `a new claim after the stall: ${JSON.stringify(mine)}`)
  } finally {
    await fresh.close()
  }
  t.diagnostic(`cluster working again ${Date.now() - tResume} ms after SIGCONT`)
}

describe('Redis stalled with SIGSTOP', () => {
  test(`for ${STALL_MS} ms: local peers answered within ${LOCAL_LATENCY_MS} ms throughout; then whole again`, async (t) => {
    const ctx = await setup(t)
    const { cl, n0, n1, IH, p1, p2, q1, peers } = ctx
    try {
      const lat = { ping: [], announce: [], relay: [], pingN1: [], announceN1: [] }
      const healthSeen = { [n0.port]: new Set(), [n1.port]: new Set() }
      cl.redis.pause()
      const t0 = Date.now()
      let i = 0
      while (Date.now() - t0 < STALL_MS) {
        lat.ping.push(await timed(() => p1.request({ type: 'ping' }, { type: 'pong' })))
        lat.announce.push(await timed(async () => {
          const m = await stAnnounce(p1, IH, { left: 5, num_want: 50 })
          assert.ok(peerIds(m).includes(p2.peerId), `during the stall, node 0 must still list its own peer p2: ${JSON.stringify(m)}`)
        }))
        lat.relay.push(await timed(async () => {
          p1.sendJson({ type: 'candidate', to: p2.peerId, payload: { i } })
          const m = await p2.next({ type: 'candidate' })
          assert.deepEqual(m, { type: 'candidate', from: p1.peerId, payload: { i } })
        }))
        lat.pingN1.push(await timed(() => q1.request({ type: 'ping' }, { type: 'pong' })))
        lat.announceN1.push(await timed(() => stAnnounce(q1, IH, { left: 5, num_want: 50 })))
        // HTTP must keep answering too (any status: the node may already report the stall).
        for (const node of [n0, n1]) healthSeen[node.port].add(await health(node, 1000))
        i++
        await sleep(50)
      }
      const stalledFor = Date.now() - t0
      cl.redis.resume()
      const tResume = Date.now()

      const max = Object.fromEntries(Object.entries(lat).map(([k, v]) => [k, Math.round(Math.max(...v))]))
      t.diagnostic(`${i} rounds during a ${stalledFor} ms stall; worst latencies (ms) ${JSON.stringify(max)}; ` +
        `/health seen ${JSON.stringify(Object.fromEntries(Object.entries(healthSeen).map(([k, v]) => [k, [...v]])))}`)
      assert.ok(i >= 10, `only ${i} measurement rounds during the stall`)
      for (const [k, v] of Object.entries(lat)) {
        const slow = v.filter((ms) => ms > LOCAL_LATENCY_MS)
        assert.deepEqual(slow.map(Math.round), [],
          `${k}: ${slow.length} of ${v.length} answers took over ${LOCAL_LATENCY_MS} ms while Redis was stalled`)
      }
      for (const p of peers) await p.assertQuiet('after the stall measurements')

      await assertRecovered(t, ctx, tResume)
    } finally {
      cl.redis.resume()
      await closeAll(peers)
    }
  })

  test('a long stall is reported (/health 503, redis "stalled"), a claim meanwhile is not lost, then 200/"up"', async (t) => {
    const ctx = await setup(t)
    const { cl, n0, n1, p1, p2, peers } = ctx
    const extra = []
    try {
      cl.redis.pause()
      const t0 = Date.now()
      await waitHealth(n0, 503, RECOVERY_MS)
      const detected = Date.now() - t0
      const cs = await clusterStats(n0)
      assert.equal(cs.redis, 'stalled', `a SIGSTOPped Redis (connection open, no answers) is "stalled": ${JSON.stringify(cs)}`)
      await waitHealth(n1, 503, PROPAGATION_MS)
      t.diagnostic(`stall reported by /health after ${detected} ms`)
      // Still serving local peers.
      const ms = await timed(async () => {
        p1.sendJson({ type: 'offer', to: p2.peerId, payload: 'stalled' })
        await p2.next({ type: 'offer' })
      })
      assert.ok(ms <= LOCAL_LATENCY_MS, `a local relay took ${ms} ms during the stall`)

      // A claim during the stall: refused as unavailable (retryable) now, or granted once Redis
      // answers again. Either way it ends in a usable ID, never in a hang or a wrong refusal.
      const late = await connect(n1, { name: 'stallClaim@n1' })
      extra.push(late)
      const id = randomPeerId('stall')
      late.sendJson({ type: 'ola', peer_id: id })
      let ans = null
      const answered = late.next({ type: 'ola' }, RECOVERY_MS).then((m) => { ans = m })
      await sleep(500)
      cl.redis.resume()
      const tResume = Date.now()
      await answered
      if (!ans.ok) {
        assert.equal(ans.error, 'unavailable', `a claim during a stall may only be refused as unavailable: ${JSON.stringify(ans)}`)
        assert.ok(ans.retry_after_ms > 0, JSON.stringify(ans))
        await waitFor(async () => {
          const r = await late.request({ type: 'ola', peer_id: id }, { type: 'ola' })
          if (!r.ok) assert.equal(r.error, 'unavailable', JSON.stringify(r))
          return r.ok
        }, { timeoutMs: RECOVERY_MS, what: 'the claim refused during the stall should succeed after it' })
      }
      t.diagnostic(`claim during the stall answered ${JSON.stringify(ans)}`)
      await waitHealth(n0, 200, RECOVERY_MS)
      let last
      await waitFor(async () => {
        last = await clusterStats(n0)
        return last.redis === 'up'
      }, { timeoutMs: RECOVERY_MS, what: () => `cluster.redis should be "up" again: ${JSON.stringify(last)}` })
      await assertRecovered(t, ctx, tResume)
    } finally {
      cl.redis.resume()
      await closeAll(peers, extra)
    }
  })
})
