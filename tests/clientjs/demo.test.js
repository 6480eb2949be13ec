// The demo page (clients/js/examples/share.html) used as a person would, in headless Chromium
// against the real tracker binary: sharing between tabs with the progress, counts and log it shows;
// a receiver reloaded mid-transfer and a seeder reloaded after another tab has the file; a page
// opened before its tracker runs; bad tracker addresses; a phone's and a laptop's screen. Every
// test fails on a page error or a console error, except the browser's own report of a WebSocket
// connection that failed while no tracker listened (page scripts cannot silence it). Screenshots
// go to build/artifacts/clientjs/.
//
// The tests wait for what the page shows, with generous deadlines (the machine may be slow and
// shared); no fixed sleep decides an outcome.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, launchBrowser, ROOT, startStatic, startTracker, tempDir } from './harness.js';

const MiB = 1024 * 1024;
// A name for 127.0.0.1 that is not "localhost": a page served from it over http is not a secure
// context, as a phone's page from a laptop's LAN address is not (no crypto.subtle there).
const LAN_HOST = 'laptop.lan.test';
const ARTIFACTS = path.join(ROOT, 'build/artifacts/clientjs');
const TRANSFER_MS = 60000; // deadline for one multi-MiB transfer, reconnections included

let browser, web, tmp;
const cleanups = [];

before(async () => {
    tmp = tempDir();
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    [browser, web] = await Promise.all([launchBrowser([`--host-resolver-rules=MAP ${LAN_HOST} 127.0.0.1`]), startStatic()]);
});

after(async () => {
    for (const f of cleanups.reverse()) await f().catch(() => {});
    await browser?.close();
    await web?.close();
    tmp?.cleanup();
});

/** A tracker on port (a free one by default) with its own database, stopped after the suite. */
async function tracker(name, port) {
    const t = await startTracker(port ?? (await freePort()), path.join(tmp.dir, `${name}.db`));
    cleanups.push(() => t.stop());
    return t;
}

/** A fresh browser context, closed after the suite. */
async function context(options) {
    const c = await browser.newContext(options);
    cleanups.push(() => c.close());
    return c;
}

/** Chromium's own console report of a WebSocket to url that could not be opened. */
const wsFailure = (url) => new RegExp(`^WebSocket connection to '${url.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}' failed`);

/**
 * Opens the demo for the tracker address given (verbatim, as a person would type it) and records
 * every page error and console error, except those matching one of allowed, in page.problems.
 */
async function demo(ctx, tracker, allowed = [], origin = web.origin) {
    const page = await ctx.newPage();
    page.problems = [];
    page.on('pageerror', (e) => page.problems.push(`page error: ${e.stack || e}`));
    page.on('console', (m) => {
        if (m.type() === 'error' && !allowed.some((re) => re.test(m.text()))) page.problems.push(`console error: ${m.text()}`);
    });
    await page.goto(`${origin}/lib/examples/share.html?tracker=${encodeURIComponent(tracker)}`);
    return page;
}

function assertClean(...pages) {
    for (const p of pages) assert.deepEqual(p.problems, []);
}

const text = (page, sel) => page.evaluate((s) => document.querySelector(s)?.textContent ?? null, sel);
const waitState = (page, state, timeout = 20000) =>
    page.waitForFunction((s) => document.getElementById('state').textContent === s, state, { timeout });
/** Waits until the card of infoHash on page is in one of the states (data-state). */
const waitFile = (page, infoHash, states, timeout = TRANSFER_MS) =>
    page.waitForFunction(
        ({ h, states }) => states.includes(document.querySelector(`.file[data-infohash="${h}"]`)?.dataset.state),
        { h: infoHash, states },
        { timeout },
    );
/** Waits until the file's card on page shows the tracker counts given. */
const waitCounts = (page, infoHash, counts, timeout) =>
    page.waitForFunction(
        ({ h, counts }) => document.querySelector(`.file[data-infohash="${h}"] .counts`)?.textContent === counts,
        { h: infoHash, counts },
        { timeout },
    );

