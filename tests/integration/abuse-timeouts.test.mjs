// Abuse: connections that hold a slot without doing anything. --idle-timeout 2 closes a
// connection that sends no message (bye "idle", close 1000; pongs do not count as messages), and
// app-level {"type":"ping"} keeps one alive; --ping-interval 1 --ping-timeout 1 closes a socket
// that never answers WebSocket pings (bye "timeout", close 1001). Honest peers that ping are served
// throughout.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { OP, SLOW, buildFrame, closeAll, connect, randomInfoHash, randomPeerId, rawWs, sleep, startServer } from './helpers.mjs'
import { HonestSt, stAnnounce, statsOf, wtAnnounce, wtBin, wtId } from './abuse-helpers.mjs'

const ARGS = ['--idle-timeout', '2', '--ping-interval', '1', '--ping-timeout', '1']

/** Time bounds for a 2 s timeout: never before it (the clock is whole seconds, and timeouts fire
 * once `now - then > T`), at most about 2 s after (granularity, once-a-second housekeeping). The
 * deaf socket's close is a ping (sent once the silence exceeds --ping-interval 1) followed by
 * --ping-timeout 1, each rounded up the same way, so it may take up to a second longer. */
const EARLIEST = 2000 - 50
const LATEST = 4000 * SLOW
const LATEST_DEAF = 5000 * SLOW

