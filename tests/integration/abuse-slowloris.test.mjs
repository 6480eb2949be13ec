// Abuse: slow and oversized request heads. --handshake-timeout 2 closes connections that trickle
// their upgrade request; a head above 8 KiB (HTTP_MAX_HEAD_BYTES) gets 431, as does one with more
// than 64 header lines (HTTP_MAX_HEADERS). Honest peers connect and work meanwhile.

import assert from 'node:assert/strict'
import net from 'node:net'
import { describe, test } from 'node:test'
import { HOST, SLOW, closeAll, sleep, startServer } from './helpers.mjs'
import { HonestSt, httpGetFrom, statsOf, tryUpgrade, upgradeRequest } from './abuse-helpers.mjs'

const HANDSHAKE = 2

/**
 * Opens a TCP connection and writes `bytes` one chunk at a time, every `everyMs`, until the server
 * closes (or, with stopOnAnswer, until a whole answer head has arrived). Resolves with
 * { ms (from connect to close), received, wrote }.
 */
function trickle (srv, bytes, { everyMs = 500, chunk = 1, stopOnAnswer = false } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(srv.port, HOST)
    let t0 = 0
    let off = 0
    let received = ''
    let timer = null
    sock.on('error', () => {})
    sock.on('data', (d) => {
      received += d.toString('latin1')
      if (stopOnAnswer && received.includes('\r\n\r\n')) sock.destroy()
    })
    sock.on('connect', () => {
      t0 = Date.now()
      const step = () => {
        if (off < bytes.length) {
          sock.write(bytes.subarray(off, off + chunk))
          off += chunk
        }
        timer = setTimeout(step, everyMs)
      }
      step()
    })
    sock.on('close', () => {
      clearTimeout(timer)
      resolve({ ms: Date.now() - t0, received, wrote: off, sock })
    })
  })
}

/** Sends a raw request head at once; resolves with the status and the whole answer. */
async function sendHead (srv, head) {
  const r = await tryUpgrade(srv, { request: head })
  if (r.raw) {
    r.raw.destroy()
    return { status: r.status, text: '' }
  }
  return { status: r.status, text: await r.closed }
}

