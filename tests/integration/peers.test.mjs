// Peer lifetime: removal on disconnect and on timeout, WebSocket keep-alive pings, empty swarms
// freed, and the /stats.json figures that follow all of it.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  OP, SLOW, buildFrame, closeAll, connect, connectMany, nastyId, randomInfoHash, randomPeerId,
  rawWs, sleep, startServer, stats, waitForStats
} from './helpers.mjs'

/** A small seeded PRNG (mulberry32), so the model test is reproducible. */
function mulberry32 (a) {
  return () => {
    a |= 0
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function announce (client, infoHash, fields = {}) {
  return client.request({ type: 'announce', info_hash: infoHash, ...fields }, { type: 'announce' })
}

/** The stats fields the tests rely on, without the ones that move by themselves. */
function pick (st) {
  const { connections, identified_peers, swarms, peers, seeders, leechers } = st
  return { connections, identified_peers, swarms, peers, seeders, leechers }
}

describe('peers', () => {
  test('a peer that disconnects leaves at once (announce counts and /stats.json)', async (t) => {
    const srv = await startServer({ t, args: ['--min-interval', '0'] })
    const [a, b, c] = await connectMany(srv, 3, 'disc')
    try {
      const IH = randomInfoHash()
      const ids = {}
      for (const [name, cl] of Object.entries({ a, b, c })) {
        ids[name] = randomPeerId(name)
        await cl.ola(ids[name])
        await announce(cl, IH, { event: 'started', left: 10 })
      }
      // 3 WebSockets + the stats request itself.
      assert.deepEqual(pick(await stats(srv)),
        { connections: 4, identified_peers: 3, swarms: 1, peers: 3, seeders: 0, leechers: 3 })

      // A normal close: by the time the close handshake is done, the peer is gone.
      await b.close()
      let ans = await announce(a, IH, { left: 10, num_want: 50 })
      assert.equal(ans.incomplete, 2, JSON.stringify(ans))
      assert.deepEqual(ans.peers.map((p) => p.peer_id), [ids.c])
      const st = await stats(srv)
      assert.equal(st.identified_peers, 2)
      assert.equal(st.leechers, 2)
      assert.equal(st.peers, 2)

      // An abrupt disconnect (TCP reset, no close frame): gone as soon as the server sees it.
      const t0 = Date.now()
      c.ws._socket.resetAndDestroy()
      for (;;) {
        ans = await announce(a, IH, { left: 10, num_want: 50 })
        if (ans.incomplete === 1) break
        assert.ok(Date.now() - t0 < 1000 * SLOW, `C still counted after ${Date.now() - t0} ms: ${JSON.stringify(ans)}`)
        await sleep(10)
      }
      assert.deepEqual(ans.peers, [])
      await waitForStats(srv, (s) => s.identified_peers === 1 && s.leechers === 1 && s.connections === 2,
        { what: 'one peer and one connection left' })
      // Its peer ID is free again.
      const d = await connect(srv, { name: 'disc-d' })
      await d.ola(ids.c)
      await d.close()
    } finally {
      await closeAll(a, b, c)
    }
  })

  test('empty swarms are freed', async (t) => {
    const srv = await startServer({ t, args: ['--min-interval', '0'] })
    const [a, b] = await connectMany(srv, 2, 'empty')
    try {
      await a.ola(randomPeerId('ea'))
      await b.ola(randomPeerId('eb'))
      const [IH1, IH2] = [randomInfoHash(), randomInfoHash()]
      await announce(a, IH1, { event: 'started', left: 0 })
      await announce(a, IH2, { event: 'started', left: 7 })
      assert.deepEqual(pick(await stats(srv)),
        { connections: 3, identified_peers: 2, swarms: 2, peers: 2, seeders: 1, leechers: 1 })

      await announce(a, IH1, { event: 'stopped' })
      assert.deepEqual(pick(await stats(srv)),
        { connections: 3, identified_peers: 2, swarms: 1, peers: 1, seeders: 0, leechers: 1 })

      await announce(b, IH2, { event: 'started', left: 0 })
      await a.close()
      assert.deepEqual(pick(await stats(srv)),
        { connections: 2, identified_peers: 1, swarms: 1, peers: 1, seeders: 1, leechers: 0 })

      await announce(b, IH2, { event: 'stopped' })
      assert.deepEqual(pick(await stats(srv)),
        { connections: 2, identified_peers: 1, swarms: 0, peers: 0, seeders: 0, leechers: 0 })
      // A scrape of the freed swarm reads zeros.
      const sc = await b.request({ type: 'scrape', info_hashes: [IH1, IH2] })
      assert.deepEqual(sc.files[IH1], { complete: 0, incomplete: 0, downloaded: 0 })
      assert.deepEqual(sc.files[IH2], { complete: 0, incomplete: 0, downloaded: 0 })

      await b.close()
      await waitForStats(srv, (s) => s.connections === 1 && s.identified_peers === 0 && s.swarms === 0,
        { what: 'nothing left but the stats request' })
    } finally {
      await closeAll(a, b)
    }
  })

  test('/stats.json fields', async (t) => {
    const srv = await startServer({ t, args: ['--min-interval', '0'] })
    const st0 = await stats(srv)
    for (const f of ['connections', 'identified_peers', 'swarms', 'peers', 'seeders', 'leechers',
      'messages_in', 'messages_out', 'relayed', 'protocol_errors', 'timeouts', 'expired_peers']) {
      assert.ok(Number.isInteger(st0[f]) && st0[f] >= 0, `field ${f}: ${st0[f]}`)
    }
    assert.deepEqual({ ...pick(st0), messages_in: st0.messages_in, messages_out: st0.messages_out },
      { connections: 1, identified_peers: 0, swarms: 0, peers: 0, seeders: 0, leechers: 0, messages_in: 0, messages_out: 0 })

    const [a, b] = await connectMany(srv, 2, 'st')
    try {
      for (let i = 0; i < 3; i++) await a.request({ type: 'ping' }, { type: 'pong' })
      let st = await stats(srv)
      assert.equal(st.connections, 3)
      assert.equal(st.messages_in, 3)
      assert.equal(st.messages_out, 3)

      const A = randomPeerId('sa')
      const B = randomPeerId('sb')
      await a.ola(A)
      await b.ola(B)
      const IH = randomInfoHash()
      await announce(a, IH, { event: 'started', left: 0 })
      await announce(b, IH, { event: 'started', left: 4 })
      st = await stats(srv)
      assert.deepEqual(pick(st), { connections: 3, identified_peers: 2, swarms: 1, peers: 2, seeders: 1, leechers: 1 })
      assert.equal(st.messages_in, 7)
      assert.equal(st.messages_out, 7)

      // A relay: one message in (from a), one out (to b); an error: one in, one out.
      a.sendJson({ type: 'offer', to: B, payload: 'x' })
      await b.next({ type: 'offer' })
      await a.request({ type: 'nope' }, { type: 'error' })
      st = await stats(srv)
      assert.equal(st.messages_in, 9)
      assert.equal(st.messages_out, 9)
      assert.equal(st.relayed, 1)
      // b completes: seeders/leechers follow.
      await announce(b, IH, { event: 'completed', left: 0 })
      st = await stats(srv)
      assert.equal(st.seeders, 2)
      assert.equal(st.leechers, 0)
    } finally {
      await closeAll(a, b)
    }
  })

  test('model check: random joins, completions, stops and disconnects', async (t) => {
    const srv = await startServer({ t, args: ['--min-interval', '0', '--max-numwant', '50'] })
    const rnd = mulberry32(0x5eed)
    const IH = randomInfoHash()
    const N = 12
    const peers = [] // { c, id, state: null | 'seed' | 'leech' }
    for (let i = 0; i < N; i++) {
      const c = await connect(srv, { name: `m${i}` })
      const id = randomPeerId(`m${i}`)
      await c.ola(id)
      peers.push({ c, id, state: null })
    }
    let completions = 0
    try {
      for (let step = 0; step < 300; step++) {
        const p = peers[Math.floor(rnd() * N)]
        const op = Math.floor(rnd() * 7)
        if (op === 6) {
          // Disconnect (normal close: the server has dropped the peer once the close is done)
          // and come back with the same ID.
          await p.c.close()
          p.c = await connect(srv, { name: p.c.name })
          await p.c.ola(p.id)
          p.state = null
          p.counted = false
          continue
        }
        const fields = [
          { event: 'started', left: rnd() < 0.5 ? 0 : 10 },
          { event: 'completed', left: 0 },
          { event: 'stopped' },
          { left: rnd() < 0.3 ? 0 : 5 },
          {},
          { event: 'started' }
        ][op]
        const before = p.state
        const ans = await announce(p.c, IH, { num_want: 50, ...fields })
        if (fields.event === 'stopped') {
          p.state = null
          p.counted = false
        } else {
          // A completion counts once per membership (a stop or a reconnect starts a new one).
          if (fields.event === 'completed' && before !== 'seed' && !p.counted) {
            completions++
            p.counted = true
          }
          if (fields.event === 'completed' || fields.left === 0) p.state = 'seed'
          else if (fields.left > 0) p.state = 'leech'
          else p.state = before || 'leech'
        }
        const ctx = `step ${step}: ${p.id} ${JSON.stringify(fields)} (${before} → ${p.state}): ${JSON.stringify(ans)}`
        assert.equal(ans.complete, peers.filter((q) => q.state === 'seed').length, ctx)
        assert.equal(ans.incomplete, peers.filter((q) => q.state === 'leech').length, ctx)
        const eligible = peers.filter((q) => q !== p && q.state && (p.state !== 'seed' || q.state === 'leech'))
        assert.equal(ans.peers.length, p.state ? eligible.length : 0, ctx)
        for (const x of ans.peers) {
          const q = eligible.find((e) => e.id === x.peer_id)
          assert.ok(q, `${ctx}: ${x.peer_id} should not be listed`)
          assert.equal(x.complete, q.state === 'seed', ctx)
        }
      }
      const sc = await peers[0].c.request({ type: 'scrape', info_hashes: [IH] }, { type: 'scrape' })
      assert.equal(sc.files[IH].downloaded, completions)
      const st = await stats(srv)
      assert.equal(st.seeders, peers.filter((q) => q.state === 'seed').length)
      assert.equal(st.leechers, peers.filter((q) => q.state === 'leech').length)
    } finally {
      await closeAll(peers.map((p) => p.c))
    }
  })

  test('shutdown: ST peers get bye "shutdown", WebTorrent peers a failure per swarm, then 1001', async (t) => {
    const srv = await startServer({ t })
    const st = await connect(srv, { name: 'sd-st' })
    const wt = await connect(srv, { name: 'sd-wt' })
    await st.ola(randomPeerId('sd'))
    const IHs = [nastyId(), nastyId()]
    const pid = nastyId()
    for (const ih of IHs) {
      wt.sendJson({ action: 'announce', info_hash: ih, peer_id: pid, left: 1, event: 'started' })
      await wt.next({ action: 'announce', info_hash: ih })
    }
    const result = await srv.stopChecked()
    assert.deepEqual(await st.next(), { type: 'bye', reason: 'shutdown' })
    assert.equal((await st.closed).code, 1001)
    const failures = [await wt.next(), await wt.next()]
    assert.deepEqual(failures.map((f) => f.info_hash).sort(), [...IHs].sort())
    for (const f of failures) {
      assert.deepEqual(Object.keys(f), ['action', 'info_hash', 'failure reason'])
      assert.equal(f.action, 'announce')
      assert.match(f['failure reason'], /restart/)
    }
    assert.equal((await wt.closed).code, 1001)
    assert.equal(result.code, 0)
  })

  test('server pings: a socket that never answers is closed, a ws client stays', async (t) => {
    const srv = await startServer({ t, args: ['--ping-interval', '1', '--ping-timeout', '1'] })
    const w = await connect(srv, { name: 'ws-client' })
    try {
      await w.ola(randomPeerId('alive'))
      const deaf = await rawWs(srv, { name: 'deaf' })
      const polite = await rawWs(srv, { name: 'polite' })
      const t0 = Date.now()
      // The polite raw socket answers every ping with a pong carrying the same payload.
      let politePings = 0
      polite.sock.on('data', () => {
        for (let i = polite.frames.length - 1; i >= 0; i--) {
          const f = polite.frames[i]
          if (f.opcode === OP.PING) {
            polite.frames.splice(i, 1)
            politePings++
            polite.write(buildFrame({ opcode: OP.PONG, payload: f.payload }))
          }
        }
      })

      const ping = await deaf.nextFrame((f) => f.opcode === OP.PING, 4000 * SLOW)
      assert.equal(ping.fin, true)
      assert.equal(ping.masked, false, 'server frames are never masked')
      const { code, before } = await deaf.expectClose(5000 * SLOW)
      const closedAfter = Date.now() - t0
      assert.equal(code, 1001, `close code ${code}`)
      assert.deepEqual(before.filter((f) => f.opcode === OP.TEXT).map((f) => f.json),
        [{ type: 'bye', reason: 'timeout' }])
      assert.ok(closedAfter >= 800 && closedAfter <= 6000 * SLOW, `closed after ${closedAfter} ms`)

      // Let a few more ping rounds pass: the ws client and the polite socket stay connected.
      await sleep(Math.max(0, 3500 - (Date.now() - t0)))
      assert.ok(w.isOpen, 'the ws client was disconnected')
      assert.ok(w.pings >= 2, `the ws client saw ${w.pings} pings`)
      await w.assertQuiet()
      assert.ok(!polite.ended, 'the socket that answers pings was closed')
      assert.ok(politePings >= 2, `polite socket saw ${politePings} pings`)
      await polite.roundTrip()
      const st = await stats(srv)
      assert.ok(st.timeouts >= 1)
      polite.write(buildFrame({ opcode: OP.CLOSE, payload: Buffer.from([0x03, 0xe8]) }))
      assert.equal((await polite.expectClose()).code, 1000)
    } finally {
      await closeAll(w)
    }
  })
})

describe('expiry and idle (concurrently)', { concurrency: true }, () => {
  test('a silent peer leaves the swarm after --peer-timeout, its connection stays open', async (t) => {
    const srv = await startServer({ t, args: ['--interval', '2', '--min-interval', '0', '--peer-timeout', '3'] })
    const [silent, active] = await connectMany(srv, 2, 'to')
    try {
      const S = randomPeerId('silent')
      await silent.ola(S)
      await active.ola(randomPeerId('active'))
      const IH = randomInfoHash()
      const first = await announce(silent, IH, { event: 'started', left: 5 })
      assert.equal(first.interval, 2)
      const t0 = Date.now()
      let ans = await announce(active, IH, { event: 'started', left: 5, num_want: 10 })
      assert.equal(ans.incomplete, 2)
      // The active peer keeps announcing (which keeps it alive) until the silent one is gone.
      let gone = null
      while (Date.now() - t0 < 12000) {
        await sleep(250)
        ans = await announce(active, IH, { left: 5, num_want: 10 })
        if (ans.incomplete === 1) {
          gone = Date.now() - t0
          break
        }
        assert.deepEqual(ans.peers.map((p) => p.peer_id), [S])
      }
      assert.ok(gone !== null, `the silent peer was still in the swarm after ${Date.now() - t0} ms`)
      assert.ok(gone >= 2900, `the silent peer left after only ${gone} ms (--peer-timeout 3)`)
      // The sweep visits about a sixth of the swarm table per second (src/tracker/swarm.c), so
      // the worst case is the timeout, plus one second of clock granularity, plus a full sweep.
      assert.ok(gone <= 11000, `the silent peer left after ${gone} ms, expected at most ~10 s`)
      t.diagnostic(`silent peer left the swarm after ${gone} ms`)
      assert.deepEqual(ans.peers, [])

      // Its connection is still open and still holds its peer ID.
      assert.ok(silent.isOpen)
      await silent.assertQuiet('(expiry is silent)')
      const st = await stats(srv)
      assert.ok(st.expired_peers >= 1, `expired_peers ${st.expired_peers}`)
      assert.equal(st.identified_peers, 2)
      const intruder = await connect(srv, { name: 'intruder' })
      assert.equal((await intruder.request({ type: 'ola', peer_id: S })).error, 'peer_id_taken')
      await intruder.close()
      // It can come back.
      const back = await announce(silent, IH, { left: 5, num_want: 10 })
      assert.equal(back.incomplete, 2)
    } finally {
      await closeAll(silent, active)
    }
  })

  test('a peer that only floods too-fast regular announces still expires', async (t) => {
    // min-interval 30 > peer-timeout 3: every regular announce after the first is refused, and a
    // refused announce must not count as activity.
    const srv = await startServer({ t, args: ['--interval', '30', '--min-interval', '30', '--peer-timeout', '3'] })
    const f = await connect(srv, { name: 'flooder' })
    try {
      await f.ola(randomPeerId('flood'))
      const IH = randomInfoHash()
      await announce(f, IH, { event: 'started', left: 5 })
      const t0 = Date.now()
      let refused = 0
      let accepted = null
      while (Date.now() - t0 < 12000) {
        await sleep(250)
        const m = await f.request({ type: 'announce', info_hash: IH, left: 5 })
        if (m.type === 'error') {
          assert.equal(m.code, 'rate_limited', JSON.stringify(m))
          refused++
          continue
        }
        // Accepted: only possible once the peer has left the swarm (a new member is not limited).
        assert.equal(m.type, 'announce')
        accepted = Date.now() - t0
        break
      }
      assert.ok(accepted !== null, `the flooding peer never expired (${refused} refused announces)`)
      assert.ok(accepted >= 2900, `expired after only ${accepted} ms`)
      assert.ok(accepted <= 11500, `expired after ${accepted} ms`)
      assert.ok(refused >= 8, `only ${refused} refused announces`)
      const st = await stats(srv)
      assert.equal(st.expired_peers, 1)
      t.diagnostic(`flooding peer expired after ${accepted} ms and ${refused} refused announces`)
    } finally {
      await f.close()
    }
  })

  test('--idle-timeout: a client that sends no message is closed with bye "idle" (pongs do not count)', async (t) => {
    const srv = await startServer({ t, args: ['--idle-timeout', '2', '--ping-interval', '1', '--ping-timeout', '5'] })
    const [quiet, chatty] = await connectMany(srv, 2, 'idle')
    try {
      await quiet.ola(randomPeerId('quiet'))
      await chatty.ola(randomPeerId('chatty'))
      const t0 = Date.now()
      const timer = setInterval(() => chatty.sendJson({ type: 'ping' }), 400)
      try {
        assert.deepEqual(await quiet.next(undefined, 6000 * SLOW), { type: 'bye', reason: 'idle' })
        assert.equal((await quiet.closed).code, 1000)
        const after = Date.now() - t0
        // Whole-second clock: the idle time may be just over 1 s of real time.
        assert.ok(after >= 900 && after <= 5000 * SLOW, `closed after ${after} ms`)
        assert.ok(quiet.pings >= 1, 'the quiet client should have answered server pings meanwhile')
        await sleep(500)
      } finally {
        clearInterval(timer)
      }
      assert.ok(chatty.isOpen, 'a client sending {"type":"ping"} must stay')
      while (chatty.queue.length) assert.deepEqual(await chatty.next(), { type: 'pong' })
    } finally {
      await closeAll(quiet, chatty)
    }
  })
})