describe('idle and ping timeouts', () => {
  test('idle connections are closed with bye "idle", app-level pings keep one alive, unanswered WebSocket pings close with bye "timeout"', async (t) => {
    const srv = await startServer({ t, args: ARGS })
    const honest = await HonestSt.create(srv)
    honest.keepAlive(400)
    const t0 = Date.now()
    // 1. An identified ST connection that says nothing more (the ws client answers pings).
    const silent = await connect(srv, { name: 'silent' })
    await silent.ola(randomPeerId('silent'))
    const silentAt = Date.now()
    // 2. The same, but it sends {"type":"ping"} every 500 ms.
    const pinger = await connect(srv, { name: 'pinger' })
    await pinger.ola(randomPeerId('pinger'))
    const pingTimer = setInterval(() => pinger.sendJson({ type: 'ping' }), 500)
    // 3. A raw socket that answers WebSocket pings but sends no message: pongs do not count.
    const ponger = await rawWs(srv, { name: 'ponger' })
    ponger.sendJson({ type: 'ola', peer_id: randomPeerId('ponger') })
    assert.equal((await ponger.nextJson()).ok, true)
    const pongerAt = Date.now()
    let pongs = 0
    const pongTimer = setInterval(() => {
      for (let i = ponger.frames.findIndex((f) => f.opcode === OP.PING); i >= 0; i = ponger.frames.findIndex((f) => f.opcode === OP.PING)) {
        const ping = ponger.frames.splice(i, 1)[0]
        ponger.sendFrame({ opcode: OP.PONG, payload: ping.payload })
        pongs++
      }
    }, 50)
    // 4. A raw socket that never answers WebSocket pings.
    const deaf = await rawWs(srv, { name: 'deaf' })
    deaf.sendJson({ type: 'ola', peer_id: randomPeerId('deaf') })
    assert.equal((await deaf.nextJson()).ok, true)
    const deafAt = Date.now()
    // 6. A raw socket that trickles the payload of one big frame, a byte every 300 ms, to a
    //    server with --idle-timeout 2 and the default ping interval: bytes keep coming, but an
    //    unfinished message is no message.
    const srv2 = await startServer({ t, args: ['--idle-timeout', '2'] })
    const trickler = await rawWs(srv2, { name: 'frame-trickler' })
    trickler.sendJson({ type: 'ola', peer_id: randomPeerId('trickle') })
    assert.equal((await trickler.nextJson()).ok, true)
    const tricklerAt = Date.now()
    const bigFrame = buildFrame({ opcode: OP.TEXT, payload: JSON.stringify({ type: 'ping', pad: 'p'.repeat(4000) }) })
    let tOff = 0
    const trickleTimer = setInterval(() => {
      if (!trickler.ended && tOff < bigFrame.length) trickler.write(bigFrame.subarray(tOff, ++tOff))
    }, 300)
    // 5. A WebTorrent peer in a swarm that goes silent: one failure per swarm, then the close.
    const wt = await connect(srv, { name: 'wt-silent' })
    const WIH = wtBin()
    assert.equal((await wtAnnounce(wt, WIH, wtId('-ID0001-'), { event: 'started', left: 1 })).incomplete, 1)
    const wtAt = Date.now()
    try {
      const st0 = await statsOf(srv)
      let trickleClose
      await sleep(600)
      await honest.check('while idle connections wait to be closed')

      const [silentClose, deafClose, pongerClose, wtClose] = await Promise.all([
        silent.closed.then((c) => ({ ...c, ms: Date.now() - silentAt })),
        deaf.expectClose(LATEST_DEAF).then((c) => ({ ...c, ms: Date.now() - deafAt })),
        ponger.expectClose(LATEST).then((c) => ({ ...c, ms: Date.now() - pongerAt })),
        wt.closed.then((c) => ({ ...c, ms: Date.now() - wtAt })),
        trickler.expectClose(LATEST).then((c) => ({ ...c, ms: Date.now() - tricklerAt }))
      ]).then((all) => { trickleClose = all[4]; return all })
      t.diagnostic(`closed after: silent ${silentClose.ms} ms, deaf ${deafClose.ms} ms, ponger ${pongerClose.ms} ms (${pongs} pongs), WebTorrent ${wtClose.ms} ms, frame trickler ${trickleClose.ms} ms`)

      // 1. idle: bye "idle", close 1000; the ws client had answered the server's pings.
      assert.equal(silentClose.code, 1000)
      assert.deepEqual(silent.queue.map((e) => e.json), [{ type: 'bye', reason: 'idle' }])
      assert.ok(silent.pings >= 1, 'the server pings a silent connection')
      // 3. idle too, although it answered every ping.
      assert.ok(pongs >= 1, 'the ponger was pinged')
      assert.equal(pongerClose.code, 1000)
      assert.deepEqual(pongerClose.before.filter((f) => f.opcode === OP.TEXT).map((f) => f.json), [{ type: 'bye', reason: 'idle' }])
      // 4. no pong: bye "timeout", close 1001, after a ping.
      assert.equal(deafClose.code, 1001)
      assert.ok(deafClose.before.some((f) => f.opcode === OP.PING), `deaf got no ping before the close: ${JSON.stringify(deafClose.before.map((f) => f.opcode))}`)
      assert.deepEqual(deafClose.before.filter((f) => f.opcode === OP.TEXT).map((f) => f.json), [{ type: 'bye', reason: 'timeout' }])
      // 5. WebTorrent idle: the failure for its swarm, then 1000.
      assert.equal(wtClose.code, 1000)
      assert.deepEqual(wt.queue.map((e) => e.json), [{ action: 'announce', info_hash: WIH, 'failure reason': 'connection idle for too long' }])
      // 6. idle, although bytes kept coming.
      assert.equal(trickleClose.code, 1000)
      assert.deepEqual(trickleClose.before.filter((f) => f.opcode === OP.TEXT).map((f) => f.json), [{ type: 'bye', reason: 'idle' }])
      assert.ok(tOff > 5 && tOff < bigFrame.length, `trickled ${tOff} bytes`)
      for (const [name, c] of Object.entries({ silentClose, deafClose, pongerClose, wtClose, trickleClose })) {
        const latest = name === 'deafClose' ? LATEST_DEAF : LATEST
        assert.ok(c.ms >= EARLIEST && c.ms <= latest, `${name}: closed after ${c.ms} ms`)
      }
      // 2. The pinging connection and the honest peers are still open, well past the timeouts.
      assert.ok(pinger.isOpen, `the pinging connection was closed: ${JSON.stringify(pinger.closeInfo)}`)
      assert.ok(pinger.queue.every((e) => e.json.type === 'pong'), pinger.pending())
      const a = await stAnnounce(pinger, randomInfoHash(), { event: 'started', left: 1 })
      assert.equal(a.type, 'announce')
      const st1 = await statsOf(srv)
      assert.ok(st1.timeouts >= st0.timeouts + 4, `timeouts ${st0.timeouts} -> ${st1.timeouts}`)
      assert.equal(st1.identified_peers, st0.identified_peers - 4)
      await honest.check('after the idle connections were closed')
      await sleep(Math.max(0, t0 + 4200 - Date.now()))
      assert.ok(pinger.isOpen && honest.a.isOpen && honest.b.isOpen,
        `pinging connections must stay open (${Date.now() - t0} ms, --idle-timeout 2)`)
      await honest.check('long after')
    } finally {
      clearInterval(pingTimer)
      clearInterval(pongTimer)
      clearInterval(trickleTimer)
      trickler.destroy()
      deaf.destroy()
      ponger.destroy()
      await closeAll(silent, pinger, wt, honest.clients)
      honest.close()
    }
  })

  test('--ping-interval 1: a connection that sends something every 250 ms is not pinged', async (t) => {
    const srv = await startServer({ t, args: ['--ping-interval', '1', '--ping-timeout', '5', '--idle-timeout', '0'] })
    // A busy server: housekeeping runs right after each second begins.
    const busy = await HonestSt.create(srv, { prefix: 'busy' })
    const timer = setInterval(() => busy.a.sendJson({ type: 'ping' }), 20)
    const raw = await rawWs(srv, { name: 'heartbeat' })
    let stop = false
    try {
      // Where the server's seconds begin.
      const first = (await statsOf(srv)).uptime_seconds
      let boundary = null
      while (boundary === null) {
        const before = Date.now()
        if ((await statsOf(srv)).uptime_seconds !== first) boundary = before
      }
      // An unsolicited pong (RFC 6455 section 5.5.3: a heartbeat) 150 ms before each second
      // begins and every 250 ms after: never 1 s of silence.
      let k = Math.ceil((Date.now() - boundary + 200) / 250)
      const beat = () => {
        if (stop) return
        raw.sendFrame({ opcode: OP.PONG, payload: 'hb' })
        k++
        setTimeout(beat, Math.max(0, boundary - 150 + k * 250 - Date.now()))
      }
      setTimeout(beat, Math.max(0, boundary - 150 + k * 250 - Date.now()))
      await sleep(2600)
      const pings = raw.frames.filter((f) => f.opcode === OP.PING).length
      assert.equal(pings, 0, `pinged ${pings} times in 2.6 s although it was never silent for more than 250 ms (--ping-interval 1)`)
    } finally {
      stop = true
      clearInterval(timer)
      raw.destroy()
      await busy.close()
    }
  })
})
