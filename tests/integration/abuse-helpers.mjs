// Helpers of the abuse-resistance tests (tests/integration/abuse-*.test.mjs), on top of
// helpers.mjs: clients bound to other loopback addresses (127.0.0.x) so per-address caps can be
// tested, /stats.json fetched from an address of its own, raw upgrades that report the HTTP status,
// the "honest peers" every abuse test checks are still served, WebTorrent message builders, a
// seeded PRNG and the server's VmRSS.

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import WebSocket from 'ws'
import {
  Client, HOST, MSG_TIMEOUT_MS, RawWs, SLOW, acceptFor, httpGet, parseHttpHead, randomInfoHash, sleep,
  stats, waitForStats
} from './helpers.mjs'

/** The address /stats.json and /health are fetched from, so they never count against the
 * per-address cap of the addresses the tests fill. */
export const STATS_ADDR = '127.0.0.250'

/** Opens a `ws` client bound to localAddress (default 127.0.0.1). Resolves once open. */
export function connectFrom (srv, { localAddress = HOST, name, headers, path = '/' } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${HOST}:${srv.port}${path}`,
      { headers, localAddress, perMessageDeflate: false })
    const client = new Client(ws, name || `client@${localAddress}`)
    const onError = (err) => reject(new Error(`${client.name}: connect failed: ${err.message}`))
    ws.once('error', onError)
    ws.once('open', () => {
      ws.off('error', onError)
      resolve(client)
    })
  })
}

/** GET path from localAddress (default STATS_ADDR). Returns { status, headers, body }. */
export function httpGetFrom (srv, p, { localAddress = STATS_ADDR, timeoutMs = MSG_TIMEOUT_MS } = {}) {
  return httpGet(srv, p, { localAddress, timeoutMs })
}

/** /stats.json from STATS_ADDR, parsed. */
export function statsOf (srv) {
  return stats(srv, { localAddress: STATS_ADDR })
}

/** Polls /stats.json (from STATS_ADDR) until check(stats) is true; returns the stats. */
export function waitStats (srv, check, { timeoutMs = 5000 * SLOW, what = '' } = {}) {
  return waitForStats(srv, check, { timeoutMs, what, localAddress: STATS_ADDR })
}

/** Asserts the server process is alive and GET /health answers 200. */
export async function assertHealthy (srv, what = '') {
  assert.equal(srv.exit, null, `server exited ${what}: ${JSON.stringify(srv.exit)}; stderr:\n${srv.stderr.slice(-4000)}`)
  const res = await httpGetFrom(srv, '/health')
  assert.equal(res.status, 200, `/health ${what}: ${res.status} ${res.body}`)
}

/** Polls fn() until it returns a truthy value; returns it. */
export async function waitFor (fn, { timeoutMs = 5000 * SLOW, stepMs = 25, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) assert.fail(`${what}: not reached within ${timeoutMs} ms`)
    await sleep(stepMs)
  }
}

/** The server's resident set size in KiB, from /proc/<pid>/status. */
export function rssKb (srv) {
  const status = readFileSync(`/proc/${srv.child.pid}/status`, 'utf8')
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status)
  assert.ok(m, 'no VmRSS in /proc/<pid>/status')
  return Number(m[1])
}

// ------------------------------------------------------------------------------------------------
// Raw TCP: upgrades that report their status, slow writers

/** An upgrade request head. */
export function upgradeRequest (srv, { path = '/', headers = {}, key = randomBytes(16).toString('base64') } = {}) {
  const hdrs = {
    Host: `${HOST}:${srv.port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
    ...headers
  }
  return `GET ${path} HTTP/1.1\r\n` +
    Object.entries(hdrs).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n'
}

/**
 * Sends an upgrade request on a fresh TCP connection from localAddress and resolves with
 * { status, headers, raw } once the response head has arrived. On 101, `raw` is a RawWs (frames
 * parsed as they come, see helpers.mjs); otherwise the socket is left to the server to close and
 * `closed` resolves when it does (`sock` is the socket). `prefix` (a Buffer, e.g. a PROXY protocol
 * header) is sent before the request, in the same write, or one byte at a time `trickleMs` apart.
 */
