// Cluster-tier helpers: a private redis-server per test (on a unix socket in a fresh tmpdir),
// sigtracker nodes joined to it (`--cluster unix:<sock> --node-timeout 3`), a tiny RESP client,
// polling helpers, and protocol helpers shared by the tests/cluster/*.test.mjs files.
//
// Nodes are started with startServer() of tests/integration/helpers.mjs, so they get the same
// treatment as the integration tier: SIGTRACKER_BIN, SIGTRACKER_SANITIZED (timeouts stretched by
// SLOW, sanitizer output checked), a free port and a fresh --db each, a clean SIGTERM exit (code 0)
// asserted when they are stopped, and SIGKILL at process exit. Everything of helpers.mjs is
// re-exported, so a test file imports from this module only.
//
// Redis processes are always killed (SIGKILL) and their tmpdirs removed when the test process
// exits, whatever happened (also on SIGTERM/SIGINT of the test process). They are unref'd, so a
// skipped teardown can never keep a test file running: node:test skips the remaining after hooks
// once one fails (helpers.mjs's end-of-file check fails when a node crashed), which is also why
// test files tear their cluster down in describe-level or test-level hooks (they run first).
// A crashed node is reported by Cluster.teardown() with its sanitizer report, also as a test
// diagnostic (node:test drops the error of an after hook when the test had already failed).
//
// Propagation between nodes is asynchronous (Redis pub/sub): tests never sleep and assume, they
// poll (waitFor, stAnnounceUntil, relayEventually, ...) up to PROPAGATION_MS.

import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { inspect } from 'node:util'
import {
  BIN, HOST, SANITIZED, SLOW, Server, connect, freePort, httpGet, randomPeerId, sanitizerFindings,
  sleep, startServer, stats
} from '../integration/helpers.mjs'

export * from '../integration/helpers.mjs'

/** --node-timeout every test node gets (seconds). */
export const NODE_TIMEOUT_S = 3
/** How long a change on one node may take to show on another (pub/sub is asynchronous). */
export const PROPAGATION_MS = 3000 * SLOW
/** How long a node may take to recover once Redis is back (or appears). */
export const RECOVERY_MS = 10000 * SLOW
/** The answer time local peers must keep while Redis is stalled. */
export const LOCAL_LATENCY_MS = 100 * SLOW

const REDIS_BIN = process.env.REDIS_SERVER_BIN || 'redis-server'
const REDIS_CLI = process.env.REDIS_CLI_BIN || 'redis-cli'
const REDIS_START_MS = 10000 * SLOW
const REDIS_STOP_MS = 10000

// ------------------------------------------------------------------------------------------------
// Process hygiene: whatever we spawned dies with us.

const children = new Set() // redis-server and raw node processes started here
const tmpDirs = new Set()

function killEverything () {
  for (const child of children) {
    try { child.kill('SIGKILL') } catch {}
  }
  for (const d of tmpDirs) {
    try { rmSync(d, { recursive: true, force: true }) } catch {}
  }
}
process.on('exit', killEverything)
for (const sig of ['SIGINT', 'SIGTERM']) {
  // process.exit() also runs helpers.mjs's exit hook, which kills the nodes.
  process.once(sig, () => {
    killEverything()
    process.exit(128 + os.constants.signals[sig])
  })
}

function makeTmpDir (prefix) {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix))
  tmpDirs.add(d)
  return d
}

function removeTmpDir (d) {
  rmSync(d, { recursive: true, force: true })
  tmpDirs.delete(d)
}

function tail (text, n = 3000) {
  return text.length > n ? '...' + text.slice(-n) : text
}

// ------------------------------------------------------------------------------------------------
// A minimal RESP client (one command per connection: good enough for tests, no dependency).

function encodeCommand (args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)]
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a), 'utf8')
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'))
  }
  return Buffer.concat(parts)
}