/** The SHA-1 of what the page's save link of infoHash holds. */
const savedSha1 = (page, infoHash) =>
    page.evaluate(async (h) => {
        const href = document.querySelector(`.file[data-infohash="${h}"] a.save`).href;
        const digest = await crypto.subtle.digest('SHA-1', await (await fetch(href)).arrayBuffer());
        return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
    }, infoHash);

const sha1 = (buf) => createHash('sha1').update(buf).digest('hex');

/** Two demo tabs on tracker t that have found each other (their data channel is open). */
async function twoTabs(ctx, t) {
    const a = await demo(ctx, t.url);
    await waitState(a, 'open');
    const b = await demo(ctx, t.url);
    await waitState(b, 'open');
    const ida = (await text(a, '#me')).replace(' (you)', '');
    const idb = (await text(b, '#me')).replace(' (you)', '');
    await a.waitForFunction((id) => /open/.test([...document.querySelectorAll('#peers tr')].find((r) => r.textContent.includes(id))?.textContent ?? ''), idb);
    return { a, b, ida, idb };
}

test('a file picked in one tab arrives in the other, with delivery confirmed by the receiver and counts that agree at once', async () => {
    const t = await tracker('share');
    const ctx = await context();
    const { a, b, ida, idb } = await twoTabs(ctx, t);
    // "(you)" marks this tab's own ID, and the peers table says what its columns are.
    assert.equal(await text(a, '#peers tr:first-child'), `${ida} (you)this tab`);
    assert.deepEqual(await a.$eval('#peers', (t) => [...t.closest('table').querySelectorAll('th')].map((th) => th.textContent)), ['peer ID', 'data channel']);

    const content = randomBytes(3 * MiB);
    const h = sha1(content);
    await a.setInputFiles('#file', { name: 'demo.bin', mimeType: 'application/octet-stream', buffer: content });
    await waitFile(a, h, ['shared'], 10000);
    await waitFile(b, h, ['received']);
    assert.equal(await savedSha1(b, h), h);
    assert.match(await text(b, `.file[data-infohash="${h}"] .status`), new RegExp(`^Received from ${ida} in [0-9.]+ s \\([0-9.]+ [KM]iB/s\\); SHA-1 verified`));
    assert.ok((await text(b, '#log')).includes(`Its SHA-1 is ${h}, as announced: verified.`));

    // The sender reports the upload as delivered only once the receiver confirmed it, and both
    // tabs show the counts of after the transfer without waiting for the page's periodic scrape
    // (every 15 s): the deadline is well inside that.
    await a.waitForFunction((h) => document.querySelector(`.file[data-infohash="${h}"] li[data-state=delivered]`), h, { timeout: 10000 });
    assert.match(await text(a, `.file[data-infohash="${h}"] li`), new RegExp(`^To ${idb}: 3.0 MiB delivered in [0-9.]+ s \\([0-9.]+ [KM]iB/s\\), SHA-1 verified by the receiver\\.$`));
    assert.match(await text(a, '#log'), new RegExp(`${idb} received demo.bin and verified its SHA-1`));
    await Promise.all([a, b].map((p) => waitCounts(p, h, 'Tracker: 2 seeders, 0 leechers.', 6000)));

    // The log speaks in sentences: no JSON, no bare close codes.
    for (const p of [a, b]) assert.doesNotMatch(await text(p, '#log'), /[{}]|\(\d+ *\)/);
    assertClean(a, b);
});

