// Abuse: garbage after the upgrade, and the Origin allow-list. A few hundred random inputs from a
// seeded PRNG (set ABUSE_SEED to reproduce a failure; the seed of each case is in the failure
// message): random valid-UTF-8 text messages get error replies and the connection stays open;
// random bytes get errors or a close with a proper close code, never a crash (the process is alive
// and /health answers 200 after each batch). Honest peers keep working throughout.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { OP, SLOW, closeAll, connect, rawWs, sleep, startServer } from './helpers.mjs'
import {
  HonestSt, assertHealthy, connectFrom, prng, statsOf, tryUpgrade, wtBin
} from './abuse-helpers.mjs'

const SEED = Number(process.env.ABUSE_SEED ?? 0x5eed)
const OPEN = ['--msg-rate', '100000', '--msg-burst', '100000']

const ST_CODES = new Set(['bad_json', 'bad_message', 'unknown_type', 'wrong_dialect', 'invalid_field', 'invalid_peer_id',
  'invalid_info_hash', 'not_identified', 'already_identified', 'peer_not_found', 'rate_limited', 'too_many_swarms', 'internal_error'])

/** Close codes a server may send (RFC 6455 section 7.4). */
function properCloseCode (code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)
}

// ------------------------------------------------------------------------------------------------
// Generators

const ALPHABETS = [
  'abcdefghijklmnopqrstuvwxyz0123456789',
  '{}[]":,  {}[]":,\\',
  '{"type":"announce","action":"scrape","info_hash":"0123456789abcdef","peer_id":[1,2],null,true,false,-0.5e9}',
  '\u0000\u0001\u001f\u007f\u0080\u00ff\u0100\u07ff\u0800\uffff\ufffd\u2028\u2029\ud7ff\ue000',
  '\u{1F600}\u{10FFFF}\u{10000}é中文ไทย'
]

/** A random string of valid UTF-8 (no lone surrogates). */
function randomText (r) {
  const len = r.int(4) === 0 ? r.int(2000) : r.int(120)
  let s = ''
  const alpha = r.pick(ALPHABETS)
  const chars = [...alpha]
  for (let i = 0; i < len; i++) {
    if (r.int(10) === 0) {
      let cp = r.int(0x110000)
      if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd
      s += String.fromCodePoint(cp)
    } else {
      s += r.pick(chars)
    }
  }
  return s
}

const ST_TEMPLATES = [
  '{"type":"ping"}',
  '{"type":"ola","peer_id":"someone"}',
  '{"type":"announce","info_hash":"0123456789abcdef0123456789abcdef01234567","event":"started","left":5,"num_want":3}',
  '{"type":"offer","to":"nobody-here","payload":{"type":"offer","sdp":"v=0"}}',
  '{"type":"scrape","info_hashes":["0123456789abcdef0123456789abcdef01234567"]}',
  '{"type":"candidate","to":"nobody-here","payload":null,"info_hash":"0123456789abcdef0123456789abcdef01234567"}'
]
const WT_TEMPLATES = [
  '{"action":"scrape","info_hash":"aaaaaaaaaaaaaaaaaaaa"}',
  '{"action":"announce","info_hash":"bbbbbbbbbbbbbbbbbbbb","peer_id":"-GB0001-garbagegarb","event":"started","left":1,"numwant":2}',
  '{"action":"announce","info_hash":"bbbbbbbbbbbbbbbbbbbb","peer_id":"-GB0001-garbagegarb","to_peer_id":"cccccccccccccccccccc","offer_id":"dddddddddddddddddddd","answer":{"type":"answer","sdp":"v=0"}}',
  '{"action":"announce","info_hash":"bbbbbbbbbbbbbbbbbbbb","peer_id":"-GB0001-garbagegarb","offers":[{"offer":{"type":"offer","sdp":"v=0"},"offer_id":"eeeeeeeeeeeeeeeeeeee"}]}'
]