/** Parses one RESP value at buf[off]; returns { value, off } or null when incomplete. */
function parseResp (buf, off = 0) {
  const eol = buf.indexOf('\r\n', off)
  if (eol < 0) return null
  const kind = String.fromCharCode(buf[off])
  const line = buf.toString('utf8', off + 1, eol)
  const next = eol + 2
  switch (kind) {
    case '+': return { value: line, off: next }
    case '-': return { value: new RedisError(line), off: next }
    case ':': return { value: Number(line), off: next }
    case '$': {
      const len = Number(line)
      if (len < 0) return { value: null, off: next }
      if (buf.length < next + len + 2) return null
      return { value: buf.subarray(next, next + len), off: next + len + 2 }
    }
    case '*': {
      const n = Number(line)
      if (n < 0) return { value: null, off: next }
      const items = []
      let o = next
      for (let i = 0; i < n; i++) {
        const r = parseResp(buf, o)
        if (!r) return null
        items.push(r.value)
        o = r.off
      }
      return { value: items, off: o }
    }
    default:
      throw new Error(`RESP: unexpected reply byte ${JSON.stringify(kind)} in ${JSON.stringify(buf.toString('latin1', 0, 200))}`)
  }
}

export class RedisError extends Error {}

function stringify (v) {
  if (Buffer.isBuffer(v)) return v.toString('utf8')
  if (Array.isArray(v)) return v.map(stringify)
  return v
}

/**
 * Sends one command (arguments are strings, numbers or Buffers) over the unix socket and resolves
 * with the reply: strings for simple and bulk strings (Buffers with { buffers: true }), numbers,
 * arrays, null. A Redis error reply rejects with a RedisError.
 */
export function respCommand (sockPath, args, { timeoutMs = 5000, buffers = false } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ path: sockPath })
    let buf = Buffer.alloc(0)
    let done = false
    const finish = (err, value) => {
      if (done) return
      done = true
      clearTimeout(timer)
      sock.destroy()
      if (err) reject(err)
      else resolve(value)
    }
    const timer = setTimeout(() => finish(new Error(`redis ${String(args[0])}: no reply within ${timeoutMs} ms`)), timeoutMs)
    sock.on('connect', () => sock.write(encodeCommand(args)))
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d])
      let r
      try {
        r = parseResp(buf)
      } catch (err) {
        return finish(err)
      }
      if (!r) return
      if (r.value instanceof RedisError) return finish(r.value)
      finish(null, buffers ? r.value : stringify(r.value))
    })
    sock.on('error', (err) => finish(err))
    sock.on('close', () => finish(new Error(`redis ${String(args[0])}: connection closed before a reply`)))
  })
}

// ------------------------------------------------------------------------------------------------
// redis-server

export class Redis {
  constructor ({ persist = false, dir, tcpPort = 0 } = {}) {
    this.persist = persist
    this.ownDir = !dir
    this.dir = dir || makeTmpDir('sigtracker-redis-')
    this.sock = path.join(this.dir, 'redis.sock')
    this.tcpPort = tcpPort // 0: unix socket only
    this.child = null
    this.exit = null
    this.paused = false
    this.log = '' // stdout+stderr of every redis-server process of this object
  }

  /** The --cluster argument for this Redis (unix socket). */
  get url () { return `unix:${this.sock}` }
  /** The redis:// form (only when started with tcp: true). */
  get tcpUrl () {
    if (!this.tcpPort) throw new Error('this Redis has no TCP port (startRedis({ tcp: true }))')
    return `redis://${HOST}:${this.tcpPort}`
  }

  get running () { return Boolean(this.child) && !this.exit }

  args () {
    const a = [
      '--port', String(this.tcpPort),
      '--unixsocket', this.sock,
      '--unixsocketperm', '700',
      '--save', '',
      '--dir', this.dir,
      '--daemonize', 'no',
      '--logfile', '',
      '--loglevel', 'notice'
    ]
    if (this.tcpPort) a.push('--bind', HOST)
    if (this.persist) a.push('--appendonly', 'yes', '--appendfsync', 'always')
    else a.push('--appendonly', 'no')
    return a
  }

