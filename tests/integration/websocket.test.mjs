// RFC 6455 framing and the HTTP side, with hand-made requests and frames over plain TCP.

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import {
  HOST, OP, buildFrame, closePayload, connect, httpGet, rawHttp, rawWs, sleep, startServer
} from './helpers.mjs'

const MAX_MESSAGE = 1024

let srv
before(async () => {
  srv = await startServer({ args: ['--max-message', String(MAX_MESSAGE)] })
})
after(async () => {
  try {
    await srv.stopChecked()
  } finally {
    srv.cleanup()
  }
})

const PING = '{"type":"ping"}'

/**
 * Expects the server to fail the connection: {"type":"bye","reason":"protocol_error"}, a close
 * frame with `code`, then the end of the TCP stream.
 */
async function expectFail (raw, code) {
  const { code: got, before: frames } = await raw.expectClose()
  assert.equal(got, code, `close code ${got}, expected ${code}`)
  const texts = frames.filter((f) => f.opcode === OP.TEXT).map((f) => f.json)
  assert.deepEqual(texts, [{ type: 'bye', reason: 'protocol_error' }])
  assert.deepEqual(frames.filter((f) => f.opcode !== OP.TEXT).map((f) => f.opcode), [])
}

/** A text message padded with spaces inside the JSON to exactly n bytes. */
function pingOfSize (n) {
  const base = '{"type":"ping","pad":""}'
  return base.slice(0, -2) + 'x'.repeat(n - base.length) + '"}'
}