export function tryUpgrade (srv, { localAddress = HOST, headers = {}, name = `up@${localAddress}`, request, prefix, trickleMs } = {}) {
  let key = randomBytes(16).toString('base64')
  if (request) key = /\r\nSec-WebSocket-Key: *([^\r]*)\r\n/i.exec(request)?.[1] ?? key
  const req = request ?? upgradeRequest(srv, { headers, key })
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port: srv.port, host: HOST, localAddress })
    sock.setNoDelay(true)
    let head = Buffer.alloc(0)
    let done = false
    const closed = new Promise((resolve) => sock.once('close', resolve))
    const timer = setTimeout(() => {
      done = true
      sock.destroy()
      reject(new Error(`${name}: no answer to the upgrade within ${MSG_TIMEOUT_MS} ms; got ` +
        JSON.stringify(head.toString('latin1'))))
    }, MSG_TIMEOUT_MS)
    const onData = (d) => {
      head = Buffer.concat([head, d])
      const end = head.indexOf('\r\n\r\n')
      if (end < 0 || done) return
      done = true
      clearTimeout(timer)
      const res = parseHttpHead(head.subarray(0, end + 4).toString('latin1'))
      if (res.status !== 101) {
        // Keep collecting the body until the server closes.
        let rest = head.subarray(end + 4)
        sock.on('data', (more) => { rest = Buffer.concat([rest, more]) })
        return resolve({ ...res, sock, closed: closed.then(() => rest.toString('latin1')) })
      }
      sock.off('data', onData)
      assert.equal(res.headers['sec-websocket-accept'], acceptFor(key))
      const raw = new RawWs(sock, name)
      raw.response = res
      raw._attach()
      const rest = head.subarray(end + 4)
      if (rest.length) {
        raw.buf = Buffer.from(rest)
        raw._parse()
      }
      resolve({ ...res, raw, sock })
    }
    sock.on('data', onData)
    sock.on('error', () => {})
    sock.on('close', () => {
      if (done) return
      done = true
      clearTimeout(timer)
      const res = parseHttpHead(head.toString('latin1'))
      resolve({ ...res, sock, closed, raw: null, closedEarly: true, text: head.toString('latin1') })
    })
    sock.on('connect', async () => {
      if (prefix && trickleMs) {
        for (const byte of prefix) {
          if (done || sock.destroyed) return
          sock.write(Buffer.from([byte]))
          await sleep(trickleMs)
        }
        sock.write(req)
      } else {
        sock.write(prefix ? Buffer.concat([prefix, Buffer.from(req, 'latin1')]) : req)
      }
    })
  })
}

/** Upgrades from localAddress and asserts 101; returns the RawWs. */
export async function rawFrom (srv, opts = {}) {
  const r = await tryUpgrade(srv, opts)
  assert.equal(r.status, 101, `${opts.name || 'raw'}: upgrade refused with ${r.status}`)
  return r.raw
}

// ------------------------------------------------------------------------------------------------
// Seeded PRNG (mulberry32), so that a failing random input can be reproduced from its seed

export function prng (seed) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: (n) => Math.floor(next() * n),
    bytes (n) {
      const b = Buffer.alloc(n)
      for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256)
      return b
    },
    pick (arr) { return arr[Math.floor(next() * arr.length)] }
  }
}

// ------------------------------------------------------------------------------------------------
// ST and WebTorrent message helpers

export function stAnnounce (client, infoHash, fields = {}) {
  return client.request({ type: 'announce', info_hash: infoHash, ...fields },
    (m) => m && ((m.type === 'announce' && m.info_hash === infoHash) ||
      (m.type === 'error' && m.ref === 'announce')))
}

/** A random 20-byte WebTorrent ID of printable ASCII (easy to read in failures). */
export function wtId (prefix = '-AB0001-') {
  const chars = 'abcdefghijklmnopqrstuvwxyz0123456789'
  let s = prefix
  while (s.length < 20) s += chars[Math.floor(Math.random() * chars.length)]
  return s.slice(0, 20)
}

/** A random 20-byte binary string (code points 0-255). */
export function wtBin () {
  return String.fromCharCode(...randomBytes(20))
}

/** The WebTorrent answer to an announce (or a failure) for infoHash. */
export function isWtReply (infoHash) {
  const f = (m) => m && m.action === 'announce' && m.info_hash === infoHash &&
    (m.complete !== undefined || m['failure reason'] !== undefined)
  f.description = `WebTorrent announce reply for ${JSON.stringify(infoHash)}`
  return f
}

