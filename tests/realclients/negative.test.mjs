// Negative controls: with a tracker that answers announces but never relays offers (the reference
// stand-in with offers stripped, or our binary with --test-drop-offers), the very same real
// clients must NOT get together. This proves the positive tests can fail.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { VERSIONS, runBrowserTransfer, startWeb } from './browser-harness.mjs'
import { runNodePair } from './node-harness.mjs'
import { startTracker } from './tracker.mjs'

const NODE_WINDOW_MS = 25000 // the positive run connects about 10 s after the leecher starts
const BROWSER_WINDOW_MS = 15000 // the positive run completes in about 1 s

let tracker
let web
before(async () => {
  tracker = await startTracker({ noRelay: true })
  web = await startWeb()
})
after(async () => {
  if (web) await web.stop()
  if (tracker) await tracker.stop()
})

test('without offer relaying, the node clients never connect', { timeout: 90000 }, async (t) => {
  t.diagnostic(`tracker: ${tracker.kind} ${tracker.url} (offer relaying disabled)`)
  const r = await runNodePair({ url: tracker.url, windowMs: NODE_WINDOW_MS })
  t.diagnostic(`gave up as expected after ${r.elapsedMs} ms`)
  const why = () => `\n${r.transcript}\n--- tracker log ---\n${tracker.logs()}`
  // The tracker itself works: both announces are answered...
  assert.ok(r.seederAnnounced, `seeder got no announce response${why()}`)
  assert.ok(r.leecherAnnounced, `leecher got no announce response${why()}`)
  // ...but without relayed offers nothing else can happen.
  assert.ok(!r.anyPeer, `a peer was signalled although offers are not relayed${why()}`)
  assert.ok(!r.anyConnect, `a data channel opened although offers are not relayed${why()}`)
  assert.ok(!r.seederGot && !r.leecherGot, `a message crossed${why()}`)
})

test('without offer relaying, the browser download never completes', { timeout: 90000 },
  async (t) => {
    const version = VERSIONS[0]
    t.diagnostic(`tracker: ${tracker.kind} ${tracker.url} (offer relaying disabled), ${version.name}`)
    const r = await runBrowserTransfer({
      origin: web.origin, trackerUrl: tracker.url, version, timeoutMs: BROWSER_WINDOW_MS
    })
    t.diagnostic(`gave up as expected after ${r.elapsedMs} ms`)
    const why = () => `\n--- page logs ---\n${r.log.join('\n')}\n--- tracker log ---\n${tracker.logs()}`
    // The browsers themselves work: the seeder seeded, the leecher ran until its deadline...
    assert.ok(!r.error, `the browser harness itself failed: ${r.error}${why()}`)
    assert.ok(r.seeded && r.seeded.infoHash, `the seeder did not seed${why()}`)
    // ...and without relayed offers the leecher never got the file.
    assert.match(String(r.got.error), /no complete download within/,
      `the download did not fail by timeout${why()}`)
  })