describe('WebSocket framing', () => {
  test('a text message in 3 fragments is reassembled', async () => {
    const raw = await rawWs(srv)
    raw.sendFrame({ fin: false, opcode: OP.TEXT, payload: '{"type"' })
    raw.sendFrame({ fin: false, opcode: OP.CONT, payload: ':"pi' })
    raw.sendFrame({ fin: true, opcode: OP.CONT, payload: 'ng"}' })
    assert.deepEqual(await raw.nextJson(), { type: 'pong' })
    // A UTF-8 character split across fragments is fine.
    const msg = Buffer.from('{"type":"ping","x":"€ ☃"}')
    const cut = msg.indexOf(Buffer.from('€')) + 1
    raw.sendFrame({ fin: false, opcode: OP.TEXT, payload: msg.subarray(0, cut) })
    raw.sendFrame({ fin: true, opcode: OP.CONT, payload: msg.subarray(cut) })
    assert.deepEqual(await raw.nextJson(), { type: 'pong' })
    raw.destroy()
  })

  test('control frames between fragments are handled at once', async () => {
    const raw = await rawWs(srv)
    raw.sendFrame({ fin: false, opcode: OP.TEXT, payload: '{"ty' })
    raw.sendFrame({ opcode: OP.PING, payload: 'abc' })
    raw.sendFrame({ fin: false, opcode: OP.CONT, payload: 'pe":"pi' })
    raw.sendFrame({ opcode: OP.PONG, payload: 'unsolicited' })
    raw.sendFrame({ fin: true, opcode: OP.CONT, payload: 'ng"}' })
    const first = await raw.nextFrame()
    assert.equal(first.opcode, OP.PONG)
    assert.equal(first.payload.toString(), 'abc')
    const second = await raw.nextFrame()
    assert.equal(second.opcode, OP.TEXT)
    assert.deepEqual(second.json, { type: 'pong' })
    raw.destroy()
  })

  test('ping → pong with the same payload', async () => {
    const raw = await rawWs(srv)
    for (const payload of [Buffer.alloc(0), Buffer.from('hello'), randomBytes(125)]) {
      raw.sendFrame({ opcode: OP.PING, payload })
      const f = await raw.nextFrame()
      assert.equal(f.opcode, OP.PONG)
      assert.equal(f.fin, true)
      assert.equal(f.masked, false)
      assert.ok(f.payload.equals(payload), `pong payload ${f.payload.toString('hex')} != ${payload.toString('hex')}`)
    }
    raw.destroy()
  })

  test('frames split byte by byte, and several frames in one write', async () => {
    const raw = await rawWs(srv)
    const bytes = buildFrame({ opcode: OP.TEXT, payload: PING })
    for (const b of bytes) {
      raw.write(Buffer.from([b]))
      await sleep(2)
    }
    assert.deepEqual(await raw.nextJson(), { type: 'pong' })
    raw.write(Buffer.concat([0, 1, 2].map(() => buildFrame({ opcode: OP.TEXT, payload: PING }))))
    for (let i = 0; i < 3; i++) assert.deepEqual(await raw.nextJson(), { type: 'pong' })
    // A 16-bit extended length.
    raw.sendText(pingOfSize(500))
    assert.deepEqual(await raw.nextJson(), { type: 'pong' })
    raw.destroy()
  })

  test('a binary frame holding UTF-8 JSON is accepted; one with other bytes gets bad_json', async () => {
    const raw = await rawWs(srv)
    raw.sendFrame({ opcode: OP.BINARY, payload: PING })
    assert.deepEqual(await raw.nextJson(), { type: 'pong' })
    raw.sendFrame({ opcode: OP.BINARY, payload: Buffer.from([0x7b, 0xff, 0x7d]) })
    const err = await raw.nextJson()
    assert.equal(err.type, 'error')
    assert.equal(err.code, 'bad_json')
    await raw.roundTrip()
    raw.destroy()
  })

  test('close handshake: the server echoes 1000 and closes TCP', async () => {
    const raw = await rawWs(srv)
    await raw.roundTrip()
    raw.sendFrame({ opcode: OP.CLOSE, payload: closePayload(1000, 'done') })
    const { code, before: frames } = await raw.expectClose()
    assert.equal(code, 1000)
    assert.deepEqual(frames, [], 'nothing but the close frame is expected')

    // An empty close is answered with 1000; an application code is echoed.
    const r2 = await rawWs(srv)
    r2.sendFrame({ opcode: OP.CLOSE })
    assert.equal((await r2.expectClose()).code, 1000)
    const r3 = await rawWs(srv)
    r3.sendFrame({ opcode: OP.CLOSE, payload: closePayload(4001) })
    assert.equal((await r3.expectClose()).code, 4001)
  })

  test('a ws client can close normally', async () => {
    const c = await connect(srv)
    await c.request({ type: 'ping' }, { type: 'pong' })
    const info = await c.close(1000)
    assert.equal(info.code, 1000)
  })

  test('an unmasked frame → 1002', async () => {
    const raw = await rawWs(srv)
    raw.sendFrame({ opcode: OP.TEXT, payload: PING, mask: false })
    await expectFail(raw, 1002)
  })

  test('RSV bits → 1002', async () => {
    for (const rsv of [4, 2, 1]) {
      const raw = await rawWs(srv)
      raw.sendFrame({ opcode: OP.TEXT, payload: PING, rsv })
      await expectFail(raw, 1002)
    }
  })

  test('unknown opcodes → 1002', async () => {
    for (const opcode of [0x3, 0x7, 0xB, 0xF]) {
      const raw = await rawWs(srv)
      raw.sendFrame({ opcode, payload: PING })
      await expectFail(raw, 1002)
    }
  })

  test('invalid UTF-8 in a text message → 1007', async () => {
    const bad = [
      [0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0x80]
    ]
    for (const bytes of bad) {
      const raw = await rawWs(srv)
      raw.sendFrame({ opcode: OP.TEXT, payload: Buffer.concat([Buffer.from('{"type":"ping","x":"'), Buffer.from(bytes), Buffer.from('"}')]) })
      await expectFail(raw, 1007)
    }
    // Spread over fragments.
    const raw = await rawWs(srv)
    raw.sendFrame({ fin: false, opcode: OP.TEXT, payload: Buffer.from([0x7b, 0xe2]) })
    raw.sendFrame({ fin: true, opcode: OP.CONT, payload: Buffer.from([0x28, 0x7d]) })
    await expectFail(raw, 1007)
  })

  test(`a message over --max-message (${MAX_MESSAGE}) → 1009; exactly the limit is fine`, async () => {
    const ok = await rawWs(srv)
    const exact = pingOfSize(MAX_MESSAGE)
    assert.equal(Buffer.byteLength(exact), MAX_MESSAGE)
    ok.sendText(exact)
    assert.deepEqual(await ok.nextJson(), { type: 'pong' })
    ok.destroy()

    // Exactly the limit in 3 fragments.
    const fr = await rawWs(srv)
    const m3 = pingOfSize(MAX_MESSAGE)
    fr.sendFrame({ fin: false, opcode: OP.TEXT, payload: m3.slice(0, 300) })
    fr.sendFrame({ fin: false, opcode: OP.CONT, payload: m3.slice(300, 700) })
    fr.sendFrame({ fin: true, opcode: OP.CONT, payload: m3.slice(700) })
    assert.deepEqual(await fr.nextJson(), { type: 'pong' })
    fr.destroy()

    const one = await rawWs(srv)
    one.sendText(pingOfSize(MAX_MESSAGE + 1))
    await expectFail(one, 1009)

    const frag = await rawWs(srv)
    const big = pingOfSize(1200)
    frag.sendFrame({ fin: false, opcode: OP.TEXT, payload: big.slice(0, 400) })
    frag.sendFrame({ fin: false, opcode: OP.CONT, payload: big.slice(400, 800) })
    frag.sendFrame({ fin: true, opcode: OP.CONT, payload: big.slice(800) })
    await expectFail(frag, 1009)

    // A header announcing a huge payload is refused before any payload arrives.
    const huge = await rawWs(srv)
    const head = Buffer.alloc(14)
    head[0] = 0x81
    head[1] = 0x80 | 127
    head.writeBigUInt64BE(1n << 40n, 2)
    huge.write(head)
    await expectFail(huge, 1009)
  })

  test('a frame over --max-frame → 1009, while fragments under it may add up', async (t) => {
    const s2 = await startServer({ t, args: ['--max-frame', '200', '--max-message', '1024'] })
    const ok = await rawWs(s2)
    const msg = pingOfSize(600)
    for (let i = 0; i < 3; i++) {
      ok.sendFrame({ fin: i === 2, opcode: i ? OP.CONT : OP.TEXT, payload: msg.slice(i * 200, (i + 1) * 200) })
    }
    assert.deepEqual(await ok.nextJson(), { type: 'pong' })
    ok.destroy()
    const big = await rawWs(s2)
    big.sendText(pingOfSize(201))
    await expectFail(big, 1009)
  })

  test('continuation without a start, or a new message inside a fragmented one → 1002', async () => {
    const a = await rawWs(srv)
    a.sendFrame({ fin: true, opcode: OP.CONT, payload: PING })
    await expectFail(a, 1002)
    const b = await rawWs(srv)
    b.sendFrame({ fin: false, opcode: OP.CONT, payload: '{' })
    await expectFail(b, 1002)
    const c = await rawWs(srv)
    c.sendFrame({ fin: false, opcode: OP.TEXT, payload: '{"type":' })
    c.sendFrame({ fin: true, opcode: OP.TEXT, payload: PING })
    await expectFail(c, 1002)
  })

  test('bad control frames → 1002 (fragmented, too long, bad close payloads)', async () => {
    const cases = [
      { fin: false, opcode: OP.PING, payload: 'x' },
      { opcode: OP.PING, payload: Buffer.alloc(126) },
      { opcode: OP.CLOSE, payload: Buffer.from([0x03]) },
      { opcode: OP.CLOSE, payload: closePayload(1005) },
      { opcode: OP.CLOSE, payload: closePayload(999) },
      { opcode: OP.CLOSE, payload: closePayload(1015) }
    ]
    for (const frame of cases) {
      const raw = await rawWs(srv)
      raw.sendFrame(frame)
      await expectFail(raw, 1002)
    }
    const raw = await rawWs(srv)
    raw.sendFrame({ opcode: OP.CLOSE, payload: closePayload(1000, Buffer.from([0xff])) })
    await expectFail(raw, 1007)
  })
})

