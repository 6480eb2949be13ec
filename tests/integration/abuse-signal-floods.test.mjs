// Abuse: signal floods. The per-sender bucket (--signal-rate/--signal-burst) and the per-receiver
// bucket (--recv-rate/--recv-burst): over either limit the sender is told rate_limited and nothing
// is relayed, which the tests check by counting what the victim receives. WebTorrent: answers are
// relayed only for offers really delivered, once (forged answers and answer spam), and relayed
// offers cost tokens. Honest peers on other connections are served throughout.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { closeAll, connect, connectMany, randomPeerId, sleep, startServer } from './helpers.mjs'
import {
  HonestSt, HonestWt, barrier, drain, statsOf, wtAnnounce, wtBin, wtId
} from './abuse-helpers.mjs'

const SIG = ['--signal-rate', '5', '--signal-burst', '10', '--recv-rate', '5', '--recv-burst', '15', '--min-interval', '0']

/** Upper bound of tokens a bucket of `rate`/s can have refilled in `ms`, plus one for rounding. */
const refill = (ms, rate = 5) => Math.ceil(ms * rate / 1000) + 1

/** WebTorrent barrier: a scrape round trip (every message sent to us before it has arrived). */
async function wtBarrier (client) {
  const ih = wtBin()
  client.sendJson({ action: 'scrape', info_hash: ih })
  await client.next((m) => m && m.action === 'scrape' && m.files && m.files[ih] !== undefined)
}

