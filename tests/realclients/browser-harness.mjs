// Drives the real WebTorrent browser bundles in headless Chromium: one browser process seeds a
// random file announcing only to the tracker, another (separate process, separate fresh profile)
// fetches it by magnet link. Used by browser.test.mjs (must succeed) and negative.test.mjs (must
// fail when the tracker does not relay offers).

import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { startStaticServer } from './static-server.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium'
// playwright adds --headless itself.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--allow-loopback-in-peer-connection', // without it: no ICE candidates on loopback
  '--use-fake-ui-for-media-stream', // without it: only the default-route interface is offered
  '--disable-features=WebRtcHideLocalIpsWithMdns'
]
export const FILE_SIZE = (1 << 20) + 12345 // >= 1 MiB, and a short last piece

export const VERSIONS = [
  { name: 'webtorrent 2.x', lib: '/wt2/webtorrent.min.js', dir: 'webtorrent', major: '2.' },
  { name: 'webtorrent 3.x', lib: '/wt3/webtorrent.min.js', dir: 'webtorrent3', major: '3.' }
]

// Serves an empty page and the bundles of every version in VERSIONS.
export function startWeb () {
  const files = {}
  for (const v of VERSIONS) {
    const dist = path.join(root, 'node_modules', v.dir, 'dist')
    files[v.lib] = path.join(dist, 'webtorrent.min.js')
    files[`${v.lib}.map`] = path.join(dist, 'webtorrent.min.js.map')
  }
  return startStaticServer(files)
}

// A fresh browser process with its own fresh profile directory; everything the page logs is kept.
async function openBrowser (origin, label, log) {
  const profile = mkdtempSync(path.join(os.tmpdir(), `rc-chromium-${label}-`))
  let context
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      // The wss:// test's tracker has a self-signed certificate made for the test.
      ignoreHTTPSErrors: true,
      args: CHROMIUM_ARGS
    })
  } catch (err) {
    rmSync(profile, { recursive: true, force: true })
    throw err
  }
  const page = context.pages()[0] || await context.newPage()
  const t0 = Date.now()
  page.on('console', (m) => log.push(`[${label} +${Date.now() - t0}ms] ${m.type()}: ${m.text()}`))
  page.on('pageerror', (e) => log.push(`[${label} +${Date.now() - t0}ms] pageerror: ${e.message}`))
  page.on('crash', () => log.push(`[${label}] page crashed`))
  await page.goto(`${origin}/`)
  return {
    page,
    async close () {
      await context.close().catch(() => {})
      rmSync(profile, { recursive: true, force: true })
    }
  }
}

// --- code that runs inside the pages (serialised by playwright: must be self-contained) ----

async function seedInPage ({ lib, url, size }) {
  const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('')
  const { default: WebTorrent } = await import(lib)
  const bytes = new Uint8Array(size)
  for (let i = 0; i < size; i += 65536) { // getRandomValues takes at most 64 KiB
    crypto.getRandomValues(bytes.subarray(i, Math.min(i + 65536, size)))
  }
  const sha256 = hex(await crypto.subtle.digest('SHA-256', bytes))
  const client = new WebTorrent({ dht: false, lsd: false, tracker: { rtcConfig: { iceServers: [] } } })
  window.__client = client
  client.on('error', (err) => console.log(`client error: ${err.message || err}`))
  const torrent = await new Promise((resolve, reject) => {
    client.once('error', reject)
    client.seed(new File([bytes], 'random.bin'), { announce: [url], name: 'random.bin' }, resolve)
  })
  torrent.on('warning', (err) => console.log(`torrent warning: ${err.message || err}`))
  torrent.on('wire', (wire) => console.log(`wire: ${wire.remoteAddress || wire.type}`))
  console.log(`seeding ${torrent.infoHash} (${torrent.length} bytes, ${torrent.pieces.length} pieces)`)
  return {
    version: WebTorrent.VERSION,
    infoHash: torrent.infoHash,
    announce: torrent.announce,
    sha256
  }
}