  /** Starts redis-server and waits until PING answers PONG. */
  async start () {
    if (this.running) throw new Error('redis-server is already running')
    this.exit = null
    this.paused = false
    const child = spawn(REDIS_BIN, this.args(), { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    children.add(child)
    const onData = (d) => { this.log += d }
    child.stdout.setEncoding('utf8')
    child.stderr.setEncoding('utf8')
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    // Redis must never keep the test process alive: if a teardown is skipped (node:test skips the
    // remaining after hooks once one fails, e.g. when a node crashed), the process still ends and
    // its exit hook kills Redis.
    child.unref()
    child.stdout.unref()
    child.stderr.unref()
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        children.delete(child)
        this.exit = { code, signal }
        resolve(this.exit)
      })
    })
    child.on('error', (err) => { this.log += `\nspawn error: ${err.message}\n` })
    const deadline = Date.now() + REDIS_START_MS
    let lastErr = null
    for (;;) {
      if (this.exit) {
        throw new Error(`redis-server exited during start-up (${JSON.stringify(this.exit)}); ` +
          `args: ${this.args().join(' ')}\nlog:\n${tail(this.log)}`)
      }
      try {
        if (await respCommand(this.sock, ['PING'], { timeoutMs: 1000 }) === 'PONG') return this
      } catch (err) {
        lastErr = err // ENOENT/ECONNREFUSED while starting, LOADING while reading the AOF
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL')
        throw new Error(`redis-server did not answer PING within ${REDIS_START_MS} ms ` +
          `(last: ${lastErr?.message}); log:\n${tail(this.log)}`)
      }
      await sleep(20)
    }
  }

  async _signalAndWait (signal) {
    if (!this.running) return this.exit
    this.child.kill(signal)
    if (this.paused && signal !== 'SIGKILL') this.child.kill('SIGCONT') // a stopped process cannot act on SIGTERM
    this.paused = false
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), REDIS_STOP_MS)
    await this.exited
    clearTimeout(timer)
    return this.exit
  }

  /** SIGTERM (a clean shutdown; with persist the AOF is complete), waits for the exit. */
  stop () { return this._signalAndWait('SIGTERM') }
  /** SIGKILL, waits for the exit. */
  kill () { return this._signalAndWait('SIGKILL') }

  /** SIGSTOP: the process stays, its sockets stay open, nothing is answered. */
  pause () {
    assert.ok(this.running, 'pause(): redis-server is not running')
    this.child.kill('SIGSTOP')
    this.paused = true
  }

  /** SIGCONT after pause(). */
  resume () {
    if (!this.running || !this.paused) return
    this.child.kill('SIGCONT')
    this.paused = false
  }

  /**
   * Stops the server (signal 'SIGTERM' or 'SIGKILL') and starts it again with the same arguments:
   * the same socket path and directory (the data comes back only with persist).
   */
  async restart ({ signal = 'SIGTERM' } = {}) {
    await this._signalAndWait(signal)
    return this.start()
  }

  /** One command over RESP (see respCommand). */
  command (...args) { return respCommand(this.sock, args) }

  /** PUBLISH channel message (message: string or Buffer). Resolves with the receiver count. */
  publish (channel, message) { return respCommand(this.sock, ['PUBLISH', channel, message], { timeoutMs: 20000 }) }

  /** Runs `redis-cli -s <sock> ...args`; resolves with its stdout, trimmed. */
  cli (...args) {
    return new Promise((resolve, reject) => {
      execFile(REDIS_CLI, ['-s', this.sock, ...args.map(String)], { timeout: 10000, maxBuffer: 64 << 20 },
        (err, stdout, stderr) => {
          if (err) reject(new Error(`redis-cli ${args.join(' ')}: ${err.message}\n${stderr}`))
          else resolve(stdout.trim())
        })
    })
  }

  /** Kills the server (if running) and removes its directory. */
  async destroy () {
    if (this.running) await this.kill()
    if (this.ownDir) removeTmpDir(this.dir)
  }
}

/**
 * Starts a private redis-server: `--port 0` (or a free TCP port on 127.0.0.1 with tcp: true),
 * `--unixsocket <tmpdir>/redis.sock --unixsocketperm 700 --save '' --dir <tmpdir>`, and
 * `--appendonly yes` (fsync always) with persist, `no` otherwise. Resolves once PING answers
 * PONG. With start: false the object is only prepared (its url names a socket nobody listens on
 * yet; call start() later).
 */
