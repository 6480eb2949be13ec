// The ST dialect end to end: ola, announce, offer/answer/candidate relay between three peers,
// peer ID collisions, token reclaim, wrong tokens and already_identified.

import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  closeAll, connect, connectMany, randomInfoHash, randomPeerId, startServer
} from './helpers.mjs'

const INTERVAL = 120
const MAX_NUMWANT = 3

let srv
before(async () => {
  // --min-interval 0: the flow announces several times to one swarm in a row.
  srv = await startServer({ args: ['--min-interval', '0', '--max-numwant', String(MAX_NUMWANT)] })
})
after(async () => {
  try {
    await srv.stopChecked()
  } finally {
    srv.cleanup()
  }
})

/** Asserts the exact shape of a successful ola answer and returns its token. */
function assertOlaOk (ans, peerId) {
  assert.deepEqual(Object.keys(ans).sort(), ['interval', 'ok', 'peer_id', 'token', 'type'])
  assert.equal(ans.type, 'ola')
  assert.equal(ans.ok, true)
  assert.equal(ans.peer_id, peerId)
  assert.match(ans.token, /^[0-9a-f]{32}$/)
  assert.equal(ans.interval, INTERVAL)
  return ans.token
}

/** Asserts the exact shape of an announce answer; returns its peers sorted by peer_id. */
function assertAnnounce (ans, { infoHash, complete, incomplete }) {
  assert.deepEqual(Object.keys(ans).sort(),
    ['complete', 'incomplete', 'info_hash', 'interval', 'min_interval', 'peers', 'type'])
  assert.equal(ans.type, 'announce')
  assert.equal(ans.info_hash, infoHash.toLowerCase())
  assert.equal(ans.interval, INTERVAL)
  assert.equal(ans.min_interval, 0)
  assert.equal(ans.complete, complete, `complete in ${JSON.stringify(ans)}`)
  assert.equal(ans.incomplete, incomplete, `incomplete in ${JSON.stringify(ans)}`)
  assert.ok(Array.isArray(ans.peers))
  for (const p of ans.peers) {
    assert.deepEqual(Object.keys(p).sort(), ['complete', 'peer_id'])
    assert.equal(typeof p.peer_id, 'string')
    assert.equal(typeof p.complete, 'boolean')
  }
  const ids = ans.peers.map((p) => p.peer_id)
  assert.equal(new Set(ids).size, ids.length, `duplicate peers in ${JSON.stringify(ans.peers)}`)
  return [...ans.peers].sort((a, b) => (a.peer_id < b.peer_id ? -1 : 1))
}

function announce (client, infoHash, fields = {}) {
  return client.request({ type: 'announce', info_hash: infoHash, ...fields }, { type: 'announce' })
}

