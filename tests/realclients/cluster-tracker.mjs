// Starts the tracker as a CLUSTER for the real-client tests: a private redis-server (unix socket in
// a fresh tmpdir, no persistence) and N sigtracker nodes in cluster mode sharing it, all started by
// the test process itself, so inside the private network namespace of scripts/run-realclients.sh.
//
// It reuses the cluster tier's helpers (tests/cluster/cluster-helpers.mjs): startCluster starts
// Redis and the nodes (`--cluster unix:<sock> --node-timeout S`, plus $SIGTRACKER_ARGS), stop()
// stops every node with SIGTERM and asserts a clean exit (code 0), then kills Redis. The binary is
// $SIGTRACKER_BIN; without it (the reference stand-in mode of the script) there is no cluster to
// test: CLUSTER_SKIP then holds the reason to skip.
//
// Returns { kind, nodes: [{ url, port, server }], redis, logs(), stats(i), waitSwarm(i, ...),
// stop() }.

import {
  PROPAGATION_MS, clusterStats, connect, startCluster, waitFor, wtScrape
} from '../cluster/cluster-helpers.mjs'

/** false when a cluster can be tested, else why not (for `test(..., { skip })`). */
export const CLUSTER_SKIP = process.env.SIGTRACKER_BIN
  ? false
  : 'cluster mode is a sigtracker feature: SIGTRACKER_BIN is not set (reference stand-in mode), ' +
    'so the cross-node real-client tests are skipped'

/** --node-timeout of the test nodes: the production default, so a busy machine never splits them. */
const NODE_TIMEOUT_S = 15

const hexToBin = (hex) => Buffer.from(hex, 'hex').toString('latin1')

export async function startClusterTracker ({ nodes = 2 } = {}) {
  if (CLUSTER_SKIP) throw new Error(CLUSTER_SKIP)
  const extra = (process.env.SIGTRACKER_ARGS || '').split(/\s+/).filter(Boolean)
  const cl = await startCluster({ nodes, args: extra, nodeTimeout: NODE_TIMEOUT_S })
  try {
    // Every node has joined: Redis "up" and every other node seen live. (This also proves they
    // are N distinct nodes of one cluster, not N names of one server.)
    await cl.ready(nodes)
  } catch (err) {
    await cl.teardown().catch(() => {})
    throw err
  }

  // One WebTorrent-dialect probe connection per node, opened on first use, for scrapes.
  const probes = new Map()
  const probe = async (i) => {
    if (!probes.has(i)) probes.set(i, await connect(cl.nodes[i], { name: `probe@node${i}` }))
    return probes.get(i)
  }

  let stopped = false
  return {
    kind: 'sigtracker-cluster',
    redis: cl.redis,
    nodes: cl.nodes.map((server) => ({ url: `ws://127.0.0.1:${server.port}`, port: server.port, server })),

    /** Each node's stderr and the end of Redis's log, labelled, for failure texts. */
    logs () {
      const parts = cl.nodes.map((n, i) => `--- node ${i} (port ${n.port}) ---\n${n.stderrAll.slice(-20000)}`)
      parts.push(`--- redis ---\n${cl.redis.log.slice(-3000)}`)
      return parts.join('\n')
    },

    /** The "cluster" object of node i's /stats.json. */
    stats (i) { return clusterStats(cl.nodes[i]) },

    /**
     * Polls WebTorrent scrapes of infoHashHex on node i until complete and incomplete read `want`
     * (the swarm as node i sees it, every node's peers included). Propagation between nodes is
     * asynchronous: this is how a test waits for it. Returns the scrape entry.
     */
    async waitSwarm (i, infoHashHex, want) {
      const c = await probe(i)
      const ih = hexToBin(infoHashHex)
      let last
      await waitFor(async () => {
        last = (await wtScrape(c, [ih]))[ih]
        return last && last.complete === want.complete && last.incomplete === want.incomplete
      }, {
        timeoutMs: PROPAGATION_MS,
        what: () => `node ${i} should see swarm ${infoHashHex} as ${JSON.stringify(want)}; last scrape ${JSON.stringify(last)}`
      })
      return last
    },

    async stop () {
      if (stopped) return
      stopped = true
      for (const c of probes.values()) await c.close().catch(() => {})
      await cl.teardown()
    }
  }
}