async function fetchInPage ({ lib, magnet, timeoutMs }) {
  const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('')
  const { default: WebTorrent } = await import(lib)
  const client = new WebTorrent({ dht: false, lsd: false, tracker: { rtcConfig: { iceServers: [] } } })
  window.__client = client
  client.on('error', (err) => console.log(`client error: ${err.message || err}`))
  const t0 = performance.now()
  const since = () => `${Math.round(performance.now() - t0)} ms`
  const result = await new Promise((resolve) => {
    let settled = false
    const settle = (r) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(r)
    }
    const timer = setTimeout(() => settle({ error: `no complete download within ${timeoutMs} ms` }),
      timeoutMs)
    const torrent = client.add(magnet)
    torrent.on('warning', (err) => console.log(`torrent warning: ${err.message || err}`))
    torrent.on('error', (err) => settle({ error: `torrent error: ${err.message || err}` }))
    torrent.on('wire', (wire) => console.log(`wire after ${since()}: ${wire.remoteAddress || wire.type}`))
    torrent.on('metadata', () => console.log(`metadata after ${since()}`))
    const finish = async () => {
      try {
        const buf = await torrent.files[0].arrayBuffer()
        settle({
          length: buf.byteLength,
          sha256: hex(await crypto.subtle.digest('SHA-256', buf)),
          ms: Math.round(performance.now() - t0),
          announce: torrent.announce
        })
      } catch (err) {
        settle({ error: `reading the file failed: ${err.message || err}` })
      }
    }
    torrent.on('ready', () => {
      console.log(`ready after ${since()}`)
      if (torrent.done) finish()
    })
    torrent.on('done', finish)
  })
  return { version: WebTorrent.VERSION, ...result }
}

// -------------------------------------------------------------------------------------------

/**
 * Seeds in one browser, fetches in another. Never throws for a failed transfer: the caller
 * decides; `log` holds everything the pages printed.
 *
 * The seeder announces to trackerUrl, the leecher to leecherTrackerUrl (default: the same; the
 * cluster test gives each another node). beforeFetch(seeded), when given, is awaited between the
 * seeding and the fetch (the cluster test waits there until the leecher's node knows the seeder);
 * if it throws, `error` says so and nothing is fetched.
 * @returns {Promise<{seeded?, got?, error?, log: string[], elapsedMs: number}>}
 */
export async function runBrowserTransfer ({
  origin, trackerUrl, leecherTrackerUrl = trackerUrl, version, timeoutMs, beforeFetch
}) {
  const log = []
  const t0 = Date.now()
  const opened = await Promise.allSettled([
    openBrowser(origin, 'seeder', log),
    openBrowser(origin, 'leecher', log)
  ])
  const [seeder, leecher] = opened.map((o) => (o.status === 'fulfilled' ? o.value : null))
  const out = { log, elapsedMs: 0 }
  try {
    if (!seeder || !leecher) {
      out.error = 'could not start Chromium: ' +
        opened.filter((o) => o.status === 'rejected').map((o) => o.reason.message).join('; ')
      return out
    }
    out.seeded = await seeder.page.evaluate(seedInPage,
      { lib: version.lib, url: trackerUrl, size: FILE_SIZE })
    if (beforeFetch) {
      try {
        await beforeFetch(out.seeded)
      } catch (err) {
        out.error = `before the fetch: ${err.message}`
        return out
      }
    }
    // Build the magnet ourselves: only our tracker, nothing else to find peers with.
    const magnet = `magnet:?xt=urn:btih:${out.seeded.infoHash}&dn=random.bin` +
      `&tr=${encodeURIComponent(leecherTrackerUrl)}`
    out.got = await leecher.page.evaluate(fetchInPage,
      { lib: version.lib, magnet, timeoutMs })
    return out
  } catch (err) {
    out.error = `page evaluation failed: ${err.message}`
    return out
  } finally {
    await Promise.all([seeder && seeder.close(), leecher && leecher.close()])
    out.elapsedMs = Date.now() - t0
  }
}
