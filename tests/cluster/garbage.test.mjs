// Bad data on Redis never crashes a node. Anyone who can PUBLISH on the cluster's channels
// (`st:all`, and `st:n:<node_id>` per node, node_id from /stats.json) sends: random bytes of many
// lengths, the empty message, text and JSON, messages that start like a real one ("ST", version 1,
// a random sender) and then break (unknown record types, lengths past the end, truncations), a
// wrong version, and a 5 MB message (random, and with a valid header). None of these is a
// well-formed message, so afterwards every node must still serve, with exactly the stats it had
// (no phantom nodes or peers), and the cluster must still work across nodes. The end-of-file
// check also requires a clean exit (and no sanitizer report in an ASan build).

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, test } from 'node:test'
import {
  RECOVERY_MS, closeAll, clusterStats, connect, peerIds, randomInfoHash, randomPeerId, relayEventually,
  stAnnounce, stAnnounceUntil, startCluster, stats, waitFor, waitHealth
} from './cluster-helpers.mjs'

/** A mulberry32 PRNG, so the garbage is reproducible from the seed printed. */
function prng (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function bytes (rnd, n) {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256)
  return b
}

/** "ST" version from_node(u64 LE), as wire.h describes the header. */
function header (version = 1, from = randomBytes(8)) {
  return Buffer.concat([Buffer.from('ST'), Buffer.from([version]), from])
}

function record (type, bodyLen, body = Buffer.alloc(0)) {
  const h = Buffer.alloc(5)
  h[0] = type
  h.writeUInt32LE(bodyLen >>> 0, 1)
  return Buffer.concat([h, body])
}

/** Messages that are malformed by construction (the first record, if any, can never decode). */
function garbage (seed) {
  const rnd = prng(seed)
  const out = [
    Buffer.alloc(0),
    Buffer.from('hello'),
    Buffer.from('{"type":"offer","to":"x","payload":1}'),
    Buffer.from('ST'),
    Buffer.from('ST\x01'),
    header().subarray(0, 7), // truncated header
    Buffer.concat([header(0), record(1, 0)]), // version 0
    Buffer.concat([header(2), record(1, 0)]), // version 2
    Buffer.concat([header(255), bytes(rnd, 64)])
  ]
  for (const type of [0, 10, 11, 127, 128, 200, 255]) {
    out.push(Buffer.concat([header(), record(type, 4, bytes(rnd, 4))])) // unknown record type
  }
  for (let type = 1; type <= 9; type++) {
    out.push(Buffer.concat([header(), record(type, 0xffffffff, bytes(rnd, 16))])) // length far past the end
    out.push(Buffer.concat([header(), record(type, 1000, bytes(rnd, 999))])) // one byte short
    out.push(Buffer.concat([header(), record(type, 0x80000000, Buffer.alloc(0))]))
    out.push(Buffer.concat([header(), Buffer.from([type, 0x10, 0])])) // record header cut short
  }
  for (let i = 0; i < 150; i++) {
    const n = Math.floor(rnd() ** 3 * 4000)
    const b = bytes(rnd, n)
    if (b.length >= 3 && b[0] === 0x53 && b[1] === 0x54) b[0] = 0x73 // never a real header by luck
    out.push(b)
  }
  return out
}

