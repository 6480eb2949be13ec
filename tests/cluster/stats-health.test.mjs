// /stats.json and /health in cluster mode. /stats.json keeps today's top-level fields as this
// node's own figures and adds "cluster": {node_id (16 hex), nodes (live), redis ("up" | "down" |
// "stalled"), connections, identified_peers, swarms, peers, seeders, leechers} with cluster-wide
// totals; a standalone server has no "cluster" key. /health: 200 standalone or while Redis is up,
// 503 in cluster mode while Redis is down. Also: --db is unused in cluster mode (said in the log,
// no database file created), and both --cluster forms (unix:/path and redis://HOST:PORT) join the
// same cluster.

import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { describe, test } from 'node:test'
import {
  PROPAGATION_MS, RECOVERY_MS, closeAll, clusterStats, connect, health, nastyId, randomInfoHash,
  randomPeerId, relayEventually, stAnnounce, startCluster, startNode, startServer, stats, waitAllSee,
  waitFor, waitHealth, wtAnnounce, wtClient
} from './cluster-helpers.mjs'

const CLUSTER_KEYS = ['connections', 'identified_peers', 'leechers', 'node_id', 'nodes', 'peers', 'redis', 'seeders', 'swarms']

/** The node's own figures the tests compare. */
function own (st) {
  const { connections, identified_peers, swarms, peers, seeders, leechers } = st
  return { connections, identified_peers, swarms, peers, seeders, leechers }
}

