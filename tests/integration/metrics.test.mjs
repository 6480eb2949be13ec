// GET /metrics (Prometheus text format 0.0.4), --admin-listen and --public-metrics, checked with
// real parts: `promtool check metrics` lints the output, and Debian's `prometheus` server scrapes
// the admin listener once a second while the test moves a metric and reads it back through
// Prometheus's HTTP API. Both tools come from the `prometheus` package (scripts/install-deps.sh);
// only when they are missing are those two tests skipped.

import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import {
  HOST, SLOW, closeAll, connect, freePort, httpGet, randomInfoHash, randomPeerId, sleep,
  startServer
} from './helpers.mjs'

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
const PROMTOOL = has('promtool')
const PROMETHEUS = has('prometheus')

/** GET path on the admin listener at port. */
function adminGet (port, p) {
  return httpGet({ port }, p)
}

/** Parses the text format into { help, type, samples: [{ name, labels, value }] }. */
function parse (text) {
  const help = new Map()
  const type = new Map()
  const samples = []
  for (const line of text.split('\n')) {
    if (line === '') continue
    let m = /^# HELP (\S+) (.+)$/.exec(line)
    if (m) { help.set(m[1], m[2]); continue }
    m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line)
    if (m) { type.set(m[1], m[2]); continue }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line)
    assert.ok(m, `unparsable line: ${line}`)
    const labels = {}
    if (m[2]) {
      for (const pair of m[2].split(',')) {
        const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)="([^"\\]*)"$/.exec(pair)
        assert.ok(lm, `bad label ${pair} in ${line}`)
        labels[lm[1]] = lm[2]
      }
    }
    samples.push({ name: m[1], labels, value: Number(m[3]) })
  }
  return { help, type, samples }
}

/** The value of the sample name{labels} (0 when absent: a counter not yet created). */
function value (parsed, name, labels = {}) {
  const s = parsed.samples.find((x) => x.name === name &&
    Object.entries(labels).every(([k, v]) => x.labels[k] === v))
  return s ? s.value : 0
}

function sum (parsed, name, labels = {}) {
  return parsed.samples.filter((x) => x.name === name &&
    Object.entries(labels).every(([k, v]) => x.labels[k] === v)).reduce((a, x) => a + x.value, 0)
}

/** Every label value the server may write: fixed sets, never a client's text. */
const ALLOWED_LABELS = {
  dialect: ['none', 'st', 'wt'],
  state: ['http', 'websocket', 'closing', 'down', 'up', 'stalled'],
  type: ['hello', 'announce', 'scrape', 'signal', 'ping', 'error', 'bye', 'other'],
  kind: ['messages', 'signals_sent', 'signals_received', 'announce_interval', 'handshake',
    'stuck', 'ping', 'idle'],
  reason: ['not_in_allowlist', 'in_denylist'],
  result: ['applied', 'failed']
}

async function startWithAdmin (t, args = []) {
  const admin = await freePort()
  const srv = await startServer({ args: ['--admin-listen', `${HOST}:${admin}`, ...args], t })
  return { srv, admin }
}