/** A valid message with a few random characters replaced, inserted or deleted. */
function mutate (r, text) {
  const chars = [...text]
  const n = 1 + r.int(4)
  for (let i = 0; i < n; i++) {
    const at = r.int(chars.length + 1)
    const what = r.int(3)
    const ch = r.pick([...'{}[]":,0123456789abcdefxyz -.\\e'])
    if (what === 0) chars.splice(at, 1, ch)
    else if (what === 1) chars.splice(at, 0, ch)
    else chars.splice(at, 1)
  }
  return chars.join('')
}

/** Random client bytes after the upgrade: raw noise, or frames of random shape. */
function randomBytesCase (r) {
  const kind = r.int(5)
  if (kind === 0) return { kind: 'noise', bytes: r.bytes(1 + r.int(200)) }
  const frames = []
  const count = 1 + r.int(4)
  for (let i = 0; i < count; i++) {
    const opcode = r.int(4) === 0 ? r.int(16) : r.pick([OP.TEXT, OP.BINARY, OP.CONT, OP.PING, OP.PONG, OP.CLOSE])
    let payload
    const p = r.int(4)
    if (p === 0) payload = r.bytes(r.int(140))
    else if (p === 1) payload = Buffer.from(randomText(r).slice(0, 200))
    else if (p === 2) payload = Buffer.from(mutate(r, r.pick(ST_TEMPLATES)))
    else payload = Buffer.from(r.pick(ST_TEMPLATES))
    const clean = kind === 4 // well-formed frames with random payloads: the server must answer
    const op = clean ? r.pick([OP.TEXT, OP.TEXT, OP.BINARY, OP.PING]) : opcode
    if (clean && op === OP.TEXT && p === 0) payload = Buffer.from(randomText(r)) // text must be UTF-8
    if (clean && op === OP.PING) payload = payload.subarray(0, 125)
    if (op === OP.CLOSE && r.int(2) === 0) {
      const code = Buffer.alloc(2)
      code.writeUInt16BE(r.pick([1000, 1001, 1002, 1004, 1005, 1006, 1015, 999, 2000, 3000, 4999, 5000, r.int(65536)]))
      payload = Buffer.concat([code, payload.subarray(0, r.int(20))])
    }
    frames.push({
      fin: clean || r.int(5) !== 0,
      rsv: !clean && r.int(8) === 0 ? 1 + r.int(7) : 0,
      opcode: op,
      payload,
      mask: kind !== 1 || r.int(2) === 0,  // kind 1: some unmasked
      maskKey: r.bytes(4),
      lengthForm: !clean && r.int(10) === 0 ? r.pick([16, 64]) : 'auto'
    })
  }
  let bytes = Buffer.concat(frames.map(buildFrameFrom))
  if (kind === 2) bytes = bytes.subarray(0, r.int(bytes.length + 1)) // cut short
  if (kind === 3) { // flip a few bits
    bytes = Buffer.from(bytes)
    for (let i = 0; i < 3 && bytes.length; i++) bytes[r.int(bytes.length)] ^= 1 << r.int(8)
  }
  return { kind: ['noise', 'frames', 'truncated', 'bitflips', 'clean frames'][kind], bytes, frames: frames.length }
}

function buildFrameFrom ({ fin, rsv, opcode, payload, mask, maskKey, lengthForm }) {
  const len = payload.length
  let form = lengthForm
  if (form === 'auto') form = len < 126 ? 7 : len <= 0xffff ? 16 : 64
  const head = Buffer.alloc(form === 7 ? 2 : form === 16 ? 4 : 10)
  head[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f)
  if (form === 7) head[1] = len
  else if (form === 16) { head[1] = 126; head.writeUInt16BE(len, 2) } else { head[1] = 127; head.writeBigUInt64BE(BigInt(len), 2) }
  if (!mask) return Buffer.concat([head, payload])
  head[1] |= 0x80
  const body = Buffer.alloc(len)
  for (let i = 0; i < len; i++) body[i] = payload[i] ^ maskKey[i & 3]
  return Buffer.concat([head, maskKey, body])
}

// ------------------------------------------------------------------------------------------------

