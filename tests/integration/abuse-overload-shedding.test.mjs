// Abuse: overload shedding. With --max-connections 40 --shed-high 30 --shed-low 25 --shed-ratio 2
// --shed-min-seeders 3, the server is brought to 29 connections (swarms with many seeders and few
// leechers, honest peers, idle identified connections in no swarm), then pushed past the
// high-water mark. Within a few seconds (housekeeping runs once a second) it must shed the
// connections in no swarm first, then surplus seeders, telling each one why before the close, until
// it is at the low-water mark; it must never shed a leecher, a seeder some swarm still needs, or a
// swarm below its minimum. Both dialects.
//
// The push adds 2 connections at once to 29, so the mark is crossed at exactly 31 live
// connections whatever the timing of the 1-second housekeeping: the shedding need is 31 - 25 = 6.

import assert from 'node:assert/strict'
import net from 'node:net'
import { describe, test } from 'node:test'
import { OP, SLOW, closeAll, randomInfoHash, randomPeerId, sleep, startServer } from './helpers.mjs'
import {
  HonestSt, HonestWt, connectFrom, rawFrom, statsOf, stAnnounce, waitFor, waitStats, wtAnnounce, wtBin, wtId
} from './abuse-helpers.mjs'

const SHED = ['--max-connections', '40', '--shed-high', '30', '--shed-low', '25', '--shed-ratio', '2', '--shed-min-seeders', '3']
const LOW = 25

const BYE_OVERLOAD = { type: 'bye', reason: 'overload' }
const WT_OVERLOAD = 'tracker overloaded: connection closed, retry later'

/** Opens n ST clients, each identified, and runs join(client, i) on each; in parallel. */
async function stPeers (srv, n, prefix, join = async () => {}) {
  return Promise.all(Array.from({ length: n }, async (_, i) => {
    const c = await connectFrom(srv, { name: `${prefix}${i}` })
    await c.ola(randomPeerId(prefix))
    await join(c, i)
    return c
  }))
}

async function stJoin (c, ih, left) {
  const a = await stAnnounce(c, ih, { event: 'started', left })
  assert.equal(a.type, 'announce', JSON.stringify(a))
}

/** ST scrape counts of several infohashes. */
async function counts (client, ihs) {
  const r = await client.request({ type: 'scrape', info_hashes: ihs }, { type: 'scrape' })
  return ihs.map((ih) => [r.files[ih].complete, r.files[ih].incomplete])
}

/** Opens 2 raw connections at the same moment; resolves with both. */
async function pushTwo (srv) {
  return Promise.all([rawFrom(srv, { name: 'extra1' }), rawFrom(srv, { name: 'extra2' })])
}

/** Waits until `n` of the clients have closed, then a little longer to catch any extra closes. */
async function waitClosed (clients, n, what) {
  await waitFor(() => clients.filter((c) => c.closeInfo).length >= n,
    { timeoutMs: 4000 * SLOW, what: `${n} connections shed (${what})` })
  await sleep(300)
  return clients.filter((c) => c.closeInfo)
}