describe('metrics', () => {
  test('the format: HELP and TYPE for every metric, fixed label values, histograms', async (t) => {
    // --db-flush 1: a database batch commits during the test, so the writer thread's histograms
    // are read by the loop while it writes them (the ThreadSanitizer tier runs this file).
    const { srv, admin } = await startWithAdmin(t, ['--db-flush', '1'])
    // Some traffic first, with hostile IDs, so that every kind of label has had a chance.
    const a = await connect(srv, { name: 'a' })
    const evil = randomPeerId('evil')
    await a.ola(evil)
    await a.request({ type: 'announce', info_hash: randomInfoHash() }, { type: 'announce' })
    a.sendRaw('{"type":"x\\"} 1\\n# evil{le=\\"a"}')
    await a.next({ type: 'error' })
    let res
    const deadline = Date.now() + 5000 * SLOW
    do {
      res = await adminGet(admin, '/metrics')
      assert.equal(res.status, 200)
      await sleep(100)
    } while (!/^sigtracker_db_batch_rows_count [1-9]/m.test(res.body) && Date.now() < deadline)
    assert.match(res.body, /^sigtracker_db_commit_seconds_count [1-9]/m)
    assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
    const p = parse(res.body)
    assert.ok(!res.body.includes(evil), 'a peer ID reached the metrics')
    const families = new Set([...p.type.keys()])
    for (const s of p.samples) {
      assert.match(s.name, /^sigtracker_/)
      const family = families.has(s.name) ? s.name : s.name.replace(/_(bucket|sum|count)$/, '')
      assert.ok(p.type.has(family), `no # TYPE for ${s.name}`)
      assert.ok(p.help.has(family), `no # HELP for ${s.name}`)
      if (p.type.get(family) === 'counter') assert.match(family, /_total$/)
      for (const [k, v] of Object.entries(s.labels)) {
        if (k === 'le') continue
        assert.ok(ALLOWED_LABELS[k], `unexpected label ${k} on ${s.name}`)
        assert.ok(ALLOWED_LABELS[k].includes(v), `label ${k}="${v}" on ${s.name} is not a fixed value`)
      }
    }
    for (const name of ['sigtracker_event_loop_iteration_seconds', 'sigtracker_message_handling_seconds',
      'sigtracker_db_batch_rows', 'sigtracker_db_commit_seconds']) {
      assert.equal(p.type.get(name), 'histogram', name)
      const buckets = p.samples.filter((s) => s.name === `${name}_bucket`)
      assert.ok(buckets.length > 2)
      assert.equal(buckets.at(-1).labels.le, '+Inf')
      for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value, `${name} not cumulative`)
      assert.equal(buckets.at(-1).value, value(p, `${name}_count`))
    }
    assert.ok(value(p, 'sigtracker_message_handling_seconds_count') >= 3)
    assert.ok(value(p, 'sigtracker_messages_received_total', { type: 'hello' }) >= 1)
    assert.ok(value(p, 'sigtracker_messages_received_total', { type: 'other' }) >= 1)
    assert.ok(value(p, 'sigtracker_messages_sent_total', { type: 'announce' }) >= 1)
    assert.ok(value(p, 'sigtracker_process_resident_memory_bytes') > 1e6)
    assert.ok(p.samples.some((s) => s.name === 'sigtracker_process_cpu_seconds_total'))
    await closeAll(a)
    if (PROMTOOL) {
      const out = spawnSync('promtool', ['check', 'metrics'], { input: res.body, encoding: 'utf8' })
      assert.equal(out.status, 0, `promtool check metrics: ${out.stdout}${out.stderr}`)
    } else {
      t.diagnostic('promtool not installed (scripts/install-deps.sh installs it): lint skipped')
    }
  })

  test('metrics move when peers join and leave', async (t) => {
    const { srv, admin } = await startWithAdmin(t, ['--min-interval', '0'])
    const get = async () => parse((await adminGet(admin, '/metrics')).body)
    const before = await get()
    assert.equal(sum(before, 'sigtracker_connections'), 0)
    const ih = randomInfoHash()
    const clients = []
    for (let i = 0; i < 3; i++) {
      const c = await connect(srv, { name: `c${i}` })
      await c.ola(randomPeerId(`m${i}`))
      await c.request({ type: 'announce', info_hash: ih, left: i === 0 ? 0 : 100 }, { type: 'announce' })
      clients.push(c)
    }
    const mid = await get()
    assert.equal(value(mid, 'sigtracker_connections', { dialect: 'st', state: 'websocket' }), 3)
    assert.equal(value(mid, 'sigtracker_identified_peers'), 3)
    assert.equal(value(mid, 'sigtracker_swarms'), 1)
    assert.equal(value(mid, 'sigtracker_seeders'), 1)
    assert.equal(value(mid, 'sigtracker_leechers'), 2)
    assert.equal(value(mid, 'sigtracker_messages_received_total', { type: 'announce' }), 3)
    assert.equal(value(mid, 'sigtracker_messages_received_total', { type: 'hello' }), 3)
    assert.ok(value(mid, 'sigtracker_received_bytes_total') > value(before, 'sigtracker_received_bytes_total'))
    await closeAll(...clients)
    const deadline = Date.now() + 5000 * SLOW
    let after
    do {
      await sleep(50)
      after = await get()
    } while (sum(after, 'sigtracker_connections') !== 0 && Date.now() < deadline)
    assert.equal(sum(after, 'sigtracker_connections'), 0)
    assert.equal(value(after, 'sigtracker_identified_peers'), 0)
    assert.equal(value(after, 'sigtracker_swarms'), 0)
    assert.ok(value(after, 'sigtracker_connections_accepted_total') >= 3)
  })

  test('signals: relays and messages by type', async (t) => {
    const { srv, admin } = await startWithAdmin(t)
    const a = await connect(srv, { name: 'a' })
    const b = await connect(srv, { name: 'b' })
    const pa = randomPeerId('a')
    const pb = randomPeerId('b')
    await a.ola(pa)
    await b.ola(pb)
    a.sendJson({ type: 'offer', to: pb, payload: { sdp: 'x' } })
    await b.next({ type: 'offer' })
    const p = parse((await adminGet(admin, '/metrics')).body)
    assert.equal(value(p, 'sigtracker_relays_total'), 1)
    assert.equal(value(p, 'sigtracker_messages_received_total', { type: 'signal' }), 1)
    assert.equal(value(p, 'sigtracker_messages_sent_total', { type: 'signal' }), 1)
    await closeAll(a, b)
  })

  test('clients at --max-connections do not lock the admin listener out', async (t) => {
    const { srv, admin } = await startWithAdmin(t, ['--max-connections', '3', '--max-per-ip', '0'])
    const clients = []
    try {
      for (let i = 0; i < 3; i++) clients.push(await connect(srv, { name: `full-${i}` }))
      // A fourth client is refused...
      const refused = await connect(srv, { name: 'over' }).then((c) => { clients.push(c); return false }, () => true)
      assert.ok(refused, 'a client over --max-connections must be refused')
      // ...while the scrape still gets in, and counts the clients and the refusal.
      const res = await adminGet(admin, '/metrics')
      assert.equal(res.status, 200)
      const p = parse(res.body)
      const open = p.samples.filter((x) => x.name === 'sigtracker_connections').reduce((a, x) => a + x.value, 0)
      assert.equal(open, 3)
      const refusedTotal = p.samples.find((x) => x.name === 'sigtracker_connections_refused_total')
      assert.ok(refusedTotal && refusedTotal.value >= 1, JSON.stringify(refusedTotal))
      assert.equal((await adminGet(admin, '/stats.json')).status, 200)
    } finally {
      await closeAll(...clients)
    }
  })

  test('the admin listener and --public-metrics', async (t) => {
    // With --admin-listen the public port keeps /health but not the monitoring pages.
    const { srv, admin } = await startWithAdmin(t)
    for (const p of ['/metrics', '/stats.json', '/dashboard', '/dashboard.json']) {
      assert.equal((await httpGet(srv, p)).status, 404, `public ${p}`)
      assert.equal((await adminGet(admin, p)).status, 200, `admin ${p}`)
    }
    assert.equal((await httpGet(srv, '/health')).status, 200)
    assert.equal((await adminGet(admin, '/health')).status, 200)
    // The admin listener's home page links what it serves, monitoring included.
    const home = await adminGet(admin, '/')
    assert.equal(home.status, 200)
    for (const p of ['/metrics', '/dashboard', '/stats.json']) assert.ok(home.body.includes(`href="${p}"`), `admin / links ${p}`)
    // No WebSocket on the admin listener.
    const ws = await new Promise((resolve) => {
      const req = http.get({ host: HOST, port: admin, path: '/', headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' } })
      req.on('response', (res) => { res.resume(); resolve(res.statusCode) })
      req.on('upgrade', () => resolve(101))
      req.on('error', (e) => resolve(e))
    })
    assert.equal(ws, 403)
    // --public-metrics true keeps them on the public port too.
    const both = await startWithAdmin(t, ['--public-metrics'])
    assert.equal((await httpGet(both.srv, '/metrics')).status, 200)
    // Turned off without an admin listener: nowhere (but /health still answers).
    const off = await startServer({ args: ['--no-public-metrics'], t })
    assert.equal((await httpGet(off, '/metrics')).status, 404)
    assert.equal((await httpGet(off, '/health')).status, 200)
    // Default without --admin-listen: on the public port, as /stats.json always was.
    const plain = await startServer({ t })
    const res = await httpGet(plain, '/metrics')
    assert.equal(res.status, 200)
    assert.match(res.body, /^# HELP sigtracker_/)
  })

  test('a real Prometheus scrapes the admin listener', { skip: !PROMETHEUS && 'prometheus not installed' }, async (t) => {
    const { srv, admin } = await startWithAdmin(t)
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sigtracker-prom-'))
    const promPort = await freePort()
    writeFileSync(path.join(dir, 'prometheus.yml'), [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      'scrape_configs:',
      '  - job_name: sigtracker',
      '    static_configs:',
      `      - targets: ['${HOST}:${admin}']`,
      ''
    ].join('\n'))
    const prom = spawn('prometheus', [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=${HOST}:${promPort}`,
      '--log.level=warn'
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    let promErr = ''
    prom.stderr.on('data', (d) => { promErr += d })
    t.after(async () => {
      prom.kill('SIGTERM')
      await new Promise((resolve) => prom.exitCode !== null ? resolve() : prom.on('exit', resolve))
      rmSync(dir, { recursive: true, force: true })
    })
    const api = async (p) => {
      const res = await httpGet({ port: promPort }, p).catch(() => null)
      if (!res || res.status !== 200) return null
      return JSON.parse(res.body)
    }
    const until = async (what, fn, ms = 30000) => {
      const deadline = Date.now() + ms
      for (;;) {
        const v = await fn()
        if (v) return v
        if (Date.now() > deadline || prom.exitCode !== null) assert.fail(`${what} within ${ms} ms; prometheus said: ${promErr}`)
        await sleep(250)
      }
    }
    await until('the target is up', async () => {
      const r = await api('/api/v1/targets')
      const tg = r && r.data.activeTargets.find((x) => x.scrapeUrl === `http://${HOST}:${admin}/metrics`)
      return tg && tg.health === 'up' ? tg : null
    })
    const clients = []
    for (let i = 0; i < 4; i++) {
      const c = await connect(srv, { name: `p${i}` })
      await c.ola(randomPeerId(`p${i}`))
      clients.push(c)
    }
    const q = encodeURIComponent('sum(sigtracker_connections{state="websocket"})')
    const got = await until('Prometheus sees 4 connections', async () => {
      const r = await api(`/api/v1/query?query=${q}`)
      const v = r && r.data.result[0] && Number(r.data.result[0].value[1])
      return v === 4 ? v : null
    })
    assert.equal(got, 4)
    const idq = encodeURIComponent('sigtracker_identified_peers')
    const ids = await until('identified peers', async () => {
      const r = await api(`/api/v1/query?query=${idq}`)
      return r && r.data.result[0] && Number(r.data.result[0].value[1]) === 4 ? 4 : null
    })
    assert.equal(ids, 4)
    await closeAll(...clients)
    await until('Prometheus sees them leave', async () => {
      const r = await api(`/api/v1/query?query=${q}`)
      return r && r.data.result[0] && Number(r.data.result[0].value[1]) === 0
    })
  })
})