export function wtAnnounce (client, infoHash, peerId, fields = {}) {
  return client.request({ action: 'announce', info_hash: infoHash, peer_id: peerId, ...fields },
    isWtReply(infoHash))
}

// ------------------------------------------------------------------------------------------------
// Honest peers

/**
 * Two identified ST peers (optionally bound to other loopback addresses) that check, on demand,
 * that the server still serves them normally: announces to a fresh swarm answer with the right
 * counts and peer list, an offer and an answer are relayed between them, and both leave again
 * (so repeated checks never accumulate swarms).
 */
export class HonestSt {
  static async create (srv, { addrs = [HOST, HOST], prefix = 'honest', headers, baseSwarm } = {}) {
    const h = new HonestSt()
    h.a = await connectFrom(srv, { localAddress: addrs[0], name: `${prefix}-A`, headers })
    h.b = await connectFrom(srv, { localAddress: addrs[1], name: `${prefix}-B`, headers })
    h.A = `${prefix}A-${randomBytes(4).toString('hex')}`
    h.B = `${prefix}B-${randomBytes(4).toString('hex')}`
    await h.a.ola(h.A)
    await h.b.ola(h.B)
    if (baseSwarm) {
      // Both leechers of a swarm of their own (shedding never closes leechers).
      h.baseSwarm = baseSwarm
      await stAnnounce(h.a, baseSwarm, { event: 'started', left: 1 })
      await stAnnounce(h.b, baseSwarm, { event: 'started', left: 1 })
    }
    return h
  }

  get clients () { return [this.a, this.b] }

  /** Sends an app-level ping on both every periodMs (for servers with a short idle timeout). */
  keepAlive (periodMs = 500) {
    const timer = setInterval(() => {
      for (const c of this.clients) if (c.isOpen) c.sendJson({ type: 'ping', keepalive: true })
    }, periodMs)
    this.stopKeepAlive = () => clearInterval(timer)
    return this.stopKeepAlive
  }

  async check (what = '') {
    const tag = what ? ` (${what})` : ''
    const IH = randomInfoHash()
    const ansA = await this.a.request({ type: 'announce', info_hash: IH, event: 'started', left: 100 },
      { type: 'announce', info_hash: IH })
    assert.equal(ansA.complete, 0, `honest A announce${tag}: ${JSON.stringify(ansA)}`)
    assert.equal(ansA.incomplete, 1, `honest A announce${tag}: ${JSON.stringify(ansA)}`)
    assert.deepEqual(ansA.peers, [])
    const ansB = await this.b.request({ type: 'announce', info_hash: IH, event: 'started', left: 0 },
      { type: 'announce', info_hash: IH })
    assert.equal(ansB.complete, 1, `honest B announce${tag}: ${JSON.stringify(ansB)}`)
    assert.equal(ansB.incomplete, 1, `honest B announce${tag}: ${JSON.stringify(ansB)}`)
    assert.deepEqual(ansB.peers, [{ peer_id: this.A, complete: false }])
    const nonce = randomBytes(6).toString('hex')
    this.a.sendJson({ type: 'offer', to: this.B, info_hash: IH, payload: { type: 'offer', sdp: `v=0 ${nonce}` } })
    const offer = await this.b.next({ type: 'offer', from: this.A })
    assert.deepEqual(offer, { type: 'offer', from: this.A, info_hash: IH, payload: { type: 'offer', sdp: `v=0 ${nonce}` } },
      `honest offer relay${tag}`)
    this.b.sendJson({ type: 'answer', to: this.A, payload: { type: 'answer', sdp: `v=0 ${nonce}` } })
    const answer = await this.a.next({ type: 'answer', from: this.B })
    assert.deepEqual(answer.payload, { type: 'answer', sdp: `v=0 ${nonce}` }, `honest answer relay${tag}`)
    for (const c of this.clients) {
      const bye = await c.request({ type: 'announce', info_hash: IH, event: 'stopped' },
        { type: 'announce', info_hash: IH })
      assert.deepEqual(bye.peers, [])
    }
    // Nothing unexpected was sent to the honest peers.
    for (const c of this.clients) {
      const extra = c.queue.filter((e) => !(e.json && e.json.type === 'pong'))
      assert.deepEqual(extra.map((e) => e.json ?? e.text), [], `${c.name}: unexpected messages${tag}`)
      c.queue.length = 0
    }
  }

