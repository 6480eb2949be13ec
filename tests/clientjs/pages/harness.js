// Test page helpers: the tests drive these through page.evaluate. Exposes the library as
// window.st and the helpers as window.t.
import * as st from '/lib/sigtracker.js';

// Count the RTCPeerConnections this page creates and the offers they make (the library looks the
// constructor up on the global object, so it gets this subclass).
const NativePC = globalThis.RTCPeerConnection;
const counters = { pcs: 0, offers: 0 };
globalThis.RTCPeerConnection = class extends NativePC {
    constructor(...args) {
        super(...args);
        counters.pcs++;
        this.addEventListener('signalingstatechange', () => {
            if (this.signalingState === 'have-local-offer') counters.offers++;
        });
    }
};

// A WebSocket that can hold back incoming offers, answers and candidates: the glare test closes
// the gate on both pages so that each makes its own offer before it sees the other's.
const gate = { closed: false, queue: [] };
class GatedWebSocket extends WebSocket {
    set onmessage(fn) {
        super.onmessage = fn && ((ev) => {
            const type = typeof ev.data === 'string' ? JSON.parse(ev.data).type : null;
            if (gate.closed && ['offer', 'answer', 'candidate'].includes(type)) gate.queue.push(() => fn(ev));
            else fn(ev);
        });
    }
    get onmessage() {
        return super.onmessage;
    }
}

/** Records every event of a client in events (type, detail summary, time). */
function record(client, events = []) {
    for (const type of ['connect', 'disconnect', 'reconnecting', 'close', 'announce', 'scrape', 'signal', 'connection', 'error', 'bye']) {
        client.on(type, (d) => {
            const e = { type, at: Date.now() };
            if (type === 'connection') e.peerId = d.peerId;
            else if (d instanceof Error) Object.assign(e, { code: d.code, message: d.message });
            else e.detail = JSON.parse(JSON.stringify(d ?? null));
            events.push(e);
        });
    }
    return events;
}

function randomBytes(n) {
    const out = new Uint8Array(n);
    for (let off = 0; off < n; off += 65536) crypto.getRandomValues(out.subarray(off, off + 65536));
    return out;
}

async function sha256Hex(bytes) {
    const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    return [...d].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Resolves with the first size bytes that arrive on channel. */
function receiveBytes(channel, size) {
    const out = new Uint8Array(size);
    let got = 0;
    return new Promise((resolve, reject) => {
        const onMessage = (ev) => {
            if (typeof ev.data === 'string') return;
            const b = new Uint8Array(ev.data);
            if (got + b.length > size) return reject(new Error('more bytes than expected'));
            out.set(b, got);
            got += b.length;
            if (got === size) {
                channel.removeEventListener('message', onMessage);
                resolve(out);
            }
        };
        channel.addEventListener('message', onMessage);
    });
}

function nextMessage(channel) {
    return new Promise((resolve) => channel.addEventListener('message', (ev) => resolve(ev.data), { once: true }));
}

window.t = {
    counters, gate, GatedWebSocket, record, randomBytes, sha256Hex, receiveBytes, nextMessage,
    openGate() {
        gate.closed = false;
        for (const f of gate.queue.splice(0)) f();
    },
    until(pred, timeout = 10000) {
        return new Promise((resolve, reject) => {
            const t0 = Date.now();
            const tick = () => {
                const v = pred();
                if (v) return resolve(v);
                if (Date.now() - t0 > timeout) return reject(new Error(`timed out waiting for ${pred}`));
                setTimeout(tick, 20);
            };
            tick();
        });
    },
    /** Like until, for an async predicate: awaits pred() every 20 ms until it gives a truthy value. */
    async untilAsync(pred, timeout = 10000, what = String(pred)) {
        const t0 = Date.now();
        let last;
        for (;;) {
            last = await pred();
            if (last) return last;
            if (Date.now() - t0 > timeout) throw new Error(`timed out waiting for ${what}`);
            await new Promise((r) => setTimeout(r, 20));
        }
    },
};
window.st = st;
