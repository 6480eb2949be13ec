// Logs and the console (issue 11): JSON and logfmt lines, client events at debug with address and
// peer ID, the start-up line's URLs, the activity summary, the rate limit on lines a client
// causes, GET /, and refused messages in /stats.json.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  SLOW, binStr, binToHex, closeAll, connect, httpGet, nastyId, rawHttp, sleep, startServer, stats
} from './helpers.mjs'

const TS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
const LEVELS = new Set(['debug', 'info', 'warn', 'error'])

/** Every complete stderr line, parsed; fails on a line that is not one JSON object. */
function jsonLines (srv) {
  const lines = srv.stderr.split('\n')
  lines.pop() // the part after the last newline (empty, or a line being written)
  return lines.map((l) => {
    let v
    try {
      v = JSON.parse(l)
    } catch {
      assert.fail(`stderr line is not JSON: ${JSON.stringify(l)}`)
    }
    assert.equal(typeof v, 'object', l)
    assert.match(v.ts, TS, l)
    assert.ok(LEVELS.has(v.level), l)
    assert.equal(typeof v.msg, 'string', l)
    return v
  })
}

/** Waits until a parsed line satisfies pred; returns it. */
async function waitForLine (srv, pred, what, timeoutMs = 3000 * SLOW) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const hit = jsonLines(srv).find(pred)
    if (hit) return hit
    if (Date.now() > deadline) assert.fail(`no log line ${what}; stderr:\n${srv.stderr.slice(-4000)}`)
    await sleep(25)
  }
}

describe('JSON lines at debug', () => {
  test('start-up line, HTTP, connections, refusals, summary', async (t) => {
    const srv = await startServer({
      t, args: ['--log-format', 'json', '--log-level', 'debug', '--log-summary', '1']
    })
    const base = `http://127.0.0.1:${srv.port}`
    const start = await waitForLine(srv, (l) => /^sigtracker \S+ started$/.test(l.msg), 'start-up')
    assert.equal(start.level, 'info')
    assert.equal(start.ws, `ws://127.0.0.1:${srv.port}/`)
    assert.equal(start.health, `${base}/health`)
    assert.equal(start.stats, `${base}/stats.json`)
    assert.equal(start.metrics, `${base}/metrics`)
    assert.equal(start.dashboard, `${base}/dashboard`)

    // GET / names the endpoints; it and a 404 are logged with path and status.
    const home = await httpGet(srv, '/')
    assert.equal(home.status, 200)
    assert.match(home.headers['content-type'], /^text\/html/)
    assert.match(home.body, /^<!DOCTYPE html>/)
    assert.match(home.body, /<a href="\/health">/)
    assert.match(home.body, /<a href="\/stats.json">/)
    assert.equal((await httpGet(srv, '/nope?a=b')).status, 404)
    // Characters a client chooses are escaped, never break the line (the request parser takes
    // visible ASCII only; the formatter's handling of every byte is fuzzed: fuzz/fuzz_logfmt.c).
    const odd = await rawHttp(srv, 'GET /x"\\y}{ HTTP/1.1\r\nHost: a\r\n\r\n')
    assert.equal(odd.status, 404)
    await waitForLine(srv, (l) => l.msg === 'HTTP request' && l.path === '/' && l.status === 200 &&
      l.addr === '127.0.0.1' && l.method === 'GET', 'GET / 200')
    await waitForLine(srv, (l) => l.msg === 'HTTP request' && l.path === '/nope' &&
      l.status === 404, 'GET /nope 404')
    await waitForLine(srv, (l) => l.msg === 'HTTP request' && l.path === '/x"\\y}{' &&
      l.status === 404, 'GET of an odd path')

    // ST: open, a refused message with its code and the peer ID, a close with its reason.
    const st = await connect(srv, { name: 'st' })
    await st.ola('alice')
    st.sendRaw('{not json')
    assert.equal((await st.next()).code, 'bad_json')
    st.sendJson({ type: 'no_such_type' })
    assert.equal((await st.next()).code, 'unknown_type')
    await waitForLine(srv, (l) => l.msg === 'HTTP request' && l.status === 101, 'upgrade 101')
    await waitForLine(srv, (l) => l.msg === 'connection opened' && l.addr === '127.0.0.1', 'open')
    await waitForLine(srv, (l) => l.msg === 'refused a message' && l.code === 'bad_json' &&
      l.peer === 'alice', 'bad_json refusal')
    await waitForLine(srv, (l) => l.msg === 'refused a message' && l.code === 'unknown_type' &&
      l.peer === 'alice', 'unknown_type refusal')

    // WebTorrent: a binary peer ID is logged as hex, so the line stays valid.
    const wt = await connect(srv, { name: 'wt' })
    const pid = nastyId()
    const ih = binStr(Array.from({ length: 20 }, (_, i) => i + 1))
    wt.sendJson({ action: 'announce', info_hash: ih, peer_id: pid, numwant: 0, event: 'started' })
    await wt.next((m) => m.action === 'announce')
    wt.sendJson({ action: 'bogus', info_hash: ih })
    assert.match((await wt.next())['failure reason'], /invalid action/)
    await waitForLine(srv, (l) => l.msg === 'refused a message' && l.code === 'unknown_type' &&
      l.peer === binToHex(pid), 'WebTorrent refusal with a hex peer ID')

    await closeAll(st, wt)
    await waitForLine(srv, (l) => l.msg === 'connection closed' && l.peer === 'alice' &&
      l.reason === 'client_close' && l.code === 1000, 'close of alice')
    await waitForLine(srv, (l) => l.msg === 'connection closed' && l.peer === binToHex(pid),
      'close of the WebTorrent peer')

    // bad_json is a protocol error, and every refusal is counted under its code.
    const s = await stats(srv)
    assert.equal(s.protocol_errors, 1)
    assert.equal(s.refused_messages.bad_json, 1)
    assert.equal(s.refused_messages.unknown_type, 2)
    for (const v of Object.values(s.refused_messages)) assert.equal(typeof v, 'number')

    // The summary, every --log-summary seconds.
    const sum = await waitForLine(srv, (l) => /^activity in the last 1 s$/.test(l.msg) &&
      l.level === 'info', 'summary')
    for (const k of ['connections', 'peers', 'swarms', 'messages_in', 'refused', 'dropped']) {
      assert.equal(typeof sum[k], 'number', `summary lacks ${k}: ${JSON.stringify(sum)}`)
    }
    jsonLines(srv)
  })

  test('a flood of bad messages from one address makes few lines and a suppression notice', async (t) => {
    const srv = await startServer({
      t, args: ['--log-format', 'json', '--log-level', 'debug', '--msg-burst', '100000',
        '--msg-rate', '100000']
    })
    const c = await connect(srv, { name: 'flood' })
    const N = 2000
    const started = Date.now()
    for (let i = 0; i < N; i++) c.sendRaw('{')
    for (let i = 0; i < N; i++) assert.equal((await c.next()).code, 'bad_json')
    const notice = await waitForLine(srv, (l) => /^suppressed \d+ similar messages$/.test(l.msg) &&
      l.kind === 'refused', 'suppression notice')
    assert.equal(notice.addr, '127.0.0.1')
    assert.ok(notice.suppressed > 0)
    const seconds = (Date.now() - started) / 1000
    const refusals = jsonLines(srv).filter((l) => l.msg === 'refused a message').length
    // A burst of 20, then 2 a second.
    assert.ok(refusals <= 20 + 2 * Math.ceil(seconds + 1), `${refusals} refusal lines in ${seconds} s`)
    const total = jsonLines(srv).filter((l) => /^suppressed/.test(l.msg))
      .reduce((n, l) => n + l.suppressed, 0)
    // Every bad message is either a line or counted in a notice (the last may still be due).
    await sleep(1500)
    const total2 = jsonLines(srv).filter((l) => /^suppressed/.test(l.msg) && l.kind === 'refused')
      .reduce((n, l) => n + l.suppressed, 0)
    assert.ok(total2 >= total)
    assert.equal(refusals + total2, N)
    const s = await stats(srv)
    assert.equal(s.refused_messages.bad_json, N)
    assert.equal(s.protocol_errors, N)
    await c.close()
  })
})