  close () {
    if (this.stopKeepAlive) this.stopKeepAlive()
    return Promise.all(this.clients.map((c) => c.close().catch(() => {})))
  }
}

/**
 * Two WebTorrent peers that check the WebTorrent path: announces to a fresh swarm with the right
 * counts, an offer relayed from B to A and A's answer relayed back to B, then both stop.
 */
export class HonestWt {
  static async create (srv, { addrs = [HOST, HOST], prefix = 'hwt', baseSwarm } = {}) {
    const h = new HonestWt()
    h.a = await connectFrom(srv, { localAddress: addrs[0], name: `${prefix}-A` })
    h.b = await connectFrom(srv, { localAddress: addrs[1], name: `${prefix}-B` })
    h.A = wtId('-HA0001-')
    h.B = wtId('-HB0001-')
    if (baseSwarm) {
      h.baseSwarm = baseSwarm
      const r1 = await wtAnnounce(h.a, baseSwarm, h.A, { event: 'started', left: 1, numwant: 0 })
      assert.equal(r1['failure reason'], undefined, JSON.stringify(r1))
      const r2 = await wtAnnounce(h.b, baseSwarm, h.B, { event: 'started', left: 1, numwant: 0 })
      assert.equal(r2['failure reason'], undefined, JSON.stringify(r2))
    } else {
      // Bind the peer IDs with a scrape-free first announce later; nothing to do now.
    }
    return h
  }

  get clients () { return [this.a, this.b] }

  async check (what = '') {
    const tag = what ? ` (${what})` : ''
    const IH = wtBin()
    const rA = await wtAnnounce(this.a, IH, this.A, { event: 'started', left: 100, numwant: 5 })
    assert.deepEqual(rA, { action: 'announce', info_hash: IH, complete: 0, incomplete: 1, interval: rA.interval },
      `honest WT A announce${tag}`)
    const offerId = wtBin()
    const sdp = `v=0 ${randomBytes(6).toString('hex')}`
    const rB = await wtAnnounce(this.b, IH, this.B, {
      event: 'started', left: 100, numwant: 5, offers: [{ offer: { type: 'offer', sdp }, offer_id: offerId }]
    })
    assert.equal(rB.complete, 0, `honest WT B announce${tag}: ${JSON.stringify(rB)}`)
    assert.equal(rB.incomplete, 2, `honest WT B announce${tag}: ${JSON.stringify(rB)}`)
    const offer = await this.a.next((m) => m && m.offer && m.info_hash === IH)
    assert.deepEqual(offer, { action: 'announce', info_hash: IH, peer_id: this.B, offer_id: offerId, offer: { type: 'offer', sdp } },
      `honest WT offer relay${tag}`)
    this.a.sendJson({ action: 'announce', info_hash: IH, peer_id: this.A, to_peer_id: this.B, offer_id: offerId, answer: { type: 'answer', sdp } })
    const answer = await this.b.next((m) => m && m.answer && m.info_hash === IH)
    assert.deepEqual(answer, { action: 'announce', info_hash: IH, peer_id: this.A, offer_id: offerId, answer: { type: 'answer', sdp } },
      `honest WT answer relay${tag}`)
    for (const [c, id] of [[this.a, this.A], [this.b, this.B]]) {
      const r = await wtAnnounce(c, IH, id, { event: 'stopped', left: 100 })
      assert.equal(r['failure reason'], undefined, JSON.stringify(r))
    }
    for (const c of this.clients) {
      assert.deepEqual(c.queue.map((e) => e.json ?? e.text), [], `${c.name}: unexpected messages${tag}`)
    }
  }

  close () {
    return Promise.all(this.clients.map((c) => c.close().catch(() => {})))
  }
}

/** Counts and removes the queued messages of a Client that match pred. */
export function drain (client, pred = () => true) {
  const taken = []
  for (let i = 0; i < client.queue.length;) {
    const e = client.queue[i]
    if (pred(e.json, e)) taken.push(client.queue.splice(i, 1)[0].json)
    else i++
  }
  return taken
}

/** ST barrier: ping and wait for the pong (everything sent to us before it has arrived). */
export async function barrier (client, timeoutMs) {
  client.sendJson({ type: 'ping' })
  await client.next({ type: 'pong' }, timeoutMs)
}
