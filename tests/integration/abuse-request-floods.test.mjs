// Abuse: request floods. Regular announces faster than --min-interval (refused, and they do not
// keep a peer alive), the per-connection message bucket, and the swarm cap per connection, in both
// dialects. Every test also checks that honest peers on other connections are served normally
// while the abuse goes on.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  SLOW, closeAll, connect, randomInfoHash, randomPeerId, sleep, startServer
} from './helpers.mjs'
import {
  HonestSt, HonestWt, barrier, drain, stAnnounce, statsOf, wtAnnounce, wtBin, wtId
} from './abuse-helpers.mjs'

const hex = (bin) => Buffer.from(bin, 'latin1').toString('hex')

/** ST scrape of one infohash: { complete, incomplete, downloaded }. */
async function stScrape (client, ih) {
  const r = await client.request({ type: 'scrape', info_hashes: [ih] }, { type: 'scrape' })
  return r.files[ih]
}

describe('request floods', () => {
  test('announces faster than --min-interval are refused and do not keep the peer alive; events are always taken (ST and WebTorrent)', async (t) => {
    const MIN_INTERVAL = 10
    const PEER_TIMEOUT = 1
    const srv = await startServer({
      t, args: ['--min-interval', String(MIN_INTERVAL), '--peer-timeout', String(PEER_TIMEOUT)]
    })
    const honest = await HonestSt.create(srv)
    const honestWt = await HonestWt.create(srv)
    const observer = await connect(srv, { name: 'observer' })
    await observer.ola(randomPeerId('obs'))
    const st = await connect(srv, { name: 'st-flooder' })
    const wt = await connect(srv, { name: 'wt-flooder' })
    try {
      // ---- ST: refusals and events -------------------------------------------------------------
      const IH = randomInfoHash()
      await st.ola(randomPeerId('flood'))
      let ans = await stAnnounce(st, IH, { event: 'started', left: 5 })
      assert.equal(ans.type, 'announce', JSON.stringify(ans))
      assert.equal(ans.min_interval, MIN_INTERVAL)
      for (const fields of [{ left: 5 }, {}, { left: 5, uploaded: 10 }]) {
        const err = await stAnnounce(st, IH, fields)
        assert.equal(err.type, 'error', `regular announce ${JSON.stringify(fields)} must be refused: ${JSON.stringify(err)}`)
        assert.deepEqual(Object.keys(err).sort(), ['code', 'info_hash', 'message', 'ref', 'retry_after_ms', 'type'])
        assert.equal(err.code, 'rate_limited')
        assert.equal(err.ref, 'announce')
        assert.equal(err.info_hash, IH)
        assert.ok(Number.isInteger(err.retry_after_ms) && err.retry_after_ms > 0 &&
          err.retry_after_ms <= MIN_INTERVAL * 1000, JSON.stringify(err))
        assert.match(err.message, /^announce again in \d+ s \(min_interval 10 s\)$/)
      }
      // A refused announce changed nothing: still one leecher.
      assert.deepEqual(await stScrape(observer, IH), { complete: 0, incomplete: 1, downloaded: 0 })
      // Events are always taken, however soon.
      ans = await stAnnounce(st, IH, { event: 'started', left: 5 })
      assert.equal(ans.type, 'announce', JSON.stringify(ans))
      ans = await stAnnounce(st, IH, { event: 'completed', left: 0 })
      assert.equal(ans.type, 'announce', JSON.stringify(ans))
      assert.deepEqual([ans.complete, ans.incomplete], [1, 0])
      ans = await stAnnounce(st, IH, { left: 0 })
      assert.equal(ans.code, 'rate_limited', JSON.stringify(ans))
      ans = await stAnnounce(st, IH, { event: 'stopped' })
      assert.equal(ans.type, 'announce', JSON.stringify(ans))
      assert.deepEqual(ans.peers, [])
      assert.deepEqual(await stScrape(observer, IH), { complete: 0, incomplete: 0, downloaded: 1 })

      // ---- WebTorrent: refusals and events ---------------------------------------------------
      const WIH = wtBin()
      const WID = wtId('-FL0001-')
      let r = await wtAnnounce(wt, WIH, WID, { event: 'started', left: 5 })
      assert.deepEqual([r.complete, r.incomplete], [0, 1], JSON.stringify(r))
      for (const fields of [{ left: 5 }, { event: 'update', left: 5 }, { event: 'empty' }, { event: 'paused' }, {}]) {
        r = await wtAnnounce(wt, WIH, WID, fields)
        assert.deepEqual(Object.keys(r).sort(), ['action', 'failure reason', 'info_hash'],
          `regular WT announce ${JSON.stringify(fields)} must be refused: ${JSON.stringify(r)}`)
        assert.equal(r.action, 'announce')
        assert.equal(r.info_hash, WIH)
        assert.match(r['failure reason'], /^rate limited: announce again in \d+ s$/)
        const secs = Number(/in (\d+) s/.exec(r['failure reason'])[1])
        assert.ok(secs > 0 && secs <= MIN_INTERVAL, r['failure reason'])
      }
      assert.deepEqual(await stScrape(observer, hex(WIH)), { complete: 0, incomplete: 1, downloaded: 0 })
      r = await wtAnnounce(wt, WIH, WID, { event: 'started', left: 5 })
      assert.deepEqual([r.complete, r.incomplete], [0, 1], JSON.stringify(r))
      r = await wtAnnounce(wt, WIH, WID, { event: 'completed', left: 0 })
      assert.deepEqual([r.complete, r.incomplete], [1, 0], JSON.stringify(r))
      r = await wtAnnounce(wt, WIH, WID, { event: 'stopped', left: 0 })
      assert.deepEqual([r.complete, r.incomplete], [0, 0], JSON.stringify(r))

      await honest.check('after the refusals')
      await honestWt.check('after the refusals')

      // ---- A peer that only floods regular announces still expires ---------------------------
      // Both flooders (re)join with "started", then send a regular announce every 150 ms. While
      // they are members, every one is refused (min_interval is 10 s): they do not count as
      // activity, so the peers expire after --peer-timeout as if silent. The first regular
      // announce that is accepted is the proof: it is only accepted once the peer has left the
      // swarm (it then rejoins as a new peer).
      const before = await statsOf(srv)
      ans = await stAnnounce(st, IH, { event: 'started', left: 5 })
      assert.equal(ans.type, 'announce')
      r = await wtAnnounce(wt, WIH, WID, { event: 'started', left: 5 })
      assert.equal(r.incomplete, 1, JSON.stringify(r))
      const t0 = Date.now()
      // Expiry needs more than PEER_TIMEOUT whole seconds, then the incremental sweep (about a
      // sixth of the swarm table per second, src/tracker/swarm.c) must reach the swarm.
      const deadline = (PEER_TIMEOUT + 1 + 8) * 1000 * SLOW
      const flood = async (send, accepted) => {
        const replies = []
        for (;;) {
          const m = await send()
          replies.push(m)
          if (accepted(m)) return { ms: Date.now() - t0, refused: replies.slice(0, -1), last: m }
          if (Date.now() - t0 > deadline) {
            return { ms: null, refused: replies, last: m }
          }
          await sleep(150)
        }
      }
      const [stRes, wtRes] = await Promise.all([
        flood(() => stAnnounce(st, IH, { left: 5 }), (m) => m.type === 'announce'),
        flood(() => wtAnnounce(wt, WIH, WID, { left: 5 }), (m) => m['failure reason'] === undefined),
        (async () => {
          // The honest peers are served while the flood goes on.
          await sleep(400)
          await honest.check('during the announce flood')
          await honestWt.check('during the announce flood')
        })()
      ])
      for (const [k, res, isRefusal] of [['ST', stRes, (m) => m.code === 'rate_limited'],
        ['WT', wtRes, (m) => /^rate limited: announce again in \d+ s$/.test(m['failure reason'] ?? '')]]) {
        assert.ok(res.ms !== null, `${k}: the flooding peer was still in its swarm after ${deadline} ms ` +
          `(${res.refused.length} regular announces, all refused: the flood kept it alive)`)
        t.diagnostic(`${k} flooder expired after ${res.ms} ms and ${res.refused.length} refused announces`)
        assert.ok(res.ms >= PEER_TIMEOUT * 1000 - 100, `${k}: the peer left after only ${res.ms} ms (--peer-timeout ${PEER_TIMEOUT})`)
        assert.ok(res.refused.length >= 5, `${k}: the flood was too slow to prove anything (${res.refused.length} announces)`)
        for (const m of res.refused) assert.ok(isRefusal(m), `${k}: a flood announce was accepted while a member: ${JSON.stringify(m)}`)
        // The accepted one rejoined an empty swarm.
        if (k === 'ST') assert.deepEqual([res.last.complete, res.last.incomplete], [0, 1], JSON.stringify(res.last))
        else assert.deepEqual([res.last.complete, res.last.incomplete], [0, 1], JSON.stringify(res.last))
      }
      const after = await statsOf(srv)
      assert.ok(after.expired_peers >= before.expired_peers + 2, `expired_peers ${before.expired_peers} -> ${after.expired_peers}`)
      assert.ok(after.rate_limited >= before.rate_limited + stRes.refused.length + wtRes.refused.length)
      // The connections themselves stay open and usable.
      assert.ok(st.isOpen && wt.isOpen)
      await barrier(st)
      await honest.check('after the announce flood')
      await honestWt.check('after the announce flood')
    } finally {
      await closeAll(st, wt, observer, honest.clients, honestWt.clients)
    }
  })

  test('the per-connection message bucket: the 11th rapid message is refused, one notice per second, the connection stays and recovers (ST and WebTorrent)', async (t) => {
    const srv = await startServer({ t, args: ['--msg-rate', '5', '--msg-burst', '10', '--min-interval', '0'] })
    const honest = await HonestSt.create(srv)
    const honestWt = await HonestWt.create(srv)
    const st = await connect(srv, { name: 'st-spammer' })
    const wt = await connect(srv, { name: 'wt-spammer' })
    try {
      const SCRAPE_IH = wtBin()
      const isScrape = (m) => m && m.action === 'scrape'
      const isWtLimited = (m) => m && m['failure reason'] === 'rate limited: too many messages, slow down'
      const isStLimited = (m) => m && m.type === 'error' && m.code === 'rate_limited'

      // ---- a burst of 30: 10 answered, the 11th refused with a notice, the rest silently ----
      const t0 = Date.now()
      for (let i = 0; i < 30; i++) st.sendJson({ type: 'ping', n: i })
      for (let i = 0; i < 30; i++) wt.sendJson({ action: 'scrape', info_hash: SCRAPE_IH })
      const burstMs = () => Date.now() - t0
      // In order: the first 10 answers, then the notice for the 11th.
      for (let i = 0; i < 10; i++) assert.deepEqual(await st.next(), { type: 'pong' }, `ST message ${i + 1}`)
      const notice = await st.next()
      assert.deepEqual(Object.keys(notice).sort(), ['code', 'message', 'retry_after_ms', 'type'],
        `the 11th ST message must be refused: ${JSON.stringify(notice)}`)
      assert.equal(notice.code, 'rate_limited')
      assert.equal(notice.message, 'too many messages on this connection')
      assert.ok(notice.retry_after_ms > 0 && notice.retry_after_ms <= 1000, JSON.stringify(notice))
      for (let i = 0; i < 10; i++) assert.ok(isScrape(await wt.next()), `WT message ${i + 1}`)
      const wnotice = await wt.next()
      assert.deepEqual(wnotice, { action: 'announce', 'failure reason': 'rate limited: too many messages, slow down' },
        'the 11th WT message must be refused')
      // Whatever else came: at most a refill's worth of answers and at most one more notice
      // (only if the burst straddled a second boundary).
      await sleep(300)
      const refill = Math.ceil(burstMs() * 5 / 1000) + 1
      const stRest = drain(st)
      const wtRest = drain(wt)
      assert.ok(stRest.filter((m) => m.type === 'pong').length <= refill, JSON.stringify(stRest))
      assert.ok(stRest.filter(isStLimited).length <= 1, JSON.stringify(stRest))
      assert.ok(wtRest.filter(isScrape).length <= refill, JSON.stringify(wtRest))
      assert.ok(wtRest.filter(isWtLimited).length <= 1, JSON.stringify(wtRest))
      assert.ok(st.isOpen && wt.isOpen, 'rate limiting must not close the connection')

      // ---- a sustained flood at 50 msg/s for 2.2 s: about 5/s answered, <= 1 notice/s ------
      await honest.check('before the sustained flood')
      const f0 = Date.now()
      let sent = 0
      const flood = (async () => {
        while (Date.now() - f0 < 2200) {
          st.sendJson({ type: 'ping' })
          wt.sendJson({ action: 'scrape', info_hash: SCRAPE_IH })
          sent++
          await sleep(20)
        }
      })()
      await sleep(1000)
      await honest.check('during the message flood')
      await honestWt.check('during the message flood')
      await flood
      const floodMs = Date.now() - f0
      await sleep(300)
      const stGot = drain(st)
      const wtGot = drain(wt)
      const seconds = Math.ceil(floodMs / 1000) + 1 // distinct server seconds the flood can span
      const maxAnswers = Math.ceil(floodMs * 5 / 1000) + 2
      for (const [name, got, isAnswer, isLimited] of [['ST', stGot, (m) => m.type === 'pong', isStLimited],
        ['WT', wtGot, isScrape, isWtLimited]]) {
        const answers = got.filter(isAnswer).length
        const notices = got.filter(isLimited).length
        assert.equal(answers + notices, got.length, `${name}: unexpected messages ${JSON.stringify(got)}`)
        assert.ok(answers <= maxAnswers, `${name}: ${answers} of ${sent} answered in ${floodMs} ms at 5/s`)
        assert.ok(answers < sent / 2, `${name}: ${answers} of ${sent} answered: the bucket does not limit`)
        assert.ok(notices >= 1 && notices <= seconds, `${name}: ${notices} notices in ${floodMs} ms (at most one per second)`)
      }
      assert.ok(st.isOpen && wt.isOpen, 'rate limiting must not close the connection')

      // ---- after a pause, the connection works again ------------------------------------------
      await sleep(1200)
      assert.deepEqual(await st.request({ type: 'ping' }), { type: 'pong' })
      const again = await wt.request({ action: 'scrape', info_hash: SCRAPE_IH })
      assert.ok(isScrape(again), JSON.stringify(again))
      const ih = randomInfoHash()
      await st.ola(randomPeerId('spam'))
      const a = await stAnnounce(st, ih, { event: 'started', left: 1 })
      assert.equal(a.type, 'announce', JSON.stringify(a))
      await honest.check('after the message flood')
      await honestWt.check('after the message flood')
    } finally {
      await closeAll(st, wt, honest.clients, honestWt.clients)
    }
  })

  test('--max-swarms 3: a 4th infohash is refused on that connection only (ST and WebTorrent)', async (t) => {
    const srv = await startServer({ t, args: ['--max-swarms', '3'] })
    const honest = await HonestSt.create(srv)
    const honestWt = await HonestWt.create(srv)
    const st = await connect(srv, { name: 'st-hoarder' })
    const wt = await connect(srv, { name: 'wt-hoarder' })
    try {
      await st.ola(randomPeerId('hoard'))
      const ihs = [randomInfoHash(), randomInfoHash(), randomInfoHash(), randomInfoHash()]
      for (const ih of ihs.slice(0, 3)) {
        const a = await stAnnounce(st, ih, { event: 'started', left: 1 })
        assert.equal(a.type, 'announce', JSON.stringify(a))
      }
      for (const fields of [{ event: 'started', left: 1 }, { left: 1 }, { event: 'completed', left: 0 }]) {
        const err = await stAnnounce(st, ihs[3], fields)
        assert.deepEqual(err, { type: 'error', code: 'too_many_swarms', message: 'a connection may be in at most 3 swarms', ref: 'announce' })
      }
      // A refused swarm was not created.
      const sc = await st.request({ type: 'scrape', info_hashes: [ihs[3]] }, { type: 'scrape' })
      assert.deepEqual(sc.files[ihs[3]], { complete: 0, incomplete: 0, downloaded: 0 })

      const WID = wtId('-HO0001-')
      const wihs = [wtBin(), wtBin(), wtBin(), wtBin()]
      for (const ih of wihs.slice(0, 3)) {
        const r = await wtAnnounce(wt, ih, WID, { event: 'started', left: 1 })
        assert.equal(r.incomplete, 1, JSON.stringify(r))
      }
      const fail = await wtAnnounce(wt, wihs[3], WID, { event: 'started', left: 1 })
      assert.deepEqual(fail, { action: 'announce', info_hash: wihs[3], 'failure reason': 'too many torrents on one connection (at most 3)' })

      // Honest peers (in their own swarms) are not affected by another connection's cap.
      await honest.check('while another connection is at its swarm cap')
      await honestWt.check('while another connection is at its swarm cap')

      // Leaving one swarm makes room for another.
      const stop = await stAnnounce(st, ihs[0], { event: 'stopped' })
      assert.equal(stop.type, 'announce')
      const a4 = await stAnnounce(st, ihs[3], { event: 'started', left: 1 })
      assert.equal(a4.type, 'announce', JSON.stringify(a4))
      assert.equal(a4.incomplete, 1)
      const wstop = await wtAnnounce(wt, wihs[0], WID, { event: 'stopped' })
      assert.equal(wstop['failure reason'], undefined)
      const w4 = await wtAnnounce(wt, wihs[3], WID, { event: 'started', left: 1 })
      assert.equal(w4.incomplete, 1, JSON.stringify(w4))
      const s = await statsOf(srv)
      // 3 + 3 memberships of the hoarders; the honest peers have left their check swarms.
      assert.equal(s.peers, 6, JSON.stringify(s))
    } finally {
      await closeAll(st, wt, honest.clients, honestWt.clients)
    }
  })
})
