// Abuse: a slow reader. Raw clients complete the upgrade and an ola, then never read, while
// another peer relays many large signals to them (--max-outbuf 4096 --stuck-timeout 2). The
// server must drop what does not fit (dropped in /stats.json grows), keep its memory bounded
// (VmRSS far below the volume sent; the sanitizer build is judged on heap_bytes because its
// allocator keeps freed memory in quarantine), and close the connection once its queue has stayed
// full for the stuck timeout, while honest peers are served normally.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { OP, SANITIZED, SLOW, closeAll, connect, rawWs, sleep, startServer } from './helpers.mjs'
import { HonestSt, rssKb, statsOf, waitStats } from './abuse-helpers.mjs'

const STUCK = 2
const LINGER = 2 // SERVER_LINGER_SECONDS in src/server/ctx.h
const OPEN = ['--signal-rate', '100000', '--signal-burst', '100000', '--recv-rate', '100000',
  '--recv-burst', '100000', '--msg-rate', '100000', '--msg-burst', '100000']

describe('slow reader', () => {
  test('a reader that never reads: output dropped and counted, memory bounded, closed after --stuck-timeout; honest peers unaffected', async (t) => {
    const srv = await startServer({ t, args: ['--max-outbuf', '4096', '--stuck-timeout', String(STUCK), ...OPEN] })
    // slow1 never reads until the server has destroyed it; slow2 starts reading as soon as the
    // server has decided to close it (to look at what it was sent last).
    const readers = {}
    for (const id of ['slow1', 'slow2']) {
      const r = await rawWs(srv, { name: id })
      r.sendJson({ type: 'ola', peer_id: id })
      const ola = await r.nextJson()
      assert.equal(ola.ok, true, JSON.stringify(ola))
      r.sock.pause() // stop reading: the kernel buffers fill, then the server's queue
      readers[id] = r
    }
    const honest = await HonestSt.create(srv)
    const sender = await connect(srv, { name: 'big-sender' })
    try {
      await sender.ola('big-sender')
      const st0 = await statsOf(srv)
      const rss0 = rssKb(srv)
      let maxRss = rss0
      let maxHeap = st0.heap_bytes
      const sample = async () => {
        maxRss = Math.max(maxRss, rssKb(srv))
        const s = await statsOf(srv)
        maxHeap = Math.max(maxHeap, s.heap_bytes)
        return s
      }
      const closedAt = {}
      const t0 = Date.now()
      sender.ws.on('message', (d) => {
        const m = JSON.parse(d)
        if (m.code === 'peer_not_found' && closedAt[m.to] === undefined) {
          closedAt[m.to] = Date.now() - t0
          if (m.to === 'slow2') readers.slow2.sock.resume()
        }
      })

      // ---- the flood: 2 x 300 signals of 60 kB = 36 MB -----------------------------------
      const sdp = 'x'.repeat(60000)
      const PER = 300
      let sentBytes = 0
      let firstDrop = null
      let lastNoDrop = 0 // the last sample that saw no drop yet
      const drops = []
      let honestDuring = null
      for (let i = 0; i < PER; i++) {
        for (const to of ['slow1', 'slow2']) {
          const msg = JSON.stringify({ type: 'offer', to, payload: { type: 'offer', i, sdp } })
          sender.ws.send(msg)
          sentBytes += msg.length
        }
        if (i % 25 === 24) {
          while (sender.ws.bufferedAmount > 1 << 20) await sleep(5)
          const s = await sample()
          drops.push(s.dropped)
          if (firstDrop === null && s.dropped > st0.dropped) firstDrop = Date.now() - t0
          if (firstDrop === null) lastNoDrop = Date.now() - t0
          if (i === 99) honestDuring = honest.check('during the flood to the slow readers')
        }
      }
      // A ping round trip: the server has handled every signal of the flood.
      await sender.request({ type: 'ping' }, { type: 'pong' }, 10000 * SLOW)
      const floodMs = Date.now() - t0
      await honestDuring
      const st1 = await sample()
      t.diagnostic(`sent ${(sentBytes / 1e6).toFixed(1)} MB in ${floodMs} ms; dropped ${st1.dropped - st0.dropped}; ` +
        `relayed ${st1.relayed - st0.relayed}; first drop at ${firstDrop} ms; VmRSS ${rss0} -> max ${maxRss} kB; ` +
        `heap_bytes ${st0.heap_bytes} -> max ${maxHeap}`)
      assert.ok(firstDrop !== null, 'nothing was dropped')
      // dropped grows while the flood goes on.
      assert.ok(drops.at(-1) > drops.find((d) => d > st0.dropped), `dropped did not grow: ${drops}`)
      assert.ok(st1.dropped - st0.dropped > PER, `dropped ${st1.dropped - st0.dropped} of ${2 * PER}`)
      // Every signal was relayed (into the kernel's buffers and the 4 kB queue) or dropped; the
      // honest check relayed 2 more.
      assert.equal((st1.relayed - st0.relayed) + (st1.dropped - st0.dropped), 2 * PER + 2)
      // Memory: the server buffers at most about max-outbuf plus one message per reader.
      assert.ok(maxHeap - st0.heap_bytes < 1 << 20, `heap_bytes grew from ${st0.heap_bytes} to ${maxHeap}`)
      if (!SANITIZED) {
        assert.ok((maxRss - rss0) * 1024 < sentBytes / 8,
          `VmRSS grew by ${maxRss - rss0} kB while ${(sentBytes / 1e6).toFixed(1)} MB were sent to readers that do not read`)
      }

      // ---- the close: once the queue has stayed full for --stuck-timeout ------------------
      // The server releases the reader's peer ID when it decides to close; a small signal every
      // 100 ms finds out when.
      while (closedAt.slow1 === undefined || closedAt.slow2 === undefined) {
        assert.ok(Date.now() - t0 < floodMs + (STUCK + 3) * 1000 * SLOW,
          `slow readers not closed ${Date.now() - t0} ms after the flood began: ${JSON.stringify(closedAt)}`)
        for (const to of ['slow1', 'slow2']) if (closedAt[to] === undefined) sender.sendJson({ type: 'candidate', to, payload: {} })
        await sleep(100)
        maxRss = Math.max(maxRss, rssKb(srv))
      }
      t.diagnostic(`close decided at ${JSON.stringify(closedAt)} ms (first drop at ${firstDrop} ms)`)
      for (const id of ['slow1', 'slow2']) {
        // Never before the queue has been full for STUCK seconds (the first drop happened after
        // the last sample that saw none).
        assert.ok(closedAt[id] >= lastNoDrop + STUCK * 1000 - 50,
          `${id} closed too early: at ${closedAt[id]} ms, first drop after ${lastNoDrop} ms (seen at ${firstDrop} ms)`)
      }
      // The server then destroys slow1 within the linger time even though it never reads.
      const st2 = await waitStats(srv, (s) => s.connections === st0.connections - 2,
        { timeoutMs: (LINGER + 2) * 1000 * SLOW, what: 'both slow readers destroyed' })
      assert.ok(st2.timeouts >= st0.timeouts + 2, `timeouts ${st0.timeouts} -> ${st2.timeouts}`)
      assert.equal(st2.identified_peers, st0.identified_peers - 2)
      // slow1 starts reading only now: it gets what the kernel held, then the end of the stream.
      readers.slow1.sock.resume()
      await readers.slow1.waitEnd(5000 * SLOW)
      await readers.slow2.waitEnd(5000 * SLOW)
      assert.ok(readers.slow1.frames.length > 0)
      if (!SANITIZED) {
        assert.ok((maxRss - rss0) * 1024 < sentBytes / 8, `VmRSS grew by ${maxRss - rss0} kB`)
      }

      // ---- honest peers, and the sender, are served normally -------------------------------
      await honest.check('after the slow readers were closed')
      assert.deepEqual(await sender.request({ type: 'ping' }, { type: 'pong' }), { type: 'pong' })

      // What slow2 read after it resumed (during the linger): the docs promise bye "too_slow"
      // and close 1008; the stream must at least stay well-formed WebSocket.
      // (Regression: the stuck-timeout close used to drop the unsent rest of a partly written
      // frame and queue the bye and the close after it, so they ended up inside the payload of a
      // truncated frame.)
      await t.test('the slow reader that resumes during the linger gets a well-formed stream ending with bye too_slow and close 1008', () => {
        const r = readers.slow2
        const tailFrames = r.frames.slice(-2).map((f) => ({ opcode: f.opcode, text: f.text, code: f.code }))
        assert.equal(r.buf.length, 0,
          `the stream ended inside a frame: ${r.buf.length} bytes of an incomplete frame left (header of ` +
          `${r.buf.length >= 4 ? r.buf.readUInt16BE(2) : '?'} bytes), starting ${JSON.stringify(r.buf.subarray(0, 64).toString('latin1'))}; ` +
          `the bye is ${r.buf.includes('{"type":"bye","reason":"too_slow"}') ? '' : 'not '}inside its payload; last complete frames: ${JSON.stringify(tailFrames.map((f) => ({ ...f, text: f.text?.slice(0, 60) })))}`)
        assert.deepEqual(tailFrames, [
          { opcode: OP.TEXT, text: '{"type":"bye","reason":"too_slow"}', code: undefined },
          { opcode: OP.CLOSE, text: undefined, code: 1008 }
        ])
      })
    } finally {
      for (const r of Object.values(readers)) r.destroy()
      await closeAll(sender, honest.clients)
    }
  })
})
