// The ST dialect across three nodes of one cluster: the three-peer flow of
// tests/integration/st-flow.test.mjs with A, B and C each on a different node (ola, announce
// answers listing peers of every node, offer/answer/candidate relayed across nodes), num_want over
// a cluster-wide swarm, peer_not_found, and leaves ("stopped", disconnects) seen by every node.
// A client must not be able to tell that its peers are on other nodes.

import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  barrier, closeAll, connect, peerIds, randomInfoHash, randomPeerId, relayEventually,
  stAnnounce, stAnnounceUntil, startCluster, waitFor
} from './cluster-helpers.mjs'

const INTERVAL = 120
const MAX_NUMWANT = 3


/** Asserts the exact shape of a successful ola answer and returns its token. */
function assertOlaOk (ans, peerId) {
  assert.deepEqual(Object.keys(ans).sort(), ['interval', 'ok', 'peer_id', 'token', 'type'], JSON.stringify(ans))
  assert.equal(ans.type, 'ola')
  assert.equal(ans.ok, true, JSON.stringify(ans))
  assert.equal(ans.peer_id, peerId)
  assert.match(ans.token, /^[0-9a-f]{32}$/)
  assert.equal(ans.interval, INTERVAL)
  return ans.token
}

/** Asserts the exact shape of an announce answer; returns its peers sorted by peer_id. */
function assertAnnounce (ans, { infoHash, complete, incomplete }) {
  assert.deepEqual(Object.keys(ans).sort(),
    ['complete', 'incomplete', 'info_hash', 'interval', 'min_interval', 'peers', 'type'], JSON.stringify(ans))
  assert.equal(ans.type, 'announce')
  assert.equal(ans.info_hash, infoHash.toLowerCase())
  assert.equal(ans.interval, INTERVAL)
  assert.equal(ans.min_interval, 0)
  assert.equal(ans.complete, complete, `complete in ${JSON.stringify(ans)}`)
  assert.equal(ans.incomplete, incomplete, `incomplete in ${JSON.stringify(ans)}`)
  for (const p of ans.peers) {
    assert.deepEqual(Object.keys(p).sort(), ['complete', 'peer_id'], JSON.stringify(p))
  }
  const ids = ans.peers.map((p) => p.peer_id)
  assert.equal(new Set(ids).size, ids.length, `duplicate peers in ${JSON.stringify(ans.peers)}`)
  return [...ans.peers].sort((a, b) => (a.peer_id < b.peer_id ? -1 : 1))
}

const byId = (list) => [...list].sort((x, y) => (x.peer_id < y.peer_id ? -1 : 1))
const counts = (complete, incomplete) => (ans) => ans.complete === complete && ans.incomplete === incomplete
const sameIds = (ids) => (ans) => JSON.stringify(peerIds(ans)) === JSON.stringify([...ids].sort())