describe('garbage', () => {
  test(`random text messages get error replies and the connection stays open (seed ${SEED})`, async (t) => {
    const srv = await startServer({ t, args: OPEN })
    const honest = await HonestSt.create(srv)
    const st = await connect(srv, { name: 'st-garbage' })
    const wt = await connect(srv, { name: 'wt-garbage' })
    try {
      await st.ola('garbage-st')
      const WIH = wtBin()
      wt.sendJson({ action: 'scrape', info_hash: WIH })
      assert.equal((await wt.next()).action, 'scrape')
      const r = prng(SEED)
      const N = 400
      const BATCH = 50
      for (let b = 0; b < N / BATCH; b++) {
        const cases = []
        for (let i = 0; i < BATCH; i++) {
          const isWt = r.int(2) === 0
          const mutated = r.int(3) === 0
          const text = mutated ? mutate(r, r.pick(isWt ? WT_TEMPLATES : ST_TEMPLATES)) : randomText(r)
          cases.push({ n: b * BATCH + i, isWt, mutated, text })
        }
        for (const c of cases) (c.isWt ? wt : st).sendRaw(c.text)
        // Every message gets exactly one reply, in order.
        for (const c of cases) {
          const client = c.isWt ? wt : st
          const m = await client.next(undefined, 3000 * SLOW).catch((err) => {
            throw new Error(`case ${c.n} (seed ${SEED}): ${err.message}; input ${JSON.stringify(c.text.slice(0, 300))}`)
          })
          const where = `case ${c.n} (seed ${SEED}, ${c.isWt ? 'WebTorrent' : 'ST'}${c.mutated ? ', mutated' : ''}): ` +
            `input ${JSON.stringify(c.text.slice(0, 300))} -> ${JSON.stringify(m)}`
          assert.ok(m && typeof m === 'object', where)
          if (c.isWt) {
            assert.ok(typeof m.action === 'string', where)
            if (!c.mutated) assert.ok(typeof m['failure reason'] === 'string', where)
          } else if (!c.mutated || m.type === 'error') {
            assert.equal(m.type, 'error', where)
            assert.ok(ST_CODES.has(m.code) && typeof m.message === 'string', where)
          }
        }
        assert.ok(st.isOpen && wt.isOpen, `batch ${b}: a garbage connection was closed`)
        await assertHealthy(srv, `after text batch ${b}`)
        if (b % 4 === 1) await honest.check(`after text batch ${b}`)
      }
      // Both connections still do real work.
      assert.deepEqual(await st.request({ type: 'ping' }), { type: 'pong' })
      wt.sendJson({ action: 'scrape', info_hash: WIH })
      assert.equal((await wt.next()).action, 'scrape')
      await honest.check('after the text garbage')
    } finally {
      await closeAll(st, wt, honest.clients)
    }
  })

  test(`random bytes after the upgrade: errors or a proper close, never a crash (seed ${SEED})`, async (t) => {
    const srv = await startServer({ t, args: OPEN })
    const honest = await HonestSt.create(srv)
    try {
      const r = prng(SEED ^ 0xb17e5)
      const N = 300
      const BATCH = 30
      const tally = { closed: 0, open: 0, texts: 0, codes: {} }
      for (let b = 0; b < N / BATCH; b++) {
        const cases = []
        for (let i = 0; i < BATCH; i++) cases.push({ n: b * BATCH + i, ...randomBytesCase(r) })
        await Promise.all(cases.map(async (c) => {
          const ws = await rawWs(srv, { name: `bytes${c.n}` })
          ws.write(c.bytes)
          if (c.kind === 'clean frames') {
            // Well-formed messages: one reply each (an error, or a pong for a ping), and no close.
            const replied = () => ws.frames.filter((f) => f.opcode === OP.TEXT || f.opcode === OP.PONG || f.opcode === OP.CLOSE).length
            const deadline = Date.now() + 2000 * SLOW
            while (replied() < c.frames && !ws.ended && Date.now() < deadline) await sleep(5)
          }
          // Give the server a moment to answer or close.
          const close = await ws.nextFrame((f) => f.opcode === OP.CLOSE, 150 * SLOW).catch(() => null)
          const where = `case ${c.n} (seed ${SEED}, ${c.kind}): bytes ${c.bytes.toString('hex').slice(0, 400)}`
          for (const f of ws.frames) {
            assert.equal(f.masked, false, `${where}: masked server frame`)
            assert.equal(f.rsv, 0, `${where}: RSV bits in a server frame`)
            assert.ok([OP.TEXT, OP.PONG, OP.CLOSE].includes(f.opcode), `${where}: server sent opcode ${f.opcode}`)
            if (f.opcode === OP.TEXT) {
              tally.texts++
              assert.ok(f.json && (f.json.type || f.json.action), `${where}: server text ${JSON.stringify(f.text)}`)
            }
          }
          if (c.kind === 'clean frames') {
            assert.equal(close, null, `${where}: well-formed frames closed with ${close && close.code}`)
            const replies = ws.frames.filter((f) => f.opcode === OP.TEXT || f.opcode === OP.PONG).length
            assert.ok(replies >= c.frames, `${where}: ${replies} replies to ${c.frames} well-formed messages`)
            tally.clean = (tally.clean || 0) + 1
          }
          if (close) {
            tally.closed++
            tally.codes[close.code] = (tally.codes[close.code] || 0) + 1
            assert.ok(properCloseCode(close.code), `${where}: close code ${close.code}`)
            // The close is the last thing the server sends, then it ends the stream.
            ws.sendFrame({ opcode: OP.CLOSE, payload: Buffer.from([close.code >> 8, close.code & 0xff]) })
            await ws.waitEnd(3000 * SLOW).catch((err) => { throw new Error(`${where}: ${err.message}`) })
            assert.deepEqual(ws.buf.length, 0, `${where}: bytes after the close frame`)
          } else {
            tally.open++
            ws.destroy()
          }
        }))
        await assertHealthy(srv, `after byte batch ${b}`)
        if (b % 3 === 2) await honest.check(`after byte batch ${b}`)
      }
      t.diagnostic(`random bytes: ${JSON.stringify(tally)}`)
      assert.ok(tally.closed > N / 4, `only ${tally.closed} of ${N} cases led to a close: the generator is too tame`)
      await honest.check('after the byte garbage')
      const st = await statsOf(srv)
      assert.ok(st.protocol_errors > 0)
      assert.ok(st.connections <= 3 + 1, `connections left open: ${JSON.stringify(st)}`)
    } finally {
      await closeAll(honest.clients)
    }
  })

  test('--allow-origin https://good.example: other origins and no origin get 403; the good one works', async (t) => {
    const srv = await startServer({ t, args: ['--allow-origin', 'https://good.example'] })
    const good = { Origin: 'https://good.example' }
    const honest = await HonestSt.create(srv, { headers: good })
    try {
      for (const origin of ['https://evil.example', 'https://good.example.evil.example', 'https://good.exampl',
        'http://good.example', 'null', '']) {
        const r = await tryUpgrade(srv, { headers: { Origin: origin } })
        assert.equal(r.status, 403, `Origin ${JSON.stringify(origin)}: ${r.status}`)
        assert.match(await r.closed, /origin not allowed/)
      }
      const none = await tryUpgrade(srv, {})
      assert.equal(none.status, 403, 'no Origin at all')
      await assert.rejects(connectFrom(srv, { headers: { Origin: 'https://evil.example' } }), /Unexpected server response: 403/)
      // The allowed origin, in any case.
      for (const origin of ['https://good.example', 'HTTPS://GOOD.EXAMPLE']) {
        const c = await connectFrom(srv, { headers: { Origin: origin }, name: `origin ${origin}` })
        assert.deepEqual(await c.request({ type: 'ping' }), { type: 'pong' })
        await c.close()
      }
      // Plain HTTP is not subject to it.
      const st = await statsOf(srv)
      assert.ok(st.connections >= 3)
      await honest.check('with refused origins')
      await sleep(10)
    } finally {
      await closeAll(honest.clients)
    }
  })
})
