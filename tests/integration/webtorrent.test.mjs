// The WebTorrent dialect ({"action":...}) with 20-byte binary-string IDs, as real clients send
// them: announce answers, offer and answer relays, scrape, failures, and swarms shared with ST.

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import {
  binStr, binToHex, closeAll, connect, connectMany, isSevenBit, nastyId, randomBinId,
  randomPeerId, startServer
} from './helpers.mjs'

const INTERVAL = 120
const MAX_OFFERS = 2

let srv
before(async () => {
  srv = await startServer({ args: ['--min-interval', '0', '--max-offers', String(MAX_OFFERS)] })
})
after(async () => {
  try {
    await srv.stopChecked()
  } finally {
    srv.cleanup()
  }
})

// Kinds of WebTorrent messages from the server.
const isFailure = (m) => m !== null && typeof m === 'object' && 'failure reason' in m
const isOffer = (m) => m?.action === 'announce' && 'offer' in m
const isAnswer = (m) => m?.action === 'announce' && 'answer' in m
const isAnnounceReply = (m) => m?.action === 'announce' && !('offer' in m) && !('answer' in m) && !isFailure(m)
isFailure.description = 'a failure'
isOffer.description = 'a relayed offer'
isAnswer.description = 'a relayed answer'
isAnnounceReply.description = 'an announce answer'

/** Sends a WebTorrent announce; returns the raw entry of the answer (json, text, data). */
async function announceEntry (client, fields) {
  client.sendJson({ action: 'announce', numwant: 5, uploaded: 0, downloaded: 0, ...fields })
  const e = await client.nextEntry((m) => isAnnounceReply(m) || isFailure(m))
  assert.ok(isSevenBit(e.data), `frame is not 7-bit ASCII: ${e.data.toString('hex')}`)
  return e
}

async function announce (client, fields) {
  const m = (await announceEntry(client, fields)).json
  assert.ok(!isFailure(m), `announce failed: ${JSON.stringify(m)}`)
  return m
}

/** Expects a failure for the next message; returns it after checking its exact fields. */
async function expectFailure (client, msg, { action, infoHash }) {
  client.sendJson(msg)
  const e = await client.nextEntry(isFailure)
  assert.ok(isSevenBit(e.data))
  const m = e.json
  const keys = infoHash !== undefined ? ['action', 'info_hash', 'failure reason'] : ['action', 'failure reason']
  assert.deepEqual(Object.keys(m), keys, `fields of ${JSON.stringify(m)}`)
  assert.equal(m.action, action)
  if (infoHash !== undefined) assert.equal(m.info_hash, infoHash)
  assert.equal(typeof m['failure reason'], 'string')
  assert.ok(m['failure reason'].length > 0)
  return m
}

/**
 * Barrier: a scrape round trip on this connection. Anything the server queued for it earlier
 * arrives first, so afterwards the queue holds everything it was sent. Asserts that nothing
 * (except what `allow` accepts and is then returned) is there.
 */
async function drain (client, infoHash, allow = () => false) {
  client.sendJson({ action: 'scrape', info_hash: infoHash })
  await client.next((m) => m?.action === 'scrape' && 'files' in m)
  const got = client.queue.splice(0).map((e) => e.json)
  const unexpected = got.filter((m) => !allow(m))
  assert.deepEqual(unexpected, [], `${client.name}: unexpected messages`)
  return got
}

/** A WebTorrent peer: a ws client with its binary peer ID. */
async function wtPeer (name, id = nastyId()) {
  const c = await connect(srv, { name })
  c.peerId = id
  return c
}

