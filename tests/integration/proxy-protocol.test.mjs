// The PROXY protocol (HAProxy's, versions 1 and 2) from a --trusted-proxy address, and the Host
// rule. Sockets bound to 127.0.0.1 play the load balancer (the trusted address); the clients it
// speaks for are named in the headers. The per-address cap (--max-per-ip 2) shows which address
// a connection is counted as; the debug log names it too. Headers from other addresses, malformed
// headers and headers that never end close the connection, counted in /stats.json.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { describe, test } from 'node:test'
import { HOST, SLOW, rawHttp, startServer } from './helpers.mjs'
import { statsOf, tryUpgrade, waitFor, waitStats } from './abuse-helpers.mjs'

/** The v2 signature. */
const SIG2 = Buffer.from([0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A])

/** A v1 header for a TCP4 client at addr:port. */
const v1 = (addr, port = 40000) => Buffer.from(`PROXY TCP4 ${addr} 127.0.0.1 ${port} 8000\r\n`)

/** A v2 PROXY header for a TCP client at addr (IPv4 or IPv6), followed by tlvs (a Buffer). */
function v2 (addr, port = 40000, tlvs = Buffer.alloc(0)) {
  const six = net.isIPv6(addr)
  const ip = (a) => six ? ipv6Bytes(a) : Buffer.from(a.split('.').map(Number))
  const ports = Buffer.alloc(4)
  ports.writeUInt16BE(port, 0)
  ports.writeUInt16BE(8000, 2)
  const body = Buffer.concat([ip(addr), ip(six ? '::1' : '127.0.0.1'), ports, tlvs])
  const head = Buffer.from([0x21, six ? 0x21 : 0x11, body.length >> 8, body.length & 0xff])
  return Buffer.concat([SIG2, head, body])
}

/** A v2 LOCAL header (what a load balancer sends on its health checks). */
const v2Local = () => Buffer.concat([SIG2, Buffer.from([0x20, 0x00, 0x00, 0x00])])

/** The 16 bytes of an IPv6 address written with at most one "::". */
function ipv6Bytes (a) {
  const [head, tail] = a.includes('::') ? a.split('::') : [a, null]
  const groups = (s) => (s ? s.split(':') : []).map((g) => parseInt(g, 16))
  const h = groups(head)
  const t = tail === null ? [] : groups(tail)
  const all = [...h, ...Array(8 - h.length - t.length).fill(0), ...t]
  const b = Buffer.alloc(16)
  all.forEach((g, i) => b.writeUInt16BE(g, 2 * i))
  return b
}

