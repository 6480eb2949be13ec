// Peer lifetime: removal on disconnect and on timeout, WebSocket keep-alive pings, empty swarms
// freed, and the /stats.json figures that follow all of it.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  OP, SLOW, buildFrame, closeAll, connect, connectMany, randomInfoHash, randomPeerId, rawWs,
  sleep, startServer, stats, waitForStats
} from './helpers.mjs'

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
      assert.ok(closedAfter >= 1000 && closedAfter <= 6000 * SLOW, `closed after ${closedAfter} ms`)

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