describe('WebTorrent dialect', () => {
  test('announce answer: exact shape, 7-bit ASCII frames whatever the ID bytes', async () => {
    const IH = nastyId()
    const [a, b] = [await wtPeer('shapeA'), await wtPeer('shapeB')]
    try {
      const e = await announceEntry(a, { info_hash: IH, peer_id: a.peerId, left: 100, event: 'started', offers: [] })
      assert.deepEqual(e.json, { action: 'announce', info_hash: IH, complete: 0, incomplete: 1, interval: INTERVAL })
      assert.deepEqual(Object.keys(e.json), ['action', 'info_hash', 'complete', 'incomplete', 'interval'])
      // NUL, '"', '\' and the high bytes are escaped.
      for (const piece of ['\\u0000', '\\"', '\\\\', '\\u0080', '\\u00ff']) {
        assert.ok(e.text.includes(piece), `${piece} missing from ${e.text}`)
      }
      const s = await announce(b, { info_hash: IH, peer_id: b.peerId, left: 0, event: 'started' })
      assert.deepEqual(s, { action: 'announce', info_hash: IH, complete: 1, incomplete: 1, interval: INTERVAL })
      // Every byte value round-trips, in an infohash and a peer ID.
      for (let start = 0; start < 256; start += 20) {
        const bytes = Array.from({ length: 20 }, (_, i) => (start + i) & 0xff)
        const ih = binStr(bytes)
        const c = await wtPeer('bytes', binStr(bytes.reverse()))
        const m = await announce(c, { info_hash: ih, peer_id: c.peerId, left: 1, event: 'started' })
        assert.equal(m.info_hash, ih)
        await c.close()
      }
    } finally {
      await closeAll(a, b)
    }
  })

  test('an offer is relayed; the answer goes back only for a real offer', async () => {
    const IH = nastyId()
    const [a, b, c] = [await wtPeer('offA'), await wtPeer('offB'), await wtPeer('offC')]
    try {
      await announce(a, { info_hash: IH, peer_id: a.peerId, left: 10, event: 'started' })
      await announce(c, { info_hash: IH, peer_id: c.peerId, left: 10, event: 'started', numwant: 0 })
      const OID = nastyId()
      const offer = { type: 'offer', sdp: 'v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n' }
      // B (a seeder) offers to the two leechers; MAX_OFFERS is 2.
      const reply = await announce(b, {
        info_hash: IH, peer_id: b.peerId, left: 0, event: 'started', numwant: 1,
        offers: [{ offer_id: OID, offer }]
      })
      assert.deepEqual(reply, { action: 'announce', info_hash: IH, complete: 1, incomplete: 2, interval: INTERVAL })

      // numwant 1, one offer: exactly one of A and C gets it.
      const gotA = await drain(a, IH, isOffer)
      const gotC = await drain(c, IH, isOffer)
      assert.equal(gotA.length + gotC.length, 1, `offers: A ${JSON.stringify(gotA)} C ${JSON.stringify(gotC)}`)
      const [receiver, other] = gotA.length ? [a, c] : [c, a]
      const relayed = gotA[0] ?? gotC[0]
      assert.deepEqual(relayed, { action: 'announce', info_hash: IH, peer_id: b.peerId, offer_id: OID, offer })
      assert.deepEqual(Object.keys(relayed), ['action', 'info_hash', 'peer_id', 'offer_id', 'offer'])

      // The receiver answers: relayed to B with the receiver's ID.
      const answer = { type: 'answer', sdp: 'v=0\r\n' }
      const answerMsg = { action: 'announce', info_hash: IH, peer_id: receiver.peerId, to_peer_id: b.peerId, offer_id: OID, answer }
      receiver.sendJson(answerMsg)
      const e = await b.nextEntry(isAnswer)
      assert.ok(isSevenBit(e.data))
      assert.deepEqual(e.json, { action: 'announce', info_hash: IH, peer_id: receiver.peerId, offer_id: OID, answer })
      assert.deepEqual(Object.keys(e.json), ['action', 'info_hash', 'peer_id', 'offer_id', 'answer'])
      await drain(receiver, IH)

      // The same answer again: the offer was consumed.
      await expectFailure(receiver, answerMsg, { action: 'announce', infoHash: IH })
      // The other leecher never got this offer: its answer is forged.
      await expectFailure(other, { ...answerMsg, peer_id: other.peerId }, { action: 'announce', infoHash: IH })
      // A made-up offer_id.
      await expectFailure(receiver, { ...answerMsg, offer_id: randomBinId() }, { action: 'announce', infoHash: IH })
      // Nothing reached B.
      await drain(b, IH)
    } finally {
      await closeAll(a, b, c)
    }
  })

  test(`at most --max-offers (${MAX_OFFERS}) relays per announce`, async () => {
    const IH = nastyId()
    const leechers = await Promise.all([1, 2, 3, 4].map((i) => wtPeer(`L${i}`)))
    const o = await wtPeer('offerer')
    try {
      for (const l of leechers) await announce(l, { info_hash: IH, peer_id: l.peerId, left: 5, event: 'started', numwant: 0 })
      const offers = Array.from({ length: 5 }, (_, i) => ({ offer_id: randomBinId(), offer: { type: 'offer', sdp: `sdp${i}` } }))
      await announce(o, { info_hash: IH, peer_id: o.peerId, left: 5, event: 'started', numwant: 5, offers })
      let got = (await Promise.all(leechers.map((l) => drain(l, IH, isOffer)))).map((list) => list.length)
      assert.equal(got.reduce((x, y) => x + y, 0), MAX_OFFERS, `relays per leecher: ${got}`)
      assert.ok(got.every((n) => n <= 1), `a leecher got two offers of one announce: ${got}`)

      // One offer: one relay.
      await announce(o, { info_hash: IH, peer_id: o.peerId, left: 5, numwant: 5, offers: offers.slice(0, 1) })
      got = (await Promise.all(leechers.map((l) => drain(l, IH, isOffer)))).map((list) => list.length)
      assert.equal(got.reduce((x, y) => x + y, 0), 1, `relays per leecher: ${got}`)
    } finally {
      await closeAll(leechers, o)
    }
  })

  test('no relays on "completed" or "stopped"', async () => {
    const IH = nastyId()
    const leechers = await Promise.all([1, 2].map((i) => wtPeer(`nl${i}`)))
    const o = await wtPeer('nr-offerer')
    try {
      for (const l of leechers) await announce(l, { info_hash: IH, peer_id: l.peerId, left: 5, event: 'started', numwant: 0 })
      const offers = () => [0, 1].map((i) => ({ offer_id: randomBinId(), offer: { type: 'offer', sdp: `x${i}` } }))
      const total = async () => (await Promise.all(leechers.map((l) => drain(l, IH, isOffer)))).reduce((n, list) => n + list.length, 0)

      let m = await announce(o, { info_hash: IH, peer_id: o.peerId, left: 0, event: 'completed', offers: offers() })
      assert.equal(m.complete, 1)
      assert.equal(await total(), 0, 'offers relayed on "completed"')
      // Control: the same seeder, a regular announce, relays to both leechers.
      await announce(o, { info_hash: IH, peer_id: o.peerId, left: 0, offers: offers() })
      assert.equal(await total(), 2, 'a regular announce should relay')
      m = await announce(o, { info_hash: IH, peer_id: o.peerId, left: 0, event: 'stopped', offers: offers() })
      assert.deepEqual(m, { action: 'announce', info_hash: IH, complete: 0, incomplete: 2, interval: INTERVAL })
      assert.equal(await total(), 0, 'offers relayed on "stopped"')
    } finally {
      await closeAll(leechers, o)
    }
  })

  test('left: null (and no left) counts as a leecher', async () => {
    const IH = nastyId()
    const [a, b, c] = [await wtPeer('lnA'), await wtPeer('lnB'), await wtPeer('lnC')]
    try {
      let m = await announce(a, { info_hash: IH, peer_id: a.peerId, left: null, event: 'started' })
      assert.equal(m.complete, 0)
      assert.equal(m.incomplete, 1)
      m = await announce(b, { info_hash: IH, peer_id: b.peerId, event: 'started', left: undefined })
      assert.equal(m.complete, 0)
      assert.equal(m.incomplete, 2)
      m = await announce(c, { info_hash: IH, peer_id: c.peerId, left: 0, event: 'started' })
      assert.equal(m.complete, 1)
      assert.equal(m.incomplete, 2)
    } finally {
      await closeAll(a, b, c)
    }
  })

  test('scrape: one infohash, an array, none', async () => {
    const [IH1, IH2] = [nastyId(), nastyId()]
    const [p, s] = [await wtPeer('scP'), await wtPeer('scS')]
    try {
      await announce(p, { info_hash: IH1, peer_id: p.peerId, left: 3, event: 'started' })
      await announce(s, { info_hash: IH1, peer_id: s.peerId, left: 3, event: 'started' })
      await announce(s, { info_hash: IH1, peer_id: s.peerId, left: 0, event: 'completed' })

      s.sendJson({ action: 'scrape', info_hash: IH1 })
      let e = await s.nextEntry((m) => m?.action === 'scrape')
      assert.ok(isSevenBit(e.data))
      assert.deepEqual(e.json, { action: 'scrape', files: { [IH1]: { complete: 1, incomplete: 1, downloaded: 1 } } })

      s.sendJson({ action: 'scrape', info_hash: [IH1, IH2] })
      e = await s.nextEntry((m) => m?.action === 'scrape')
      assert.ok(isSevenBit(e.data))
      assert.deepEqual(e.json, {
        action: 'scrape',
        files: {
          [IH1]: { complete: 1, incomplete: 1, downloaded: 1 },
          [IH2]: { complete: 0, incomplete: 0, downloaded: 0 }
        }
      })

      // No infohash: a failure, not a full scrape.
      await expectFailure(s, { action: 'scrape' }, { action: 'scrape' })
      await expectFailure(s, { action: 'scrape', info_hash: null }, { action: 'scrape' })
      // A bad one in the list.
      await expectFailure(s, { action: 'scrape', info_hash: [IH1, 'short'] }, { action: 'scrape' })
      // A scrape works on a connection that never announced.
      const fresh = await wtPeer('scFresh')
      fresh.sendJson({ action: 'scrape', info_hash: IH1 })
      assert.deepEqual((await fresh.next((m) => m?.action === 'scrape')).files[IH1], { complete: 1, incomplete: 1, downloaded: 1 })
      await fresh.close()
    } finally {
      await closeAll(p, s)
    }
  })

  test('invalid info_hash or peer_id → failure reason', async () => {
    const c = await wtPeer('inv')
    try {
      const good = nastyId()
      for (const infoHash of [good.slice(0, 19), good + 'x', '\u0100' + good.slice(1), 'é'.repeat(19), 42, null, undefined, [good]]) {
        await expectFailure(c, { action: 'announce', info_hash: infoHash, peer_id: c.peerId, left: 1 }, { action: 'announce' })
      }
      // A bad peer_id names the infohash.
      for (const peerId of [c.peerId.slice(1), '\u0101'.repeat(20), 7, undefined]) {
        await expectFailure(c, { action: 'announce', info_hash: good, peer_id: peerId, left: 1 }, { action: 'announce', infoHash: good })
      }
      await expectFailure(c, { action: 'scrape', info_hash: 'nope' }, { action: 'scrape' })
      // Unknown action: echoed.
      await expectFailure(c, { action: 'dance', info_hash: good }, { action: 'dance' })
      // Still usable.
      const m = await announce(c, { info_hash: good, peer_id: c.peerId, left: 1, event: 'started' })
      assert.equal(m.incomplete, 1)
    } finally {
      await c.close()
    }
  })

  test('a peer_id in use by another connection → failure; one connection, one peer_id', async () => {
    const IH = nastyId()
    const a = await wtPeer('idA')
    const a2 = await wtPeer('idA2', a.peerId)
    try {
      await announce(a, { info_hash: IH, peer_id: a.peerId, left: 5, event: 'started' })
      await expectFailure(a2, { action: 'announce', info_hash: IH, peer_id: a.peerId, left: 5, event: 'started' },
        { action: 'announce', infoHash: IH })
      // The holder is unaffected and still the only member.
      const m = await announce(a, { info_hash: IH, peer_id: a.peerId, left: 5 })
      assert.equal(m.incomplete, 1)
      assert.ok(a.isOpen)
      // The refused connection may still use an ID of its own.
      const own = nastyId()
      const m2 = await announce(a2, { info_hash: IH, peer_id: own, left: 5, event: 'started' })
      assert.equal(m2.incomplete, 2)
      // ... but not switch IDs afterwards.
      await expectFailure(a2, { action: 'announce', info_hash: IH, peer_id: nastyId(), left: 5 }, { action: 'announce', infoHash: IH })
    } finally {
      await closeAll(a, a2)
    }
  })

  test('swarms are shared with the ST dialect (40 hex = the same 20 bytes)', async () => {
    const IH = binStr(randomBytes(20))
    const HEX = binToHex(IH)
    const st = await connect(srv, { name: 'st-peer' })
    const wt = await wtPeer('wt-peer')
    try {
      await st.ola(randomPeerId('mix'))
      let s = await st.request({ type: 'announce', info_hash: HEX.toUpperCase(), event: 'started', left: 0 }, { type: 'announce' })
      assert.equal(s.complete + s.incomplete, 1)
      const w = await announce(wt, { info_hash: IH, peer_id: wt.peerId, left: 10, event: 'started' })
      assert.deepEqual(w, { action: 'announce', info_hash: IH, complete: 1, incomplete: 1, interval: INTERVAL })
      s = await st.request({ type: 'announce', info_hash: HEX, left: 0, num_want: 50 }, { type: 'announce' })
      assert.equal(s.complete, 1)
      assert.equal(s.incomplete, 1)
      // WebTorrent peers are not handed to ST peers (they could not signal each other).
      assert.deepEqual(s.peers, [])
      // Scrapes agree.
      const sc = await st.request({ type: 'scrape', info_hashes: [HEX] }, { type: 'scrape' })
      assert.deepEqual(sc.files[HEX], { complete: 1, incomplete: 1, downloaded: 0 })
      wt.sendJson({ action: 'scrape', info_hash: IH })
      assert.deepEqual((await wt.next((m) => m?.action === 'scrape')).files[IH], { complete: 1, incomplete: 1, downloaded: 0 })
      // WebTorrent offers are never relayed to ST peers.
      const w3 = await announce(wt, { info_hash: IH, peer_id: wt.peerId, left: 10, event: 'started', offers: [{ offer_id: randomBinId(), offer: { type: 'offer', sdp: 'x' } }] })
      assert.equal(w3.incomplete, 1)
      await st.assertQuiet('(no WebTorrent offer)')
      // The ST peer leaves: the WebTorrent peer sees it.
      await st.close()
      const w2 = await announce(wt, { info_hash: IH, peer_id: wt.peerId, left: 10 })
      assert.equal(w2.complete, 0)
      assert.equal(w2.incomplete, 1)
    } finally {
      await closeAll(st, wt)
    }
  })

  test('an answer to an offerer that has gone → failure', async () => {
    const IH = nastyId()
    const [l, o] = [await wtPeer('goneL'), await wtPeer('goneO')]
    try {
      await announce(l, { info_hash: IH, peer_id: l.peerId, left: 5, event: 'started' })
      const OID = randomBinId()
      await announce(o, { info_hash: IH, peer_id: o.peerId, left: 0, event: 'started', offers: [{ offer_id: OID, offer: { type: 'offer', sdp: 's' } }] })
      const [relay] = await drain(l, IH, isOffer)
      assert.equal(relay.offer_id, OID)
      await o.close()
      await expectFailure(l, { action: 'announce', info_hash: IH, peer_id: l.peerId, to_peer_id: o.peerId, offer_id: OID, answer: { type: 'answer', sdp: 'a' } },
        { action: 'announce', infoHash: IH })
    } finally {
      await closeAll(l, o)
    }
  })
  test('peer IDs share one namespace across dialects', async () => {
    const ID = 'abcdefghij0123456789' // 20 ASCII characters: a valid ID in both dialects
    const IH = nastyId()
    const st = await connect(srv, { name: 'ns-st' })
    const wt = await wtPeer('ns-wt', ID)
    try {
      await st.ola(ID)
      await expectFailure(wt, { action: 'announce', info_hash: IH, peer_id: ID, left: 1, event: 'started' },
        { action: 'announce', infoHash: IH })
      await st.close()
      // Free again: the WebTorrent peer takes it; now an ST ola (even with a token) is refused.
      await announce(wt, { info_hash: IH, peer_id: ID, left: 1, event: 'started' })
      const st2 = await connect(srv, { name: 'ns-st2' })
      assert.deepEqual(await st2.request({ type: 'ola', peer_id: ID }),
        { type: 'ola', ok: false, peer_id: ID, error: 'peer_id_taken' })
      assert.deepEqual(await st2.request({ type: 'ola', peer_id: ID, token: '0'.repeat(32) }),
        { type: 'ola', ok: false, peer_id: ID, error: 'peer_id_taken' })
      // An ST signal to it: no ST connection holds that ID.
      await st2.ola(randomPeerId('ns'))
      const err = await st2.request({ type: 'offer', to: ID, payload: 1 })
      assert.equal(err.code, 'peer_not_found')
      await st2.close()
    } finally {
      await closeAll(st, wt)
    }
  })

  test('bad JSON and too big scrapes on a WebTorrent connection → failure reason', async () => {
    const c = await wtPeer('wtjson')
    try {
      const IH = nastyId()
      await announce(c, { info_hash: IH, peer_id: c.peerId, left: 1, event: 'started' })
      c.sendRaw('{"action":"announce",')
      const f = await c.next(isFailure)
      assert.deepEqual(f, { action: 'announce', 'failure reason': 'message is not valid JSON' })
      c.sendRaw('[1,2]')
      const f2 = await c.next(isFailure)
      assert.equal(f2.action, 'announce')
      const many = Array.from({ length: 101 }, () => randomBinId())
      const f3 = await expectFailure(c, { action: 'scrape', info_hash: many }, { action: 'scrape' })
      assert.match(f3['failure reason'], /100/)
      c.sendJson({ action: 'scrape', info_hash: many.slice(0, 100) })
      const sc = await c.next((m) => m?.action === 'scrape')
      assert.equal(Object.keys(sc.files).length, 100)
      // Still the same peer in the same swarm.
      const m = await announce(c, { info_hash: IH, peer_id: c.peerId, left: 1 })
      assert.equal(m.incomplete, 1)
    } finally {
      await c.close()
    }
  })
})