describe('HTTP', () => {
  test('GET /health → 200', async () => {
    const res = await httpGet(srv, '/health')
    assert.equal(res.status, 200)
    assert.equal(res.body, 'ok\n')
  })

  test('GET /stats.json → valid JSON', async () => {
    const res = await httpGet(srv, '/stats.json')
    assert.equal(res.status, 200)
    assert.match(res.headers['content-type'], /^application\/json/)
    const st = JSON.parse(res.body)
    assert.equal(typeof st, 'object')
    assert.ok(Number.isInteger(st.connections))
  })

  test('a plain GET of another path → 404', async () => {
    for (const p of ['/x', '//', '/health/x', '/stats.jsonx']) {
      const res = await rawHttp(srv, `GET ${p} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)
      assert.equal(res.status, 404, `${p}: ${res.raw}`)
    }
  })

  test('a plain GET / → 200, a page linking the endpoints', async () => {
    const res = await rawHttp(srv, `GET / HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)
    assert.equal(res.status, 200, res.raw)
    assert.match(res.headers['content-type'], /^text\/html; charset=utf-8$/)
    assert.match(res.body, /<a href="\/health">/)
    assert.match(res.body, /<a href="\/stats.json">/)
  })

  test('bad Sec-WebSocket-Version → 426 naming version 13', async () => {
    for (const version of ['8', '12', '14', '']) {
      const req = `GET / HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: ${version}\r\n\r\n`
      const res = await rawHttp(srv, req)
      assert.equal(res.status, 426, `version "${version}": ${res.raw}`)
      assert.equal(res.headers['sec-websocket-version'], '13')
    }
  })

  test('other bad requests: POST → 405, missing key → 400, garbage → 400', async () => {
    assert.equal((await rawHttp(srv, `POST /health HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\n\r\n`)).status, 405)
    const noKey = `GET / HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Version: 13\r\n\r\n'
    assert.equal((await rawHttp(srv, noKey)).status, 400)
    assert.equal((await rawHttp(srv, 'HELLO\r\n\r\n')).status, 400)
  })

  test('upgrade headers as browsers send them (Firefox: "Connection: keep-alive, Upgrade")', async () => {
    const raw = await rawWs(srv, {
      headers: {
        Connection: 'keep-alive, Upgrade',
        Upgrade: 'WebSocket',
        Origin: 'https://example.org',
        'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits',
        'User-Agent': 'Mozilla/5.0'
      }
    })
    assert.equal(raw.response.headers['sec-websocket-extensions'], undefined, 'no extension is negotiated')
    await raw.roundTrip()
    raw.destroy()
  })

  test('any URL path is accepted for the upgrade', async () => {
    for (const p of ['/', '/announce', '/a/b/c', '/x?info_hash=1&y=%20', '/%41']) {
      const raw = await rawWs(srv, { path: p })
      await raw.roundTrip()
      raw.destroy()
      const c = await connect(srv, { path: p })
      await c.request({ type: 'ping' }, { type: 'pong' })
      await c.close()
    }
  })
})
