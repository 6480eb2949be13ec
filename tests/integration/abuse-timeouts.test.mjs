// Abuse: connections that hold a slot without doing anything. --idle-timeout 2 closes a
// connection that sends no message (bye "idle", close 1000; pongs do not count as messages), and
// app-level {"type":"ping"} keeps one alive; --ping-interval 1 --ping-timeout 1 closes a socket
// that never answers WebSocket pings (bye "timeout", close 1001). Honest peers that ping are served
// throughout.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { OP, SLOW, closeAll, connect, randomInfoHash, randomPeerId, rawWs, sleep, startServer } from './helpers.mjs'
import { HonestSt, stAnnounce, statsOf, wtAnnounce, wtBin, wtId } from './abuse-helpers.mjs'

const ARGS = ['--idle-timeout', '2', '--ping-interval', '1', '--ping-timeout', '1']

/** Time bounds for a 2 s timeout: never before it (the clock is whole seconds, and timeouts fire
 * once `now - then > T`), at most about 2 s after (granularity, once-a-second housekeeping). */
const EARLIEST = 2000 - 50
const LATEST = 4000 * SLOW

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
    // 5. A WebTorrent peer in a swarm that goes silent: one failure per swarm, then the close.
    const wt = await connect(srv, { name: 'wt-silent' })
    const WIH = wtBin()
    assert.equal((await wtAnnounce(wt, WIH, wtId('-ID0001-'), { event: 'started', left: 1 })).incomplete, 1)
    const wtAt = Date.now()
    try {
      const st0 = await statsOf(srv)
      await sleep(600)
      await honest.check('while idle connections wait to be closed')

      const [silentClose, deafClose, pongerClose, wtClose] = await Promise.all([
        silent.closed.then((c) => ({ ...c, ms: Date.now() - silentAt })),
        deaf.expectClose(LATEST).then((c) => ({ ...c, ms: Date.now() - deafAt })),
        ponger.expectClose(LATEST).then((c) => ({ ...c, ms: Date.now() - pongerAt })),
        wt.closed.then((c) => ({ ...c, ms: Date.now() - wtAt }))
      ])
      t.diagnostic(`closed after: silent ${silentClose.ms} ms, deaf ${deafClose.ms} ms, ponger ${pongerClose.ms} ms (${pongs} pongs), WebTorrent ${wtClose.ms} ms`)

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
      for (const [name, c] of Object.entries({ silentClose, deafClose, pongerClose, wtClose })) {
        assert.ok(c.ms >= EARLIEST && c.ms <= LATEST, `${name}: closed after ${c.ms} ms`)
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
      deaf.destroy()
      ponger.destroy()
      await closeAll(silent, pinger, wt, honest.clients)
      honest.close()
    }
  })
})
