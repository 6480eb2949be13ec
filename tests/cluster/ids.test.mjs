// Peer IDs are unique cluster-wide. An ID held on one node is refused on another (ST:
// peer_id_taken; WebTorrent: "peer_id is in use by another connection"), at once: an ola takes
// one Redis round trip, so once a claim is answered ok no other node can grant it. Simultaneous
// claims on three nodes: exactly one wins. Token reclaim across nodes: the old connection, on its
// own node, gets {"type":"bye","reason":"replaced"} and a close (1000); the ID is never held
// twice; signals then reach the new holder.

import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  closeAll, connect, randomInfoHash, randomPeerId, relayEventually, stAnnounce,
  stAnnounceUntil, startCluster, waitFor, wtAnnounce, wtAnnounceRaw, wtClient, wtExpectFailure,
  nastyId
} from './cluster-helpers.mjs'

const IN_USE = 'peer_id is in use by another connection'


const taken = (id) => ({ type: 'ola', ok: false, peer_id: id, error: 'peer_id_taken' })

function assertOlaOk (ans, peerId) {
  assert.deepEqual(Object.keys(ans).sort(), ['interval', 'ok', 'peer_id', 'token', 'type'], JSON.stringify(ans))
  assert.equal(ans.ok, true, JSON.stringify(ans))
  assert.equal(ans.peer_id, peerId)
  assert.match(ans.token, /^[0-9a-f]{32}$/)
  return ans.token
}

/** Polls ola on a fresh connection to node until the ID is granted; returns { client, token }. */
async function claimEventually (node, id, extra = {}, name = 'late') {
  const c = await connect(node, { name: `${name}@${node.port}` })
  let last
  await waitFor(async () => {
    last = await c.request({ type: 'ola', peer_id: id, ...extra }, { type: 'ola' })
    if (!last.ok) assert.deepEqual(last, taken(id), 'only peer_id_taken may come before the ID is free again')
    return last.ok
  }, { what: () => `${id} should become free on node port ${node.port}; last ${JSON.stringify(last)}` })
  c.peerId = id
  return { client: c, token: last.token }
}

