// --reuse-port: two nodes started with the same --port both start (SO_REUSEPORT), and clients
// connecting to that one port are served by both: after 20 connections each node's own
// /stats.json (an HTTP request on the shared port reaches one node or the other; cluster.node_id
// says which) shows some of them, and together they hold all 20. The clients, whichever node they
// reached, see one tracker.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  Cluster, RECOVERY_MS, clusterArgs, closeAll, connect, freePort, randomInfoHash, randomPeerId,
  relayEventually, stAnnounce, stAnnounceUntil, startRawNode, startRedis, stats, waitFor
} from './cluster-helpers.mjs'

const CLIENTS = 20

describe('--reuse-port', () => {
  test(`two nodes on one port share ${CLIENTS} clients and act as one tracker`, async (t) => {
    const redis = await startRedis()
    const cl = new Cluster(redis, [])
    t.after(() => cl.teardown(t))
    const port = await freePort()
    const args = clusterArgs(redis, ['--reuse-port', '--min-interval', '0'])
    const n0 = cl.adopt(await startRawNode({ args, port }))
    const n1 = cl.adopt(await startRawNode({ args, port }))
    // /health answered on the port proves little for the second node (the first may answer):
    // check both processes are alive, then find both node IDs behind the port.
    assert.equal(n0.exit, null, `first node exited: ${n0.stderr}`)
    assert.equal(n1.exit, null, `second node on the same port exited (SO_REUSEPORT?): ${n1.stderr}`)
    assert.equal(n0.port, n1.port)

    const clients = []
    try {
      const IH = randomInfoHash()
      for (let i = 0; i < CLIENTS; i++) {
        const c = await connect(n0, { name: `rp${i}` }) // n0.port === n1.port
        c.peerId = randomPeerId(`rp${i}`)
        await c.ola(c.peerId)
        await stAnnounce(c, IH, { event: 'started', left: 1 })
        clients.push(c)
      }
      assert.equal(n0.exit, null, `first node exited: ${n0.stderr}`)
      assert.equal(n1.exit, null, `second node exited: ${n1.stderr}`)

      // Sample /stats.json on the shared port until both nodes answered with the final figures.
      const byNode = new Map() // node_id -> latest own stats
      let samples = 0
      await waitFor(async () => {
        const st = await stats(n0)
        samples++
        assert.ok(st.cluster, `no cluster object in ${JSON.stringify(st)}`)
        byNode.set(st.cluster.node_id, st)
        const all = [...byNode.values()]
        return byNode.size === 2 && all.every((s) => s.cluster.identified_peers === CLIENTS) &&
          all.reduce((n, s) => n + s.identified_peers, 0) === CLIENTS
      }, {
        timeoutMs: RECOVERY_MS,
        stepMs: 10,
        what: () => `both nodes behind port ${port} should answer, holding all ${CLIENTS} peers between them; ` +
          `after ${samples} samples: ${JSON.stringify([...byNode.entries()].map(([id, s]) => ({ id, identified_peers: s.identified_peers, accepted: s.accepted, cluster: s.cluster })))}`
      })
      const split = [...byNode.entries()].map(([id, s]) => `${id}: ${s.identified_peers} peers, ${s.accepted} accepted`)
      t.diagnostic(`split over ${samples} stats samples: ${split.join('; ')}`)
      for (const [id, s] of byNode) {
        assert.ok(s.identified_peers >= 1, `node ${id} got none of the ${CLIENTS} clients: ${split}`)
        assert.ok(s.accepted >= 1, `node ${id} accepted no connection: ${split}`)
      }

      // One tracker: every client counts all 20, and a signal goes from the first to the last
      // client whatever nodes they are on.
      for (const c of [clients[0], clients[CLIENTS - 1]]) {
        const ans = await stAnnounceUntil(c, IH, { left: 1, num_want: 50 }, (m) => m.incomplete === CLIENTS,
          { what: `should count all ${CLIENTS} peers of both nodes` })
        assert.equal(ans.peers.length, CLIENTS - 1)
      }
      await relayEventually(clients[0], clients[CLIENTS - 1], clients[CLIENTS - 1].peerId)
      await relayEventually(clients[CLIENTS - 1], clients[0], clients[0].peerId)
    } finally {
      await closeAll(clients)
    }
  })
})