test('a tracker restart mid-transfer: the transfer goes on, both tabs say what happened and carry on by themselves', async () => {
    const t = await tracker('restart');
    const ctx = await context();
    // The two tabs' reconnection attempts while the tracker is down are refused, and Chromium says so.
    const a = await demo(ctx, t.url, [wsFailure(t.url)]);
    await waitState(a, 'open');
    const b = await demo(ctx, t.url, [wsFailure(t.url)]);
    await waitState(b, 'open');
    const ida = (await text(a, '#me')).replace(' (you)', '');
    const content = randomBytes(16 * MiB);
    const h = sha1(content);
    await a.setInputFiles('#file', { name: 'big.bin', mimeType: 'application/octet-stream', buffer: content });
    await b.waitForFunction((h) => document.querySelector(`.file[data-infohash="${h}"]`)?.dataset.state === 'downloading', h, { timeout: TRANSFER_MS });
    await t.stop();
    await Promise.all([a, b].map((p) => p.waitForFunction(() => document.getElementById('state').textContent !== 'open')));
    for (const p of [a, b]) {
        assert.match(await text(p, '#status'), /^Lost the tracker; reconnecting /);
        assert.match(await text(p, '#log'), /Lost the connection to the tracker: the tracker is shutting down\.\n.* Reconnecting in [0-9.]+ s \(attempt 1\)\./);
    }
    // The data channel does not need the tracker: the file arrives while it is away.
    await waitFile(b, h, ['received']);
    assert.equal(await savedSha1(b, h), h);

    const again = await tracker('restart', t.port);
    assert.equal(again.port, t.port);
    await Promise.all([a, b].map((p) => waitState(p, 'open', 60000)));
    assert.match(await text(a, '#log'), new RegExp(`Back in touch with the tracker, still as ${ida}\\.`));
    // The receiver's completion reaches the tracker once it is back, and the sender hears of it.
    await a.waitForFunction((h) => document.querySelector(`.file[data-infohash="${h}"] li[data-state=delivered]`), h, { timeout: 20000 });
    await Promise.all([a, b].map((p) => waitCounts(p, h, 'Tracker: 2 seeders, 0 leechers.', 20000)));
    // A file shared after the restart goes the other way.
    const more = randomBytes(256 * 1024);
    await b.setInputFiles('#file', { name: 'after.bin', mimeType: 'application/octet-stream', buffer: more });
    await waitFile(a, sha1(more), ['received']);
    assertClean(a, b);
});

test('a receiver reloaded mid-transfer gets the whole file; a reloaded seeder gets it back from the other tab', async () => {
    const t = await tracker('reload');
    const ctx = await context();
    const { a, b, ida, idb } = await twoTabs(ctx, t);
    const content = randomBytes(16 * MiB);
    const h = sha1(content);

    // B reloads itself as soon as its progress bar passes 10 %, and notes where that was.
    await b.evaluate(() => {
        const tick = () => {
            const bar = document.querySelector('.file progress');
            if (!bar || bar.value < bar.max / 10) return setTimeout(tick, 5);
            sessionStorage.setItem('reloaded-at', String(bar.value / bar.max));
            location.reload();
        };
        tick();
    });
    const reloaded = b.waitForEvent('load', { timeout: TRANSFER_MS });
    await a.setInputFiles('#file', { name: 'big.bin', mimeType: 'application/octet-stream', buffer: content });
    await reloaded;
    const t0 = Date.now();
    const at = Number(await b.evaluate(() => sessionStorage.getItem('reloaded-at')));
    assert.ok(at >= 0.1 && at < 1, `reloaded at ${at}`);

    await waitFile(b, h, ['received']);
    const took = Date.now() - t0;
    assert.equal(await text(b, '#me'), `${idb} (you)`, 'the reloaded tab keeps its peer ID');
    assert.equal(await savedSha1(b, h), h);
    // The seeder saw the first upload stop with the channel and the second one delivered.
    await a.waitForFunction((h) => document.querySelector(`.file[data-infohash="${h}"] li[data-state=delivered]`), h, { timeout: 10000 });
    const uploads = await a.$$eval(`.file[data-infohash="${h}"] li`, (lis) => lis.map((li) => [li.dataset.state, li.textContent]));
    assert.equal(uploads.length, 2, JSON.stringify(uploads));
    assert.equal(uploads[0][0], 'stopped');
    assert.match(uploads[0][1], new RegExp(`^To ${idb}: stopped at \\d+% confirmed, after [0-9.]+ s: the data channel closed\\.$`));
    assert.equal(uploads[1][0], 'delivered');
    console.log(`# receiver reloaded at ${Math.round(at * 100)} %: the whole 16 MiB verified ${took} ms after the reload`);

    // The seeder reloads: its copy is gone with the page, and it fetches the file back from B.
    await a.reload();
    const t1 = Date.now();
    await waitFile(a, h, ['received']);
    assert.equal(await text(a, '#me'), `${ida} (you)`);
    assert.match(await text(a, `.file[data-infohash="${h}"] .status`), new RegExp(`^Received from ${idb} `));
    assert.equal(await savedSha1(a, h), h);
    await Promise.all([a, b].map((p) => waitCounts(p, h, 'Tracker: 2 seeders, 0 leechers.', 10000)));
    console.log(`# seeder reloaded: the file back from the other tab in ${Date.now() - t1} ms`);
    assertClean(a, b);
});