describe('peer IDs across nodes', () => {
  // Suite-level hooks run before the root hooks of helpers.mjs, so the cluster is always torn
  // down (nodes checked, Redis stopped) even when a node crashed.
  let cl
  before(async () => {
    cl = await startCluster({ nodes: 3, args: ['--min-interval', '0'] })
  })
  after(() => cl?.teardown())

  test('an ST ID held on node 0 is refused on nodes 1 and 2 at once; the refused connection stays usable', async () => {
    const [n0, n1, n2] = cl.nodes
    const x = await connect(n0, { name: 'dupX@n0' })
    const y = await connect(n1, { name: 'dupY@n1' })
    const z = await connect(n2, { name: 'dupZ@n2' })
    try {
      const ID = randomPeerId('dup')
      await x.ola(ID)
      // No waiting: the claim is in Redis once x's ola was answered.
      assert.deepEqual(await y.request({ type: 'ola', peer_id: ID }, { type: 'ola' }), taken(ID),
        'node 1 must refuse an ID held on node 0, immediately after the holder was answered')
      assert.deepEqual(await z.request({ type: 'ola', peer_id: ID }, { type: 'ola' }), taken(ID),
        'node 2 must refuse an ID held on node 0')
      // A token-less retry is refused again; so is an all-zero token.
      assert.deepEqual(await y.request({ type: 'ola', peer_id: ID, token: '0'.repeat(32) }, { type: 'ola' }), taken(ID))
      await y.assertQuiet('after the refusals')
      // Still unidentified.
      const notId = await y.request({ type: 'announce', info_hash: randomInfoHash() }, { type: 'error' })
      assert.equal(notId.code, 'not_identified')
      // Another ID works, and signals between the nodes reach the right connection.
      const ID2 = randomPeerId('dup2')
      y.peerId = ID2
      assertOlaOk(await y.request({ type: 'ola', peer_id: ID2 }, { type: 'ola' }), ID2)
      await relayEventually(y, x, ID)
      await x.assertQuiet()
      await y.assertQuiet()
      // The holder's ID is still its own (no bye).
      assert.ok(x.isOpen)
    } finally {
      await closeAll(x, y, z)
    }
  })

  test('simultaneous claims of one ID on three nodes: exactly one wins (5 rounds)', async () => {
    for (let round = 0; round < 5; round++) {
      const clients = await Promise.all(cl.nodes.map((n, i) => connect(n, { name: `race${round}@n${i}` })))
      try {
        const ID = randomPeerId(`race${round}`)
        for (const c of clients) c.sendJson({ type: 'ola', peer_id: ID })
        const answers = await Promise.all(clients.map((c) => c.next({ type: 'ola' })))
        const winners = answers.filter((a) => a.ok)
        assert.equal(winners.length, 1, `round ${round}: exactly one of three nodes may grant ${ID}: ${JSON.stringify(answers)}`)
        for (const a of answers.filter((x) => !x.ok)) assert.deepEqual(a, taken(ID))
        // The losers really are refused from now on, and the winner is reachable from them.
        const wi = answers.findIndex((a) => a.ok)
        const winner = clients[wi]
        winner.peerId = ID
        const loser = clients[(wi + 1) % 3]
        loser.peerId = randomPeerId('loser')
        await loser.ola(loser.peerId)
        await relayEventually(loser, winner, ID, { type: 'candidate' })
      } finally {
        await closeAll(clients)
      }
    }
  })

  test('WebTorrent: an ID held on another node (by either dialect) fails with the in-use reason', async () => {
    const [n0, n1, n2] = cl.nodes
    const IH = nastyId()
    const wt0 = await wtClient(n0, 'wtHold', nastyId())
    const wt1 = await wtClient(n1, 'wtDup', wt0.peerId)
    const st2 = await connect(n2, { name: 'stDup@n2' })
    const ASCII_ID = 'clu5terABCDEFGHIJ012' // 20 characters: valid in both dialects
    const st0 = await connect(n0, { name: 'stHold@n0' })
    const wt2 = await wtClient(n2, 'wtVsSt', ASCII_ID)
    try {
      await wtAnnounce(wt0, { info_hash: IH, left: 5, event: 'started' })
      // WT vs WT across nodes.
      const f = await wtExpectFailure(wt1, { action: 'announce', info_hash: IH, peer_id: wt0.peerId, left: 5, event: 'started' }, { infoHash: IH })
      assert.equal(f['failure reason'], IN_USE)
      // ST ola on node 2 of an ID held by a WebTorrent connection on node 0.
      const ASCII_WT = 'wtholds-' + 'A'.repeat(12)
      const wtAscii = await wtClient(n0, 'wtAscii', ASCII_WT)
      try {
        await wtAnnounce(wtAscii, { info_hash: IH, left: 5, event: 'started' })
        assert.deepEqual(await st2.request({ type: 'ola', peer_id: ASCII_WT }, { type: 'ola' }), taken(ASCII_WT),
          'an ST ola on node 2 must be refused an ID a WebTorrent peer holds on node 0')
      } finally {
        await wtAscii.close()
      }
      // ST holder on node 0, WebTorrent claimant on node 2.
      await st0.ola(ASCII_ID)
      const f2 = await wtExpectFailure(wt2, { action: 'announce', info_hash: IH, peer_id: ASCII_ID, left: 5, event: 'started' }, { infoHash: IH })
      assert.equal(f2['failure reason'], IN_USE)

      // The holder on node 0 is unaffected; the refused connection may use an ID of its own.
      const m = await wtAnnounce(wt0, { info_hash: IH, left: 5 })
      assert.ok(m.incomplete >= 1)
      wt1.peerId = nastyId()
      await wtAnnounce(wt1, { info_hash: IH, left: 5, event: 'started' })

      // Once the WebTorrent holder closes (node 0), its ID can be claimed on node 1.
      await wt0.close()
      const again = await wtClient(n1, 'wtAgain', wt0.peerId)
      try {
        let last
        await waitFor(async () => {
          last = await wtAnnounceRaw(again, { info_hash: IH, left: 5, event: 'started' })
          if ('failure reason' in last) assert.equal(last['failure reason'], IN_USE)
          return !('failure reason' in last)
        }, { what: () => `the WebTorrent ID released on node 0 should be claimable on node 1; last ${JSON.stringify(last)}` })
      } finally {
        await again.close()
      }
      // And the ST-held ID, once its holder closes, by the WebTorrent peer on node 2.
      await st0.close()
      let last
      await waitFor(async () => {
        last = await wtAnnounceRaw(wt2, { info_hash: IH, left: 5, event: 'started' })
        if ('failure reason' in last) assert.equal(last['failure reason'], IN_USE)
        return !('failure reason' in last)
      }, { what: () => `the ID released by ST on node 0 should be claimable by WebTorrent on node 2; last ${JSON.stringify(last)}` })
    } finally {
      await closeAll(wt0, wt1, st2, st0, wt2)
    }
  })

  test('token reclaim on another node: bye "replaced" on the old node, a fresh token, never two holders', async () => {
    const [n0, n1, n2] = cl.nodes
    const oldc = await connect(n0, { name: 'rcOld@n0' })
    const newc = await connect(n1, { name: 'rcNew@n1' })
    const third = await connect(n2, { name: 'rcThird@n2' })
    const witness = await connect(n2, { name: 'rcWitness@n2' })
    let next = null
    let late = null
    try {
      const ID = randomPeerId('rc')
      const W = randomPeerId('rcw')
      await witness.ola(W)
      witness.peerId = W
      const T = assertOlaOk(await oldc.request({ type: 'ola', peer_id: ID }), ID)
      const IH = randomInfoHash()
      await stAnnounce(oldc, IH, { event: 'started', left: 3 })
      await stAnnounceUntil(witness, IH, { event: 'started', left: 3, num_want: 50 }, (m) => m.incomplete === 2,
        { what: 'on node 2 should count the peer of node 0' })

      // The reclaim (node 1) and a competing token-less claim (node 2) go out together.
      newc.sendJson({ type: 'ola', peer_id: ID, token: T })
      third.sendJson({ type: 'ola', peer_id: ID })
      const [newAns, thirdAns] = await Promise.all([newc.next({ type: 'ola' }), third.next({ type: 'ola' })])
      const T2 = assertOlaOk(newAns, ID)
      newc.peerId = ID
      assert.notEqual(T2, T, 'a reclaim must issue a fresh token')
      assert.deepEqual(thirdAns, taken(ID), 'a token-less claim racing a reclaim must be refused')

      // The old connection, on node 0: bye "replaced", then a close 1000, nothing else.
      assert.deepEqual(await oldc.next({ type: 'bye' }), { type: 'bye', reason: 'replaced' })
      const closeInfo = await oldc.closed
      assert.equal(closeInfo.code, 1000, `close code ${JSON.stringify(closeInfo)}`)
      assert.equal(oldc.queue.length, 0, `old connection got more: ${oldc.pending()}`)

      // The old token is dead everywhere.
      for (const node of [n0, n2]) {
        const c = await connect(node, { name: `stale@${node.port}` })
        assert.deepEqual(await c.request({ type: 'ola', peer_id: ID, token: T }, { type: 'ola' }), taken(ID),
          'the token replaced by a reclaim must not work on any node')
        await c.close()
      }

      // The old connection's swarm membership went with it, on every node.
      const w = await stAnnounceUntil(witness, IH, { left: 3, num_want: 50 }, (m) => m.incomplete === 1,
        { what: 'the replaced connection (node 0) should leave the swarm seen from node 2' })
      assert.deepEqual(w.peers, [])

      // Signals to the ID (from node 2) reach the new holder on node 1.
      await relayEventually(witness, newc, ID)

      // A second reclaim, back on node 0, with the new token.
      next = await connect(n0, { name: 'rcNext@n0' })
      const T3 = assertOlaOk(await next.request({ type: 'ola', peer_id: ID, token: T2 }, { type: 'ola' }), ID)
      next.peerId = ID
      assert.notEqual(T3, T2)
      assert.deepEqual(await newc.next({ type: 'bye' }), { type: 'bye', reason: 'replaced' })
      assert.equal((await newc.closed).code, 1000)
      await relayEventually(witness, next, ID)
      await witness.assertQuiet()

      // Once the holder is gone, ola with a stale (well-formed) token simply claims the ID.
      await next.close()
      late = (await claimEventually(n2, ID, { token: T }, 'rcLate')).client
    } finally {
      await closeAll(oldc, newc, third, witness, next, late)
    }
  })

  test('two reclaims with the same token on two nodes at once: exactly one wins', async () => {
    const [n0, n1, n2] = cl.nodes
    const holder = await connect(n0, { name: 'rrHolder@n0' })
    const r1 = await connect(n1, { name: 'rr1@n1' })
    const r2 = await connect(n2, { name: 'rr2@n2' })
    try {
      const ID = randomPeerId('rr')
      const T = assertOlaOk(await holder.request({ type: 'ola', peer_id: ID }), ID)
      r1.sendJson({ type: 'ola', peer_id: ID, token: T })
      r2.sendJson({ type: 'ola', peer_id: ID, token: T })
      const answers = await Promise.all([r1.next({ type: 'ola' }), r2.next({ type: 'ola' })])
      assert.equal(answers.filter((a) => a.ok).length, 1, `exactly one reclaim may win: ${JSON.stringify(answers)}`)
      assert.deepEqual(answers.find((a) => !a.ok), taken(ID))
      assert.deepEqual(await holder.next({ type: 'bye' }), { type: 'bye', reason: 'replaced' })
      await holder.closed
      const [winner, loser] = answers[0].ok ? [r1, r2] : [r2, r1]
      winner.peerId = ID
      loser.peerId = randomPeerId('rr-loser')
      await loser.ola(loser.peerId)
      await relayEventually(loser, winner, ID, { type: 'candidate' })
      await loser.assertQuiet()
      await winner.assertQuiet()
    } finally {
      await closeAll(holder, r1, r2)
    }
  })

  test('a wrong token on another node is refused and the holder keeps its ID', async () => {
    const [n0, n1] = cl.nodes
    const holder = await connect(n0, { name: 'wtokHolder@n0' })
    const other = await connect(n1, { name: 'wtokOther@n1' })
    try {
      const ID = randomPeerId('wtok')
      holder.peerId = ID
      const T = assertOlaOk(await holder.request({ type: 'ola', peer_id: ID }), ID)
      const wrong = T.replace(/^./, (ch) => (ch === '0' ? '1' : '0'))
      assert.deepEqual(await other.request({ type: 'ola', peer_id: ID, token: wrong }, { type: 'ola' }), taken(ID))
      assert.ok(holder.isOpen)
      await holder.assertQuiet('(no bye for a wrong token)')
      other.peerId = randomPeerId('wtok2')
      await other.ola(other.peerId)
      await relayEventually(other, holder, ID)
    } finally {
      await closeAll(holder, other)
    }
  })
})