describe('ST flow across nodes', () => {
  // Suite-level hooks run before the root hooks of helpers.mjs, so the cluster is always torn
  // down (nodes checked, Redis stopped) even when a node crashed.
  let cl
  before(async () => {
    cl = await startCluster({ nodes: 3, args: ['--min-interval', '0', '--max-numwant', String(MAX_NUMWANT)] })
  })
  after(() => cl?.teardown())

  test('ola → announce → offer → answer → candidate: A, B, C on three different nodes', async () => {
    const [n0, n1, n2] = cl.nodes
    const a = await connect(n0, { name: 'flowA@n0' })
    const b = await connect(n1, { name: 'flowB@n1' })
    const c = await connect(n2, { name: 'flowC@n2' })
    try {
      const [A, B, C] = ['flowA-' + randomPeerId(), 'flowB-' + randomPeerId(), 'flowC-' + randomPeerId()]
      const tokens = [
        assertOlaOk(await a.request({ type: 'ola', peer_id: A }), A),
        assertOlaOk(await b.request({ type: 'ola', peer_id: B }), B),
        assertOlaOk(await c.request({ type: 'ola', peer_id: C }), C)
      ]
      a.peerId = A
      b.peerId = B
      c.peerId = C
      assert.equal(new Set(tokens).size, 3, 'tokens must differ between peers (and nodes)')

      const IH = randomInfoHash().toUpperCase()
      const common = { uploaded: 0, downloaded: 0 }

      // A (node 0): the first leecher sees an empty swarm.
      let ans = await stAnnounce(a, IH, { event: 'started', left: 100, ...common })
      assert.deepEqual(assertAnnounce(ans, { infoHash: IH, complete: 0, incomplete: 1 }), [])

      // B (node 1), a seeder: gets leechers only, i.e. A from node 0 (once node 1 knows of A's join).
      ans = await stAnnounceUntil(b, IH, { event: 'started', left: 0, ...common, num_want: 10 }, counts(1, 1),
        { what: 'on node 1 should count A (node 0) and B' })
      assert.deepEqual(assertAnnounce(ans, { infoHash: IH, complete: 1, incomplete: 1 }),
        [{ peer_id: A, complete: false }], 'a seeder on node 1 should be given the leecher of node 0')

      // C (node 2), a leecher: gets A (leecher, node 0) and B (seeder, node 1).
      ans = await stAnnounceUntil(c, IH, { event: 'started', left: 50, ...common, num_want: 10 }, counts(1, 2),
        { what: 'on node 2 should count A, B and C' })
      assert.deepEqual(assertAnnounce(ans, { infoHash: IH, complete: 1, incomplete: 2 }),
        byId([{ peer_id: A, complete: false }, { peer_id: B, complete: true }]),
        'a leecher on node 2 should be given the peers of nodes 0 and 1')

      // B again (regular announce): the leechers A (node 0) and C (node 2).
      ans = await stAnnounceUntil(b, IH, { left: 0, ...common, num_want: 10 }, counts(1, 2),
        { what: 'on node 1 should see C join' })
      assert.deepEqual(assertAnnounce(ans, { infoHash: IH, complete: 1, incomplete: 2 }),
        byId([{ peer_id: A, complete: false }, { peer_id: C, complete: false }]))

      // A again: B and C, never A.
      ans = await stAnnounceUntil(a, IH, { left: 100, ...common, num_want: 10 }, counts(1, 2),
        { what: 'on node 0 should count B and C' })
      assert.deepEqual(assertAnnounce(ans, { infoHash: IH, complete: 1, incomplete: 2 }),
        byId([{ peer_id: B, complete: true }, { peer_id: C, complete: false }]))

      // Offer A (node 0) → B (node 1), with an info_hash and a nested payload; a forged "from" is ignored.
      const offerPayload = { type: 'offer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n', n: [1, 2.5, null, true, { x: 'é"\\' }] }
      a.sendJson({ type: 'offer', to: B, from: 'mallory', info_hash: IH, payload: offerPayload })
      const offer = await b.next({ type: 'offer' })
      assert.deepEqual(offer, { type: 'offer', from: A, info_hash: IH.toLowerCase(), payload: offerPayload },
        'an offer relayed from node 0 to node 1 must arrive exactly as on one node')
      assert.deepEqual(Object.keys(offer), ['type', 'from', 'info_hash', 'payload'], 'field order of a relayed offer')

      // Answer B (node 1) → A (node 0) without an info_hash: none in the relay either.
      const answerPayload = { type: 'answer', sdp: 'v=0\r\n' }
      b.sendJson({ type: 'answer', to: A, payload: answerPayload })
      const answer = await a.next({ type: 'answer' })
      assert.deepEqual(answer, { type: 'answer', from: B, payload: answerPayload })
      assert.deepEqual(Object.keys(answer), ['type', 'from', 'payload'])

      // Candidates C (node 2) → A (node 0): any JSON value, verbatim and in order.
      const candidates = ['candidate:1 1 udp 2122260223 10.0.0.1 54321 typ host', 42, null, [], { candidate: '' }]
      for (const payload of candidates) c.sendJson({ type: 'candidate', to: A, payload })
      for (const payload of candidates) {
        assert.deepEqual(await a.next({ type: 'candidate' }), { type: 'candidate', from: C, payload },
          'candidates from one sender must arrive in the order sent, across nodes too')
      }

      // A signal to an ID nobody holds: peer_not_found, as on one node.
      const ghost = randomPeerId('ghost')
      const err = await a.request({ type: 'offer', to: ghost, payload: 1 })
      assert.deepEqual(err, { type: 'error', code: 'peer_not_found', message: 'no connected peer has that peer_id', ref: 'offer', to: ghost })

      // Nobody got anything not addressed to them.
      await a.assertQuiet('after the relays')
      await b.assertQuiet('after the relays')
      await c.assertQuiet('after the relays (C sent but received nothing)')
    } finally {
      await closeAll(a, b, c)
    }
  })

  test('num_want is honoured and capped over a swarm spread on three nodes', async () => {
    const IH = randomInfoHash()
    const clients = []
    const ids = []
    try {
      for (let i = 0; i < 5; i++) {
        const node = cl.nodes[i % 3]
        const cli = await connect(node, { name: `nw${i}@n${i % 3}` })
        clients.push(cli)
        ids.push(randomPeerId(`nw${i}`))
        await cli.ola(ids[i])
        await stAnnounce(cli, IH, { event: 'started', left: 1 })
      }
      const me = clients[2] // on node 2
      await stAnnounceUntil(me, IH, { left: 1, num_want: 50 }, counts(0, 5), { what: 'on node 2 should count all 5 peers' })
      const check = (ans, n) => {
        const peers = assertAnnounce(ans, { infoHash: IH, complete: 0, incomplete: 5 })
        assert.equal(peers.length, n, `expected ${n} peers, got ${JSON.stringify(peers)}`)
        for (const p of peers) {
          assert.notEqual(p.peer_id, ids[2], 'the asker must not be in its own peer list')
          assert.ok(ids.includes(p.peer_id), `unknown peer ${p.peer_id}`)
        }
      }
      check(await stAnnounce(me, IH, { left: 1, num_want: 1 }), 1)
      check(await stAnnounce(me, IH, { left: 1, num_want: 0 }), 0)
      check(await stAnnounce(me, IH, { left: 1, num_want: 2 }), 2)
      check(await stAnnounce(me, IH, { left: 1, num_want: 1000 }), MAX_NUMWANT)
      check(await stAnnounce(me, IH, { left: 1 }), MAX_NUMWANT)
      // Over many asks, every other peer (from every node) shows up: the choice is over the cluster.
      const seen = new Set()
      await waitFor(async () => {
        for (const p of (await stAnnounce(me, IH, { left: 1, num_want: 2 })).peers) seen.add(p.peer_id)
        return seen.size === 4
      }, { what: () => `random peer choice should reach all 4 other peers; saw ${[...seen]}` })
    } finally {
      await closeAll(clients)
    }
  })

  test('"stopped" and disconnects on one node leave the swarm on every node', async () => {
    const [n0, n1, n2] = cl.nodes
    const a = await connect(n0, { name: 'leaveA@n0' })
    const b = await connect(n1, { name: 'leaveB@n1' })
    const c = await connect(n2, { name: 'leaveC@n2' })
    try {
      const IH = randomInfoHash()
      const ids = { A: randomPeerId('lA'), B: randomPeerId('lB'), C: randomPeerId('lC') }
      a.peerId = ids.A
      b.peerId = ids.B
      c.peerId = ids.C
      await a.ola(ids.A)
      await b.ola(ids.B)
      await c.ola(ids.C)
      await stAnnounce(a, IH, { event: 'started', left: 0 })
      await stAnnounce(b, IH, { event: 'started', left: 5 })
      await stAnnounce(c, IH, { event: 'started', left: 5 })
      for (const cli of [a, b, c]) {
        await stAnnounceUntil(cli, IH, { left: cli === a ? 0 : 5, num_want: 50 }, counts(1, 2), { what: 'should count all three' })
      }

      // A (node 0) stops: nodes 1 and 2 stop counting and listing it.
      const stop = await stAnnounce(a, IH, { event: 'stopped', num_want: 50 })
      assert.deepEqual(stop.peers, [])
      for (const cli of [b, c]) {
        const ans = await stAnnounceUntil(cli, IH, { left: 5, num_want: 50 }, counts(0, 2), { what: 'A stopped on node 0' })
        assert.deepEqual(peerIds(ans), [cli === b ? ids.C : ids.B])
      }

      // C (node 2) disconnects: node 1 forgets it, and signals to C are peer_not_found there.
      await c.close()
      const ans = await stAnnounceUntil(b, IH, { left: 5, num_want: 50 }, (m) => counts(0, 1)(m) && sameIds([])(m),
        { what: 'C (node 2) disconnected' })
      assert.deepEqual(ans.peers, [])
      await waitFor(async () => {
        const m = await b.request({ type: 'candidate', to: ids.C, payload: 'x' }, (x) => x?.type === 'error')
        return m.code === 'peer_not_found'
      }, { what: 'a signal from node 1 to the peer that left node 2 should get peer_not_found' })
      // A is still reachable from B across nodes.
      await relayEventually(b, a, ids.A)
      await barrier(a)
      await a.assertQuiet()
    } finally {
      await closeAll(a, b, c)
    }
  })
})