export async function startRedis ({ persist = false, tcp = false, start = true, dir } = {}) {
  const redis = new Redis({ persist, dir, tcpPort: tcp ? await freePort() : 0 })
  if (start) {
    try {
      await redis.start()
    } catch (err) {
      await redis.destroy()
      throw err
    }
  }
  return redis
}

// ------------------------------------------------------------------------------------------------
// sigtracker nodes

/** The flags that make a node join the cluster of `redis` (a Redis or a URL string). */
export function clusterArgs (redis, extraArgs = [], { nodeTimeout = NODE_TIMEOUT_S } = {}) {
  const url = typeof redis === 'string' ? redis : redis.url
  return ['--cluster', url, '--node-timeout', String(nodeTimeout), ...extraArgs]
}

/**
 * Starts one node (startServer of helpers.mjs: its own port and --db, up once GET /health answers
 * 200) joined to redis. No `t`: the caller stops it (a Cluster does).
 */
export function startNode (redis, extraArgs = [], opts = {}) {
  return startServer({ args: clusterArgs(redis, extraArgs, opts) })
}

/** Starts n nodes at once, all joined to redis, with the same extra flags. */
export function startNodes (n, redis, extraArgs = [], opts = {}) {
  return Promise.all(Array.from({ length: n }, () => startNode(redis, extraArgs, opts)))
}

/**
 * A node started without waiting for /health 200 (`ready: 'any'`: any HTTP answer will do, e.g. a
 * 503 while Redis is unreachable) and/or on a given port (for --reuse-port). It registers with
 * helpers.mjs like any Server, so its clean exit is checked at the end of the file too.
 */
export class ClusterNode extends Server {
  constructor ({ args, port, ready = 200 }) {
    const dir = makeTmpDir('sigtracker-cl-')
    super({ args, dir, dbPath: path.join(dir, 't.db'), port })
    this.ready = ready
  }

  async _spawn () {
    this._stderr = ''
    this.exit = null
    this.checked = false
    const child = spawn(BIN, this.args(), { stdio: ['ignore', 'ignore', 'pipe'], env: serverEnv() })
    this.child = child
    children.add(child)
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (d) => {
      this._stderr += d
      this._stderrAll += d
    })
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        children.delete(child)
        this.exit = { code, signal }
        resolve(this.exit)
      })
    })
    child.on('error', (err) => { this._stderr += `\nspawn error: ${err.message}\n` })
    const deadline = Date.now() + 10000 * SLOW
    for (;;) {
      if (this.exit) {
        const err = new Error(`node exited during start-up (code ${this.exit.code}, signal ` +
          `${this.exit.signal}); args: ${this.args().join(' ')}\nstderr:\n${tail(this._stderr)}`)
        err.exitedEarly = true
        err.stderr = this._stderr
        throw err
      }
      try {
        // On a shared port (--reuse-port) another process may answer: this one must listen too.
        if (listensOn(child.pid, this.port)) {
          const res = await httpGet(this, '/health', { timeoutMs: 1000 })
          if (this.ready === 'any' || res.status === this.ready) {
            this.firstHealth = res.status
            return this
          }
        }
      } catch {}
      if (Date.now() > deadline) {
        child.kill('SIGKILL')
        throw new Error(`node did not answer GET /health (${this.ready}) within ${10000 * SLOW} ms; ` +
          `args: ${this.args().join(' ')}\nstderr:\n${tail(this._stderr)}`)
      }
      await sleep(25)
    }
  }

  cleanup () {
    super.cleanup()
    tmpDirs.delete(this.dir)
  }
}

/**
 * True when process `pid` holds a TCP socket listening on `port` (from /proc: the socket inodes
 * of its descriptors against the LISTEN entries of /proc/net/tcp and tcp6).
 */
export function listensOn (pid, port) {
  const inodes = new Set()
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = ''
    try { text = readFileSync(file, 'utf8') } catch { continue }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      if (f.length < 10 || f[3] !== '0A') continue // 0A: LISTEN
      if (parseInt(f[1].split(':')[1], 16) === port) inodes.add(f[9])
    }
  }
  if (inodes.size === 0) return false
  let fds = []
  try { fds = readdirSync(`/proc/${pid}/fd`) } catch { return false }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (m && inodes.has(m[1])) return true
    } catch {}
  }
  return false
}

