// Every ST error code, with its exact code and ref, and the connection still working afterwards.

import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  closeAll, connect, randomInfoHash, randomPeerId, startServer
} from './helpers.mjs'

let srv
before(async () => {
  // Generous message limits: one connection sends many bad messages in a row.
  srv = await startServer({ args: ['--min-interval', '0', '--msg-burst', '5000', '--msg-rate', '5000'] })
})
after(async () => {
  try {
    await srv.stopChecked()
  } finally {
    srv.cleanup()
  }
})

/**
 * Sends msg (an object, or a string sent as is, or a Buffer sent as a binary message) and asserts
 * that the answer is {"type":"error","code":code,"message":<string>[,"ref":ref]} (ref: undefined
 * means the field must be absent; extra: further fields that must be there, each with its value or
 * a validator function; otherFields: further fields are allowed). Then checks that
 * the connection still works (ping → pong with nothing in between). Returns the error.
 */
async function expectError (client, msg, code, ref, extra = {}, { otherFields = false } = {}) {
  if (typeof msg === 'string' || Buffer.isBuffer(msg)) client.sendRaw(msg)
  else client.sendJson(msg)
  const what = Buffer.isBuffer(msg) ? `<binary ${msg.toString('hex')}>` : typeof msg === 'string' ? msg : JSON.stringify(msg)
  const err = await client.next(undefined)
  assert.equal(err?.type, 'error', `${what}: expected an error, got ${JSON.stringify(err)}`)
  assert.equal(err.code, code, `${what}: wrong code in ${JSON.stringify(err)}`)
  assert.equal(typeof err.message, 'string', `${what}: message must be a string`)
  assert.ok(err.message.length > 0, `${what}: empty message`)
  const keys = ['type', 'code', 'message', ...(ref !== undefined ? ['ref'] : []), ...Object.keys(extra)]
  if (otherFields) {
    for (const k of keys) assert.ok(k in err, `${what}: no field ${k} in ${JSON.stringify(err)}`)
  } else {
    assert.deepEqual(Object.keys(err).sort(), keys.sort(), `${what}: fields of ${JSON.stringify(err)}`)
  }
  if (ref !== undefined) assert.equal(err.ref, ref, `${what}: wrong ref in ${JSON.stringify(err)}`)
  for (const [k, v] of Object.entries(extra)) {
    if (typeof v === 'function') assert.ok(v(err[k]), `${what}: bad ${k} in ${JSON.stringify(err)}`)
    else assert.deepEqual(err[k], v, `${what}: field ${k}`)
  }
  await client.assertQuiet(`after the error for ${what}`)
  assert.ok(client.isOpen, `${what}: the connection was closed`)
  return err
}