describe('overload shedding', () => {
  test('ST: idle connections in no swarm go first, then surplus seeders; leechers and needed seeders stay; each is told bye "overload"', async (t) => {
    const srv = await startServer({ t, args: SHED })
    const S = randomInfoHash() // 16 seeders (+ dual) and 3 leechers: surplus down to 2 x 3 = 6
    const T = randomInfoHash() // 4 seeders and 1 leecher: surplus down to the minimum of 3
    const U = randomInfoHash() // dual alone seeds it, for 1 leecher: dual is needed there
    const H = randomInfoHash() // the honest peers, as leechers
    const all = []
    let extras = []
    try {
      // Oldest first; the server walks its connections newest first.
      const sLeechers = await stPeers(srv, 3, 'sleech', (c) => stJoin(c, S, 100))
      const sSeeders = await stPeers(srv, 16, 'sseed', (c) => stJoin(c, S, 0))
      const uLeecher = await stPeers(srv, 1, 'uleech', (c) => stJoin(c, U, 100))
      const honest = await HonestSt.create(srv, { baseSwarm: H })
      const idle = await stPeers(srv, 1, 'idle')
      const tLeecher = await stPeers(srv, 1, 'tleech', (c) => stJoin(c, T, 100))
      const tSeeders = await stPeers(srv, 4, 'tseed', (c) => stJoin(c, T, 0))
      const dual = await stPeers(srv, 1, 'dual', async (c) => { await stJoin(c, S, 0); await stJoin(c, U, 0) })
      all.push(...sLeechers, ...sSeeders, ...uLeecher, ...honest.clients, ...idle, ...tLeecher, ...tSeeders, ...dual)
      const leechers = [...sLeechers, ...uLeecher, ...honest.clients, ...tLeecher]
      const seeders = [...sSeeders, ...tSeeders, ...dual]
      assert.equal(all.length, 29)
      const st0 = await statsOf(srv)
      assert.equal(st0.connections, 30, JSON.stringify(st0)) // + this request
      assert.equal(st0.shed, 0)
      assert.deepEqual(await counts(honest.a, [S, T, U]), [[17, 3], [4, 1], [1, 1]])
      await sleep(200) // let the stats request's connection go

      // ---- push past the high-water mark ------------------------------------------------------
      const t0 = Date.now()
      extras = await pushTwo(srv)
      const during = honest.check('while the server sheds')
      const shed = await waitClosed(all, 4, 'the idle one and surplus seeders')
      await during
      const ms = Date.now() - t0
      const extrasClosed = []
      for (const x of extras) {
        if (x.ended || x.frames.some((f) => f.opcode === OP.CLOSE)) extrasClosed.push(await x.expectClose())
      }
      t.diagnostic(`shed after ${ms} ms: ${shed.map((c) => c.name).join(' ')} and ${extrasClosed.length} of the 2 new connections`)

      // Exactly the need: 31 - 25 = 6.
      assert.equal(shed.length + extrasClosed.length, 6, `shed ${shed.map((c) => c.name)} + ${extrasClosed.length} extras`)
      // Each shed connection was told before the close (1001).
      for (const c of shed) {
        assert.equal(c.closeInfo.code, 1001, `${c.name}: close ${JSON.stringify(c.closeInfo)}`)
        assert.deepEqual(c.queue.map((e) => e.json), [BYE_OVERLOAD], `${c.name}: messages before the close`)
      }
      for (const x of extrasClosed) {
        assert.equal(x.code, 1001)
        assert.deepEqual(x.before.filter((f) => f.opcode === OP.TEXT).map((f) => f.json), [BYE_OVERLOAD])
      }
      // No swarm first: the idle connection is shed, and so is every new connection that had
      // finished its upgrade (one still in its upgrade is not a candidate yet).
      assert.ok(idle[0].closeInfo, 'the idle identified connection in no swarm must be shed')
      assert.ok(extrasClosed.length >= 1, 'the new connections in no swarm must be shed before seeders')
      // Then surplus seeders, never leechers, never a seeder a swarm needs.
      for (const c of shed) assert.ok(c === idle[0] || seeders.includes(c), `${c.name} shed`)
      for (const c of leechers) assert.ok(c.isOpen, `leecher ${c.name} was shed`)
      assert.ok(dual[0].isOpen, 'dual seeds U alone: it must not be shed although it is surplus in S')
      const shedSeeders = shed.filter((c) => seeders.includes(c))
      assert.equal(shedSeeders.length, 6 - 1 - extrasClosed.length)
      const [[sSeed, sLeech], [tSeed, tLeech], [uSeed, uLeech]] = await counts(honest.a, [S, T, U])
      assert.deepEqual([sLeech, tLeech, uLeech], [3, 1, 1])
      assert.ok(sSeed >= 6, `S kept ${sSeed} seeders (ratio 2 x 3 leechers)`)
      assert.ok(tSeed >= 3, `T kept ${tSeed} seeders (minimum 3)`)
      assert.equal(uSeed, 1)
      assert.equal(17 - sSeed + 4 - tSeed, shedSeeders.length)

      // At the low-water mark, and staying there.
      const st1 = await waitStats(srv, (s) => s.connections - 1 === LOW,
        { what: `${LOW} live connections (+ this request)` })
      assert.equal(st1.shed, 6)
      // Survivors are served normally.
      for (const c of leechers.concat(seeders).filter((c) => c.isOpen && !honest.clients.includes(c))) {
        assert.deepEqual(c.queue, [], `${c.name} got messages`)
      }
      await honest.check('after the shedding')
      await sleep(1100)
      assert.equal(all.filter((c) => c.closeInfo).length, shed.length, 'more connections were shed later')
    } finally {
      for (const x of extras) x.destroy()
      await closeAll(all)
    }
  })

  test('WebTorrent: a shed seeder gets one failure reason per swarm before the close; leechers stay', async (t) => {
    const srv = await startServer({ t, args: SHED })
    const S1 = wtBin()
    const S2 = wtBin()
    const H = wtBin()
    const all = []
    let extras = []
    try {
      // 3 leechers and 20 seeders, all in both S1 and S2; 2 honest WebTorrent leechers; 2 idle
      // WebTorrent connections that only scraped (in no swarm): 29.
      const wtPeers = (n, prefix, left) => Promise.all(Array.from({ length: n }, async (_, i) => {
        const c = await connectFrom(srv, { name: `${prefix}${i}` })
        c.peerId = wtId(`-${prefix.slice(0, 2).toUpperCase()}${String(i).padStart(4, '0')}-`)
        for (const ih of [S1, S2]) {
          const r = await wtAnnounce(c, ih, c.peerId, { event: 'started', left, numwant: 0 })
          assert.equal(r['failure reason'], undefined, JSON.stringify(r))
        }
        return c
      }))
      const leechers = await wtPeers(3, 'leech', 100)
      const seeders = await wtPeers(20, 'seed', 0)
      const honest = await HonestWt.create(srv, { baseSwarm: H })
      const idle = await Promise.all([0, 1].map(async (i) => {
        const c = await connectFrom(srv, { name: `idle${i}` })
        const ih = wtBin()
        const r = await c.request({ action: 'scrape', info_hash: ih })
        assert.equal(r.action, 'scrape', JSON.stringify(r))
        return c
      }))
      const st = await connectFrom(srv, { name: 'st-leecher' })
      await st.ola(randomPeerId('stl'))
      await stJoin(st, randomInfoHash(), 1)
      all.push(...leechers, ...seeders, ...honest.clients, ...idle, st)
      assert.equal(all.length, 28)
      const st0 = await statsOf(srv)
      assert.equal(st0.connections, 29, JSON.stringify(st0))
      await sleep(200)

      // 28 + 2 = 30 is not above the mark; a third makes 31.
      extras = await pushTwo(srv)
      extras.push(await rawFrom(srv, { name: 'extra3' }))
      const shed = await waitClosed(all, 3, 'idle and surplus seeders')
      const extrasClosed = []
      for (const x of extras) {
        if (x.ended || x.frames.some((f) => f.opcode === OP.CLOSE)) extrasClosed.push(await x.expectClose())
      }
      t.diagnostic(`shed ${shed.map((c) => c.name).join(' ')} and ${extrasClosed.length} of the 3 new connections`)
      assert.equal(shed.length + extrasClosed.length, 6)
      for (const c of idle) assert.ok(c.closeInfo, `${c.name} (WebTorrent, in no swarm) must be shed first`)
      for (const c of idle) {
        // In no swarm, a WebTorrent connection has no infohash to attach a failure to: only the close.
        assert.equal(c.closeInfo.code, 1001)
        assert.deepEqual(c.queue, [], `${c.name}: ${c.pending()}`)
      }
      const shedSeeders = shed.filter((c) => seeders.includes(c))
      assert.ok(shedSeeders.length >= 1, 'no seeder was shed')
      for (const c of shedSeeders) {
        assert.equal(c.closeInfo.code, 1001, `${c.name}: ${JSON.stringify(c.closeInfo)}`)
        const got = c.queue.map((e) => e.json)
        assert.equal(got.length, 2, `${c.name}: one failure per swarm expected, got ${JSON.stringify(got)}`)
        for (const m of got) {
          assert.deepEqual(Object.keys(m).sort(), ['action', 'failure reason', 'info_hash'])
          assert.equal(m.action, 'announce')
          assert.equal(m['failure reason'], WT_OVERLOAD)
        }
        assert.deepEqual(got.map((m) => m.info_hash).sort(), [S1, S2].sort())
      }
      for (const x of extrasClosed) {
        assert.equal(x.code, 1001)
        assert.deepEqual(x.before.filter((f) => f.opcode === OP.TEXT).map((f) => f.json), [BYE_OVERLOAD])
      }
      for (const c of [...leechers, ...honest.clients, st]) assert.ok(c.isOpen, `leecher ${c.name} was shed`)
      for (const c of shed) assert.ok(idle.includes(c) || seeders.includes(c), `${c.name} shed`)
      const r = await st.request({ type: 'scrape', info_hashes: [S1, S2].map((s) => Buffer.from(s, 'latin1').toString('hex')) }, { type: 'scrape' })
      for (const f of Object.values(r.files)) {
        assert.equal(f.incomplete, 3)
        assert.equal(f.complete, 20 - shedSeeders.length)
        assert.ok(f.complete >= 6)
      }
      await waitStats(srv, (s) => s.connections - 1 === LOW, { what: `${LOW} live connections` })
      await honest.check('after the WebTorrent shedding')
    } finally {
      for (const x of extras) x.destroy()
      await closeAll(all)
    }
  })

  // Regression: shedding used to start on all connections (s->nconns, closing ones included) and
  // then shed live ones down to the low-water mark: 28 live + 3 lingering shed 3 live peers.
  test('connections the server is already closing do not make it shed live peers below the high-water mark', async (t) => {
    const srv = await startServer({ t, args: SHED })
    const S = randomInfoHash()
    const H = randomInfoHash()
    const all = []
    const lingering = []
    try {
      const sLeechers = await stPeers(srv, 3, 'sleech', (c) => stJoin(c, S, 100))
      const sSeeders = await stPeers(srv, 20, 'sseed', (c) => stJoin(c, S, 0))
      const honest = await HonestSt.create(srv, { baseSwarm: H })
      const idle = await stPeers(srv, 3, 'idle')
      all.push(...sLeechers, ...sSeeders, ...honest.clients, ...idle)
      assert.equal(all.length, 28) // live: 2 below the high-water mark
      // Three plain HTTP requests whose clients read the answer but keep their side open: the
      // server has answered and is only lingering (up to 2 s) for their EOF.
      for (let i = 0; i < 3; i++) {
        const sock = net.connect({ port: srv.port, host: '127.0.0.1', allowHalfOpen: true })
        sock.on('error', () => {})
        let got = ''
        sock.on('data', (d) => { got += d })
        sock.on('connect', () => sock.write(`GET /health HTTP/1.1\r\nHost: x\r\n\r\n`))
        await waitFor(() => got.includes('\r\n\r\nok'), { what: 'the /health answer' })
        lingering.push(sock)
      }
      // Two housekeeping passes while they linger.
      await sleep(1500)
      for (const s of lingering) s.destroy()
      const shed = all.filter((c) => c.closeInfo)
      assert.deepEqual(shed.map((c) => `${c.name}: ${JSON.stringify(c.queue.map((e) => e.json))} close ${c.closeInfo.code}`), [],
        '28 live connections (high-water mark 30) and 3 answered HTTP requests lingering: nobody should be shed')
      await honest.check('after lingering connections')
    } finally {
      for (const s of lingering) s.destroy()
      await closeAll(all)
    }
  })
})