/** CPU time the server process has used so far, in milliseconds (user + system). */
function cpuMs (srv) {
  // Fields 14 and 15 of /proc/<pid>/stat, after the parenthesised command name, in clock ticks
  // (100 per second on Linux).
  const stat = readFileSync(`/proc/${srv.child.pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

/** Asserts that the server closed the connection without an answer. */
async function assertClosedSilently (r, what) {
  assert.equal(r.status, null, `${what}: expected no answer, got ${r.status} ${JSON.stringify(r.text ?? '')}`)
  assert.ok(r.closedEarly, `${what}: the connection stayed open`)
  assert.equal(r.text, '', `${what}: bytes came back`)
}

/** Upgrades with a header in front and asserts 101; returns the RawWs. */
async function openVia (srv, prefix, opts = {}) {
  const r = await tryUpgrade(srv, { prefix, ...opts })
  assert.equal(r.status, 101, `${opts.name ?? 'proxied'}: expected 101, got ${r.status} ${JSON.stringify(r.text ?? '')}`)
  return r.raw
}

describe('PROXY protocol from a trusted proxy', () => {
  test('v1 and v2 headers make the connection count as the client they name (--max-per-ip)', async (t) => {
    const srv = await startServer({ t, args: ['--max-per-ip', '2', '--trusted-proxy', '127.0.0.1', '--log-level', 'debug'] })
    const open = []
    try {
      // Two connections of 198.51.100.7 (one v1, one v2) fill its cap...
      open.push(await openVia(srv, v1('198.51.100.7'), { name: 'v1 client A' }))
      open.push(await openVia(srv, v2('198.51.100.7', 40001), { name: 'v2 client A' }))
      for (const c of open) await c.roundTrip()
      // ...so a third is refused as a direct one would be at accept: 503, closed.
      const third = await tryUpgrade(srv, { prefix: v1('198.51.100.7', 40002), name: 'third of A' })
      assert.equal(third.status, 503)
      assert.match(await third.closed, /too many connections from your address/)
      const thirdV2 = await tryUpgrade(srv, { prefix: v2('198.51.100.7', 40003), name: 'third of A (v2)' })
      assert.equal(thirdV2.status, 503)
      await thirdV2.closed
      // Other clients are served, IPv4 and IPv6, although every connection comes from 127.0.0.1.
      open.push(await openVia(srv, v1('198.51.100.8'), { name: 'client B' }))
      open.push(await openVia(srv, v2('2001:db8::7'), { name: 'client C' }))
      open.push(await openVia(srv, v2('2001:db8::7', 40001), { name: 'client C again' }))
      const overC = await tryUpgrade(srv, { prefix: v2('2001:db8::7', 40002) })
      assert.equal(overC.status, 503)
      await overC.closed
      // The proxy's own address is not filled by its clients: two direct connections still fit.
      open.push(await openVia(srv, null, { name: 'direct 1' }))
      open.push(await openVia(srv, null, { name: 'direct 2' }))
      for (const c of open) await c.roundTrip()
      // A client that leaves frees its slot.
      open.shift().destroy()
      const back = await waitFor(async () => {
        const u = await tryUpgrade(srv, { prefix: v2('198.51.100.7', 40009), name: 'A back' })
        return u.status === 101 ? u.raw : null
      }, { what: 'a slot for 198.51.100.7 after a departure' })
      open.push(back)
      await back.roundTrip()
      const st = await statsOf(srv)
      assert.ok(st.proxy_headers >= 9, JSON.stringify(st))
      assert.ok(st.refused >= 3, JSON.stringify(st))
      assert.equal(st.proxy_refused_malformed, 0)
      assert.equal(st.proxy_refused_untrusted, 0)
      // The log names the client, not the proxy.
      assert.match(srv.stderr, /connection from proxy 127\.0\.0\.1 is for client 198\.51\.100\.7 port 40000 \(PROXY v1\)/)
      assert.match(srv.stderr, /is for client 2001:db8::7 port 40001 \(PROXY v2\)/)
    } finally {
      for (const c of open) c.destroy()
    }
  })

  test('a header trickled one byte at a time works; v2 TLVs are skipped', async (t) => {
    const srv = await startServer({ t, args: ['--max-per-ip', '1', '--trusted-proxy', '127.0.0.1'] })
    const open = []
    try {
      open.push(await openVia(srv, v1('203.0.113.5'), { trickleMs: 5, name: 'v1 trickled' }))
      const tlvs = Buffer.concat([Buffer.from([0x02, 0x00, 0x0b]), Buffer.from('tracker.exa'),
        Buffer.from([0x04, 0x00, 0x02, 0, 0])])
      open.push(await openVia(srv, v2('203.0.113.6', 40000, tlvs), { trickleMs: 5, name: 'v2 trickled' }))
      for (const c of open) await c.roundTrip()
      // Both were counted as their clients: each is now at --max-per-ip 1.
      for (const addr of ['203.0.113.5', '203.0.113.6']) {
        const r = await tryUpgrade(srv, { prefix: v2(addr, 41000) })
        assert.equal(r.status, 503, addr)
        await r.closed
      }
      const st = await statsOf(srv)
      assert.equal(st.proxy_headers, 4)
    } finally {
      for (const c of open) c.destroy()
    }
  })

  test('without a header a trusted connection is served as before; v2 LOCAL and v1 UNKNOWN keep the socket address', async (t) => {
    const srv = await startServer({ t, args: ['--max-per-ip', '2', '--trusted-proxy', '127.0.0.1'] })
    const open = []
    try {
      // No header: X-Forwarded-For still applies (an L7 proxy).
      open.push(await openVia(srv, null, { headers: { 'X-Forwarded-For': '10.0.0.1' }, name: 'xff 1' }))
      open.push(await openVia(srv, null, { headers: { 'X-Forwarded-For': '10.0.0.1' }, name: 'xff 2' }))
      const r = await tryUpgrade(srv, { headers: { 'X-Forwarded-For': '10.0.0.1' } })
      assert.equal(r.status, 429)
      await r.closed
      // A health check: LOCAL, then a plain GET.
      const health = await new Promise((resolve, reject) => {
        const sock = net.connect({ port: srv.port, host: HOST })
        let got = ''
        sock.on('connect', () => sock.write(Buffer.concat([v2Local(), Buffer.from(`GET /health HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)])))
        sock.on('data', (d) => { got += d.toString('latin1') })
        sock.on('close', () => resolve(got))
        sock.on('error', reject)
      })
      assert.match(health, /^HTTP\/1\.1 200 OK\r\n/)
      // After a PROXY header the bytes are the client's: its X-Forwarded-For is ignored, and
      // UNKNOWN keeps the proxy's address, now held to the cap (two direct connections fill it).
      open.push(await openVia(srv, Buffer.from('PROXY UNKNOWN\r\n'), { headers: { 'X-Forwarded-For': '10.0.0.9' }, name: 'unknown 1' }))
      open.push(await openVia(srv, Buffer.from('PROXY UNKNOWN\r\n'), { name: 'unknown 2' }))
      const over = await tryUpgrade(srv, { prefix: Buffer.from('PROXY UNKNOWN\r\n') })
      assert.equal(over.status, 503)
      await over.closed
      for (const c of open) await c.roundTrip()
      const st = await statsOf(srv)
      assert.equal(st.proxy_kept_address, 4)
      assert.equal(st.proxy_headers, 0)
    } finally {
      for (const c of open) c.destroy()
    }
  })
})