function serverEnv () {
  const env = { ...process.env }
  if (SANITIZED) {
    env.ASAN_OPTIONS ??= 'detect_leaks=1:abort_on_error=1'
    env.UBSAN_OPTIONS ??= 'print_stacktrace=1:halt_on_error=1'
  }
  return env
}

/** Starts a ClusterNode (see there): { args (complete, including --cluster), port, ready }. */
export async function startRawNode ({ args, port, ready = 200 }) {
  const node = new ClusterNode({ args, port: port ?? await freePort(), ready })
  try {
    await node._spawn()
  } catch (err) {
    node.checked = true
    node.cleanup()
    throw err
  }
  return node
}

/**
 * Kills a node with SIGKILL and waits for it to go. Marks it judged (the end-of-file check of
 * helpers.mjs would otherwise fail it for not exiting with code 0), after checking that its
 * stderr holds no sanitizer report so far.
 */
export async function killNode (node) {
  assert.ok(node.child && !node.exit, 'killNode: the node is not running')
  node.child.kill('SIGKILL')
  await node.exited
  node.checked = true
  assert.deepEqual(sanitizerFindings(node.stderr), [],
    `sanitizer report from the node on port ${node.port} before it was killed:\n${tail(node.stderr, 20000)}`)
}

/**
 * A Redis and its nodes. teardown() stops every node still running (SIGTERM, clean exit asserted),
 * then Redis; errors are collected and reported together.
 */
export class Cluster {
  constructor (redis, nodes, { extraArgs = [], nodeTimeout = NODE_TIMEOUT_S } = {}) {
    this.redis = redis
    this.nodes = nodes
    this.extraArgs = extraArgs
    this.nodeTimeout = nodeTimeout
  }

  /** Starts one more node with the cluster's flags (plus more), adds it to this.nodes. */
  async addNode (moreArgs = []) {
    const node = await startNode(this.redis, [...this.extraArgs, ...moreArgs], { nodeTimeout: this.nodeTimeout })
    this.nodes.push(node)
    return node
  }

  /** Adopts a node started some other way, so that teardown() stops it. */
  adopt (node) {
    this.nodes.push(node)
    return node
  }

  /** Waits until every running node has Redis "up" and sees `count` live nodes. */
  ready (count = this.nodes.filter((n) => !n.exit).length, timeoutMs = RECOVERY_MS) {
    return waitAllSee(this.nodes.filter((n) => !n.exit), count, timeoutMs)
  }

  /** t: the test context whose after hook calls this (for diagnostics), if any. */
  async teardown (t) {
    const failures = []
    if (this.redis?.paused) this.redis.resume()
    await Promise.all([...new Set(this.nodes)].map(async (node) => {
      try {
        if (node.child && !node.exit && !node.checked) await node.stopChecked()
        else if (node.exit && !node.checked) {
          node.checked = true
          const findings = sanitizerFindings(node.stderr)
          failures.push(`node on port ${node.port} exited by itself (code ${node.exit.code}, signal ${node.exit.signal})` +
            (findings.length ? `; sanitizer report: ${findings[0]}` : '') + `; stderr:\n${tail(node.stderr, 20000)}`)
        }
      } catch (err) {
        failures.push(err.message)
      } finally {
        try { node.cleanup() } catch {}
      }
    }))
    if (this.redis) await this.redis.destroy()
    if (failures.length) {
      // node:test drops an after hook's error when the test itself already failed (typically
      // "connection closed" because the node crashed): say it as a diagnostic too.
      const text = `cluster teardown: ${failures.join('\n\n')}`
      if (t) t.diagnostic(text.length > 8000 ? text.slice(0, 8000) + '...' : text)
      else console.error(text)
      assert.fail(text)
    }
  }
}

/**
 * Starts a Redis and `nodes` nodes joined to it. Options: args (extra node flags), persist (Redis
 * AOF), nodeTimeout, t (a test context: teardown registered with t.after). Without t, call
 * cluster.teardown() yourself (e.g. in after()).
 */
