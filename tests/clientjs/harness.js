// Shared pieces of the client-library tests: the tracker process, a static file server for the
// pages, and headless Chromium.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '../..');

/** Returns a loopback TCP port that was free a moment ago. */
export function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function canConnect(port) {
    return new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.on('connect', () => {
            s.destroy();
            resolve(true);
        });
        s.on('error', () => resolve(false));
    });
}

/**
 * Starts the tracker on 127.0.0.1:port with the database at db and waits until it accepts
 * connections; extraArgs go to the binary. SIGTRACKER_BIN names the binary (default
 * build/sigtracker).
 */
export async function startTracker(port, db, extraArgs = []) {
    const bin = process.env.SIGTRACKER_BIN || path.join(ROOT, 'build/sigtracker');
    const args = ['--host', '127.0.0.1', '--port', String(port), '--db', db, '--log-level', 'warn', ...extraArgs];
    const proc = spawn(bin, args, { stdio: ['ignore', 'inherit', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (d) => {
        stderr += d;
        process.stderr.write(d);
    });
    let exited = null;
    const exit = new Promise((resolve) => proc.on('exit', (code, sig) => resolve((exited = { code, sig }))));
    proc.on('error', (e) => {
        exited = { error: e };
    });
    const deadline = Date.now() + 10000;
    while (!(await canConnect(port))) {
        if (exited) throw new Error(`tracker exited at start (${JSON.stringify(exited)}): ${stderr}`);
        if (Date.now() > deadline) {
            proc.kill('SIGKILL');
            throw new Error(`tracker did not listen on ${port} within 10 s: ${stderr}`);
        }
        await sleep(25);
    }
    return {
        port,
        url: `ws://127.0.0.1:${port}/`,
        http: `http://127.0.0.1:${port}`,
        /** Stops it with SIGTERM (SIGKILL after 5 s) and resolves with its exit status. */
        async stop() {
            if (exited) return exited;
            proc.kill('SIGTERM');
            const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
            const st = await exit;
            clearTimeout(t);
            return st;
        },
    };
}

/** A fresh temporary directory, removed by the returned cleanup function. */
export function tempDir() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sigtracker-clientjs-'));
    return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json', '.ts': 'text/plain', '.md': 'text/plain' };

/** Serves clients/js under /lib/ and tests/clientjs/pages under /pages/. */
export function startStatic() {
    const roots = { lib: path.join(ROOT, 'clients/js'), pages: path.join(HERE, 'pages') };
    const server = http.createServer((req, res) => {
        const url = new URL(req.url, 'http://x');
        const [, top, ...rest] = decodeURIComponent(url.pathname).split('/');
        const root = roots[top];
        const file = root && path.join(root, ...rest);
        if (!file || !file.startsWith(root + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
            res.statusCode = 404;
            return res.end('not found');
        }
        res.setHeader('content-type', TYPES[path.extname(file)] ?? 'application/octet-stream');
        res.setHeader('cache-control', 'no-store');
        fs.createReadStream(file).pipe(res);
    });
    return new Promise((resolve) => {
        server.listen(0, '127.0.0.1', () => {
            resolve({ origin: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) });
        });
    });
}

/** Launches headless Chromium with the flags WebRTC on loopback needs, and extraArgs. */
export function launchBrowser(extraArgs = []) {
    return chromium.launch({
        executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
        headless: true,
        chromiumSandbox: false,
        args: [
            '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
            '--disable-background-networking', '--disable-component-update', '--disable-sync',
            '--allow-loopback-in-peer-connection', '--use-fake-ui-for-media-stream',
            '--disable-features=WebRtcHideLocalIpsWithMdns',
            ...extraArgs,
        ],
    });
}

/** Opens the test page in a new tab of context and waits for the library to be loaded. */
export async function openPage(context, origin) {
    const page = await context.newPage();
    page.on('pageerror', (e) => process.stderr.write(`[page error] ${e.stack || e}\n`));
    page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') process.stderr.write(`[page console ${m.type()}] ${m.text()}\n`);
    });
    await page.goto(`${origin}/pages/harness.html`);
    await page.waitForFunction(() => window.st !== undefined);
    return page;
}