test('a page opened before its tracker connects by itself once the tracker starts, and shares', async () => {
    const port = await freePort();
    const url = `ws://127.0.0.1:${port}/`;
    const ctx = await context();
    const [a, b] = [await demo(ctx, url, [wsFailure(url)]), await demo(ctx, url, [wsFailure(url)])];
    for (const p of [a, b]) {
        await p.waitForFunction(() => /^Cannot reach the tracker at .* Trying again/.test(document.getElementById('status').textContent));
        assert.equal(await text(p, '#state'), 'connecting');
        assert.equal(await p.$eval('#file', (el) => el.disabled), true, 'nothing to share with before the tracker is there');
    }
    await new Promise((r) => setTimeout(r, 3000)); // the tracker comes up 3 s after the pages
    const t0 = Date.now();
    await tracker('late', port);
    await Promise.all([a, b].map((p) => waitState(p, 'open', 60000)));
    console.log(`# both pages connected ${Date.now() - t0} ms after the tracker started`);
    assert.equal(await a.$eval('#file', (el) => el.disabled), false);

    const content = randomBytes(256 * 1024);
    const h = sha1(content);
    await a.setInputFiles('#file', { name: 'late.bin', mimeType: 'application/octet-stream', buffer: content });
    await waitFile(b, h, ['received']);
    assert.equal(await savedSha1(b, h), h);
    assert.match(await text(b, '#log'), /Cannot reach the tracker at ws:\/\/127\.0\.0\.1:\d+\/\. Trying again in [0-9.]+ s \(attempt 1\)\./);
    assertClean(a, b);
});

test('a bad tracker address says so clearly and leaves nothing enabled that cannot work', async () => {
    const t = await tracker('bad');
    const ctx = await context();
    // Not an address at all.
    const p = await demo(ctx, 'localhost 8000');
    await p.waitForFunction(() => /is not a tracker address/.test(document.getElementById('status').textContent));
    assert.equal(await text(p, '#status'), '“localhost 8000” is not a tracker address: it should look like ws://127.0.0.1:8000/ (or wss://… behind TLS).');
    assert.equal(await text(p, '#state'), 'not connected');
    assert.equal(await p.$eval('#file', (el) => el.disabled), true);
    assert.equal(await p.$eval('#go', (el) => el.disabled), false, 'Connect stays available to fix the address');

    // A working page whose Connect is then used with a bad address: it stops sharing, and picking
    // a file is no longer possible (it used to stay enabled and throw on use).
    const q = await demo(ctx, t.url);
    await waitState(q, 'open');
    assert.equal(await q.$eval('#file', (el) => el.disabled), false);
    await q.fill('#url', 'http://127.0.0.1:8000/');
    await q.click('#go');
    await q.waitForFunction(() => document.getElementById('file').disabled);
    assert.match(await text(q, '#status'), /^“http:\/\/127\.0\.0\.1:8000\/” is not a tracker address/);

    // A well-formed address where no tracker answers (a web server that refuses the upgrade): the
    // page says it cannot reach it and keeps trying, with sharing off.
    const wrong = `ws://127.0.0.1:${new URL(web.origin).port}/`;
    const r = await demo(ctx, wrong, [wsFailure(wrong)]);
    await r.waitForFunction(() => /^Cannot reach the tracker at .* Trying again/.test(document.getElementById('status').textContent));
    assert.equal(await r.$eval('#file', (el) => el.disabled), true);
    assertClean(p, q, r);
});