describe('PROXY headers that close the connection', () => {
  test('from an address not in --trusted-proxy', async (t) => {
    const srv = await startServer({ t, args: ['--trusted-proxy', '127.0.0.1'] })
    for (const [what, prefix] of [['v1', v1('198.51.100.7')], ['v2', v2('198.51.100.7')]]) {
      const r = await tryUpgrade(srv, { localAddress: '127.0.0.2', prefix, name: `untrusted ${what}` })
      await assertClosedSilently(r, `untrusted ${what}`)
    }
    // A second header after the one the proxy sent: a client posing as the proxy.
    const twice = await tryUpgrade(srv, { prefix: Buffer.concat([v1('198.51.100.7'), v1('10.9.9.9')]), name: 'second header' })
    await assertClosedSilently(twice, 'second header')
    const st = await statsOf(srv)
    assert.equal(st.proxy_refused_untrusted, 3)
    assert.equal(st.proxy_headers, 1)
  })

  test('malformed headers from the trusted proxy', async (t) => {
    const srv = await startServer({ t, args: ['--trusted-proxy', '127.0.0.1'] })
    const bad = {
      'port out of range': Buffer.from('PROXY TCP4 198.51.100.7 127.0.0.1 65536 8000\r\n'),
      'bad address': Buffer.from('PROXY TCP4 198.51.100.256 127.0.0.1 1 8000\r\n'),
      'leading zero': Buffer.from('PROXY TCP4 198.51.100.07 127.0.0.1 1 8000\r\n'),
      'IPv6 in TCP4': Buffer.from('PROXY TCP4 ::1 127.0.0.1 1 8000\r\n'),
      'bare LF': Buffer.from('PROXY TCP4 198.51.100.7 127.0.0.1 1 8000\n'),
      'v1 line over 107 bytes': Buffer.from('PROXY UNKNOWN ' + 'x'.repeat(100) + '\r\n'),
      'bad v1 signature': Buffer.from('PROXYTCP4 1.2.3.4 1.2.3.4 1 2\r\n'),
      'bad v2 signature': Buffer.concat([SIG2.subarray(0, 7), Buffer.from('QUIX\n'), v2('1.2.3.4').subarray(12)]),
      'v2 version 1': Buffer.concat([SIG2, Buffer.from([0x11, 0x11, 0, 12]), Buffer.alloc(12)]),
      'v2 unknown command': Buffer.concat([SIG2, Buffer.from([0x2f, 0x11, 0, 12]), Buffer.alloc(12)]),
      'v2 unknown family': Buffer.concat([SIG2, Buffer.from([0x21, 0x51, 0, 12]), Buffer.alloc(12)]),
      'v2 address block too short': Buffer.concat([SIG2, Buffer.from([0x21, 0x21, 0, 12]), Buffer.alloc(12)]),
      'v2 length over the cap': Buffer.concat([SIG2, Buffer.from([0x21, 0x11, 0xff, 0xff])])
    }
    for (const [what, prefix] of Object.entries(bad)) {
      await assertClosedSilently(await tryUpgrade(srv, { prefix, name: what }), what)
    }
    const st = await statsOf(srv)
    assert.equal(st.proxy_refused_malformed, Object.keys(bad).length)
    assert.equal(st.proxy_headers, 0)
  })

  test('a header that never ends is closed by the handshake timeout, and does not busy the loop meanwhile', async (t) => {
    const srv = await startServer({ t, args: ['--trusted-proxy', '127.0.0.1', '--handshake-timeout', '1'] })
    const st0 = await statsOf(srv)
    const cpu0 = cpuMs(srv)
    const started = Date.now()
    const closed = await new Promise((resolve, reject) => {
      const sock = net.connect({ port: srv.port, host: HOST })
      let got = ''
      sock.on('connect', () => sock.write('PROXY TCP4 198.51.1'))
      sock.on('data', (d) => { got += d })
      sock.on('close', () => resolve(got))
      sock.on('error', () => {})
      setTimeout(() => reject(new Error('still open after 6 s')), 6000 * SLOW)
    })
    assert.equal(closed, '')
    const elapsed = Date.now() - started
    assert.ok(elapsed >= 900 && elapsed < 4000 * SLOW, `closed after ${elapsed} ms`)
    // The partial header waited in the socket, unread, for a second or two: the server must have
    // slept meanwhile (a level-triggered wait on unread bytes would have spun a core).
    const cpu = cpuMs(srv) - cpu0
    assert.ok(cpu < 300 * SLOW, `the server used ${cpu} ms of CPU while the header waited`)
    await waitStats(srv, (s) => s.timeouts === st0.timeouts + 1, { what: 'the timeout counted' })
  })
})

describe('Host', () => {
  test('an HTTP/1.1 request without exactly one Host gets 400 and no upgrade; HTTP/1.0 may leave it out', async (t) => {
    const srv = await startServer({ t })
    const key = 'dGhlIHNhbXBsZSBub25jZQ=='
    const upgrade = (hostLines) => 'GET / HTTP/1.1\r\n' + hostLines +
      `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`
    for (const [what, hostLines] of [['no Host', ''], ['two Host lines', 'Host: a\r\nHost: b\r\n'],
      ['a Host that is not a host', 'Host: a b\r\n']]) {
      const r = await tryUpgrade(srv, { request: upgrade(hostLines), name: what })
      assert.equal(r.status, 400, `${what}: ${r.status}`)
      assert.equal(r.headers.upgrade, undefined)
      assert.match(await r.closed, /Host/)
    }
    assert.equal((await rawHttp(srv, 'GET /health HTTP/1.1\r\n\r\n')).status, 400)
    assert.equal((await rawHttp(srv, 'GET /health HTTP/1.0\r\n\r\n')).status, 200)
    assert.equal((await tryUpgrade(srv, { request: upgrade(`Host: ${HOST}:${srv.port}\r\n`) })).status, 101)
  })
})