describe('slowloris and request heads', () => {
  test('--handshake-timeout 2: heads trickled one byte per 500 ms are closed within 2-4 s; honest peers connect and work meanwhile', async (t) => {
    const srv = await startServer({ t, args: ['--handshake-timeout', String(HANDSHAKE)] })
    const honest = await HonestSt.create(srv)
    let late
    try {
      const head = Buffer.from(upgradeRequest(srv))
      const st0 = await statsOf(srv)
      // 20 slow clients at once.
      const slow = Array.from({ length: 20 }, () => trickle(srv, head))
      // Meanwhile: a new honest pair connects, and the old one relays.
      await sleep(700)
      late = await HonestSt.create(srv, { prefix: 'late' })
      await late.check('new peers during the slowloris')
      await honest.check('during the slowloris')
      const results = await Promise.all(slow)
      for (const r of results) {
        assert.ok(r.wrote < head.length, `a slow client wrote its whole head (${r.wrote} bytes)`)
        assert.equal(r.received, '', 'a timed-out handshake is closed without an answer')
        // Never before the limit; at most the limit plus a second of clock granularity and the
        // once-a-second housekeeping.
        assert.ok(r.ms >= HANDSHAKE * 1000 - 50, `closed after only ${r.ms} ms (--handshake-timeout ${HANDSHAKE})`)
        assert.ok(r.ms <= (HANDSHAKE + 2) * 1000 * SLOW, `closed after ${r.ms} ms (--handshake-timeout ${HANDSHAKE})`)
      }
      t.diagnostic(`slow clients closed after ${Math.min(...results.map((r) => r.ms))}-${Math.max(...results.map((r) => r.ms))} ms`)
      const st1 = await statsOf(srv)
      assert.ok(st1.timeouts >= st0.timeouts + 20, `timeouts ${st0.timeouts} -> ${st1.timeouts}`)
      assert.equal(st1.connections, 4 + 1, JSON.stringify(st1))
      await honest.check('after the slowloris')
    } finally {
      await closeAll(honest.clients, late ? late.clients : [])
    }
  })

  test('request heads: above 8 KiB gets 431, more than 64 header lines gets 431; the limits themselves are accepted', async (t) => {
    const srv = await startServer({ t })
    const honest = await HonestSt.create(srv)
    try {
      // A head of exactly 8192 bytes is accepted, 8193 is not.
      const sized = (total) => {
        const base = upgradeRequest(srv, { headers: { 'X-Pad': '' } })
        const pad = total - base.length
        return upgradeRequest(srv, { headers: { 'X-Pad': 'p'.repeat(pad) } })
      }
      const exact = sized(8192)
      assert.equal(exact.length, 8192)
      assert.equal((await sendHead(srv, exact)).status, 101, 'a head of exactly 8 KiB')
      const over = await sendHead(srv, sized(8193))
      assert.equal(over.status, 431, `8193-byte head: ${over.status}`)
      assert.match(over.text, /request head too large/)
      const huge = await sendHead(srv, sized(64 * 1024))
      assert.equal(huge.status, 431)
      // A big head trickled in pieces is cut at 8 KiB too, without waiting for its end.
      const r = await trickle(srv, Buffer.from(sized(20000)), { everyMs: 5, chunk: 1000, stopOnAnswer: true })
      assert.match(r.received, /^HTTP\/1\.1 431 /)
      assert.ok(r.wrote <= 10000, `the server read ${r.wrote} bytes before refusing`)

      // 64 header lines are accepted, 65 are not (5 of them are the upgrade's own).
      const lines = (n) => {
        const extra = {}
        for (let i = 0; i < n - 5; i++) extra[`X-H${i}`] = 'v'
        return upgradeRequest(srv, { headers: extra })
      }
      assert.equal((await sendHead(srv, lines(64))).status, 101, '64 header lines')
      const tooMany = await sendHead(srv, lines(65))
      assert.equal(tooMany.status, 431, `65 header lines: ${tooMany.status} ${tooMany.text}`)
      assert.equal((await sendHead(srv, lines(1000))).status, 431)
      // Plain HTTP is held to the same limits.
      const health = await sendHead(srv, `GET /health HTTP/1.1\r\nHost: x\r\n${'X-A: b\r\n'.repeat(80)}\r\n`)
      assert.equal(health.status, 431)
      assert.equal((await httpGetFrom(srv, '/health')).status, 200)
      await honest.check('after oversized heads')
    } finally {
      await closeAll(honest.clients)
    }
  })

  // Regression: timestamps are whole seconds, and timeouts used to fire when `now - then >= T`,
  // so up to 1 s early: this handshake was closed about 1.1 s after the connect.
  test('--handshake-timeout 2 does not close a handshake that completes after 1.5 s', async (t) => {
    const srv = await startServer({ t, args: ['--handshake-timeout', String(HANDSHAKE)] })
    // A busy server: another peer pings every 20 ms, so housekeeping runs as soon as it is due.
    const busy = await HonestSt.create(srv, { prefix: 'busy' })
    const timer = setInterval(() => busy.a.sendJson({ type: 'ping' }), 20)
    t.after(() => { clearInterval(timer); return busy.close() })
    // Find where the server's seconds begin (uptime_seconds ticks over), then connect 100 ms
    // before one begins, as any client may happen to.
    const first = (await statsOf(srv)).uptime_seconds
    let boundary = null
    while (boundary === null) {
      const before = Date.now()
      if ((await statsOf(srv)).uptime_seconds !== first) boundary = before
    }
    const connectAt = boundary + Math.ceil((Date.now() - boundary + 200) / 1000) * 1000 - 100
    await sleep(connectAt - Date.now())
    const head = Buffer.from(upgradeRequest(srv))
    // The head in 3 parts: at 0, 0.75 s and 1.5 s after the connect.
    const part = Math.ceil(head.length / 3)
    const r = await trickle(srv, head, { everyMs: 750, chunk: part, stopOnAnswer: true })
    assert.match(r.received, /^HTTP\/1\.1 101 /,
      `the handshake completed 1.5 s after the connect (limit ${HANDSHAKE} s) but the server closed it after ${r.ms} ms ` +
      `having read ${r.wrote} of ${head.length} bytes`)
  })
})