describe('ST flow', () => {
  test('ola → announce → offer → answer → candidate between three peers', async () => {
    const [a, b, c] = await connectMany(srv, 3, 'flow')
    try {
      const [A, B, C] = ['flowA-' + randomPeerId(), 'flowB-' + randomPeerId(), 'flowC-' + randomPeerId()]
      const tokens = [
        assertOlaOk(await a.request({ type: 'ola', peer_id: A }), A),
        assertOlaOk(await b.request({ type: 'ola', peer_id: B }), B),
        assertOlaOk(await c.request({ type: 'ola', peer_id: C }), C)
      ]
      assert.equal(new Set(tokens).size, 3, 'tokens must differ between peers')

      // Upper-case infohash in, lower-case out.
      const IH = randomInfoHash().toUpperCase()
      const common = { uploaded: 0, downloaded: 0 }

      // A: the first leecher sees an empty swarm (never itself).
      let ans = await announce(a, IH, { event: 'started', left: 100, ...common })
      assert.deepEqual(assertAnnounce(ans, { infoHash: IH, complete: 0, incomplete: 1 }), [])

      // B: a seeder gets leechers only: A.
      ans = await announce(b, IH, { event: 'started', left: 0, ...common, num_want: 10 })
      assert.deepEqual(assertAnnounce(ans, { infoHash: IH, complete: 1, incomplete: 1 }),
        [{ peer_id: A, complete: false }])

      // C: a leecher gets everyone else: A (leecher) and B (seeder), not C.
      ans = await announce(c, IH, { event: 'started', left: 50, ...common, num_want: 10 })
      assert.deepEqual(assertAnnounce(ans, { infoHash: IH, complete: 1, incomplete: 2 }),
        [{ peer_id: A, complete: false }, { peer_id: B, complete: true }].sort((x, y) => x.peer_id < y.peer_id ? -1 : 1))

      // A regular announce (no event) from the seeder: leechers A and C only.
      ans = await announce(b, IH, { left: 0, ...common, num_want: 10 })
      assert.deepEqual(assertAnnounce(ans, { infoHash: IH, complete: 1, incomplete: 2 }),
        [{ peer_id: A, complete: false }, { peer_id: C, complete: false }].sort((x, y) => x.peer_id < y.peer_id ? -1 : 1))

      // A again: B and C, never A.
      ans = await announce(a, IH, { left: 100, ...common, num_want: 10 })
      const peersA = assertAnnounce(ans, { infoHash: IH, complete: 1, incomplete: 2 })
      assert.deepEqual(peersA.map((p) => p.peer_id).sort(), [B, C].sort())

      // Offer A → B, with an info_hash and a nested payload; a forged "from" is ignored.
      const offerPayload = { type: 'offer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n', n: [1, 2.5, null, true, { x: 'é"\\' }] }
      a.sendJson({ type: 'offer', to: B, from: 'mallory', info_hash: IH, payload: offerPayload })
      const offer = await b.next({ type: 'offer' })
      assert.deepEqual(offer, { type: 'offer', from: A, info_hash: IH.toLowerCase(), payload: offerPayload })
      assert.deepEqual(Object.keys(offer), ['type', 'from', 'info_hash', 'payload'])

      // Answer B → A without an info_hash: none in the relay either.
      const answerPayload = { type: 'answer', sdp: 'v=0\r\n' }
      b.sendJson({ type: 'answer', to: A, payload: answerPayload })
      assert.deepEqual(await a.next({ type: 'answer' }), { type: 'answer', from: B, payload: answerPayload })

      // Candidates C → A: any JSON value is carried verbatim.
      for (const payload of ['candidate:1 1 udp 2122260223 10.0.0.1 54321 typ host', 42, null, [], { candidate: '' }]) {
        c.sendJson({ type: 'candidate', to: A, payload })
        assert.deepEqual(await a.next({ type: 'candidate' }), { type: 'candidate', from: C, payload })
      }

      // Nobody got anything not addressed to them.
      await a.assertQuiet('after the relays')
      await b.assertQuiet('after the relays')
      await c.assertQuiet('after the relays (C sent but received nothing)')
    } finally {
      await closeAll(a, b, c)
    }
  })

  test('num_want is honoured and capped by --max-numwant', async () => {
    const clients = await connectMany(srv, 5, 'nw')
    try {
      const IH = randomInfoHash()
      const ids = []
      for (const cl of clients) {
        const id = randomPeerId('nw')
        await cl.ola(id)
        ids.push(id)
        await announce(cl, IH, { event: 'started', left: 1 })
      }
      const [me, ...others] = clients
      const checkPeers = (ans, n) => {
        const peers = assertAnnounce(ans, { infoHash: IH, complete: 0, incomplete: 5 })
        assert.equal(peers.length, n, `expected ${n} peers, got ${JSON.stringify(peers)}`)
        for (const p of peers) {
          assert.notEqual(p.peer_id, ids[0], 'the asker must not be in its own peer list')
          assert.ok(ids.includes(p.peer_id), `unknown peer ${p.peer_id}`)
        }
      }
      checkPeers(await announce(me, IH, { left: 1, num_want: 1 }), 1)
      checkPeers(await announce(me, IH, { left: 1, num_want: 0 }), 0)
      checkPeers(await announce(me, IH, { left: 1, num_want: 2 }), 2)
      // Above the cap: the cap (3), although 4 others are there.
      checkPeers(await announce(me, IH, { left: 1, num_want: 1000 }), MAX_NUMWANT)
      // Absent: --default-numwant (20) clamped to the cap.
      checkPeers(await announce(me, IH, { left: 1 }), MAX_NUMWANT)
      assert.equal(others.length, 4)
    } finally {
      await closeAll(clients)
    }
  })

  test('"stopped" answers with no peers and removes the peer', async () => {
    const [a, b, c] = await connectMany(srv, 3, 'stop')
    try {
      const IH = randomInfoHash()
      const A = randomPeerId('stA')
      await a.ola(A)
      await b.ola(randomPeerId('stB'))
      await c.ola(randomPeerId('stC'))
      await announce(a, IH, { event: 'started', left: 0 })
      await announce(b, IH, { event: 'started', left: 5 })
      await announce(c, IH, { event: 'started', left: 5 })

      const ans = await announce(a, IH, { event: 'stopped', left: 0, num_want: 50 })
      assert.deepEqual(assertAnnounce(ans, { infoHash: IH, complete: 0, incomplete: 2 }), [])

      // B no longer sees A, and the counts dropped.
      const bAns = await announce(b, IH, { left: 5, num_want: 50 })
      const peers = assertAnnounce(bAns, { infoHash: IH, complete: 0, incomplete: 2 })
      assert.ok(!peers.some((p) => p.peer_id === A), `A still listed: ${JSON.stringify(peers)}`)

      // Stopping again (no longer a member) is harmless.
      const again = await announce(a, IH, { event: 'stopped' })
      assert.deepEqual(assertAnnounce(again, { infoHash: IH, complete: 0, incomplete: 2 }), [])
      await a.assertQuiet()
    } finally {
      await closeAll(a, b, c)
    }
  })

  test('peer_id collision: refused, connection stays usable, another ID works', async () => {
    const [x, y] = await connectMany(srv, 2, 'dup')
    try {
      const ID = randomPeerId('dup')
      await x.ola(ID)
      const refused = await y.request({ type: 'ola', peer_id: ID }, { type: 'ola' })
      assert.deepEqual(refused, { type: 'ola', ok: false, peer_id: ID, error: 'peer_id_taken' })
      await y.assertQuiet('after the refusal')
      // Still unidentified: announce needs an ola first.
      const notId = await y.request({ type: 'announce', info_hash: randomInfoHash() }, { type: 'error' })
      assert.equal(notId.code, 'not_identified')
      const ID2 = randomPeerId('dup2')
      assertOlaOk(await y.request({ type: 'ola', peer_id: ID2 }, { type: 'ola' }), ID2)
      // Both work, and signals reach the right one.
      y.sendJson({ type: 'offer', to: ID, payload: 'hi' })
      assert.deepEqual(await x.next({ type: 'offer' }), { type: 'offer', from: ID2, payload: 'hi' })
      await x.assertQuiet()
      await y.assertQuiet()
    } finally {
      await closeAll(x, y)
    }
  })

  test('token reclaim: old connection gets bye "replaced" and a close; the ID is never held twice', async () => {
    const [oldc, newc, third, witness] = await connectMany(srv, 4, 'reclaim')
    try {
      const ID = randomPeerId('rc')
      const W = randomPeerId('rcw')
      await witness.ola(W)
      const T = assertOlaOk(await oldc.request({ type: 'ola', peer_id: ID }), ID)
      const IH = randomInfoHash()
      await announce(oldc, IH, { event: 'started', left: 3 })

      // The reclaim and a competing claim without a token go out together: whatever the order
      // the server handles them in, the competing claim must be refused.
      newc.sendJson({ type: 'ola', peer_id: ID, token: T })
      third.sendJson({ type: 'ola', peer_id: ID })
      const [newAns, thirdAns] = await Promise.all([newc.next({ type: 'ola' }), third.next({ type: 'ola' })])
      const T2 = assertOlaOk(newAns, ID)
      assert.notEqual(T2, T, 'a reclaim must issue a fresh token')
      assert.deepEqual(thirdAns, { type: 'ola', ok: false, peer_id: ID, error: 'peer_id_taken' })

      // The old connection: {"type":"bye","reason":"replaced"}, then a close.
      const bye = await oldc.next({ type: 'bye' })
      assert.deepEqual(bye, { type: 'bye', reason: 'replaced' })
      const closeInfo = await oldc.closed
      assert.equal(closeInfo.code, 1000, `close code ${JSON.stringify(closeInfo)}`)
      assert.equal(oldc.queue.length, 0, `old connection got more: ${oldc.pending()}`)

      // The old token is dead; the third connection still cannot take the ID.
      const stale = await third.request({ type: 'ola', peer_id: ID, token: T }, { type: 'ola' })
      assert.deepEqual(stale, { type: 'ola', ok: false, peer_id: ID, error: 'peer_id_taken' })

      // The old connection's swarm membership went with it.
      const wAns = await announce(witness, IH, { event: 'started', left: 3, num_want: 50 })
      assertAnnounce(wAns, { infoHash: IH, complete: 0, incomplete: 1 })
      assert.deepEqual(wAns.peers, [])

      // Signals to the ID now reach the new connection.
      witness.sendJson({ type: 'offer', to: ID, payload: { v: 1 } })
      assert.deepEqual(await newc.next({ type: 'offer' }), { type: 'offer', from: W, payload: { v: 1 } })

      // The new token works in turn (a second reclaim), and the third connection can use it.
      const T3 = assertOlaOk(await third.request({ type: 'ola', peer_id: ID, token: T2 }, { type: 'ola' }), ID)
      assert.notEqual(T3, T2)
      assert.deepEqual(await newc.next({ type: 'bye' }), { type: 'bye', reason: 'replaced' })
      assert.equal((await newc.closed).code, 1000)
      await third.assertQuiet()
      await witness.assertQuiet()

      // Once the holder is gone, ola with a stale (but well-formed) token simply claims the ID.
      await third.close()
      const late = await connect(srv, { name: 'reclaim-late' })
      assertOlaOk(await late.request({ type: 'ola', peer_id: ID, token: T }, { type: 'ola' }), ID)
      await late.close()
    } finally {
      await closeAll(oldc, newc, third, witness)
    }
  })

  test('two reclaims with the same token at once: exactly one wins', async () => {
    const [holder, r1, r2] = await connectMany(srv, 3, 'race')
    try {
      const ID = randomPeerId('race')
      const T = assertOlaOk(await holder.request({ type: 'ola', peer_id: ID }), ID)
      r1.sendJson({ type: 'ola', peer_id: ID, token: T })
      r2.sendJson({ type: 'ola', peer_id: ID, token: T })
      const answers = await Promise.all([r1.next({ type: 'ola' }), r2.next({ type: 'ola' })])
      const winners = answers.filter((a) => a.ok)
      assert.equal(winners.length, 1, `answers: ${JSON.stringify(answers)}`)
      assert.deepEqual(answers.find((a) => !a.ok), { type: 'ola', ok: false, peer_id: ID, error: 'peer_id_taken' })
      assert.deepEqual(await holder.next({ type: 'bye' }), { type: 'bye', reason: 'replaced' })
      await holder.closed
      const [winner, loser] = answers[0].ok ? [r1, r2] : [r2, r1]
      // The loser is still connected and unidentified; signals to the ID reach the winner only.
      await loser.ola(randomPeerId('race-loser'))
      loser.sendJson({ type: 'candidate', to: ID, payload: 'c' })
      assert.equal((await winner.next({ type: 'candidate' })).payload, 'c')
      await loser.assertQuiet()
      await winner.assertQuiet()
    } finally {
      await closeAll(holder, r1, r2)
    }
  })

  test('a wrong token is refused and the holder keeps the ID', async () => {
    const [holder, other] = await connectMany(srv, 2, 'wrongtok')
    try {
      const ID = randomPeerId('wt')
      const T = assertOlaOk(await holder.request({ type: 'ola', peer_id: ID }), ID)
      const wrong = T.replace(/^./, (ch) => (ch === '0' ? '1' : '0'))
      const ans = await other.request({ type: 'ola', peer_id: ID, token: wrong }, { type: 'ola' })
      assert.deepEqual(ans, { type: 'ola', ok: false, peer_id: ID, error: 'peer_id_taken' })
      // An all-zero token is just as wrong.
      const ans2 = await other.request({ type: 'ola', peer_id: ID, token: '0'.repeat(32) }, { type: 'ola' })
      assert.equal(ans2.ok, false)
      // A malformed token is an invalid field.
      const bad = await other.request({ type: 'ola', peer_id: ID, token: 'xyz' })
      assert.equal(bad.type, 'error')
      assert.equal(bad.code, 'invalid_field')
      assert.equal(bad.ref, 'ola')
      // The holder is untouched.
      assert.ok(holder.isOpen)
      await holder.assertQuiet('(no bye)')
      other.sendJson({ type: 'ola', peer_id: randomPeerId('wt2') })
      await other.next({ type: 'ola', ok: true })
      other.sendJson({ type: 'offer', to: ID, payload: 1 })
      assert.equal((await holder.next({ type: 'offer' })).payload, 1)
    } finally {
      await closeAll(holder, other)
    }
  })

  test('already_identified', async () => {
    const a = await connect(srv, { name: 'again' })
    try {
      const ID = randomPeerId('ai')
      await a.ola(ID)
      for (const peerId of [randomPeerId('ai2'), ID]) {
        const err = await a.request({ type: 'ola', peer_id: peerId })
        assert.equal(err.type, 'error')
        assert.equal(err.code, 'already_identified')
        assert.equal(err.ref, 'ola')
        assert.equal(typeof err.message, 'string')
        assert.deepEqual(Object.keys(err).sort(), ['code', 'message', 'ref', 'type'])
      }
      // The first ID is still held by this connection.
      const b = await connect(srv, { name: 'again-b' })
      const taken = await b.request({ type: 'ola', peer_id: ID })
      assert.equal(taken.error, 'peer_id_taken')
      await b.close()
      await a.assertQuiet()
    } finally {
      await closeAll(a)
    }
  })
})
