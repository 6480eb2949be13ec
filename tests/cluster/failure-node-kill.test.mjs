// A node killed with SIGKILL (no goodbye to anyone): within --node-timeout seconds (3 here; 3 s of
// slack allowed) the other nodes stop counting and listing its peers (announce answers, scrapes,
// /stats.json's cluster view), signals to its ST peers get peer_not_found, and its peer IDs (ST
// and WebTorrent) can be claimed again on another node. The surviving nodes keep serving each
// other throughout.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  SLOW, binToHex, clusterStats, closeAll, connect, killNode, nastyId, peerIds, randomInfoHash, randomPeerId,
  relayEventually, stAnnounce, stAnnounceUntil, startCluster, waitFor, wtAnnounceRaw, wtClient
} from './cluster-helpers.mjs'

describe('a node killed with SIGKILL', () => {
  test('its peers leave every other node within --node-timeout, its IDs become free', async (t) => {
    const cl = await startCluster({ t, nodes: 3, args: ['--min-interval', '0'] })
    const [n0, n1, n2] = cl.nodes
    const LIMIT_MS = (cl.nodeTimeout + 3) * 1000 * SLOW
    const IHB = nastyId()
    const IH = binToHex(IHB)
    const a = await connect(n0, { name: 'killA@n0' })
    const c = await connect(n2, { name: 'killC@n2' })
    const b = await connect(n1, { name: 'killB@n1' })
    const wb = await wtClient(n1, 'killWtB', nastyId())
    const clients = [a, b, c, wb]
    try {
      for (const [cli, p] of [[a, 'kA'], [b, 'kB'], [c, 'kC']]) {
        cli.peerId = randomPeerId(p)
        await cli.ola(cli.peerId)
        await stAnnounce(cli, IH, { event: 'started', left: 5 })
      }
      const wbAns = await wtAnnounceRaw(wb, { info_hash: IHB, left: 0, event: 'started' })
      assert.ok(!('failure reason' in wbAns), JSON.stringify(wbAns))
      // Everyone sees everyone: 1 seeder (WebTorrent, node 1), 3 ST leechers.
      for (const cli of [a, c]) {
        const ans = await stAnnounceUntil(cli, IH, { left: 5, num_want: 50 }, (m) => m.complete === 1 && m.incomplete === 3,
          { what: 'should count all four peers' })
        assert.ok(peerIds(ans).includes(b.peerId), `node 1's ST peer should be listed: ${JSON.stringify(ans)}`)
      }
      await cl.ready(3)

      // SIGKILL node 1.
      await killNode(n1)
      const t0 = Date.now()

      // Nodes 0 and 2 stop counting and listing node 1's peers.
      const gone = {}
      for (const [name, cli] of [['node 0', a], ['node 2', c]]) {
        const ans = await stAnnounceUntil(cli, IH, { left: 5, num_want: 50 },
          (m) => m.complete === 0 && m.incomplete === 2, { timeoutMs: LIMIT_MS, what: `on ${name}: node 1's peers should be gone` })
        gone[name] = Date.now() - t0
        assert.deepEqual(peerIds(ans), [cli === a ? c.peerId : a.peerId].sort())
      }
      t.diagnostic(`node 1's peers left the swarm after ${JSON.stringify(gone)} ms (--node-timeout ${cl.nodeTimeout})`)
      for (const ms of Object.values(gone)) {
        assert.ok(ms <= LIMIT_MS, `node 1's peers were still counted ${ms} ms after its SIGKILL (limit ${LIMIT_MS} ms)`)
      }
      const sc = await c.request({ type: 'scrape', info_hashes: [IH] }, { type: 'scrape' })
      assert.deepEqual(sc.files[IH], { complete: 0, incomplete: 2, downloaded: 0 })

      // The cluster view: two live nodes, node 1's peers out of the totals.
      for (const node of [n0, n2]) {
        let last
        await waitFor(async () => {
          last = await clusterStats(node)
          return last.nodes === 2 && last.identified_peers === 2 && last.peers === 2
        }, { timeoutMs: Math.max(0, LIMIT_MS - (Date.now() - t0)) + 1000, what: () => `cluster stats of node port ${node.port} after the kill: ${JSON.stringify(last)}` })
      }

      // Signals to node 1's ST peer: peer_not_found.
      const err = await a.request({ type: 'offer', to: b.peerId, payload: 1 }, (m) => m?.type === 'error')
      assert.equal(err.code, 'peer_not_found', JSON.stringify(err))

      // Its IDs can be claimed again, on the surviving nodes (ST on node 2, WebTorrent on node 0).
      const st = await connect(n2, { name: 'reclaimSt@n2' })
      clients.push(st)
      const olaAns = await st.request({ type: 'ola', peer_id: b.peerId }, { type: 'ola' })
      assert.equal(olaAns.ok, true, `the ST ID of the dead node should be free again: ${JSON.stringify(olaAns)}`)
      st.peerId = b.peerId
      const wt = await wtClient(n0, 'reclaimWt', wb.peerId)
      clients.push(wt)
      const w = await wtAnnounceRaw(wt, { info_hash: IHB, left: 5, event: 'started' })
      assert.ok(!('failure reason' in w), `the WebTorrent ID of the dead node should be free again: ${JSON.stringify(w)}`)
      assert.equal(w.complete, 0)
      assert.equal(w.incomplete, 3)

      // The survivors still serve each other, including the new holder of the old ID.
      await relayEventually(a, c, c.peerId)
      await relayEventually(a, st, st.peerId)
    } finally {
      await closeAll(clients)
    }
  })

  test('a node killed and started again on the same Redis rejoins; its old peers are not resurrected', async (t) => {
    const cl = await startCluster({ t, nodes: 2, args: ['--min-interval', '0'] })
    const [n0, n1] = cl.nodes
    const LIMIT_MS = (cl.nodeTimeout + 3) * 1000 * SLOW
    const IH = randomInfoHash()
    const a = await connect(n0, { name: 'rjA@n0' })
    const b = await connect(n1, { name: 'rjB@n1' })
    let b2 = null
    try {
      a.peerId = randomPeerId('rjA')
      b.peerId = randomPeerId('rjB')
      await a.ola(a.peerId)
      await b.ola(b.peerId)
      await stAnnounce(b, IH, { event: 'started', left: 5 })
      await stAnnounceUntil(a, IH, { event: 'started', left: 5 }, (m) => m.incomplete === 2, { what: 'node 0 should count node 1\'s peer' })
      await killNode(n1)
      await n1.start() // a new process: a new node ID, no peers
      await stAnnounceUntil(a, IH, { left: 5, num_want: 50 }, (m) => m.incomplete === 1 && m.peers.length === 0,
        { timeoutMs: LIMIT_MS, what: 'the killed node\'s peer should be gone although the node came back' })
      // The rejoined node serves and sees node 0's peer.
      b2 = await connect(n1, { name: 'rjB2@n1' })
      b2.peerId = b.peerId // the old ID is free again
      await waitFor(async () => {
        const r = await b2.request({ type: 'ola', peer_id: b2.peerId }, { type: 'ola' })
        return r.ok
      }, { timeoutMs: LIMIT_MS, what: 'the old ID should be claimable on the restarted node' })
      const ans = await stAnnounceUntil(b2, IH, { event: 'started', left: 5, num_want: 50 }, (m) => m.incomplete === 2,
        { what: 'the restarted node should count node 0\'s peer' })
      assert.deepEqual(peerIds(ans), [a.peerId])
      await relayEventually(b2, a, a.peerId)
      await relayEventually(a, b2, b2.peerId)
    } finally {
      await closeAll(a, b, b2)
    }
  })
})