test('a phone that opens the page from the laptop\'s LAN address (not a secure context) shares both ways', async () => {
    const t = await tracker('lan');
    const laptop = await demo(await context(), t.url);
    await waitState(laptop, 'open');
    const lan = (u) => u.replace('127.0.0.1', LAN_HOST);
    const phoneCtx = await context({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 3 });
    const phone = await demo(phoneCtx, lan(t.url), [], lan(web.origin));
    await waitState(phone, 'open');
    assert.deepEqual(await phone.evaluate(() => [location.hostname, isSecureContext, typeof crypto.subtle]), [LAN_HOST, false, 'undefined']);
    const idl = (await text(laptop, '#me')).replace(' (you)', '');
    await phone.waitForFunction((id) => /open/.test([...document.querySelectorAll('#peers tr')].find((r) => r.textContent.includes(id))?.textContent ?? ''), idl);

    const fromPhone = randomBytes(MiB + 5);
    await phone.setInputFiles('#file', { name: 'from-phone.jpg', mimeType: 'image/jpeg', buffer: fromPhone });
    await waitFile(laptop, sha1(fromPhone), ['received']);
    assert.equal(await savedSha1(laptop, sha1(fromPhone)), sha1(fromPhone));
    const fromLaptop = randomBytes(MiB + 11);
    await laptop.setInputFiles('#file', { name: 'from-laptop.pdf', mimeType: 'application/pdf', buffer: fromLaptop });
    await waitFile(phone, sha1(fromLaptop), ['received']);
    // The phone checked the SHA-1 in JavaScript: its log names the hash it computed.
    assert.ok((await text(phone, '#log')).includes(`Its SHA-1 is ${sha1(fromLaptop)}, as announced: verified.`));
    assertClean(laptop, phone);
});

/** Elements on page that stick out of the viewport's width (none when the page fits). */
const overflow = (page) =>
    page.evaluate(() => {
        const width = document.documentElement.clientWidth;
        const out = [...document.querySelectorAll('body *')]
            .filter((el) => el.getClientRects().length)
            .map((el) => ({ el, r: el.getBoundingClientRect() }))
            .filter(({ r }) => r.left < -0.5 || r.right > width + 0.5)
            .map(({ el, r }) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}.${el.className} ${Math.round(r.left)}..${Math.round(r.right)}`);
        return { width, scrollWidth: document.documentElement.scrollWidth, out };
    });

for (const [width, height, mobile] of [[390, 844, true], [1280, 800, false]]) {
    test(`the demo fits a ${width}x${height} screen (${mobile ? 'a phone' : 'a laptop'}) in every state`, async () => {
        const t = await tracker(`layout-${width}`);
        const ctx = await context({ viewport: { width, height }, ...(mobile && { isMobile: true, hasTouch: true, deviceScaleFactor: 3 }) });
        const { a, b } = await twoTabs(ctx, t);
        const content = randomBytes(2 * MiB);
        const h = sha1(content);
        const name = 'holiday-photos-from-the-long-weekend-in-the-mountains-all-of-them.tar';
        await a.setInputFiles('#file', { name, mimeType: 'application/x-tar', buffer: content });
        await waitFile(b, h, ['received']);
        await a.waitForFunction((h) => document.querySelector(`.file[data-infohash="${h}"] li[data-state=delivered]`), h, { timeout: 10000 });
        // A page waiting for a tracker that is not there shows the longest status line.
        const gone = `ws://127.0.0.1:${await freePort()}/`;
        const w = await demo(ctx, gone, [wsFailure(gone)]);
        await w.waitForFunction(() => /^Cannot reach the tracker/.test(document.getElementById('status').textContent));
        for (const [role, p] of [['seeder', a], ['receiver', b], ['waiting', w]]) {
            const o = await overflow(p);
            assert.equal(o.width, width);
            assert.deepEqual(o.out, [], `${role} at ${width}px`);
            assert.ok(o.scrollWidth <= width, `${role}: scrollWidth ${o.scrollWidth} > ${width}`);
            await p.screenshot({ path: path.join(ARTIFACTS, `demo-${width}x${height}-${role}.png`), fullPage: true });
        }
        assertClean(a, b, w);
    });
}