describe('garbage published on the cluster channels', () => {
  test('random and malformed messages, and 5 MB ones, on st:all and every st:n:<node_id>', async (t) => {
    const cl = await startCluster({ t, nodes: 3, args: ['--min-interval', '0'] })
    const { redis } = cl
    const IH = randomInfoHash()
    const clients = []
    try {
      for (const [i, node] of cl.nodes.entries()) {
        const c = await connect(node, { name: `g${i}@n${i}` })
        c.peerId = randomPeerId(`g${i}`)
        await c.ola(c.peerId)
        await stAnnounce(c, IH, { event: 'started', left: i === 0 ? 0 : 5 })
        clients.push(c)
      }
      for (const c of clients) {
        await stAnnounceUntil(c, IH, { left: c === clients[0] ? 0 : 5, num_want: 50 }, (m) => m.complete === 1 && m.incomplete === 2,
          { what: 'the whole swarm before the garbage' })
      }
      await cl.ready(3)
      const ids = []
      for (const node of cl.nodes) ids.push((await clusterStats(node)).node_id)
      assert.equal(new Set(ids).size, 3, `node IDs must differ: ${ids}`)
      const channels = ['st:all', ...ids.map((id) => `st:n:${id}`)]
      const pick = (st) => {
        const { identified_peers, swarms, peers, seeders, leechers } = st
        const c = st.cluster
        return {
          identified_peers, swarms, peers, seeders, leechers,
          cluster: { nodes: c.nodes, identified_peers: c.identified_peers, swarms: c.swarms, peers: c.peers, seeders: c.seeders, leechers: c.leechers }
        }
      }
      // What every node's stats must read, before and after (swarms: distinct infohashes).
      const expected = (i) => ({
        identified_peers: 1, swarms: 1, peers: 1, seeders: i === 0 ? 1 : 0, leechers: i === 0 ? 0 : 1,
        cluster: { nodes: 3, identified_peers: 3, swarms: 1, peers: 3, seeders: 1, leechers: 2 }
      })
      const statsAre = async (i, when) => {
        let last
        await waitFor(async () => {
          last = pick(await stats(cl.nodes[i]))
          return JSON.stringify(last) === JSON.stringify(expected(i))
        }, { timeoutMs: RECOVERY_MS, what: () => `node ${i} stats ${when} should be ${JSON.stringify(expected(i))}, are ${JSON.stringify(last)}` })
      }
      for (const i of [0, 1, 2]) await statsAre(i, 'before the garbage')

      const seed = Date.now() & 0x7fffffff
      t.diagnostic(`garbage seed ${seed}`)
      const messages = garbage(seed)
      let published = 0
      for (const ch of channels) {
        const receivers = []
        for (const m of messages) {
          receivers.push(await redis.publish(ch, m))
          published++
        }
        // Somebody listens (PUBLISH counts channel and pattern subscribers): every node on st:all,
        // its node on st:n:<id>. Otherwise the test would prove nothing.
        const want = ch === 'st:all' ? 3 : 1
        assert.ok(Math.min(...receivers) >= want,
          `PUBLISH on ${ch} reached ${Math.min(...receivers)} subscriber(s), expected at least ${want}`)
      }
      // 5 MB: random, and with a valid header and a huge record.
      const big = randomBytes(5 << 20)
      big[0] = 0x73
      const bigHeaded = Buffer.concat([header(), record(7, (5 << 20) - 16), randomBytes((5 << 20) - 16)])
      for (const ch of channels) {
        await redis.publish(ch, big)
        await redis.publish(ch, bigHeaded)
        published += 2
      }
      t.diagnostic(`published ${published} messages`)

      // Every node is alive and serving, with the stats it had (nothing phantom).
      for (const [i, node] of cl.nodes.entries()) {
        assert.equal(node.exit, null, `node ${i} exited after garbage on its channels: ${JSON.stringify(node.exit)}\n${node.stderr.slice(-3000)}`)
        await waitHealth(node, 200, RECOVERY_MS)
        await statsAre(i, 'after the garbage')
      }
      // And the cluster still works across nodes.
      const [c0, c1, c2] = clients
      await relayEventually(c0, c1, c1.peerId)
      await relayEventually(c1, c2, c2.peerId)
      await relayEventually(c2, c0, c0.peerId)
      const ans = await stAnnounce(c1, IH, { left: 5, num_want: 50 })
      assert.equal(ans.complete, 1)
      assert.equal(ans.incomplete, 2)
      assert.deepEqual(peerIds(ans), [c0.peerId, c2.peerId].sort())
      const fresh = await connect(cl.nodes[2], { name: 'fresh@n2' })
      clients.push(fresh)
      assert.deepEqual(await fresh.request({ type: 'ola', peer_id: c0.peerId }, { type: 'ola' }),
        { type: 'ola', ok: false, peer_id: c0.peerId, error: 'peer_id_taken' })
    } finally {
      await closeAll(clients)
    }
  })
})
