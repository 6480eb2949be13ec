// Two headless Chromium processes, each running the real WebTorrent browser bundle (2.x and 3.x):
// one seeds a random file announcing only to our tracker, the other fetches it by magnet link
// (tr= our tracker) and the SHA-256 of what arrives must equal the seeder's. Runs against
// $SIGTRACKER_BIN or, without it, the reference tracker.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { FILE_SIZE, VERSIONS, runBrowserTransfer, startWeb } from './browser-harness.mjs'
import { startTracker } from './tracker.mjs'

const TRANSFER_TIMEOUT_MS = 45000

let tracker
let web
before(async () => {
  tracker = await startTracker()
  web = await startWeb()
})
after(async () => {
  if (web) await web.stop()
  if (tracker) await tracker.stop()
})

for (const version of VERSIONS) {
  test(`${version.name}: a browser fetches a seeded file by magnet through the tracker`,
    { timeout: TRANSFER_TIMEOUT_MS + 45000 }, async (t) => {
      t.diagnostic(`tracker: ${tracker.kind} ${tracker.url}${tracker.noRelay ? ' (NO RELAY)' : ''}`)
      const r = await runBrowserTransfer({
        origin: web.origin, trackerUrl: tracker.url, version, timeoutMs: TRANSFER_TIMEOUT_MS
      })
      const why = () => `\n--- page logs ---\n${r.log.join('\n')}\n--- tracker log ---\n${tracker.logs()}`
      assert.ok(!r.error, `${r.error}${why()}`)
      const { seeded, got } = r
      assert.ok(seeded.version.startsWith(version.major), `wrong webtorrent version ${seeded.version}`)
      assert.deepEqual(seeded.announce, [tracker.url], `the seeder must announce only to our tracker${why()}`)
      assert.ok(!got.error, `${got.error}${why()}`)
      t.diagnostic(`webtorrent ${got.version}: ${got.length} bytes in ${got.ms} ms after add ` +
        `(with browser start-up: ${r.elapsedMs} ms)`)
      assert.deepEqual(got.announce, [tracker.url], `the leecher must announce only to our tracker${why()}`)
      assert.equal(got.length, FILE_SIZE, `wrong length${why()}`)
      assert.equal(got.sha256, seeded.sha256, `SHA-256 of the received file differs${why()}`)
    })
}

test(`${VERSIONS[0].name}: a browser fetches a seeded file through the tracker over wss://`,
  { timeout: TRANSFER_TIMEOUT_MS + 45000, skip: process.env.SIGTRACKER_BIN ? false : 'the reference tracker has no TLS listener' },
  async (t) => {
    const tr = await startTracker({ tls: true })
    try {
      const r = await runBrowserTransfer({
        origin: web.origin, trackerUrl: tr.tlsUrl, version: VERSIONS[0], timeoutMs: TRANSFER_TIMEOUT_MS
      })
      const why = () => `\n--- page logs ---\n${r.log.join('\n')}\n--- tracker log ---\n${tr.logs()}`
      assert.ok(!r.error, `${r.error}${why()}`)
      assert.deepEqual(r.seeded.announce, [tr.tlsUrl], `the seeder must announce only over wss${why()}`)
      assert.ok(!r.got.error, `${r.got.error}${why()}`)
      assert.deepEqual(r.got.announce, [tr.tlsUrl], `the leecher must announce only over wss${why()}`)
      assert.equal(r.got.length, FILE_SIZE, `wrong length${why()}`)
      assert.equal(r.got.sha256, r.seeded.sha256, `SHA-256 of the received file differs${why()}`)
      // Every completed handshake (both pages') was TLS 1.3 and ran on our own record layer
      // afterwards (docs/tls.md). tls_errors is not checked: the browser context that ignores
      // certificate errors makes Chromium abort a first handshake per page (2 before the
      // hand-over existed too).
      const st = await tr.stats()
      const done = st.tls_handshakes_full + st.tls_handshakes_resumed
      assert.ok(done >= 2, `TLS handshakes ${done}${why()}`)
      assert.equal(st.tls_handed_over, done, `tls_handed_over ${st.tls_handed_over} of ${done}${why()}`)
    } finally {
      await tr.stop()
    }
  })
