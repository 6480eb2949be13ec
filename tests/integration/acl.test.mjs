// Access lists (--allowlist, --denylist) on the real binary: refused announces and scrapes in both
// dialects with the connection staying open, refusals counted by reason, a reload that removes a
// swarm's peers with every count following, and malformed lists refused at start and on reload.

import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import {
  MSG_TIMEOUT_MS, binToHex, closeAll, connect, randomBinId, randomInfoHash, randomPeerId,
  logMessages, runBinary, sleep, startServer, stats, waitForStats
} from './helpers.mjs'

const dir = mkdtempSync(path.join(os.tmpdir(), 'sigtracker-acl-'))
after(() => rmSync(dir, { recursive: true, force: true }))

let fileNo = 0
function writeList (text) {
  const p = path.join(dir, `l${++fileNo}.txt`)
  writeFileSync(p, text)
  return p
}

const isFailure = (m) => m !== null && typeof m === 'object' && 'failure reason' in m
isFailure.description = 'a failure'

/** A WebTorrent announce (20-byte binary strings); returns the answer or the failure. */
async function wtAnnounce (client, infoHash, peerId, extra = {}) {
  client.sendJson({
    action: 'announce', info_hash: infoHash, peer_id: peerId, numwant: 5, uploaded: 0,
    downloaded: 0, left: 10, event: 'started', offers: [], ...extra
  })
  return client.next((m) => m?.action === 'announce' && (isFailure(m) || 'complete' in m))
}

async function reload (srv, { refused = false } = {}) {
  const before = await stats(srv)
  const key = refused ? 'config_reload_failures' : 'config_reloads'
  srv.child.kill('SIGHUP')
  return waitForStats(srv, (s) => s[key] === before[key] + 1, { what: `${key} + 1` })
}

async function waitLog (srv, re) {
  const deadline = Date.now() + MSG_TIMEOUT_MS
  while (!re.test(logMessages(srv.stderr))) {
    if (Date.now() > deadline) assert.fail(`no log line matching ${re}; stderr:\n${srv.stderr}`)
    await sleep(20)
  }
}