export async function startCluster ({ nodes = 3, args = [], persist = false, tcp = false, nodeTimeout = NODE_TIMEOUT_S, t } = {}) {
  const redis = await startRedis({ persist, tcp })
  const cluster = new Cluster(redis, [], { extraArgs: args, nodeTimeout })
  if (t) t.after(() => cluster.teardown(t))
  const results = await Promise.allSettled(Array.from({ length: nodes }, () => startNode(redis, args, { nodeTimeout })))
  for (const r of results) if (r.status === 'fulfilled') cluster.nodes.push(r.value)
  const failed = results.find((r) => r.status === 'rejected')
  if (failed) {
    if (!t) await cluster.teardown().catch(() => {})
    throw failed.reason
  }
  return cluster
}

// ------------------------------------------------------------------------------------------------
// Polling

/**
 * Calls fn() until it returns a truthy value (returned), every stepMs, for at most timeoutMs. A
 * throw from fn counts as "not yet" (the last one is reported). `opts` may be a number (timeoutMs)
 * or { timeoutMs, stepMs, what } where what is a string or a function giving the failure text.
 */
export async function waitFor (fn, opts = {}) {
  if (typeof opts === 'number') opts = { timeoutMs: opts }
  const { timeoutMs = PROPAGATION_MS, stepMs = 50, what = 'condition' } = opts
  const t0 = Date.now()
  let last
  let lastErr = null
  for (;;) {
    try {
      last = await fn()
      lastErr = null
      if (last) return last
    } catch (err) {
      lastErr = err
    }
    if (Date.now() - t0 > timeoutMs) {
      const desc = typeof what === 'function' ? what() : what
      assert.fail(`${desc}: not reached within ${timeoutMs} ms` +
        (lastErr ? `; last error: ${lastErr.message}` : `; last value: ${inspect(last, { depth: 6, breakLength: Infinity })}`))
    }
    await sleep(stepMs)
  }
}

/** GET /health → status code (throws if there is no HTTP answer within timeoutMs). */
export async function health (node, timeoutMs = 2000 * SLOW) {
  return (await httpGet(node, '/health', { timeoutMs })).status
}

/** Polls GET /health on node until it answers `status`. Returns the elapsed ms. */
export async function waitHealth (node, status, timeoutMs = RECOVERY_MS) {
  const t0 = Date.now()
  let last
  await waitFor(async () => {
    last = await health(node, 1000 * SLOW).catch((err) => `no answer (${err.message})`)
    return last === status
  }, { timeoutMs, what: () => `GET /health on the node on port ${node.port}: wanted ${status}, last ${last}` })
  return Date.now() - t0
}

/** /stats.json's "cluster" object of a node (asserting it is there). */
export async function clusterStats (node) {
  const st = await stats(node)
  assert.ok(st.cluster && typeof st.cluster === 'object',
    `/stats.json of the node on port ${node.port} has no "cluster" object: ${JSON.stringify(st)}`)
  return st.cluster
}

/** Waits until every node of `nodes` reports redis "up" and `count` live nodes. */
export async function waitAllSee (nodes, count, timeoutMs = RECOVERY_MS) {
  for (const node of nodes) {
    let last
    await waitFor(async () => {
      last = await clusterStats(node)
      return last.redis === 'up' && last.nodes === count
    }, { timeoutMs, what: () => `node on port ${node.port} should see redis "up" and ${count} live nodes; last cluster stats ${JSON.stringify(last)}` })
  }
}

// ------------------------------------------------------------------------------------------------
// ST dialect

/** Opens a ws client to node and identifies it (ola, asserted ok). Returns the client; its token is client.token. */
export async function stPeer (node, name, peerId = randomPeerId(name)) {
  const c = await connect(node, { name: `${name}@${node.port}` })
  const ans = await c.ola(peerId)
  c.token = ans.token
  return c
}

/** Ping/pong round trip: everything sent to the client before has arrived afterwards. */
export async function barrier (client) {
  await client.request({ type: 'ping' }, { type: 'pong' })
}

