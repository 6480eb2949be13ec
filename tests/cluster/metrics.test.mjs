// /metrics in cluster mode: the Redis state and heartbeat round trip, live nodes and cluster-wide
// totals, still valid for `promtool check metrics` (skipped only when promtool is missing;
// scripts/install-deps.sh installs it with the prometheus package).

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import { closeAll, httpGet, stPeer, startCluster, waitFor } from './cluster-helpers.mjs'

const PROMTOOL = spawnSync('sh', ['-c', 'command -v promtool']).status === 0

async function metrics (node) {
  const res = await httpGet(node, '/metrics')
  assert.equal(res.status, 200)
  return res.body
}

function value (text, name) {
  const m = new RegExp(`^${name.replace(/[{}"=]/g, (c) => '\\' + c)} (\\S+)$`, 'm').exec(text)
  return m ? Number(m[1]) : undefined
}

test('cluster metrics: Redis state, heartbeat round trip, nodes and cluster-wide totals', async (t) => {
  const cl = await startCluster({ t, nodes: 2 })
  const [n0, n1] = cl.nodes
  await cl.ready(2)
  const text = await metrics(n1)
  assert.equal(value(text, 'sigtracker_cluster_redis_state{state="up"}'), 1)
  assert.equal(value(text, 'sigtracker_cluster_redis_state{state="down"}'), 0)
  assert.equal(value(text, 'sigtracker_cluster_nodes'), 2)
  const rtt = value(text, 'sigtracker_cluster_heartbeat_rtt_seconds')
  assert.ok(rtt >= 0 && rtt < 1, `heartbeat rtt ${rtt}`)
  assert.match(text, /# TYPE sigtracker_cluster_heartbeat_rtt_seconds gauge/)
  // The SQLite histograms are standalone-only; the loop's are there.
  assert.ok(!text.includes('sigtracker_db_commit_seconds'))
  assert.match(text, /sigtracker_event_loop_iteration_seconds_count \d+/)
  if (PROMTOOL) {
    const out = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
    assert.equal(out.status, 0, `promtool: ${out.stdout}${out.stderr}`)
  }
  // A peer on n0 is in n1's cluster-wide figures, not in its own.
  const a = await stPeer(n0, 'a')
  await waitFor(async () => value(await metrics(n1), 'sigtracker_cluster_identified_peers') === 1,
    { what: 'n1 sees the peer of n0' })
  assert.equal(value(await metrics(n1), 'sigtracker_identified_peers'), 0)
  assert.equal(value(await metrics(n0), 'sigtracker_identified_peers'), 1)
  await closeAll(a)
})