describe('signal floods', () => {
  test('per-sender bucket: over --signal-burst the sender gets rate_limited and nothing more reaches the victim (ST)', async (t) => {
    const srv = await startServer({ t, args: SIG })
    const honest = await HonestSt.create(srv)
    const [sender, victim] = await connectMany(srv, 2, 'psend')
    try {
      const S = randomPeerId('S')
      const V = randomPeerId('V')
      await sender.ola(S)
      await victim.ola(V)
      const before = await statsOf(srv)
      const N = 30
      const types = ['offer', 'answer', 'candidate']
      const t0 = Date.now()
      for (let i = 0; i < N; i++) {
        sender.sendJson({ type: types[i % 3], to: V, payload: { n: i, sdp: 'x'.repeat(200) } })
      }
      await barrier(sender)
      const ms = Date.now() - t0
      await barrier(victim)
      const got = drain(victim)
      const refusals = drain(sender)
      assert.deepEqual(victim.queue, [])
      for (const m of got) assert.ok(types.includes(m.type) && m.from === S, JSON.stringify(m))
      for (const e of refusals) {
        assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'ref', 'retry_after_ms', 'to', 'type'], JSON.stringify(e))
        assert.equal(e.code, 'rate_limited')
        assert.equal(e.to, V)
        assert.equal(e.message, 'you are sending signals too fast')
        assert.ok(types.includes(e.ref), JSON.stringify(e))
        assert.ok(e.retry_after_ms > 0 && e.retry_after_ms <= 200, JSON.stringify(e))
      }
      t.diagnostic(`${got.length} of ${N} signals relayed in ${ms} ms, ${refusals.length} refused`)
      assert.equal(got.length + refusals.length, N, 'every signal is either relayed or refused')
      assert.ok(got.length >= 10 && got.length <= 10 + refill(ms), `${got.length} relayed (burst 10, 5/s over ${ms} ms)`)
      // The burst went through in order; then nothing but refill.
      assert.deepEqual(got.slice(0, 10).map((m) => m.payload.n), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      assert.deepEqual(got[0], { type: 'offer', from: S, payload: { n: 0, sdp: 'x'.repeat(200) } })
      const after = await statsOf(srv)
      assert.equal(after.relayed - before.relayed, got.length)
      assert.ok(after.rate_limited - before.rate_limited >= refusals.length)

      // Honest peers on other connections relay normally right away.
      await honest.check('right after the sender flood')
      // The flooder's connection stays open; after a pause it may signal again.
      await sleep(450)
      sender.sendJson({ type: 'offer', to: V, payload: { n: 'again' } })
      assert.deepEqual(await victim.next({ type: 'offer' }), { type: 'offer', from: S, payload: { n: 'again' } })
    } finally {
      await closeAll(sender, victim, honest.clients)
    }
  })

  test('per-receiver bucket: several senders at one victim are cut at --recv-burst, each told rate_limited (ST)', async (t) => {
    const srv = await startServer({ t, args: SIG })
    const honest = await HonestSt.create(srv)
    const senders = await connectMany(srv, 3, 'rsend')
    const victim = await connect(srv, { name: 'rvictim' })
    try {
      const V = randomPeerId('V')
      await victim.ola(V)
      const ids = []
      for (const [i, s] of senders.entries()) {
        ids.push(randomPeerId(`S${i}`))
        await s.ola(ids[i])
      }
      // 3 x 8 = 24 signals: each sender is within its own burst of 10, together they are over
      // the victim's 15.
      const PER = 8
      const t0 = Date.now()
      for (let k = 0; k < PER; k++) {
        for (const [i, s] of senders.entries()) s.sendJson({ type: 'candidate', to: V, payload: { s: i, k } })
      }
      // Meanwhile, the honest peers relay to each other.
      const honestDuring = honest.check('during the flood at one victim')
      honestDuring.catch(() => {}) // awaited below; do not let an early failure go unhandled
      await Promise.all(senders.map((s) => barrier(s)))
      const ms = Date.now() - t0
      await barrier(victim)
      const got = drain(victim)
      const refusals = senders.map((s) => drain(s))
      for (const r of refusals.flat()) {
        assert.deepEqual(Object.keys(r).sort(), ['code', 'message', 'ref', 'retry_after_ms', 'to', 'type'], JSON.stringify(r))
        assert.equal(r.code, 'rate_limited')
        assert.equal(r.to, V)
        assert.equal(r.message, 'that peer is receiving signals too fast')
        assert.equal(r.ref, 'candidate')
      }
      const refused = refusals.flat().length
      t.diagnostic(`victim received ${got.length} of ${3 * PER} in ${ms} ms; refusals per sender ${refusals.map((r) => r.length)}`)
      assert.equal(got.length + refused, 3 * PER, 'every signal is either relayed or refused')
      assert.ok(got.length >= 15 && got.length <= 15 + refill(ms), `victim received ${got.length} (burst 15, 5/s over ${ms} ms)`)
      for (const m of got) assert.equal(ids[m.payload.s], m.from, JSON.stringify(m))
      await honestDuring

      // Each sender still has tokens of its own: another victim is served at once.
      const other = await connect(srv, { name: 'other-victim' })
      const O = randomPeerId('O')
      await other.ola(O)
      senders[0].sendJson({ type: 'offer', to: O, payload: { hello: 1 } })
      assert.deepEqual(await other.next({ type: 'offer' }), { type: 'offer', from: ids[0], payload: { hello: 1 } })
      // The victim refills at 5/s.
      await sleep(450)
      senders[1].sendJson({ type: 'offer', to: V, payload: { after: 'pause' } })
      assert.deepEqual(await victim.next({ type: 'offer' }), { type: 'offer', from: ids[1], payload: { after: 'pause' } })
      await honest.check('after the flood at one victim')
      await other.close()
    } finally {
      await closeAll(senders, victim, honest.clients)
    }
  })

  test('WebTorrent: forged answers and answer spam are refused and never relayed', async (t) => {
    const srv = await startServer({ t, args: ['--min-interval', '0'] })
    const honest = await HonestWt.create(srv)
    const [offerer, answerer, forger] = await connectMany(srv, 3, 'wtans')
    try {
      const IH = wtBin()
      const O = wtId('-OF0001-')
      const A = wtId('-AN0001-')
      const F = wtId('-FO0001-')
      // The answerer alone with the offerer: the offer can only go to it.
      assert.equal((await wtAnnounce(answerer, IH, A, { event: 'started', left: 10 })).incomplete, 1)
      const offerId = wtBin()
      const r = await wtAnnounce(offerer, IH, O, {
        event: 'started', left: 10, numwant: 5, offers: [{ offer: { type: 'offer', sdp: 'v=0 real' }, offer_id: offerId }]
      })
      assert.equal(r.incomplete, 2, JSON.stringify(r))
      const delivered = await answerer.next((m) => m && m.offer)
      assert.deepEqual(delivered, { action: 'announce', info_hash: IH, peer_id: O, offer_id: offerId, offer: { type: 'offer', sdp: 'v=0 real' } })
      // The forger joins afterwards: it never received the offer.
      assert.equal((await wtAnnounce(forger, IH, F, { event: 'started', left: 10 })).incomplete, 3)

      const noSuchOffer = { action: 'announce', info_hash: IH, 'failure reason': 'no such offer: it was not sent to you, was answered already, expired, or was displaced by newer offers' }
      const answer = (from, id, fields) => ({
        action: 'announce', info_hash: IH, peer_id: id, to_peer_id: O, offer_id: offerId, answer: { type: 'answer', sdp: `from ${id}` }, ...fields
      })
      // 1. A forged answer to the real offer, from a peer it was not sent to.
      assert.deepEqual(await forger.request(answer(forger, F)), noSuchOffer)
      // 2. Forged answers with made-up offer IDs, and to a peer that never offered.
      assert.deepEqual(await forger.request(answer(forger, F, { offer_id: wtBin() })), noSuchOffer)
      assert.deepEqual(await forger.request(answer(forger, F, { to_peer_id: A })), noSuchOffer)
      // 3. The real answer is relayed, once.
      answerer.sendJson(answer(answerer, A))
      const relayed = await offerer.next((m) => m && m.answer)
      assert.deepEqual(relayed, { action: 'announce', info_hash: IH, peer_id: A, offer_id: offerId, answer: { type: 'answer', sdp: `from ${A}` } })
      // 4. Answer spam: the same answer again, and 20 answers with made-up offer IDs.
      assert.deepEqual(await answerer.request(answer(answerer, A)), noSuchOffer)
      for (let i = 0; i < 20; i++) answerer.sendJson(answer(answerer, A, { offer_id: wtBin() }))
      for (let i = 0; i < 20; i++) assert.deepEqual(await answerer.next(), noSuchOffer)
      // 5. The right offer ID in the wrong swarm.
      const otherIH = wtBin()
      assert.deepEqual(await answerer.request(answer(answerer, A, { info_hash: otherIH })), { ...noSuchOffer, info_hash: otherIH })

      // The offerer received exactly one answer.
      await wtBarrier(offerer)
      assert.deepEqual(offerer.queue.map((e) => e.json), [], 'nothing but the one real answer reached the offerer')
      await honest.check('after the answer spam')
    } finally {
      await closeAll(offerer, answerer, forger, honest.clients)
    }
  })

  test('WebTorrent: each relayed offer costs the sender a token and the receiver a token; over either limit nothing is relayed', async (t) => {
    const srv = await startServer({ t, args: SIG })
    const honest = await HonestWt.create(srv)
    const receivers = await connectMany(srv, 12, 'wtrecv')
    const sender = await connect(srv, { name: 'wt-offer-flooder' })
    const seeders = await connectMany(srv, 20, 'wtseed')
    const victim = await connect(srv, { name: 'wt-victim' })
    try {
      // ---- per sender: one announce with 10 offers to 12 leechers spends the burst of 10 ----
      const IH = wtBin()
      for (const r of receivers) assert.equal((await wtAnnounce(r, IH, wtId('-RC0001-'), { event: 'started', left: 1 }))['failure reason'], undefined)
      const Y = wtId('-FL0001-')
      const offers = (tag) => Array.from({ length: 10 }, (_, i) => ({ offer: { type: 'offer', sdp: `${tag} ${i}` }, offer_id: wtBin() }))
      const isAnswer = (m) => m && m.action === 'announce' && m.complete !== undefined
      const limitedBy = (m) => {
        const x = /^rate limited: (\d+) of (\d+) offers were not relayed, slow down$/.exec(m['failure reason'] ?? '')
        return x ? { dropped: Number(x[1]), of: Number(x[2]) } : null
      }
      const t0 = Date.now()
      const told = {}
      for (const [tag, event] of [['first', 'started'], ['second', 'started'], ['third', undefined]]) {
        sender.sendJson({ action: 'announce', info_hash: IH, peer_id: Y, event, left: 1, numwant: 10, offers: offers(tag) })
        const r = await sender.next(isAnswer)
        assert.equal(r.incomplete, 13, JSON.stringify(r))
        // The announce is answered first; a failure follows when offers were held back.
        await wtBarrier(sender)
        const fails = drain(sender, (m) => m && m['failure reason'] !== undefined)
        assert.ok(fails.length <= 1, JSON.stringify(fails))
        if (fails.length) {
          assert.deepEqual(Object.keys(fails[0]).sort(), ['action', 'failure reason', 'info_hash'])
          assert.equal(fails[0].info_hash, IH)
          told[tag] = limitedBy(fails[0])
          assert.ok(told[tag], `unexpected failure ${JSON.stringify(fails[0])}`)
        }
      }
      const ms = Date.now() - t0
      await Promise.all(receivers.map(wtBarrier))
      const got = receivers.flatMap((c) => drain(c, (m) => m && m.offer))
      const byTag = (tag) => got.filter((m) => m.offer.sdp.startsWith(tag)).length
      t.diagnostic(`offers relayed: first ${byTag('first')}, second ${byTag('second')}, third ${byTag('third')} in ${ms} ms; sender told ${JSON.stringify(told)}`)
      assert.equal(byTag('first'), 10, 'the first announce spends the burst of 10')
      assert.equal(told.first, undefined, 'nothing was held back from the first announce')
      assert.ok(byTag('second') + byTag('third') <= refill(ms), `after the burst only the refill is relayed: ${byTag('second') + byTag('third')}`)
      // The sender is told exactly how many were held back.
      for (const tag of ['second', 'third']) {
        assert.ok(told[tag], `the ${tag} announce had offers held back but the sender was not told`)
        assert.deepEqual(told[tag], { dropped: 10 - byTag(tag), of: 10 })
      }
      for (const m of got) assert.equal(m.peer_id, Y)

      // ---- per receiver: 20 seeders offer to the only leecher of a swarm -------------------
      const IH2 = wtBin()
      assert.equal((await wtAnnounce(victim, IH2, wtId('-VI0001-'), { event: 'started', left: 1 })).incomplete, 1)
      const s0 = Date.now()
      const honestDuring = honest.check('during the offer flood at one victim')
      await Promise.all(seeders.map((c, i) => wtAnnounce(c, IH2, wtId(`-SD${String(i).padStart(4, '0')}-`), {
        event: 'started', left: 0, numwant: 10, offers: [{ offer: { type: 'offer', sdp: `seed ${i}` }, offer_id: wtBin() }]
      })))
      const sms = Date.now() - s0
      await wtBarrier(victim)
      await Promise.all(seeders.map(wtBarrier))
      const vgot = drain(victim, (m) => m && m.offer)
      const sfails = seeders.flatMap((c) => drain(c, (m) => m && m['failure reason'] !== undefined))
      t.diagnostic(`the victim received ${vgot.length} of 20 offers in ${sms} ms`)
      assert.ok(vgot.length >= 15 && vgot.length <= 15 + refill(sms), `victim received ${vgot.length} offers (burst 15)`)
      // Each seeder whose offer was held back by the victim's bucket is told.
      assert.equal(sfails.length, 20 - vgot.length, JSON.stringify(sfails))
      for (const f of sfails) {
        assert.deepEqual(f, { action: 'announce', info_hash: IH2, 'failure reason': 'rate limited: 1 of 1 offers were not relayed, slow down' })
      }
      assert.deepEqual(victim.queue.map((e) => e.json), [])
      await honestDuring
      await honest.check('after the offer floods')
    } finally {
      await closeAll(receivers, sender, seeders, victim, honest.clients)
    }
  })

  test('WebTorrent: a sender whose offers are over a signal limit is told how many were held back (docs/security.md section 2)', async (t) => {
    const srv = await startServer({ t, args: SIG })
    const receivers = await connectMany(srv, 3, 'wtrl')
    const sender = await connect(srv, { name: 'wt-offer-sender' })
    try {
      const IH = wtBin()
      for (const r of receivers) await wtAnnounce(r, IH, wtId('-RL0001-'), { event: 'started', left: 1 })
      const Y = wtId('-RL0002-')
      const offers = () => Array.from({ length: 3 }, (_, i) => ({ offer: { type: 'offer', sdp: `o ${i}` }, offer_id: wtBin() }))
      // 4 announces x 3 offers = 12 > the burst of 10: the last offers are not relayed.
      const replies = []
      for (let i = 0; i < 4; i++) {
        sender.sendJson({ action: 'announce', info_hash: IH, peer_id: Y, event: 'started', left: 1, numwant: 3, offers: offers() })
      }
      for (let i = 0; i < 4; i++) replies.push(await sender.next())
      await Promise.all(receivers.map(wtBarrier))
      const relayed = receivers.flatMap((c) => drain(c, (m) => m && m.offer)).length
      assert.ok(relayed < 12, `relayed ${relayed}`)
      // Documented: "Over either limit the sender gets rate_limited and nothing is relayed."
      await sleep(200)
      const all = [...replies, ...drain(sender)]
      const told = all.filter((m) => m && m.info_hash === IH && /^rate limited/.test(m['failure reason'] ?? ''))
      assert.ok(told.length >= 1, `${12 - relayed} offers were dropped by the signal bucket but the sender was told nothing: ${JSON.stringify(all)}`)
      let held = 0
      for (const m of told) {
        const x = /^rate limited: (\d+) of 3 offers were not relayed, slow down$/.exec(m['failure reason'])
        assert.ok(x, m['failure reason'])
        held += Number(x[1])
      }
      assert.equal(held, 12 - relayed, 'the failures count exactly the offers held back')
    } finally {
      await closeAll(receivers, sender)
    }
  })

  test('WebTorrent amplification: an announce with 50 offers fans out to at most --max-offers (10) peers', async (t) => {
    const srv = await startServer({ t, args: ['--min-interval', '0'] })
    const honest = await HonestWt.create(srv)
    const receivers = await connectMany(srv, 15, 'amp')
    const sender = await connect(srv, { name: 'amplifier' })
    try {
      const IH = wtBin()
      for (const r of receivers) await wtAnnounce(r, IH, wtId('-AM0001-'), { event: 'started', left: 1 })
      const offers = Array.from({ length: 50 }, (_, i) => ({ offer: { type: 'offer', sdp: `amp ${i}` }, offer_id: wtBin() }))
      const r = await wtAnnounce(sender, IH, wtId('-AM0002-'), { event: 'started', left: 1, numwant: 50, offers })
      assert.equal(r.incomplete, 16, JSON.stringify(r))
      await Promise.all(receivers.map(wtBarrier))
      const got = receivers.map((c) => drain(c, (m) => m && m.offer))
      assert.equal(got.flat().length, 10, `offers relayed: ${got.map((g) => g.length)}`)
      assert.ok(got.every((g) => g.length <= 1), 'each offer goes to a distinct peer')
      // Nothing was held back by a rate limit, so the sender is told nothing more.
      await wtBarrier(sender)
      assert.deepEqual(sender.queue.map((e) => e.json), [])
      await honest.check('after the amplification attempt')
    } finally {
      await closeAll(receivers, sender, honest.clients)
    }
  })
})