/** An ST announce; fails with the error if the server answers one. */
export async function stAnnounce (client, infoHash, fields = {}) {
  const m = await client.request({ type: 'announce', info_hash: infoHash, ...fields },
    (x) => x?.type === 'announce' || (x?.type === 'error' && x.ref === 'announce'))
  assert.equal(m.type, 'announce', `${client.name}: announce refused: ${JSON.stringify(m)}`)
  return m
}

/**
 * Repeats an ST announce (fields should carry an event, or --min-interval be 0) until check(answer)
 * holds; returns that answer. Fails after timeoutMs with the last answer.
 */
export async function stAnnounceUntil (client, infoHash, fields, check, { timeoutMs = PROPAGATION_MS, what = '' } = {}) {
  let last
  await waitFor(async () => {
    last = await stAnnounce(client, infoHash, fields)
    return check(last)
  }, { timeoutMs, stepMs: 50, what: () => `${client.name}: announce ${what || check.toString()}; last answer ${JSON.stringify(last)}` })
  return last
}

/** An ST scrape; returns the files object. */
export async function stScrape (client, hashes) {
  const m = await client.request({ type: 'scrape', info_hashes: hashes },
    (x) => x?.type === 'scrape' || (x?.type === 'error' && x.ref === 'scrape'))
  assert.equal(m.type, 'scrape', `${client.name}: scrape refused: ${JSON.stringify(m)}`)
  return m.files
}

/** Polls ST scrapes on client until files[ih] deep-equals want; returns the files. */
export async function stScrapeUntil (client, ih, want, { timeoutMs = PROPAGATION_MS, what = '' } = {}) {
  let last
  await waitFor(async () => {
    last = await stScrape(client, [ih])
    try {
      assert.deepEqual(last[ih.toLowerCase()], want)
      return true
    } catch {
      return false
    }
  }, { timeoutMs, what: () => `${client.name}: scrape ${what} should read ${JSON.stringify(want)}; last ${JSON.stringify(last)}` })
  return last
}

/** Sorted peer IDs of an ST announce answer. */
export const peerIds = (ans) => ans.peers.map((p) => p.peer_id).sort()

/**
 * Sends an ST signal from `sender` to peer `toId` every ~150 ms until `receiver` gets one (a
 * receiver on another node may not be known to the sender's node yet: until then the sender gets
 * peer_not_found, which is allowed here; any other error fails). Afterwards both queues are
 * cleaned of the probes and of those peer_not_found errors. Returns the received message.
 */
export async function relayEventually (sender, receiver, toId, { type = 'offer', timeoutMs = PROPAGATION_MS } = {}) {
  const tag = randomBytes(4).toString('hex')
  const isProbe = (m) => m?.type === type && m.payload?.probe === tag
  const isNotFound = (m) => m?.type === 'error' && m.code === 'peer_not_found' && m.to === toId
  let n = 0
  let got = null
  const t0 = Date.now()
  while (!got) {
    sender.sendJson({ type, to: toId, payload: { probe: tag, n: n++ } })
    try {
      got = await receiver.next(isProbe, 150)
    } catch {
      const bad = sender.queue.find((e) => e.json?.type === 'error' && !isNotFound(e.json))
      assert.ok(!bad, `${sender.name}: signal ${type} to ${toId} refused: ${bad?.text}`)
      if (Date.now() - t0 > timeoutMs) {
        assert.fail(`${sender.name} → ${toId} (${receiver.name}): no ${type} delivered within ${timeoutMs} ms ` +
          `(${n} tries); sender queue ${sender.pending()}; receiver queue ${receiver.pending()}`)
      }
    }
  }
  // Let late probes and errors arrive, then drop them.
  await barrier(sender)
  await barrier(receiver)
  const bad = sender.queue.find((e) => e.json?.type === 'error' && !isNotFound(e.json))
  assert.ok(!bad, `${sender.name}: signal ${type} to ${toId} refused: ${bad?.text}`)
  sender.queue = sender.queue.filter((e) => !isNotFound(e.json))
  receiver.queue = receiver.queue.filter((e) => !isProbe(e.json))
  assert.equal(got.from, sender.peerId, `relayed ${type} should come from ${sender.peerId}: ${JSON.stringify(got)}`)
  return got
}

