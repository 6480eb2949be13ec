// The WebTorrent dialect across nodes: an offer from a peer on node B reaches peers on nodes A and
// C, their answers come back to B, once each; counts and scrapes are cluster-wide; swarms are
// shared with ST peers of other nodes but offers and peer lists never cross dialects; an answer to
// an offerer that has left (on its own node) fails.

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import {
  binToHex, closeAll, connect, isAnswer, isOffer, nastyId, randomBinId, randomPeerId, stAnnounceUntil,
  startCluster, waitFor, wtAnnounce, wtClient, wtDrain, wtExpectFailure, wtScrape
} from './cluster-helpers.mjs'

const INTERVAL = 120
const MAX_OFFERS = 2


/** Polls WebTorrent scrapes on client until files[ih] deep-equals want. */
async function wtScrapeUntil (client, ih, want, what) {
  let last
  await waitFor(async () => {
    last = (await wtScrape(client, ih))[ih]
    return JSON.stringify(last) === JSON.stringify(want)
  }, { what: () => `${client.name}: scrape ${what} should read ${JSON.stringify(want)}; last ${JSON.stringify(last)}` })
}

describe('WebTorrent across nodes', () => {
  // Suite-level hooks run before the root hooks of helpers.mjs, so the cluster is always torn
  // down (nodes checked, Redis stopped) even when a node crashed.
  let cl
  before(async () => {
    cl = await startCluster({ nodes: 3, args: ['--min-interval', '0', '--max-offers', String(MAX_OFFERS)] })
  })
  after(() => cl?.teardown())

  test('offers from a peer on node 1 reach leechers on nodes 0 and 2; both answers come back once', async () => {
    const [n0, n1, n2] = cl.nodes
    const IH = nastyId()
    const a = await wtClient(n0, 'wtA', nastyId())
    const b = await wtClient(n1, 'wtB', nastyId())
    const c = await wtClient(n2, 'wtC', nastyId())
    try {
      let m = await wtAnnounce(a, { info_hash: IH, left: 10, event: 'started' })
      assert.deepEqual(m, { action: 'announce', info_hash: IH, complete: 0, incomplete: 1, interval: INTERVAL })
      await wtAnnounce(c, { info_hash: IH, left: 10, event: 'started', numwant: 0 })
      // Node 1 must know of both leechers before B offers (propagation is asynchronous).
      await wtScrapeUntil(b, IH, { complete: 0, incomplete: 2, downloaded: 0 }, 'on node 1 (leechers on nodes 0 and 2)')

      const offers = [0, 1].map((i) => ({
        offer_id: randomBinId(),
        offer: { type: 'offer', sdp: `v=0\r\no=- ${i} 2 IN IP4 127.0.0.1\r\n` }
      }))
      m = await wtAnnounce(b, { info_hash: IH, left: 0, event: 'started', numwant: 2, offers })
      assert.deepEqual(m, { action: 'announce', info_hash: IH, complete: 1, incomplete: 2, interval: INTERVAL },
        'the seeder on node 1 should count the leechers of nodes 0 and 2')

      // Each leecher (each on another node) gets exactly one of the two offers.
      const offA = await a.next(isOffer)
      const offC = await c.next(isOffer)
      for (const off of [offA, offC]) {
        assert.deepEqual(Object.keys(off), ['action', 'info_hash', 'peer_id', 'offer_id', 'offer'], JSON.stringify(off))
        assert.equal(off.info_hash, IH)
        assert.equal(off.peer_id, b.peerId)
      }
      assert.notEqual(offA.offer_id, offC.offer_id, 'two offers of one announce must go to two different peers')
      const sent = new Map(offers.map((o) => [o.offer_id, o.offer]))
      assert.deepEqual(offA.offer, sent.get(offA.offer_id), 'offer relayed verbatim with its own offer_id (node 0)')
      assert.deepEqual(offC.offer, sent.get(offC.offer_id), 'offer relayed verbatim with its own offer_id (node 2)')
      await wtDrain(a)
      await wtDrain(c)

      // Both answer; B (node 1) gets both answers, each with the answerer's peer ID.
      const answer = (who, off) => ({
        action: 'announce', info_hash: IH, peer_id: who.peerId, to_peer_id: b.peerId, offer_id: off.offer_id,
        answer: { type: 'answer', sdp: `answer from ${who.name}` }
      })
      a.sendJson(answer(a, offA))
      c.sendJson(answer(c, offC))
      const got = [await b.next(isAnswer), await b.next(isAnswer)]
      const want = [a, c].map((who) => ({
        action: 'announce', info_hash: IH, peer_id: who.peerId, offer_id: (who === a ? offA : offC).offer_id,
        answer: { type: 'answer', sdp: `answer from ${who.name}` }
      }))
      const sortKey = (x) => x.offer_id
      assert.deepEqual([...got].sort((x, y) => sortKey(x) < sortKey(y) ? -1 : 1), [...want].sort((x, y) => sortKey(x) < sortKey(y) ? -1 : 1))
      for (const g of got) assert.deepEqual(Object.keys(g), ['action', 'info_hash', 'peer_id', 'offer_id', 'answer'])
      // No announce answer is sent for an answer.
      await wtDrain(a)
      await wtDrain(c)

      // The same answer again: consumed. A's answer with C's offer_id: never delivered to A.
      await wtExpectFailure(a, answer(a, offA), { infoHash: IH })
      await wtExpectFailure(a, answer(a, offC), { infoHash: IH })
      await wtExpectFailure(c, { ...answer(c, offC), offer_id: randomBinId() }, { infoHash: IH })
      await wtDrain(b)

      // Counts and scrapes agree on every node.
      for (const [cli, ih] of [[a, IH], [b, IH], [c, IH]]) {
        await wtScrapeUntil(cli, ih, { complete: 1, incomplete: 2, downloaded: 0 }, 'on every node')
      }
      m = await wtAnnounce(c, { info_hash: IH, left: 10, numwant: 0 })
      assert.deepEqual(m, { action: 'announce', info_hash: IH, complete: 1, incomplete: 2, interval: INTERVAL })
    } finally {
      await closeAll(a, b, c)
    }
  })

  test('at most --max-offers relays per announce, to distinct peers spread over nodes', async () => {
    const IH = nastyId()
    const leechers = []
    const o = await wtClient(cl.nodes[0], 'mo-offerer', nastyId())
    try {
      for (let i = 0; i < 4; i++) {
        const l = await wtClient(cl.nodes[(i % 2) + 1], `moL${i}`, nastyId())
        leechers.push(l)
        await wtAnnounce(l, { info_hash: IH, left: 5, event: 'started', numwant: 0 })
      }
      await wtScrapeUntil(o, IH, { complete: 0, incomplete: 4, downloaded: 0 }, 'on node 0')
      const offers = Array.from({ length: 5 }, (_, i) => ({ offer_id: randomBinId(), offer: { type: 'offer', sdp: `s${i}` } }))
      await wtAnnounce(o, { info_hash: IH, left: 5, event: 'started', numwant: 5, offers })
      let per
      await waitFor(async () => {
        per = (await Promise.all(leechers.map((l) => wtDrain(l, isOffer)))).map((x) => x.length)
        return per.reduce((x, y) => x + y, 0) >= MAX_OFFERS
      }, { what: () => `${MAX_OFFERS} offers should reach the leechers of nodes 1 and 2; got ${per}` })
      assert.equal(per.reduce((x, y) => x + y, 0), MAX_OFFERS, `relays per leecher: ${per}`)
      assert.ok(per.every((n) => n <= 1), `a leecher got two offers of one announce: ${per}`)
    } finally {
      await closeAll(leechers, o)
    }
  })

  test('swarms are shared with ST peers of other nodes; offers and peer lists stay within a dialect', async () => {
    const [n0, n1, n2] = cl.nodes
    const IH = randomBytes(20).toString('latin1')
    const HEX = binToHex(IH)
    const a = await wtClient(n0, 'mixWtA', nastyId())
    const b = await wtClient(n1, 'mixWtB', nastyId())
    const s = await connect(n2, { name: 'mixSt@n2' })
    try {
      await s.ola(randomPeerId('mix'))
      await wtAnnounce(a, { info_hash: IH, left: 10, event: 'started' })
      const st = await stAnnounceUntil(s, HEX, { event: 'started', left: 10, num_want: 50 },
        (m) => m.incomplete === 2, { what: 'on node 2 should count the WebTorrent leecher of node 0' })
      assert.deepEqual(st.peers, [], 'WebTorrent peers are never handed to ST peers, whatever node')
      await wtScrapeUntil(b, IH, { complete: 0, incomplete: 2, downloaded: 0 }, 'on node 1 (WT on node 0, ST on node 2)')

      // B (seeder, node 1) sends two offers: only the WebTorrent leecher (node 0) can get one.
      const offers = [0, 1].map(() => ({ offer_id: randomBinId(), offer: { type: 'offer', sdp: 'x' } }))
      const m = await wtAnnounce(b, { info_hash: IH, left: 0, event: 'started', offers })
      assert.deepEqual(m, { action: 'announce', info_hash: IH, complete: 1, incomplete: 2, interval: INTERVAL })
      const off = await a.next(isOffer)
      assert.equal(off.peer_id, b.peerId)
      await wtDrain(a)
      await s.assertQuiet('(a WebTorrent offer must never reach an ST peer)')
      // The ST scrape on node 2 agrees.
      const sc = await s.request({ type: 'scrape', info_hashes: [HEX] }, { type: 'scrape' })
      assert.deepEqual(sc.files[HEX], { complete: 1, incomplete: 2, downloaded: 0 })
    } finally {
      await closeAll(a, b, s)
    }
  })

  test('a WebTorrent peer that leaves node 0 leaves the counts of node 1; an answer to it fails', async () => {
    const [n0, n1] = cl.nodes
    const IH = nastyId()
    const l = await wtClient(n1, 'goneL', nastyId())
    const o = await wtClient(n0, 'goneO', nastyId())
    try {
      await wtAnnounce(l, { info_hash: IH, left: 5, event: 'started' })
      await wtScrapeUntil(o, IH, { complete: 0, incomplete: 1, downloaded: 0 }, 'on node 0')
      const OID = randomBinId()
      await wtAnnounce(o, { info_hash: IH, left: 0, event: 'started', offers: [{ offer_id: OID, offer: { type: 'offer', sdp: 's' } }] })
      const relay = await l.next(isOffer)
      assert.equal(relay.offer_id, OID)
      await o.close()
      await wtScrapeUntil(l, IH, { complete: 0, incomplete: 1, downloaded: 0 }, 'on node 1 after the seeder of node 0 left')
      await wtExpectFailure(l, { action: 'announce', info_hash: IH, peer_id: l.peerId, to_peer_id: o.peerId, offer_id: OID, answer: { type: 'answer', sdp: 'a' } },
        { infoHash: IH })
      const again = await wtAnnounce(l, { info_hash: IH, left: 5 })
      assert.deepEqual(again, { action: 'announce', info_hash: IH, complete: 0, incomplete: 1, interval: INTERVAL })
    } finally {
      await closeAll(l, o)
    }
  })
})
