// The per-receiver signal bucket (--recv-rate/--recv-burst) holds whatever node the senders are on:
// senders on two other nodes together cannot push more than the burst (plus refill) into one
// victim, and each refused signal gets the same rate_limited error as on one node ("that peer is
// receiving signals too fast"), delivered back to the sender's node. A sender on the victim's own
// node draws on the same bucket. Refusals of remote signals travel back asynchronously, so the
// test waits until every signal is accounted for (relayed or refused).

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  barrier, closeAll, connect, peerIds, randomInfoHash, randomPeerId, sleep, stAnnounce,
  stAnnounceUntil, startCluster, waitFor
} from './cluster-helpers.mjs'

const RECV_RATE = 5
const RECV_BURST = 15
const ARGS = ['--signal-rate', '5', '--signal-burst', '10', '--recv-rate', String(RECV_RATE),
  '--recv-burst', String(RECV_BURST), '--min-interval', '0']

/** Upper bound of tokens a bucket of `rate`/s can have refilled in `ms`, plus one for rounding. */
const refill = (ms, rate = RECV_RATE) => Math.ceil(ms * rate / 1000) + 1

/** Removes and returns the queued messages of a client matching fn. */
function take (client, fn) {
  const out = []
  client.queue = client.queue.filter((e) => {
    if (fn(e.json)) {
      out.push(e.json)
      return false
    }
    return true
  })
  return out
}

function assertRefusal (r, V) {
  assert.deepEqual(Object.keys(r).sort(), ['code', 'message', 'ref', 'retry_after_ms', 'to', 'type'], JSON.stringify(r))
  assert.equal(r.type, 'error')
  assert.equal(r.code, 'rate_limited')
  assert.equal(r.message, 'that peer is receiving signals too fast', JSON.stringify(r))
  assert.equal(r.to, V)
  assert.equal(r.ref, 'candidate')
  assert.ok(Number.isInteger(r.retry_after_ms) && r.retry_after_ms > 0, JSON.stringify(r))
}

describe('receive bucket across nodes', () => {
  test('senders on two other nodes are cut at --recv-burst together; refusals reach them; a local sender shares the bucket', async (t) => {
    const cl = await startCluster({ t, nodes: 3, args: ARGS })
    const [n0, n1, n2] = cl.nodes
    const victim = await connect(n0, { name: 'victim@n0' })
    const local = await connect(n0, { name: 'local@n0' })
    const s1 = await connect(n1, { name: 'sender@n1' })
    const s2 = await connect(n2, { name: 'sender@n2' })
    const senders = [s1, s2]
    try {
      const V = randomPeerId('V')
      victim.peerId = V
      await victim.ola(V)
      const ids = new Map()
      for (const [i, s] of [local, s1, s2].entries()) {
        s.peerId = randomPeerId(`S${i}`)
        ids.set(s, s.peerId)
        await s.ola(s.peerId)
      }
      // Make sure nodes 1 and 2 know where V is (without spending the victim's tokens): V's swarm
      // membership is announced after its ID, so once they list V, they can route to it.
      const IH = randomInfoHash()
      await stAnnounce(victim, IH, { event: 'started', left: 1 })
      for (const s of senders) {
        await stAnnounceUntil(s, IH, { event: 'started', left: 1, num_want: 50 }, (m) => peerIds(m).includes(V),
          { what: `${s.name} should list V (node 0)` })
      }

      // Phase 1: 2 remote senders x 10 signals (each within its own burst of 10, together over
      // the victim's 15).
      const PER = 10
      const N = senders.length * PER
      const t0 = Date.now()
      for (let k = 0; k < PER; k++) {
        for (const [i, s] of senders.entries()) s.sendJson({ type: 'candidate', to: V, payload: { s: i, k } })
      }
      const got = []
      const refusals = senders.map(() => [])
      await waitFor(async () => {
        await barrier(victim)
        got.push(...take(victim, (m) => m?.type === 'candidate'))
        for (const [i, s] of senders.entries()) {
          await barrier(s)
          refusals[i].push(...take(s, (m) => m?.type === 'error'))
        }
        return got.length + refusals.flat().length >= N
      }, { what: () => `every signal should be relayed or refused: ${got.length} relayed, ${refusals.map((r) => r.length)} refused of ${N}` })
      const ms = Date.now() - t0
      t.diagnostic(`victim received ${got.length} of ${N} in ${ms} ms; refusals per remote sender ${refusals.map((r) => r.length)}`)
      for (const r of refusals.flat()) assertRefusal(r, V)
      assert.equal(got.length + refusals.flat().length, N, 'every signal is either relayed or refused, once')
      assert.ok(got.length >= RECV_BURST && got.length <= RECV_BURST + refill(ms),
        `the victim received ${got.length} signals from two other nodes (burst ${RECV_BURST}, ${RECV_RATE}/s over ${ms} ms): ` +
        'the receive bucket must hold across nodes')
      for (const m of got) {
        assert.deepEqual(Object.keys(m), ['type', 'from', 'payload'])
        assert.equal(ids.get(senders[m.payload.s]), m.from, JSON.stringify(m))
      }
      // Per sender, what was relayed arrived in the order sent.
      for (const i of [0, 1]) {
        const ks = got.filter((m) => m.payload.s === i).map((m) => m.payload.k)
        assert.deepEqual(ks, [...ks].sort((x, y) => x - y), `signals of sender ${i} out of order: ${ks}`)
      }

      // Phase 2: right away, the sender on the victim's own node draws on the same (empty) bucket.
      const t1 = Date.now()
      for (let k = 0; k < 6; k++) local.sendJson({ type: 'candidate', to: V, payload: { local: k } })
      await barrier(local)
      const ms2 = Date.now() - t1 + ms
      await barrier(victim)
      const gotLocal = take(victim, (m) => m?.type === 'candidate')
      const refusedLocal = take(local, (m) => m?.type === 'error')
      for (const r of refusedLocal) assertRefusal(r, V)
      assert.equal(gotLocal.length + refusedLocal.length, 6)
      assert.ok(got.length + gotLocal.length <= RECV_BURST + refill(ms2),
        `local + remote deliveries ${got.length} + ${gotLocal.length} exceed burst ${RECV_BURST} + refill over ${ms2} ms`)
      assert.ok(refusedLocal.length >= 1, 'a local sender right after the remote flood should be refused at least once')

      // The victim refills: after a pause a remote sender gets through again.
      await sleep(450)
      s2.sendJson({ type: 'offer', to: V, payload: { after: 'pause' } })
      assert.deepEqual(await victim.next({ type: 'offer' }), { type: 'offer', from: s2.peerId, payload: { after: 'pause' } })
      for (const c of [victim, local, s1, s2]) await c.assertQuiet()
    } finally {
      await closeAll(victim, local, senders)
    }
  })
})