describe('WebTorrent timing', () => {
  test('an answer after --offer-ttl is refused; regular announces faster than --min-interval fail', async (t) => {
    const s2 = await startServer({ t, args: ['--offer-ttl', '1', '--min-interval', '20'] })
    const mk = async (name) => {
      const c = await connect(s2, { name })
      c.peerId = nastyId()
      return c
    }
    const [l, o] = [await mk('ttlL'), await mk('ttlO')]
    try {
      const IH = nastyId()
      await announce(l, { info_hash: IH, peer_id: l.peerId, left: 5, event: 'started' })
      const OID = randomBinId()
      await announce(o, { info_hash: IH, peer_id: o.peerId, left: 0, event: 'started', offers: [{ offer_id: OID, offer: { type: 'offer', sdp: 's' } }] })
      const [relay] = await drain(l, IH, isOffer)
      assert.equal(relay.offer_id, OID)

      // A regular announce right away: refused, with when to retry.
      const rl = await expectFailure(l, { action: 'announce', info_hash: IH, peer_id: l.peerId, left: 5, numwant: 5 },
        { action: 'announce', infoHash: IH })
      assert.match(rl['failure reason'], /rate limited: announce again in \d+ s/)
      // Events are always taken.
      const ev = await announce(l, { info_hash: IH, peer_id: l.peerId, left: 5, event: 'started' })
      assert.equal(ev.incomplete, 1)

      await new Promise((resolve) => setTimeout(resolve, 2200))
      await expectFailure(l, { action: 'announce', info_hash: IH, peer_id: l.peerId, to_peer_id: o.peerId, offer_id: OID, answer: { type: 'answer', sdp: 'a' } },
        { action: 'announce', infoHash: IH })
      await drain(o, IH)
    } finally {
      await closeAll(l, o)
    }
  })
})
