// GET /dashboard in headless Chromium (Debian's chromium driven by playwright-core, as
// tests/clientjs does): the page loads with no console error, its numbers follow test peers as
// they join and leave, it has no horizontal overflow on a phone (390x844) or a wide screen
// (1280x800), and a screenshot of each is kept in build/artifacts/dashboard/. The page only
// fetches /dashboard.json over loopback, so no network namespace is needed (unlike WebRTC).

import assert from 'node:assert/strict'
import { existsSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { chromium } from 'playwright-core'
import {
  HOST, ROOT, SLOW, closeAll, connect, freePort, httpGet, randomInfoHash, randomPeerId, startServer
} from './helpers.mjs'

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium'
const ARTIFACTS = path.join(ROOT, 'build', 'artifacts', 'dashboard')

test('the live dashboard in headless Chromium', { skip: !existsSync(CHROMIUM) && 'chromium not installed' }, async (t) => {
  const admin = await freePort()
  const srv = await startServer({ args: ['--admin-listen', `${HOST}:${admin}`, '--min-interval', '0'], t })
  const base = `http://${HOST}:${admin}`
  const page0 = await httpGet({ port: admin }, '/dashboard')
  assert.equal(page0.status, 200)
  assert.match(page0.headers['content-type'], /^text\/html/)
  assert.match(page0.headers['content-security-policy'], /default-src 'none'/)
  // Only the page's own script may run (by its hash), not any inline script.
  assert.match(page0.headers['content-security-policy'], /script-src 'sha256-[A-Za-z0-9+/]{43}='/)
  assert.ok(!/script-src[^;]*unsafe-inline/.test(page0.headers['content-security-policy']))
  assert.ok(!/(src|href)="https?:/.test(page0.body), 'the page loads something from elsewhere')

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.after(() => browser.close())
  const problems = []
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } })
  const page = await context.newPage()
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`) })
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`))
  await page.goto(`${base}/dashboard`)
  const text = (id) => page.$eval(`#${id}`, (e) => e.textContent)
  const waitText = (id, want) => page.waitForFunction(
    ([i, w]) => document.getElementById(i) && document.getElementById(i).textContent === w,
    [id, want], { timeout: 10000 * SLOW })
  await waitText('v-connections', '0')
  assert.equal(await text('v-swarms'), '0')

  // Peers join: three in one swarm (one seeder), so every chart of state moves.
  const ih = randomInfoHash()
  const clients = []
  for (let i = 0; i < 3; i++) {
    const c = await connect(srv, { name: `d${i}` })
    await c.ola(randomPeerId(`d${i}`))
    await c.request({ type: 'announce', info_hash: ih, left: i === 0 ? 0 : 10 }, { type: 'announce' })
    clients.push(c)
  }
  await waitText('v-connections', '3')
  await waitText('v-swarms', '1')
  await waitText('v-peers', '1') // seeders
  await waitText('v-peers-leechers', '2')
  await page.waitForFunction((h) => [...document.querySelectorAll('#top td.ih')].some((td) => td.textContent === h),
    ih, { timeout: 10000 * SLOW })
  const row = await page.$$eval('#top tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)))
  assert.deepEqual(row[0].slice(0, 3), [ih, '1', '2'])
  // Messages per second: the page turns the totals into a rate once it has two readings.
  await page.waitForFunction(() => document.getElementById('v-messages').textContent !== '–', null, { timeout: 10000 * SLOW })
  // The charts have drawn lines.
  const points = await page.$eval('#charts svg polyline', (p) => p.getAttribute('points'))
  assert.ok(points && points.split(' ').length >= 2, `no chart line: ${points}`)

  mkdirSync(ARTIFACTS, { recursive: true })
  for (const [w, h] of [[390, 844], [1280, 800]]) {
    await page.setViewportSize({ width: w, height: h })
    await page.waitForTimeout(100)
    const over = await page.evaluate(() => ({
      doc: document.documentElement.scrollWidth, body: document.body.scrollWidth, win: window.innerWidth
    }))
    assert.ok(over.doc <= over.win && over.body <= over.win, `horizontal overflow at ${w}x${h}: ${JSON.stringify(over)}`)
    await page.screenshot({ path: path.join(ARTIFACTS, `dashboard-${w}x${h}.png`), fullPage: true })
  }

  // They leave: the numbers fall back.
  await closeAll(...clients)
  await waitText('v-connections', '0')
  await waitText('v-swarms', '0')
  await page.waitForFunction(() => document.querySelector('#top td.empty') !== null, null, { timeout: 10000 * SLOW })
  assert.deepEqual(problems, [])
})
