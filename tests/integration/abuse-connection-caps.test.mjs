// Abuse: connection caps. The global cap (--max-connections: HTTP 503 with Retry-After, closed
// at once), the per-address cap (--max-per-ip: other addresses still served; client sockets are
// bound to 127.0.0.x), and X-Forwarded-For, believed only from a --trusted-proxy. Honest peers
// (connected before the abuse) are served normally while the caps are hit.

import assert from 'node:assert/strict'
import net from 'node:net'
import { describe, test } from 'node:test'
import { HOST, closeAll, randomPeerId, sleep, startServer } from './helpers.mjs'
import {
  HonestSt, connectFrom, httpGetFrom, rawFrom, statsOf, tryUpgrade, waitFor, waitStats
} from './abuse-helpers.mjs'

/** Asserts that an upgrade attempt was refused with `status` and that the server closed it. */
async function assertRefused (srv, status, opts, what) {
  const r = await tryUpgrade(srv, opts)
  assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status} ${JSON.stringify(r.text ?? '')}`)
  if (r.raw) r.raw.destroy()
  await r.closed
  return r
}

/** The ws client's view of a refused upgrade: the connection fails with the status. */
async function assertWsRefused (srv, opts, status) {
  await assert.rejects(connectFrom(srv, opts), new RegExp(`Unexpected server response: ${status}`))
}

describe('connection caps', () => {
  test('--max-connections 20: the 21st connection gets 503 with Retry-After and is closed; the 20 are served', async (t) => {
    const srv = await startServer({ t, args: ['--max-connections', '20'] })
    const honest = await HonestSt.create(srv)
    const fillers = []
    try {
      const st0 = await statsOf(srv)
      assert.equal(st0.max_connections, 20)
      for (let i = 0; i < 18; i++) fillers.push(await rawFrom(srv, { name: `filler${i}` }))
      // 2 honest + 18 fillers = 20: the next connection is over the cap, whatever it asks for.
      const r = await assertRefused(srv, 503, {}, '21st connection')
      assert.equal(r.headers['retry-after'], '30')
      assert.equal(await r.closed, 'server at capacity\r\n')
      await assertWsRefused(srv, {}, 503)
      await assertRefused(srv, 503, { localAddress: '127.0.0.9' }, '21st connection from another address')
      // The connections inside the cap are served normally meanwhile.
      await honest.check('with the server at its connection cap')
      for (const f of fillers.slice(0, 3)) await f.roundTrip()

      // One leaves: one more is accepted, and the cap holds again.
      fillers.shift().destroy()
      const late = await waitFor(async () => {
        const u = await tryUpgrade(srv, { name: 'late' })
        return u.status === 101 ? u.raw : null
      }, { what: 'a slot freed by a departure' })
      fillers.push(late)
      await late.roundTrip()
      await assertRefused(srv, 503, {}, 'connection over the cap again')
      fillers.shift().destroy()
      fillers.shift().destroy()
      const st1 = await waitStats(srv, (s) => s.connections <= 19, { what: 'room for the stats request' })
      assert.ok(st1.refused >= 4, `refused ${st1.refused}`)
      await honest.check('after the cap was hit')
    } finally {
      for (const f of fillers) f.destroy()
      await closeAll(honest.clients)
    }
  })

  test('--max-per-ip 5: the 6th connection from 127.0.0.1 is refused, other addresses are served', async (t) => {
    const srv = await startServer({ t, args: ['--max-per-ip', '5'] })
    const honest = await HonestSt.create(srv, { addrs: ['127.0.0.2', '127.0.0.3'] })
    const fillers = []
    try {
      for (let i = 0; i < 5; i++) fillers.push(await rawFrom(srv, { name: `local${i}` }))
      await assertRefused(srv, 503, {}, '6th connection from 127.0.0.1')
      await assertWsRefused(srv, { localAddress: HOST }, 503)
      // Without --trusted-proxy, X-Forwarded-For is ignored: no way around the cap.
      for (let i = 0; i < 3; i++) {
        await assertRefused(srv, 503, { headers: { 'X-Forwarded-For': `10.0.0.${i + 1}` } },
          'X-Forwarded-For from an untrusted peer')
      }
      // Another address is served, while 127.0.0.1 is at its cap.
      const other = await connectFrom(srv, { localAddress: '127.0.0.2', name: 'other-addr' })
      await other.ola(randomPeerId('other'))
      assert.deepEqual(await other.request({ type: 'ping' }), { type: 'pong' })
      await honest.check('with 127.0.0.1 at its per-address cap')
      const st = await statsOf(srv)
      assert.ok(st.refused >= 5, `refused ${st.refused}`)
      // 127.0.0.2 has its own cap of 5: the honest A and `other` plus 3 more, then refused.
      const more = []
      for (let i = 0; i < 3; i++) more.push(await rawFrom(srv, { localAddress: '127.0.0.2', name: `two${i}` }))
      await assertRefused(srv, 503, { localAddress: '127.0.0.2' }, '6th connection from 127.0.0.2')
      for (const m of more) m.destroy()
      // A departure from 127.0.0.1 makes room for one more from there.
      fillers.shift().destroy()
      const again = await waitFor(async () => {
        const u = await tryUpgrade(srv, { name: 'again' })
        return u.status === 101 ? u.raw : null
      }, { what: 'a slot for 127.0.0.1 after a departure' })
      fillers.push(again)
      await again.roundTrip()
      await assertRefused(srv, 503, {}, '6th connection from 127.0.0.1 again')
      await honest.check('after the per-address cap was hit')
      await other.close()
    } finally {
      for (const f of fillers) f.destroy()
      await closeAll(honest.clients)
    }
  })

  test('--trusted-proxy 127.0.0.1: X-Forwarded-For spreads the per-address count; untrusted peers cannot use it', async (t) => {
    const srv = await startServer({ t, args: ['--max-per-ip', '5', '--trusted-proxy', '127.0.0.1'] })
    const honest = await HonestSt.create(srv, { addrs: ['127.0.0.2', '127.0.0.3'] })
    const open = []
    try {
      // Through the proxy: 5 clients of 10.0.0.1 (the proxy appends the last address).
      for (let i = 0; i < 5; i++) {
        open.push(await rawFrom(srv, { name: `fwd-a${i}`, headers: { 'X-Forwarded-For': `192.0.2.${i}, 10.0.0.1` } }))
      }
      // A 6th client of 10.0.0.1 is refused (after the head is read: 429).
      const r = await assertRefused(srv, 429, { headers: { 'X-Forwarded-For': '10.0.0.1' } }, '6th client of 10.0.0.1 via the proxy')
      assert.match(await r.closed, /too many connections from your address/)
      // Whatever the client wrote first does not matter: only the last address counts.
      await assertRefused(srv, 429, { headers: { 'X-Forwarded-For': '10.0.0.7, 10.0.0.1' } }, 'spoofed first address')
      // Other forwarded addresses have their own count, although all come from 127.0.0.1.
      for (let i = 0; i < 5; i++) {
        open.push(await rawFrom(srv, { name: `fwd-b${i}`, headers: { 'X-Forwarded-For': '10.0.0.1, 10.0.0.2' } }))
      }
      await assertRefused(srv, 429, { headers: { 'X-Forwarded-For': '10.0.0.2' } }, '6th client of 10.0.0.2 via the proxy')
      // The proxy's own address does not fill up with its clients' connections: 5 direct ones
      // still fit.
      const direct = []
      for (let i = 0; i < 5; i++) direct.push(await rawFrom(srv, { name: `direct${i}` }))
      open.push(...direct)
      // A trusted proxy's handshakes are not capped at accept (its clients all arrive through
      // it); its own, non-forwarded connections are held to the cap once the request is read.
      await assertRefused(srv, 429, {}, '6th direct connection from 127.0.0.1')
      // The forwarded connections work.
      for (const c of [open[0], open[5], open[10]]) await c.roundTrip()
      // 127.0.0.2 is not a trusted proxy: its X-Forwarded-For is ignored.
      const untrusted = []
      for (let i = 0; i < 4; i++) {
        untrusted.push(await rawFrom(srv, { localAddress: '127.0.0.2', name: `untrusted${i}`, headers: { 'X-Forwarded-For': `10.1.0.${i}` } }))
      }
      // With the honest A, 127.0.0.2 is at 5.
      await assertRefused(srv, 503, { localAddress: '127.0.0.2', headers: { 'X-Forwarded-For': '10.1.0.99' } },
        'X-Forwarded-For from an untrusted peer')
      await honest.check('with several addresses at their caps')
      const st = await statsOf(srv)
      assert.equal(st.connections, 2 + 15 + 4 + 1, JSON.stringify(st))
      for (const u of untrusted) u.destroy()
      // (The accept-time check counts the proxy's own address, so make room there first.)
      for (const d of direct) d.destroy()
      // A forwarded client that leaves frees its forwarded address's slot.
      open.shift().destroy()
      const back = await waitFor(async () => {
        const u = await tryUpgrade(srv, { headers: { 'X-Forwarded-For': '10.0.0.1' }, name: 'fwd-back' })
        return u.status === 101 ? u.raw : null
      }, { what: 'a slot for 10.0.0.1 after a departure' })
      open.push(back)
      await back.roundTrip()
      await honest.check('after the forwarded caps were hit')
      await sleep(10)
    } finally {
      for (const c of open) c.destroy()
      await closeAll(honest.clients)
    }
  })

  test('--max-per-ip 5: every way a connection can end gives its slot back (no per-address leak)', async (t) => {
    const srv = await startServer({ t, args: ['--max-per-ip', '5', '--handshake-timeout', '1', '--min-interval', '0'] })
    const honest = await HonestSt.create(srv, { addrs: ['127.0.0.2', '127.0.0.3'] })
    try {
      const st0 = await statsOf(srv)
      // A handshake that never completes (closed by the handshake timeout), meanwhile.
      const slow = net.connect(srv.port, HOST)
      slow.on('error', () => {})
      slow.on('connect', () => slow.write('GET / HTTP/1.1\r\nHost: x\r\n'))
      const slowClosed = new Promise((resolve) => slow.on('close', resolve))
      const ends = {
        'normal close': async (i) => {
          const c = await connectFrom(srv, { name: `n${i}` })
          await c.ola(randomPeerId('n'))
          await c.request({ type: 'announce', info_hash: 'ab'.repeat(20), event: 'started', left: 1 }, { type: 'announce' })
          await c.close()
        },
        'TCP reset': async (i) => {
          const c = await connectFrom(srv, { name: `r${i}` })
          await c.ola(randomPeerId('r'))
          c.ws._socket.resetAndDestroy()
        },
        'protocol error': async () => {
          const r = await rawFrom(srv, { name: 'unmasked' })
          r.sendFrame({ opcode: 1, payload: 'x', mask: false })
          assert.equal((await r.expectClose()).code, 1002)
        },
        'refused upgrade': async () => {
          const r = await tryUpgrade(srv, { headers: { 'Sec-WebSocket-Version': '8' } })
          assert.equal(r.status, 426)
          await r.closed
        },
        'WebTorrent peer gone': async (i) => {
          const c = await connectFrom(srv, { name: `w${i}` })
          c.sendJson({ action: 'announce', info_hash: 'a'.repeat(20), peer_id: `-LK0001-${String(i).padStart(12, '0')}`, event: 'started', left: 1 })
          await c.next()
          c.terminate()
        },
        'half a frame': async () => {
          const r = await rawFrom(srv, { name: 'half' })
          r.write(Buffer.from([0x81, 0xfe, 0x10]))
          r.destroy()
        },
        'client close frame': async () => {
          const r = await rawFrom(srv, { name: 'closer' })
          r.sendFrame({ opcode: 8, payload: Buffer.from([0x0f, 0xa0]) })
          assert.equal((await r.expectClose()).code, 4000)
        },
        'plain HTTP': async () => {
          assert.equal((await httpGetFrom(srv, '/health', { localAddress: HOST })).status, 200)
        }
      }
      for (let round = 0; round < 3; round++) {
        for (const [what, end] of Object.entries(ends)) {
          await end(round).catch((err) => { throw new Error(`${what}: ${err.message}`) })
        }
      }
      await slowClosed
      // Everything is gone: 127.0.0.1 has its 5 slots again, no more.
      const st1 = await waitStats(srv, (s) => s.connections === st0.connections, { what: 'all churned connections gone' })
      assert.equal(st1.identified_peers, 2)
      assert.ok(st1.heap_bytes - st0.heap_bytes < 64 * 1024, `heap_bytes ${st0.heap_bytes} -> ${st1.heap_bytes}`)
      const five = []
      for (let i = 0; i < 5; i++) five.push(await rawFrom(srv, { name: `again${i}` }))
      await assertRefused(srv, 503, {}, '6th connection from 127.0.0.1 after the churn')
      for (const f of five) f.destroy()
      await honest.check('after the churn')
    } finally {
      await closeAll(honest.clients)
    }
  })

  test('--trusted-proxy: a client-written X-Forwarded-For line before the proxy\'s own cannot choose the counted address', async (t) => {
    const srv = await startServer({ t, args: ['--max-per-ip', '5', '--trusted-proxy', '127.0.0.1'] })
    const open = []
    try {
      // What the proxy forwards: the client's own X-Forwarded-For line (any value it likes),
      // then the line the proxy adds with the address it saw. RFC 9110 section 5.3: the two
      // lines are one list, "10.66.0.i, 10.0.0.1"; its last address is the proxy's word.
      const request = (i) => `GET / HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${Buffer.from(`key-${String(i).padStart(12, '0')}`).toString('base64')}\r\n` +
        `Sec-WebSocket-Version: 13\r\nX-Forwarded-For: 10.66.0.${i}\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n`
      const statuses = []
      for (let i = 0; i < 6; i++) {
        const r = await tryUpgrade(srv, { request: request(i) })
        statuses.push(r.status)
        if (r.raw) open.push(r.raw)
      }
      assert.deepEqual(statuses, [101, 101, 101, 101, 101, 429],
        'six clients the proxy saw at 10.0.0.1 (each with a different forged first line): the sixth must be refused')
    } finally {
      for (const c of open) c.destroy()
    }
  })
})