describe('/stats.json and /health', () => {
  test('standalone: no "cluster" key, /health 200', async (t) => {
    const srv = await startServer({ t })
    const st = await stats(srv)
    assert.ok(!('cluster' in st), `a standalone server must not report a cluster: ${JSON.stringify(st)}`)
    assert.equal(await health(srv), 200)
  })

  test('cluster fields: node_id, live nodes, Redis state, cluster-wide totals; top-level stays per node', async (t) => {
    const cl = await startCluster({ t, nodes: 3, args: ['--min-interval', '0'] })
    const [n0, n1, n2] = cl.nodes
    await cl.ready(3)
    const ids = []
    for (const node of cl.nodes) {
      const st = await stats(node)
      const c = st.cluster
      for (const k of CLUSTER_KEYS) assert.ok(k in c, `cluster.${k} missing: ${JSON.stringify(c)}`)
      assert.match(c.node_id, /^[0-9a-f]{16}$/, `node_id must be 16 lowercase hex digits: ${JSON.stringify(c.node_id)}`)
      assert.equal(c.nodes, 3)
      assert.equal(c.redis, 'up')
      for (const k of CLUSTER_KEYS.filter((x) => !['node_id', 'redis'].includes(x))) {
        assert.ok(Number.isInteger(c[k]) && c[k] >= 0, `cluster.${k} must be a non-negative integer: ${JSON.stringify(c)}`)
      }
      // Today's fields are all still there.
      for (const f of ['connections', 'identified_peers', 'swarms', 'peers', 'seeders', 'leechers', 'messages_in',
        'messages_out', 'relayed', 'accepted', 'uptime_seconds']) {
        assert.ok(Number.isInteger(st[f]), `top-level ${f} missing or not an integer: ${JSON.stringify(st)}`)
      }
      ids.push(c.node_id)
    }
    assert.equal(new Set(ids).size, 3, `node IDs must differ: ${ids}`)

    // Node 0: a seeder and a leecher in IH1 (the leecher also in IH2).
    // Node 1: an ST leecher and a WebTorrent leecher in IH1.
    // Node 2: an identified ST peer in no swarm, and a connection that never said anything.
    const IH1 = nastyId()
    const HEX1 = Buffer.from(IH1, 'latin1').toString('hex')
    const IH2 = randomInfoHash()
    const clients = []
    const st = async (node, name) => {
      const c = await connect(node, { name: `${name}@${node.port}` })
      c.peerId = randomPeerId(name)
      await c.ola(c.peerId)
      clients.push(c)
      return c
    }
    try {
      const s0 = await st(n0, 's0')
      const l0 = await st(n0, 'l0')
      const l1 = await st(n1, 'l1')
      const w1 = await wtClient(n1, 'w1', nastyId())
      clients.push(w1)
      await st(n2, 'i2')
      const silent = await connect(n2, { name: 'silent@n2' })
      clients.push(silent)
      await stAnnounce(s0, HEX1, { event: 'started', left: 0 })
      await stAnnounce(l0, HEX1, { event: 'started', left: 9 })
      await stAnnounce(l0, IH2, { event: 'started', left: 9 })
      await stAnnounce(l1, HEX1, { event: 'started', left: 9 })
      await wtAnnounce(w1, { info_hash: IH1, left: 9, event: 'started' })

      // Top-level: each node's own figures (connections include the stats request itself). "swarms"
      // counts the swarms this node's own peers are in (not swarms it only knows of through other
      // nodes): node 1 has no peer in IH2, node 2 none anywhere. Checked after the cluster totals
      // below are complete, so every node has heard of every swarm by then.
      const wantOwn = [
        { connections: 3, identified_peers: 2, swarms: 2, peers: 3, seeders: 1, leechers: 2 },
        { connections: 3, identified_peers: 2, swarms: 1, peers: 2, seeders: 0, leechers: 2 },
        { connections: 3, identified_peers: 1, swarms: 0, peers: 0, seeders: 0, leechers: 0 }
      ]
      const assertOwn = async () => {
        for (const [i, node] of cl.nodes.entries()) {
          const got = own(await stats(node))
          assert.deepEqual(got, wantOwn[i], `node ${i}: top-level /stats.json fields must be this node's own figures ` +
            `(swarms: only swarms with a peer of this node): got ${JSON.stringify(got)}, want ${JSON.stringify(wantOwn[i])}`)
        }
      }

      // Cluster-wide, from every node: 5 identified peers, 2 distinct swarms (IH1 is on two nodes
      // but is one swarm), 5 memberships, 1 seeder, 4 leechers; 6 WebSockets plus the stats
      // request (plus at most one in-flight stats request per other node, counted by its last report).
      const want = { nodes: 3, redis: 'up', identified_peers: 5, swarms: 2, peers: 5, seeders: 1, leechers: 4 }
      for (const node of cl.nodes) {
        let last
        await waitFor(async () => {
          last = await clusterStats(node)
          const { nodes, redis, identified_peers, swarms, peers, seeders, leechers, connections } = last
          return JSON.stringify({ nodes, redis, identified_peers, swarms, peers, seeders, leechers }) === JSON.stringify(want) &&
            connections >= 7 && connections <= 9
        }, { timeoutMs: RECOVERY_MS, what: () => `cluster totals on port ${node.port}: want ${JSON.stringify(want)} and 7..9 connections, last ${JSON.stringify(last)}` })
      }

      await assertOwn()

      // Changes show up in every node's totals: node 1's ST leecher leaves, node 0's seeder closes.
      await l1.close()
      await s0.close()
      const want2 = { ...want, identified_peers: 3, peers: 3, seeders: 0, leechers: 3 }
      for (const node of cl.nodes) {
        let last
        await waitFor(async () => {
          last = await clusterStats(node)
          const { nodes, redis, identified_peers, swarms, peers, seeders, leechers } = last
          return JSON.stringify({ nodes, redis, identified_peers, swarms, peers, seeders, leechers }) === JSON.stringify(want2)
        }, { timeoutMs: RECOVERY_MS, what: () => `cluster totals on port ${node.port} after two leaves: want ${JSON.stringify(want2)}, last ${JSON.stringify(last)}` })
      }
      // A node that stops (SIGTERM) leaves the live-node count.
      await n2.stopChecked()
      for (const node of [n0, n1]) {
        let last
        await waitFor(async () => {
          last = await clusterStats(node)
          return last.nodes === 2 && last.identified_peers === 2
        }, { timeoutMs: (cl.nodeTimeout + 3) * 1000, what: () => `after node 2 stopped, port ${node.port}: ${JSON.stringify(last)}` })
      }
    } finally {
      await closeAll(clients)
    }
  })

  test('/health: 200 while Redis is up, 503 on every node while it is down, 200 again after', async (t) => {
    const cl = await startCluster({ t, nodes: 2 })
    for (const node of cl.nodes) assert.equal(await health(node), 200)
    await cl.redis.stop()
    for (const node of cl.nodes) {
      const ms = await waitHealth(node, 503, PROPAGATION_MS)
      t.diagnostic(`port ${node.port}: 503 ${ms} ms after Redis stopped`)
      // /stats.json still answers (200), with the state.
      assert.equal((await clusterStats(node)).redis, 'down')
    }
    await cl.redis.start()
    for (const node of cl.nodes) await waitHealth(node, 200, RECOVERY_MS)
  })

  test('--db is unused in cluster mode: no database file, and the log says so', async (t) => {
    const cl = await startCluster({ t, nodes: 1 })
    const [n0] = cl.nodes
    assert.ok(!existsSync(n0.dbPath), `cluster mode must not create the SQLite file ${n0.dbPath}`)
    await waitFor(() => /--db/.test(n0.stderr), { timeoutMs: 2000, what: () => `the log should mention that --db is unused in cluster mode; stderr:\n${n0.stderr}` })
  })

  test('--cluster redis://HOST:PORT and unix:/path join the same cluster', async (t) => {
    const cl = await startCluster({ t, nodes: 1, tcp: true })
    const viaTcp = cl.adopt(await startNode(cl.redis.tcpUrl))
    await waitAllSee(cl.nodes, 2, RECOVERY_MS)
    const a = await connect(cl.nodes[0], { name: 'unix-side' })
    const b = await connect(viaTcp, { name: 'tcp-side' })
    try {
      a.peerId = randomPeerId('ux')
      b.peerId = randomPeerId('tcp')
      await a.ola(a.peerId)
      assert.deepEqual(await b.request({ type: 'ola', peer_id: a.peerId }, { type: 'ola' }),
        { type: 'ola', ok: false, peer_id: a.peerId, error: 'peer_id_taken' })
      await b.ola(b.peerId)
      await relayEventually(a, b, b.peerId)
      await relayEventually(b, a, a.peerId)
    } finally {
      await closeAll(a, b)
    }
  })
})