describe('an allowlist refuses everything else, in both dialects, without closing', () => {
  const allowedBin = randomBinId()
  const refusedBin = randomBinId()
  const allowedHex = randomInfoHash()
  const refusedHex = randomInfoHash()
  let srv
  test('start with an allowlist of two infohashes', async () => {
    const list = writeList(`# served here\n${binToHex(allowedBin).toUpperCase()}\n${allowedHex}  # ST\n`)
    srv = await startServer({ args: ['--allowlist', list, '--min-interval', '0'] })
    const s = await stats(srv)
    assert.deepEqual(s.access_list, { mode: 'allow', entries: 2, removed_peers: 0 })
    assert.ok(srv.stderr.includes(`allowlist ${list}: 2 infohashes`))
  })

  test('WebTorrent: a refused announce gets a failure with action and info_hash', async () => {
    const c = await connect(srv, { name: 'wt' })
    const pid = randomBinId()
    const f = await wtAnnounce(c, refusedBin, pid)
    assert.deepEqual(Object.keys(f), ['action', 'info_hash', 'failure reason'])
    assert.equal(f.action, 'announce')
    assert.equal(f.info_hash, refusedBin)
    assert.equal(f['failure reason'], 'torrent not allowed on this tracker (not in its allowlist)')
    // Still open, and an allowed torrent works on the same connection with the same peer_id.
    const ok = await wtAnnounce(c, allowedBin, pid)
    assert.ok(!isFailure(ok), JSON.stringify(ok))
    assert.equal(ok.incomplete, 1)
    // Scrapes: a refused one alone is a failure; mixed, the refused ones are left out.
    c.sendJson({ action: 'scrape', info_hash: refusedBin })
    const sf = await c.next(isFailure)
    assert.deepEqual(sf, { action: 'scrape', info_hash: refusedBin, 'failure reason': 'torrent not allowed on this tracker (not in its allowlist)' })
    c.sendJson({ action: 'scrape', info_hash: [refusedBin, allowedBin] })
    const sc = await c.next((m) => m?.action === 'scrape' && 'files' in m)
    assert.deepEqual(Object.keys(sc.files), [allowedBin])
    assert.equal(sc.files[allowedBin].incomplete, 1)
    assert.ok(c.isOpen)
    await c.close()
  })

  test('ST: a refused announce gets torrent_not_allowed; scrapes list the refused ones', async () => {
    const c = await connect(srv, { name: 'st' })
    await c.ola(randomPeerId('st'))
    const e = await c.request({ type: 'announce', info_hash: refusedHex.toUpperCase(), event: 'started' }, { type: 'error' })
    assert.deepEqual(e, {
      type: 'error',
      code: 'torrent_not_allowed',
      message: 'torrent not allowed on this tracker (not in its allowlist)',
      ref: 'announce',
      info_hash: refusedHex
    })
    const a = await c.request({ type: 'announce', info_hash: allowedHex, event: 'started', left: 0 }, { type: 'announce' })
    assert.equal(a.complete, 1)
    const one = await c.request({ type: 'scrape', info_hashes: [refusedHex] }, { type: 'error' })
    assert.equal(one.code, 'torrent_not_allowed')
    assert.equal(one.ref, 'scrape')
    assert.equal(one.info_hash, refusedHex)
    const other = randomInfoHash()
    const mixed = await c.request({ type: 'scrape', info_hashes: [refusedHex, allowedHex, other] }, { type: 'scrape' })
    assert.deepEqual(Object.keys(mixed.files), [allowedHex])
    assert.deepEqual(mixed.refused, [refusedHex, other])
    const all = await c.request({ type: 'scrape', info_hashes: [refusedHex, other] }, { type: 'error' })
    assert.equal(all.code, 'torrent_not_allowed')
    assert.equal(all.info_hash, undefined) // several: none named
    await c.request({ type: 'ping' }, { type: 'pong' })
    await c.close()
  })

  test('refusals are counted by reason', async () => {
    const s = await stats(srv)
    // WT: announce 1 + scrape 1 + mixed scrape 1; ST: announce 1 + scrape 1 + mixed 2 + all 2.
    assert.deepEqual(s.refusals, { not_in_allowlist: 9, in_denylist: 0 })
    await srv.stopChecked()
    srv.cleanup()
  })
})