describe('ST errors', () => {
  let id // an identified client
  let anon // an ST client that never identifies
  let IH

  before(async () => {
    id = await connect(srv, { name: 'identified' })
    await id.ola(randomPeerId('err'))
    anon = await connect(srv, { name: 'anonymous' })
    anon.sendJson({ type: 'ping' })
    await anon.next({ type: 'pong' })
    IH = randomInfoHash()
  })
  after(() => closeAll(id, anon))

  test('bad_json', async () => {
    for (const text of ['{', 'nope', '{"type":"ping",}', '', ' ', '{"type":"ping"} {}', "{'type':'ping'}",
      '{"type":"ping","x":01}', '{"type":"ping","x":NaN}', '{"type":"pi\\x"}', '{"a":"\\ud800"}']) {
      await expectError(id, text, 'bad_json', undefined)
    }
    // Too deep (the default --max-json-depth is 16).
    await expectError(id, '{"type":"ping","x":' + '['.repeat(40) + ']'.repeat(40) + '}', 'bad_json', undefined)
    // A binary message that is not UTF-8.
    await expectError(id, Buffer.from([0xff, 0xfe, 0x7b]), 'bad_json', undefined)
  })

  test('bad_message: not an object, no type, type not a string', async () => {
    for (const text of ['[]', '[{"type":"ping"}]', '"ping"', '42', 'null', 'true']) {
      await expectError(id, text, 'bad_message', undefined)
    }
    await expectError(id, {}, 'bad_message', undefined)
    await expectError(id, { peer_id: 'x' }, 'bad_message', undefined)
    for (const type of [5, null, ['ola'], { t: 1 }, true]) {
      await expectError(id, { type }, 'bad_message', undefined)
    }
    // The same on a connection whose first message it is (no dialect chosen yet).
    const fresh = await connect(srv, { name: 'fresh' })
    try {
      await expectError(fresh, '{}', 'bad_message', undefined)
      await expectError(fresh, '[1]', 'bad_message', undefined)
    } finally {
      await fresh.close()
    }
  })

  test('unknown_type', async () => {
    await expectError(id, { type: 'hello' }, 'unknown_type', 'hello')
    await expectError(id, { type: 'Ola' }, 'unknown_type', 'Ola')
    await expectError(id, { type: 'pong' }, 'unknown_type', 'pong')
    // Not printable: no ref.
    await expectError(id, { type: 'a\nb' }, 'unknown_type', undefined)
    await expectError(id, { type: '' }, 'unknown_type', undefined)
  })

  test('invalid_field: announce counters and num_want', async () => {
    const ann = (f) => ({ type: 'announce', info_hash: IH, event: 'started', ...f })
    for (const [field, value] of [
      ['left', -1], ['uploaded', -5], ['downloaded', -1],
      ['num_want', 1.5], ['num_want', -1], ['num_want', '5'], ['num_want', true], ['num_want', [1]],
      ['left', 0.5], ['left', '0']
    ]) {
      const err = await expectError(id, ann({ [field]: value }), 'invalid_field', 'announce')
      assert.match(err.message, new RegExp(field), `the message should name ${field}: ${err.message}`)
    }
    // Numbers JSON.stringify cannot write: 1e400 and a 23-digit integer.
    for (const num of ['1e400', '99999999999999999999999', '9223372036854775808', '-1e400']) {
      const text = `{"type":"announce","info_hash":"${IH}","num_want":${num}}`
      const err = await expectError(id, text, 'invalid_field', 'announce')
      assert.match(err.message, /num_want/)
    }
    await expectError(id, ann({ event: 'bogus' }), 'invalid_field', 'announce')
    await expectError(id, ann({ event: 5 }), 'invalid_field', 'announce')
  })

  test('invalid_field: signals (missing payload, bad to)', async () => {
    const other = await connect(srv, { name: 'target' })
    const target = randomPeerId('tgt')
    await other.ola(target)
    try {
      for (const type of ['offer', 'answer', 'candidate']) {
        const err = await expectError(id, { type, to: target }, 'invalid_field', type)
        assert.match(err.message, /payload/)
        for (const to of [undefined, '', 'a b', 5, null, 'x'.repeat(65), 'é', ['x']]) {
          const e2 = await expectError(id, { type, to, payload: {} }, 'invalid_field', type)
          assert.match(e2.message, /"to"/)
        }
      }
      // Nothing reached the target.
      await other.assertQuiet()
    } finally {
      await other.close()
    }
  })

  test('invalid_field: scrape without an array, or above --max-scrape (100)', async () => {
    for (const infoHashes of [undefined, IH, null, {}, 5]) {
      await expectError(id, { type: 'scrape', info_hashes: infoHashes }, 'invalid_field', 'scrape')
    }
    const many = Array.from({ length: 101 }, () => randomInfoHash())
    await expectError(id, { type: 'scrape', info_hashes: many }, 'invalid_field', 'scrape')
    const ans = await id.request({ type: 'scrape', info_hashes: many.slice(0, 100) }, { type: 'scrape' })
    assert.equal(Object.keys(ans.files).length, 100)
  })

  test('invalid_peer_id: empty, 65 characters, bad characters', async () => {
    const c = await connect(srv, { name: 'badid' })
    try {
      for (const peerId of ['', 'x'.repeat(65), 'a b', 'a/b', 'é', 'a+b', 'a\u0000b', 'a"b', 5, null, ['a'], undefined]) {
        await expectError(c, { type: 'ola', peer_id: peerId }, 'invalid_peer_id', 'ola')
      }
      // 64 characters of every allowed kind is fine.
      const ok = ('Az09._~-'.repeat(8)).slice(0, 64)
      assert.equal(ok.length, 64)
      await c.ola(ok)
    } finally {
      await c.close()
    }
  })

  test('invalid_info_hash: 39 characters, non-hex, escaped', async () => {
    const bad = [
      IH.slice(0, 39), IH + '0', 'g'.repeat(40), ' ' + IH.slice(1), '', 42, null, undefined
    ]
    for (const infoHash of bad) {
      await expectError(id, { type: 'announce', info_hash: infoHash, event: 'started' }, 'invalid_info_hash', 'announce')
    }
    // A \u escape that would unescape to 40 hex characters is still refused.
    const escaped = `{"type":"announce","event":"started","info_hash":"\\u0030${IH.slice(1)}"}`
    await expectError(id, escaped, 'invalid_info_hash', 'announce')
    // Scrape: one bad entry among good ones.
    await expectError(id, { type: 'scrape', info_hashes: [IH, IH.slice(0, 39)] }, 'invalid_info_hash', 'scrape')
    await expectError(id, `{"type":"scrape","info_hashes":["\\u0030${IH.slice(1)}"]}`, 'invalid_info_hash', 'scrape')
    // A signal with a bad info_hash.
    await expectError(id, { type: 'offer', to: id.peerId, payload: 1, info_hash: 'zz' }, 'invalid_info_hash', 'offer')
  })

  test('not_identified before ola', async () => {
    for (const msg of [
      { type: 'announce', info_hash: IH, event: 'started' },
      { type: 'scrape', info_hashes: [IH] },
      { type: 'offer', to: id.peerId, payload: {} },
      { type: 'answer', to: id.peerId, payload: {} },
      { type: 'candidate', to: id.peerId, payload: {} }
    ]) {
      await expectError(anon, msg, 'not_identified', msg.type)
    }
    await id.assertQuiet('(nothing relayed from an unidentified peer)')
  })

  test('peer_not_found with "to"', async () => {
    for (const type of ['offer', 'answer', 'candidate']) {
      const to = randomPeerId('ghost')
      await expectError(id, { type, to, payload: { sdp: 'x' } }, 'peer_not_found', type, { to })
    }
  })

  test('wrong_dialect: a WebTorrent message on an ST connection', async () => {
    await expectError(id, { action: 'announce', info_hash: 'x'.repeat(20), peer_id: 'y'.repeat(20) },
      'wrong_dialect', undefined)
    await expectError(id, { action: 'scrape' }, 'wrong_dialect', undefined)
    await expectError(anon, { action: 'announce' }, 'wrong_dialect', undefined)
  })

  test('the identified connection still works after all of it', async () => {
    const ans = await id.request({ type: 'announce', info_hash: IH, event: 'started', left: 1 }, { type: 'announce' })
    assert.equal(ans.incomplete, 1)
    const sc = await id.request({ type: 'scrape', info_hashes: [IH] }, { type: 'scrape' })
    assert.deepEqual(sc, { type: 'scrape', files: { [IH]: { complete: 0, incomplete: 1, downloaded: 0 } } })
  })
})

