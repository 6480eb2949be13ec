// bench/tls-idle.mjs: server memory per idle wss connection next to ws, and TLS handshakes per
// server CPU-second (full and resumed).
//
//   node bench/tls-idle.mjs [LOW HIGH]     (default 1000 3000 connections)
//
// Makes a throw-away certificate with `openssl`, starts build/sigtracker with a ws and a wss
// listener, and for each scheme opens LOW, then HIGH idle connections that each claim an ST peer ID
// and announce into one shared swarm. The memory per connection is the slope between the two
// counts: (value at HIGH - value at LOW) / (HIGH - LOW), for the process RSS and for the server's
// own heap_bytes (which counts OpenSSL's allocations too: main.c routes them through core/alloc).
// Then it runs `openssl s_time` against the wss port, -new (full handshakes) and -reuse (resumed),
// and divides the handshakes by the server's CPU time (utime + stime from /proc/PID/stat).
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const BIN = process.env.SIGTRACKER_BIN || path.join(ROOT, 'build', 'sigtracker')
const LOW = Number(process.argv[2] || 1000)
const HIGH = Number(process.argv[3] || 3000)
// Connections opened at once.
const WINDOW = 100
// Seconds each s_time run lasts.
const STIME_SECONDS = 5
const HOST = '127.0.0.1'
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const dir = mkdtempSync(path.join(os.tmpdir(), 'sigtracker-tlsbench-'))
const openssl = (...a) => execFileSync('openssl', a, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout',
  'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=localhost', '-addext',
  'subjectAltName=IP:127.0.0.1')
const CA = readFileSync(path.join(dir, 'cert.pem'))

function freePort () {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, HOST, () => { const p = s.address().port; s.close(() => resolve(p)) })
  })
}

function getJson (port, p) {
  return new Promise((resolve, reject) => {
    http.get({ host: HOST, port, path: p, agent: false }, (res) => {
      let b = ''
      res.on('data', (d) => { b += d })
      res.on('end', () => resolve(JSON.parse(b)))
    }).on('error', reject)
  })
}

function procStat (pid) {
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  const ticks = Number(f[11]) + Number(f[12]) // utime + stime
  return { rss, cpu: ticks / 100 }
}

const wsPort = await freePort()
const wssPort = await freePort()
const srv = spawn(BIN, ['--listen', `ws://${HOST}:${wsPort}`, '--listen', `wss://${HOST}:${wssPort}`,
  '--tls-cert', path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem'),
  '--db', path.join(dir, 't.db'), '--log-level', 'warn', '--max-per-ip', '0',
  '--msg-rate', '1000000', '--msg-burst', '1000000'], { stdio: ['ignore', 'inherit', 'inherit'] })
for (let i = 0; ; i++) {
  try { await getJson(wsPort, '/stats.json'); break } catch { if (i > 200) throw new Error('no server'); await sleep(25) }
}

const IH = 'ab'.repeat(20)
/** Opens one idle connection: ola, announce into the shared swarm, then silence. */
function openIdle (url, n) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ca: CA, perMessageDeflate: false })
    ws.on('error', reject)
    ws.on('open', () => ws.send(JSON.stringify({ type: 'ola', peer_id: `idle-${url.slice(0, url.indexOf(":"))}-${n}` })))
    ws.on('message', (d) => {
      const m = JSON.parse(d)
      if (m.type === 'ola') ws.send(JSON.stringify({ type: 'announce', info_hash: IH, event: 'started', left: 1, num_want: 0 }))
      else if (m.type === 'announce') resolve(ws)
    })
  })
}

async function openMany (url, from, to, into) {
  for (let i = from; i < to; i += WINDOW) {
    const batch = []
    for (let k = i; k < Math.min(to, i + WINDOW); k++) batch.push(openIdle(url, k))
    into.push(...await Promise.all(batch))
  }
}

async function measure (scheme, port) {
  const url = `${scheme}://${HOST}:${port}/`
  const conns = []
  await openMany(url, 0, LOW, conns)
  await sleep(1500)
  const a = { ...procStat(srv.pid), heap: (await getJson(wsPort, '/stats.json')).heap_bytes }
  await openMany(url, LOW, HIGH, conns)
  await sleep(1500)
  const b = { ...procStat(srv.pid), heap: (await getJson(wsPort, '/stats.json')).heap_bytes }
  const n = HIGH - LOW
  const res = { scheme, rss: (b.rss - a.rss) / n, heap: (b.heap - a.heap) / n }
  for (const ws of conns) ws.terminate()
  await sleep(1500)
  return res
}

function sTime (mode, version) {
  return new Promise((resolve) => {
    const before = procStat(srv.pid).cpu
    const c = spawn('openssl', ['s_time', '-connect', `${HOST}:${wssPort}`, mode, version, '-time',
      String(STIME_SECONDS)], { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    c.stdout.on('data', (d) => { out += d })
    c.on('close', () => {
      const cpu = procStat(srv.pid).cpu - before
      const m = /(\d+) connections in [\d.]+s/.exec(out)
      const conns = m ? Number(m[1]) : NaN
      resolve({ mode: `${mode} ${version}`, conns, cpu, perCpuSecond: conns / cpu })
    })
  })
}

const results = []
results.push(await measure('ws', wsPort))
results.push(await measure('wss', wssPort))
for (const r of results) {
  console.log(`${r.scheme.padEnd(3)} idle connection (ID claimed, one swarm), slope ${LOW}..${HIGH}: ` +
    `RSS ${Math.round(r.rss)} B, heap_bytes ${Math.round(r.heap)} B`)
}
console.log(`wss - ws: RSS ${Math.round(results[1].rss - results[0].rss)} B, heap_bytes ` +
  `${Math.round(results[1].heap - results[0].heap)} B per connection`)
// s_time does not read after the handshake, so it never sees a TLS 1.3 ticket (they come after
// the handshake): resumption is measured with TLS 1.2, whose ticket is part of the handshake.
for (const [mode, version] of [['-new', '-tls1_3'], ['-new', '-tls1_2'], ['-reuse', '-tls1_2']]) {
  const r = await sTime(mode, version)
  console.log(`s_time ${mode}: ${r.conns} handshakes in ${STIME_SECONDS} s, server CPU ${r.cpu.toFixed(2)} s: ` +
    `${Math.round(r.perCpuSecond)} handshakes per server CPU-second`)
}
const st = await getJson(wsPort, '/stats.json')
console.log(`server counters: tls_handshakes_full ${st.tls_handshakes_full}, tls_handshakes_resumed ` +
  `${st.tls_handshakes_resumed}, tls_errors ${st.tls_errors}`)
srv.kill('SIGTERM')
await new Promise((resolve) => srv.on('close', resolve))
rmSync(dir, { recursive: true, force: true })