test('a reload that denies a swarm removes its peers; every count follows', async (t) => {
  const denyList = writeList('# nothing denied yet\n')
  const srv = await startServer({ args: ['--denylist', denyList, '--min-interval', '0'], t })
  const ihBin = randomBinId()
  const ihHex = binToHex(ihBin) // the same swarm, seen from both dialects
  const keepHex = randomInfoHash()
  const wt = []
  for (let i = 0; i < 3; i++) {
    const c = await connect(srv, { name: `wt${i}` })
    const r = await wtAnnounce(c, ihBin, randomBinId(), { left: i === 0 ? 0 : 10 })
    assert.ok(!isFailure(r))
    wt.push(c)
  }
  const st = await connect(srv, { name: 'st' })
  await st.ola(randomPeerId('st'))
  await st.request({ type: 'announce', info_hash: ihHex, event: 'started', left: 5 }, { type: 'announce' })
  await st.request({ type: 'announce', info_hash: keepHex, event: 'started', left: 5 }, { type: 'announce' })
  let s = await stats(srv)
  assert.equal(s.swarms, 2)
  assert.equal(s.peers, 5)
  assert.equal(s.seeders, 1)
  const sc = await st.request({ type: 'scrape', info_hashes: [ihHex] }, { type: 'scrape' })
  assert.deepEqual(sc.files[ihHex], { complete: 1, incomplete: 3, downloaded: 0 })

  writeFileSync(denyList, `${ihHex}\n`)
  s = await reload(srv)
  assert.equal(s.swarms, 1)
  assert.equal(s.peers, 1)
  assert.equal(s.seeders, 0)
  assert.equal(s.leechers, 1)
  assert.deepEqual(s.access_list, { mode: 'deny', entries: 1, removed_peers: 4 })
  await waitLog(srv, /reload of the command line: 0 changed \(none\); denylist .*: 1 infohashes \(was 0\), 4 peers removed/)
  // Each removed peer was told, in its dialect, and stays connected.
  for (const c of wt) {
    const f = await c.next(isFailure)
    assert.equal(f.action, 'announce')
    assert.equal(f.info_hash, ihBin)
    assert.match(f['failure reason'], /no longer allowed on this tracker \(in its denylist\)/)
    assert.ok(c.isOpen)
  }
  const e = await st.next({ type: 'error' })
  assert.equal(e.code, 'torrent_not_allowed')
  assert.equal(e.info_hash, ihHex)
  // The kept swarm is untouched; the denied one is refused.
  const keep = await st.request({ type: 'scrape', info_hashes: [keepHex] }, { type: 'scrape' })
  assert.deepEqual(keep.files[keepHex], { complete: 0, incomplete: 1, downloaded: 0 })
  const denied = await wtAnnounce(wt[0], ihBin, randomBinId())
  assert.ok(isFailure(denied))
  assert.equal(s.refusals.in_denylist, 0)
  assert.equal((await stats(srv)).refusals.in_denylist, 1)

  // Allowed again: the swarm is empty (nobody re-announced), so the scrape says 0.
  writeFileSync(denyList, '\n')
  s = await reload(srv)
  assert.equal(s.peers, 1)
  const again = await st.request({ type: 'scrape', info_hashes: [ihHex] }, { type: 'scrape' })
  assert.deepEqual(again.files[ihHex], { complete: 0, incomplete: 0, downloaded: 0 })
  await closeAll(wt, st)
})

describe('malformed lists', () => {
  test('are refused at start, naming the file and line (exit 2)', async () => {
    const list = writeList('08ada5a7a6183aae1e09d831df6748d566095a10\n# fine\n08ada5a7a6183aae1e09d831df6748d566095a1\n')
    const r = await runBinary(['--host', '127.0.0.1', '--port', '1', '--allowlist', list, '--db', path.join(dir, 'x.db')])
    assert.equal(r.code, 2)
    assert.ok(r.stderr.includes(`${list}:3: expected an infohash (40 hex characters), found "08ada5a7a6183aae1e09d831df6748d566095a1"`), r.stderr)
    const both = await runBinary(['--allowlist', list, '--denylist', list, '--check-config'])
    assert.equal(both.code, 2)
    assert.match(both.stderr, /--allowlist and --denylist cannot both be set/)
    const missing = await runBinary(['--host', '127.0.0.1', '--port', '1', '--denylist', path.join(dir, 'absent.txt'), '--db', path.join(dir, 'y.db')])
    assert.equal(missing.code, 2)
    assert.match(missing.stderr, /cannot read the access list .*absent\.txt: No such file/)
  })

  test('are refused on reload: the old list stays', async (t) => {
    const allowed = randomInfoHash()
    const list = writeList(`${allowed}\n`)
    const srv = await startServer({ args: ['--allowlist', list], t })
    writeFileSync(list, `${allowed}\n${randomInfoHash()}\nnope\n`)
    const s = await reload(srv, { refused: true })
    assert.deepEqual(s.access_list, { mode: 'allow', entries: 1, removed_peers: 0 })
    await waitLog(srv, new RegExp(`reload refused: ${list.replace(/[.]/g, '\\.')}:3: expected an infohash .*"nope"; the running configuration is unchanged`))
    const c = await connect(srv)
    await c.ola(randomPeerId('r'))
    const a = await c.request({ type: 'announce', info_hash: allowed, event: 'started' }, { type: 'announce' })
    assert.equal(a.incomplete, 1)
    const e = await c.request({ type: 'announce', info_hash: randomInfoHash(), event: 'started' }, { type: 'error' })
    assert.equal(e.code, 'torrent_not_allowed')
    await c.close()
  })
})