describe('ST limits', () => {
  test('rate_limited: regular announces sooner than --min-interval', async (t) => {
    const s2 = await startServer({ t, args: ['--min-interval', '20', '--interval', '60'] })
    const c = await connect(s2, { name: 'rl' })
    try {
      await c.ola(randomPeerId('rl'))
      const IH = randomInfoHash()
      const first = await c.request({ type: 'announce', info_hash: IH, event: 'started', left: 1 })
      assert.equal(first.type, 'announce')
      assert.equal(first.min_interval, 20)
      const err = await expectError(c, { type: 'announce', info_hash: IH, left: 1 }, 'rate_limited', 'announce',
        { retry_after_ms: (v) => Number.isInteger(v) && v > 0 && v <= 20000 }, { otherFields: true })
      assert.match(err.message, /min_interval/)
      // Events are not rate limited.
      const done = await c.request({ type: 'announce', info_hash: IH, event: 'completed', left: 0 })
      assert.equal(done.type, 'announce')
      assert.equal(done.complete, 1)
      // Another swarm is independent.
      const other = await c.request({ type: 'announce', info_hash: randomInfoHash(), left: 1 })
      assert.equal(other.type, 'announce')
    } finally {
      await c.close()
    }
  })

  test('too_many_swarms and the per-connection message limit', async (t) => {
    const s3 = await startServer({ t, args: ['--min-interval', '0', '--max-swarms', '2', '--msg-rate', '1', '--msg-burst', '8'] })
    const c = await connect(s3, { name: 'limits' })
    try {
      await c.ola(randomPeerId('lim')) // 1
      for (let i = 0; i < 2; i++) { // 2, 3
        const ans = await c.request({ type: 'announce', info_hash: randomInfoHash(), event: 'started' })
        assert.equal(ans.type, 'announce')
      }
      const err = await c.request({ type: 'announce', info_hash: randomInfoHash(), event: 'started' }) // 4
      assert.equal(err.code, 'too_many_swarms')
      assert.equal(err.ref, 'announce')
      // 4 more messages fit in the bucket of 8 (one refills per second), the rest are refused with
      // one rate_limited error (at most one notice per second), and nothing else.
      for (let i = 0; i < 10; i++) c.sendJson({ type: 'ping' })
      const got = []
      for (;;) {
        const m = await c.next(undefined, 1000).catch(() => null)
        if (!m) break
        got.push(m)
      }
      const pongs = got.filter((m) => m.type === 'pong').length
      const limited = got.filter((m) => m.type === 'error' && m.code === 'rate_limited')
      assert.ok(pongs >= 4 && pongs <= 6, `pongs: ${pongs} in ${JSON.stringify(got)}`)
      assert.equal(limited.length, 1, `one rate_limited notice expected: ${JSON.stringify(got)}`)
      assert.equal(limited[0].ref, undefined)
      assert.ok(limited[0].retry_after_ms > 0)
      assert.equal(got.length, pongs + 1, JSON.stringify(got))
      assert.ok(c.isOpen, 'rate limiting must not close the connection')
    } finally {
      await c.close()
    }
  })
})