describe('text lines (logfmt)', () => {
  const VALUE = '("(?:[^"\\\\]|\\\\.)*"|[^\\s"=\\\\]*)'
  const LINE = new RegExp(`^ts=\\S+ level=(debug|info|warn|error)( [A-Za-z0-9_.-]+=${VALUE})*$`)

  test('every line is logfmt, the default format', async (t) => {
    const srv = await startServer({ t, args: ['--log-level', 'debug'] })
    const c = await connect(srv, { name: 'st' })
    await c.ola('bob')
    c.sendRaw('{"type":"announce","info_hash":"zz"}\n')
    assert.equal((await c.next()).code, 'invalid_info_hash')
    assert.equal((await httpGet(srv, '/health')).status, 200)
    await c.close()
    const deadline = Date.now() + 3000 * SLOW
    while (!/reason=client_close/.test(srv.stderr) && Date.now() < deadline) await sleep(25)
    const lines = srv.stderr.split('\n')
    lines.pop()
    for (const l of lines) assert.match(l, LINE)
    assert.ok(lines.some((l) => l.includes(` ws=ws://127.0.0.1:${srv.port}/ `)), 'start-up URLs')
    assert.ok(lines.some((l) => /msg="refused a message" addr=127\.0\.0\.1 peer=bob code=invalid_info_hash$/.test(l)))
    assert.ok(lines.some((l) => /msg="HTTP request" addr=127\.0\.0\.1 method=GET path=\/health status=200$/.test(l)))
    assert.ok(lines.some((l) => /msg="connection closed" addr=127\.0\.0\.1 peer=bob reason=client_close seconds=\d+ code=1000$/.test(l)))
  })
})