/** Asserts an ST ola answer is the "unavailable" refusal; returns retry_after_ms. */
export function assertUnavailable (ans, peerId) {
  assert.deepEqual(Object.keys(ans).sort(), ['error', 'ok', 'peer_id', 'retry_after_ms', 'type'],
    `an ola refused while Redis is unavailable must be {type, ok:false, peer_id, error:"unavailable", retry_after_ms}: ${JSON.stringify(ans)}`)
  assert.equal(ans.type, 'ola')
  assert.equal(ans.ok, false)
  assert.equal(ans.peer_id, peerId)
  assert.equal(ans.error, 'unavailable', JSON.stringify(ans))
  assert.ok(Number.isInteger(ans.retry_after_ms) && ans.retry_after_ms > 0,
    `retry_after_ms must be a positive integer: ${JSON.stringify(ans)}`)
  return ans.retry_after_ms
}

// ------------------------------------------------------------------------------------------------
// WebTorrent dialect

export const isFailure = (m) => m !== null && typeof m === 'object' && 'failure reason' in m
export const isOffer = (m) => m?.action === 'announce' && 'offer' in m
export const isAnswer = (m) => m?.action === 'announce' && 'answer' in m
export const isAnnounceReply = (m) => m?.action === 'announce' && !('offer' in m) && !('answer' in m) && !isFailure(m)
isFailure.description = 'a failure'
isOffer.description = 'a relayed offer'
isAnswer.description = 'a relayed answer'
isAnnounceReply.description = 'an announce answer'

/** Opens a ws client to node for the WebTorrent dialect; client.peerId is its 20-byte ID. */
export async function wtClient (node, name, peerId) {
  const c = await connect(node, { name: `${name}@${node.port}` })
  c.peerId = peerId
  return c
}

/** A WebTorrent announce; resolves with the answer or the failure (not judged). */
export async function wtAnnounceRaw (client, fields) {
  client.sendJson({ action: 'announce', numwant: 5, uploaded: 0, downloaded: 0, peer_id: client.peerId, ...fields })
  return client.next((m) => isAnnounceReply(m) || isFailure(m))
}

/** A WebTorrent announce that must succeed. */
export async function wtAnnounce (client, fields) {
  const m = await wtAnnounceRaw(client, fields)
  assert.ok(!isFailure(m), `${client.name}: announce failed: ${JSON.stringify(m)}`)
  return m
}

/** A WebTorrent scrape; returns the files object. */
export async function wtScrape (client, hashes) {
  client.sendJson({ action: 'scrape', info_hash: hashes })
  const m = await client.next((x) => x?.action === 'scrape')
  assert.ok(!isFailure(m), `${client.name}: scrape failed: ${JSON.stringify(m)}`)
  return m.files
}

/**
 * WebTorrent barrier: a scrape round trip; then returns (and removes) everything queued. Fails on
 * anything `allow` does not accept.
 */
export async function wtDrain (client, allow = () => false) {
  const ih = randomBytes(20).toString('latin1')
  client.sendJson({ action: 'scrape', info_hash: ih })
  await client.next((m) => m?.action === 'scrape' && m.files && ih in m.files)
  const got = client.queue.splice(0).map((e) => e.json)
  const unexpected = got.filter((m) => !allow(m))
  assert.deepEqual(unexpected, [], `${client.name}: unexpected messages`)
  return got
}

/** Sends msg and expects a failure with exactly { action, info_hash?, failure reason }; returns it. */
export async function wtExpectFailure (client, msg, { action = 'announce', infoHash } = {}) {
  client.sendJson(msg)
  const m = await client.next(isFailure)
  const keys = infoHash !== undefined ? ['action', 'info_hash', 'failure reason'] : ['action', 'failure reason']
  assert.deepEqual(Object.keys(m), keys, `fields of ${JSON.stringify(m)}`)
  assert.equal(m.action, action)
  if (infoHash !== undefined) assert.equal(m.info_hash, infoHash)
  return m
}
