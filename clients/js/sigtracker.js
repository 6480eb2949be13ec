// sigtracker.js: browser client for the sigtracker ST signalling protocol (version 1).
//
// One dependency-free ES module. It keeps one WebSocket to the tracker, claims a peer ID and keeps
// it across reloads and reconnections, announces infohashes on the server's interval, relays
// offers, answers and ICE candidates, and can turn those into an open RTCDataChannel with the
// "perfect negotiation" pattern, over which sendWithBackpressure sends large payloads. See
// README.md for the guide and sigtracker.d.ts for the types.

const PEER_ID_RE = /^[A-Za-z0-9._~-]{1,64}$/;
const INFO_HASH_RE = /^[0-9a-fA-F]{40}$/;
const SIGNAL_TYPES = ['offer', 'answer', 'candidate'];
const EVENTS = ['started', 'completed', 'stopped'];
// Errors after which the server asks us to try again later (unavailable: a cluster node cannot reach
// Redis; the ID and token are kept for the retry).
const RETRYABLE = ['rate_limited', 'internal_error', 'unavailable'];
const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

const DEFAULTS = {
    pingInterval: 20000, // ms between application pings (idle proxies often cut at 30-60 s)
    pingTimeout: 15000, // ms without any message after a ping before the socket is deemed dead
    connectTimeout: 10000, // ms for one attempt to open the socket and be identified
    requestTimeout: 15000, // ms before an unanswered announce is sent again, or a scrape fails
    linkTimeout: 30000, // ms connectPeer waits for the data channel to open
    retryFirst: false, // retry a failed first connection with the reconnect backoff instead of failing
    accept: true, // accept incoming data-channel connections from the helper
    rtcConfig: undefined, // RTCConfiguration for the helper
    channelLabel: 'sigtracker',
};
const RECONNECT_DEFAULTS = { minDelay: 500, maxDelay: 30000, factor: 2 };
const SEND_DEFAULTS = {
    chunkSize: 16 * 1024, // bytes per message: the largest that every browser accepts from every other
    highWater: 1024 * 1024, // bytes buffered in the channel above which sending waits
    lowWater: 256 * 1024, // bytes buffered at which sending resumes
};
// Closing an RTCPeerConnection closes its data channels without firing their close events (WebRTC
// 1.0, RTCPeerConnection.close()), so a wait on a channel also looks at its state this often (ms).
const CLOSE_CHECK_MS = 1000;

/** The error type of every failure: server errors carry the server's `code`. */
export class SigtrackerError extends Error {
    constructor(code, message, fields = {}) {
        super(message || code);
        this.name = 'SigtrackerError';
        this.code = code;
        if (fields.ref !== undefined) this.ref = fields.ref;
        if (fields.to !== undefined) this.to = fields.to;
        if (fields.info_hash !== undefined) this.infoHash = fields.info_hash;
        if (fields.retry_after_ms !== undefined) this.retryAfterMs = fields.retry_after_ms;
        this.data = fields;
    }
}

/** Returns a random peer ID of `length` characters from [A-Za-z0-9]. */
export function randomPeerId(length = 20) {
    const bytes = crypto.getRandomValues(new Uint8Array(length));
    let s = '';
    for (const b of bytes) s += ID_ALPHABET[b % ID_ALPHABET.length];
    return s;
}

/**
 * Returns the SHA-1 of the data as 40 lowercase hex characters: a ready-made infohash. Pages that
 * are not a secure context (plain http from a LAN address, as a phone opening a laptop's page) have
 * no crypto.subtle: there it computes the hash in JavaScript.
 */
export async function sha1Hex(data) {
    if (typeof data === 'string') data = new TextEncoder().encode(data);
    else if (typeof Blob !== 'undefined' && data instanceof Blob) data = await data.arrayBuffer();
    const subtle = globalThis.crypto?.subtle;
    if (!subtle) return sha1Js(ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data));
    const digest = await subtle.digest('SHA-1', data);
    return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** SHA-1 (FIPS 180-4) of bytes, as 40 lowercase hex characters. */
function sha1Js(bytes) {
    const h = new Uint32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0]);
    const w = new Uint32Array(80);
    const block = (src, off) => {
        for (let i = 0; i < 16; i++) {
            const j = off + 4 * i;
            w[i] = (src[j] << 24) | (src[j + 1] << 16) | (src[j + 2] << 8) | src[j + 3];
        }
        for (let i = 16; i < 80; i++) {
            const x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
            w[i] = (x << 1) | (x >>> 31);
        }
        let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (let i = 0; i < 80; i++) {
            const f = i < 20 ? (b & c) | (~b & d) : i < 40 || i >= 60 ? b ^ c ^ d : (b & c) | (b & d) | (c & d);
            const k = i < 20 ? 0x5a827999 : i < 40 ? 0x6ed9eba1 : i < 60 ? 0x8f1bbcdc : 0xca62c1d6;
            const t = (((a << 5) | (a >>> 27)) + f + e + k + w[i]) | 0;
            e = d;
            d = c;
            c = (b << 30) | (b >>> 2);
            b = a;
            a = t;
        }
        h[0] += a;
        h[1] += b;
        h[2] += c;
        h[3] += d;
        h[4] += e;
    };
    // Whole 64-byte blocks straight from the input; the rest, 0x80, zeros and the length in bits
    // (64-bit big-endian) in one or two final blocks.
    const full = bytes.length - (bytes.length % 64);
    for (let off = 0; off < full; off += 64) block(bytes, off);
    const tail = new Uint8Array(bytes.length - full < 56 ? 64 : 128);
    tail.set(bytes.subarray(full));
    tail[bytes.length - full] = 0x80;
    const view = new DataView(tail.buffer);
    view.setUint32(tail.length - 8, Math.floor(bytes.length / 0x20000000)); // bits / 2^32
    view.setUint32(tail.length - 4, (bytes.length * 8) >>> 0);
    for (let off = 0; off < tail.length; off += 64) block(tail, off);
    return [...h].map((x) => x.toString(16).padStart(8, '0')).join('');
}

/**
 * Opens a client and resolves once the server has given it its peer ID. With `retryFirst: true` a
 * first connection that fails (no server yet) is retried with the reconnect backoff until it works.
 */
export function connect(url, options = {}) {
    const client = new SigtrackerClient(url, options);
    return client.ready.then(() => client);
}

/**
 * Sends data (an ArrayBuffer, a typed array or a Blob) over an open RTCDataChannel in messages of
 * chunkSize bytes; whenever more than highWater bytes wait in the channel's buffer, it waits for
 * the buffer to drain to lowWater (it sets the channel's bufferedAmountLowThreshold). Resolves with
 * the number of bytes sent once the last message is handed to the channel: queued, not yet
 * received, so confirm delivery in your own protocol when it matters. Rejects with a
 * SigtrackerError `channel_closed` as soon as the channel closes or starts closing (a wait for the
 * buffer included), `aborted` when options.signal aborts, and `send_failed` when the channel
 * refuses a message while open. onProgress(sent, total) is called after every message.
 */
export async function sendWithBackpressure(channel, data, options = {}) {
    const { chunkSize, highWater, lowWater, signal, onProgress } = { ...SEND_DEFAULTS, ...options };
    const total = typeof Blob !== 'undefined' && data instanceof Blob ? data.size : data.byteLength;
    if (!Number.isSafeInteger(total)) throw new SigtrackerError('invalid_field', 'data must be an ArrayBuffer, a typed array or a Blob');
    let sent = 0;
    const check = () => {
        const err = sendStopped(channel, signal, sent, total);
        if (err) throw err;
    };
    check();
    for await (const chunk of chunksOf(data, chunkSize)) {
        if (channel.bufferedAmount > highWater) await drained(channel, lowWater, signal, () => sendStopped(channel, signal, sent, total));
        check(); // reading a Blob waits too
        try {
            channel.send(chunk);
        } catch (e) {
            check();
            throw new SigtrackerError('send_failed', `the data channel refused a message: ${e.message}`);
        }
        sent += chunk.byteLength;
        onProgress?.(sent, total);
    }
    return sent;
}

/** The error that ends a send: the channel is no longer open, or the caller aborted; else null. */
function sendStopped(channel, signal, sent, total) {
    if (signal?.aborted) return new SigtrackerError('aborted', `sending aborted after ${sent} of ${total} bytes`);
    if (channel.readyState !== 'open')
        return new SigtrackerError('channel_closed', `the data channel is ${channel.readyState} after ${sent} of ${total} bytes were sent`);
    return null;
}

/** Yields the data as Uint8Array views of up to size bytes, reading a Blob a block at a time. */
async function* chunksOf(data, size) {
    if (typeof Blob !== 'undefined' && data instanceof Blob) {
        const block = size * 64;
        for (let off = 0; off < data.size; off += block) yield* chunksOf(await data.slice(off, off + block).arrayBuffer(), size);
        return;
    }
    const bytes = ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
    for (let off = 0; off < bytes.length; off += size) yield bytes.subarray(off, off + size);
}

/**
 * Resolves once the channel's buffer holds lowWater bytes or fewer; rejects with stopped()'s error
 * as soon as there is one (the channel closed, or the caller aborted), whether or not an event says so.
 */
function drained(channel, lowWater, signal, stopped) {
    return new Promise((resolve, reject) => {
        const listeners = new AbortController();
        const timer = setInterval(() => check(), CLOSE_CHECK_MS);
        const check = () => {
            const err = stopped();
            if (!err && channel.bufferedAmount > lowWater) return;
            listeners.abort();
            clearInterval(timer);
            if (err) reject(err);
            else resolve();
        };
        channel.bufferedAmountLowThreshold = lowWater;
        for (const type of ['bufferedamountlow', 'closing', 'close', 'error'])
            channel.addEventListener(type, check, { signal: listeners.signal });
        signal?.addEventListener('abort', check, { signal: listeners.signal });
        check();
    });
}

function checkInfoHash(h) {
    if (typeof h !== 'string' || !INFO_HASH_RE.test(h))
        throw new SigtrackerError('invalid_info_hash', `info hash must be 40 hex characters: ${h}`);
    return h.toLowerCase();
}

function checkCount(name, v) {
    if (v === undefined || v === null) return undefined;
    if (!Number.isSafeInteger(v) || v < 0)
        throw new SigtrackerError('invalid_field', `${name} must be a non-negative integer`);
    return v;
}

/** How long to wait before retrying after a retryable server error. */
function retryDelay(err) {
    return typeof err.retryAfterMs === 'number' ? err.retryAfterMs : 1000;
}

function defaultStorage() {
    try {
        return globalThis.sessionStorage ?? null;
    } catch {
        return null; // access throws in some sandboxed frames
    }
}

function deferred() {
    const d = {};
    d.promise = new Promise((resolve, reject) => Object.assign(d, { resolve, reject }));
    return d;
}

export class SigtrackerClient extends EventTarget {
    constructor(url, options = {}) {
        super();
        this.url = String(url);
        this.options = { ...DEFAULTS, ...options };
        this.options.reconnect =
            options.reconnect === false ? false : { ...RECONNECT_DEFAULTS, ...options.reconnect };
        if (options.peerId != null && !PEER_ID_RE.test(options.peerId))
            throw new SigtrackerError('invalid_peer_id', `invalid peer ID: ${options.peerId}`);
        this._requestedId = options.peerId ?? null;
        this._storage = options.storage !== undefined ? options.storage : defaultStorage();
        this._storageKey = options.storageKey ?? `sigtracker:${this.url}`;

        /** Our peer ID once identified (kept across reconnections). */
        this.peerId = null;
        /** The server's announce interval from the last `ola` answer, in seconds. */
        this.interval = null;
        /** 'connecting' | 'open' | 'reconnecting' | 'closed' */
        this.state = 'connecting';

        this._token = null;
        this._ws = null;
        this._identified = false;
        this._everIdentified = false;
        this._olaSent = null; // {peerId, usedStored} of the ola in flight
        this._byeReason = null;
        this._attempt = 0;
        this._timers = { reconnect: 0, connect: 0, ping: 0, pong: 0, hold: 0 };
        this._swarms = new Map(); // infoHash -> swarm state (see _swarm)
        this._inflight = []; // announces sent and not yet answered, oldest first
        this._scrapes = []; // scrapes sent and not yet answered, oldest first
        this._holdUntil = {}; // message type -> time before which we must not send it
        this._held = []; // messages waiting for a rate-limit hold to end
        this._links = new Map(); // remote peer ID -> PeerLink
        this._ready = deferred();
        this.ready = this._ready.promise;
        this.ready.catch(() => {}); // connect() reports it; avoid an unhandled rejection here
        this._open();
    }

    // ---- events -------------------------------------------------------------------------------

    /** Subscribes to an event; the listener receives the event's detail. Returns the unsubscriber. */
    on(type, listener) {
        const wrapped = (ev) => listener(ev.detail);
        this.addEventListener(type, wrapped);
        return () => this.removeEventListener(type, wrapped);
    }

    _emit(type, detail) {
        this.dispatchEvent(new CustomEvent(type, { detail }));
    }

    // ---- connection ---------------------------------------------------------------------------

    _open() {
        const WS = this.options.WebSocket ?? globalThis.WebSocket;
        let ws;
        try {
            ws = new WS(this.url);
        } catch (e) {
            this._fail(new SigtrackerError('connect_failed', `cannot open ${this.url}: ${e.message}`));
            return;
        }
        this._ws = ws;
        this._byeReason = null;
        ws.onopen = () => this._sendOla();
        ws.onmessage = (ev) => this._onMessage(ws, ev.data);
        ws.onclose = (ev) => this._onClose(ws, ev.code, ev.reason);
        ws.onerror = () => {}; // a close event always follows
        this._timers.connect = setTimeout(() => this._drop(ws, 'connect timeout'), this.options.connectTimeout);
    }

    /** Forgets the socket at once (a dead socket may take minutes to report its close). */
    _drop(ws, reason) {
        try {
            ws.close(4000, reason);
        } catch {
            /* already closed */
        }
        this._onClose(ws, 4000, reason);
    }

    _loadStored() {
        try {
            const v = JSON.parse(this._storage?.getItem(this._storageKey) ?? 'null');
            if (v && PEER_ID_RE.test(v.peerId) && typeof v.token === 'string') return v;
        } catch {
            /* unreadable: ignore */
        }
        return null;
    }

    _store(peerId, token) {
        try {
            this._storage?.setItem(this._storageKey, JSON.stringify({ peerId, token }));
        } catch {
            /* storage full or denied: reclaiming after a reload will not work, nothing else breaks */
        }
    }

    _forgetStored() {
        try {
            this._storage?.removeItem(this._storageKey);
        } catch {
            /* ignore */
        }
    }

    _sendOla(fresh = false) {
        // Reconnections keep the ID we had; a first connection takes the requested ID, else the
        // stored one (a reloaded tab), else a random one. The token goes with the ID it belongs to.
        const stored = fresh ? null : this._loadStored();
        const peerId = this.peerId ?? this._requestedId ?? stored?.peerId ?? randomPeerId();
        let token = null;
        if (this._token && this.peerId === peerId) token = this._token;
        else if (stored && stored.peerId === peerId) token = stored.token;
        this._olaSent = { peerId, usedStored: !this.peerId && !this._requestedId && !!stored };
        const msg = { type: 'ola', peer_id: peerId };
        if (token) msg.token = token;
        this._rawSend(msg);
    }

    _onOla(m) {
        const sent = this._olaSent;
        if (!sent) return;
        if (!m.ok) {
            const code = m.error ?? m.code ?? 'ola_refused';
            this._olaFailed(new SigtrackerError(code, m.message ?? `peer ID ${m.peer_id} refused: ${code}`, m));
            return;
        }
        this._olaSent = null;
        clearTimeout(this._timers.connect);
        const reconnected = this._everIdentified;
        this.peerId = m.peer_id ?? sent.peerId;
        this._token = m.token ?? null;
        if (this._token) this._store(this.peerId, this._token);
        if (typeof m.interval === 'number') this.interval = m.interval;
        this._identified = this._everIdentified = true;
        this._identifiedAt = Date.now();
        this.state = 'open';
        this._startPing();
        this._emit('connect', { peerId: this.peerId, interval: this.interval, reconnected });
        this._ready.resolve(this);
        // The server forgets our swarms when the socket drops: announce every one again.
        for (const s of this._swarms.values()) {
            if (s.event !== 'completed') s.event = 'started';
            s.inflight = false;
            this._kick(s);
        }
    }

    _olaFailed(err) {
        const sent = this._olaSent;
        if (RETRYABLE.includes(err.code)) {
            setTimeout(() => this._ws && this._olaSent === sent && this._sendOla(), retryDelay(err));
            return;
        }
        this._olaSent = null;
        if (!this._everIdentified) {
            if (sent?.usedStored) {
                // The stored ID is held elsewhere (a duplicated tab) or the stored token is stale:
                // start afresh with a random ID on the same connection.
                this._forgetStored();
                this._sendOla(true);
                return;
            }
            this._fail(err);
            return;
        }
        // Reclaiming our ID failed (the server may not have noticed the old socket's death yet):
        // report it and try again later.
        this._emit('error', err);
        if (this._ws) this._drop(this._ws, 'reclaim failed');
    }

    _onClose(ws, code, reason) {
        if (ws !== this._ws) return;
        this._ws = null;
        ws.onopen = ws.onmessage = ws.onclose = null;
        const wasIdentified = this._identified;
        this._identified = false;
        // Back off afresh only after a connection that lasted: a server that accepts and then
        // drops us at once (overloaded) keeps seeing longer and longer delays.
        if (wasIdentified && Date.now() - this._identifiedAt > 10000) this._attempt = 0;
        this._olaSent = null;
        for (const t of ['connect', 'pong', 'hold']) clearTimeout(this._timers[t]);
        clearInterval(this._timers.ping);
        this._timers.pong = 0;
        this._held = [];
        this._holdUntil = {};
        // Announces in flight will be sent again after reconnecting; stops need no answer any more
        // (the server drops our swarms with the socket); scrapes fail.
        for (const e of this._inflight) {
            clearTimeout(e.timer);
            const s = this._swarms.get(e.infoHash);
            if (e.event !== 'stopped' && s) s.waiters.unshift(...e.waiters);
            else for (const w of e.waiters) w.resolve(null);
        }
        this._inflight = [];
        for (const s of this._swarms.values()) {
            clearTimeout(s.timer);
            s.inflight = false;
        }
        for (const q of this._scrapes.splice(0))
            q.reject(new SigtrackerError('not_connected', 'connection lost before the scrape answer'));
        const bye = this._byeReason;
        if (this.state === 'closed') return;
        if (wasIdentified) this._emit('disconnect', { code, reason, bye });
        if (bye === 'replaced') {
            this._fail(new SigtrackerError('replaced', 'another connection reclaimed this peer ID'));
            return;
        }
        if (!this._everIdentified && !this.options.retryFirst) {
            this._fail(new SigtrackerError('connect_failed', `cannot connect to ${this.url} (${code} ${reason || bye || ''})`.trim()));
            return;
        }
        if (this._everIdentified && this.options.reconnect === false) {
            this._fail(new SigtrackerError('not_connected', 'connection lost'));
            return;
        }
        this._scheduleReconnect();
    }

    /** Opens a new socket after the backoff delay: a reconnection, or a retried first connection. */
    _scheduleReconnect() {
        // retryFirst without reconnection still needs a backoff: the default one.
        const { minDelay, maxDelay, factor } = this.options.reconnect || RECONNECT_DEFAULTS;
        const cap = Math.min(maxDelay, minDelay * factor ** this._attempt);
        const delay = Math.round(cap / 2 + (Math.random() * cap) / 2); // "equal jitter"
        this._attempt++;
        this.state = this._everIdentified ? 'reconnecting' : 'connecting';
        this._emit('reconnecting', { attempt: this._attempt, delay });
        this._timers.reconnect = setTimeout(() => this.state !== 'closed' && this._open(), delay);
    }

    /** Ends the client for good: a first connection that failed, a replaced ID, or close(). */
    _fail(err) {
        if (this.state === 'closed') return;
        this.state = 'closed';
        for (const t of Object.values(this._timers)) clearTimeout(t);
        clearInterval(this._timers.ping);
        if (this._ws) {
            const ws = this._ws;
            this._ws = null;
            ws.onopen = ws.onmessage = ws.onclose = null;
            try {
                ws.close(1000);
            } catch {
                /* ignore */
            }
        }
        this._identified = false;
        for (const link of [...this._links.values()]) link.close(err);
        for (const s of this._swarms.values()) {
            clearTimeout(s.timer);
            for (const w of s.waiters) w.reject(err);
        }
        this._swarms.clear();
        for (const e of this._inflight.splice(0)) {
            clearTimeout(e.timer);
            for (const w of e.waiters) w.reject(err);
        }
        for (const q of this._scrapes.splice(0)) q.reject(err);
        this._ready.reject(err);
        this._emit('close', { error: err.code === 'closed' ? null : err });
    }

    /** Closes the socket and every helper connection; no reconnection follows. */
    close() {
        this._fail(new SigtrackerError('closed', 'client closed'));
    }

    _startPing() {
        clearInterval(this._timers.ping);
        this._timers.ping = setInterval(() => {
            const ws = this._ws;
            if (!ws || !this._identified) return;
            this._rawSend({ type: 'ping' });
            if (!this._timers.pong)
                this._timers.pong = setTimeout(() => this._drop(ws, 'ping timeout'), this.options.pingTimeout);
        }, this.options.pingInterval);
    }

    // ---- sending ------------------------------------------------------------------------------

    _rawSend(msg) {
        this._ws.send(JSON.stringify(msg));
    }

    /** Sends now, or later when the server asked us to slow down for this message type. */
    _send(msg) {
        if (!this._identified) throw new SigtrackerError('not_connected', 'not connected to the tracker');
        if (this._held.length || this._heldUntil(msg.type) > Date.now()) {
            this._held.push(msg);
            this._scheduleFlush();
        } else {
            this._rawSend(msg);
        }
    }

    /** Holds back messages of one type ('*': all) for ms, as a rate_limited error asks. */
    _hold(type, ms) {
        this._holdUntil[type] = Math.max(this._holdUntil[type] ?? 0, Date.now() + ms);
        this._scheduleFlush();
    }

    _heldUntil(type) {
        return Math.max(this._holdUntil[type] ?? 0, this._holdUntil['*'] ?? 0);
    }

    _scheduleFlush() {
        clearTimeout(this._timers.hold);
        const now = Date.now();
        // Keep order: messages go out in the order they were given, each after its type's hold.
        while (this._held.length && this._heldUntil(this._held[0].type) <= now) this._rawSend(this._held.shift());
        if (this._held.length)
            this._timers.hold = setTimeout(() => this._scheduleFlush(), this._heldUntil(this._held[0].type) - now);
    }

    // ---- announces ----------------------------------------------------------------------------

    _swarm(infoHash) {
        let s = this._swarms.get(infoHash);
        if (!s) {
            s = {
                infoHash,
                stats: {}, // uploaded, downloaded, left, num_want
                event: 'started', // event to send with the next announce, if any
                waiters: [], // promises to settle with the next answer
                inflight: false,
                again: false, // announce again as soon as the answer to the one in flight arrives
                lastAccepted: 0, // when the server last took an announce (ms timestamp)
                minInterval: 0, // seconds
                notBefore: 0, // rate-limit hold (ms timestamp)
                timer: 0,
            };
            this._swarms.set(infoHash, s);
        }
        return s;
    }

    /**
     * Announces infoHash (event `started` the first time) and keeps re-announcing it on the
     * server's interval, also after reconnections, until stop(). Calling it again updates the
     * numbers and announces again (no faster than the server's min_interval).
     */
    async announce(infoHash, options = {}) {
        const h = checkInfoHash(infoHash);
        const stats = {
            uploaded: checkCount('uploaded', options.uploaded),
            downloaded: checkCount('downloaded', options.downloaded),
            left: checkCount('left', options.left),
            num_want: checkCount('numWant', options.numWant),
        };
        const s = this._swarm(h);
        for (const [k, v] of Object.entries(stats)) if (v !== undefined) s.stats[k] = v;
        return this._request(s);
    }

    /** Announces `completed` (left = 0): we are now a seeder of infoHash. */
    async complete(infoHash, options = {}) {
        const h = checkInfoHash(infoHash);
        const s = this._swarm(h);
        for (const k of ['uploaded', 'downloaded']) {
            const v = checkCount(k, options[k]);
            if (v !== undefined) s.stats[k] = v;
        }
        s.stats.left = 0;
        s.event = 'completed';
        return this._request(s);
    }

    /** Announces `stopped` and stops re-announcing infoHash. Resolves with the answer (or null). */
    async stop(infoHash) {
        const h = checkInfoHash(infoHash);
        const s = this._swarms.get(h);
        if (!s) return Promise.resolve(null);
        this._swarms.delete(h);
        clearTimeout(s.timer);
        const err = new SigtrackerError('stopped', `stopped announcing ${h}`);
        for (const w of s.waiters) w.reject(err);
        if (!this._identified) return Promise.resolve(null);
        const d = deferred();
        this._sendAnnounce({ ...s, event: 'stopped', waiters: [d] });
        return d.promise;
    }

    _request(s) {
        if (this.state === 'closed') {
            this._swarms.delete(s.infoHash);
            return Promise.reject(new SigtrackerError('closed', 'client closed'));
        }
        const d = deferred();
        s.waiters.push(d);
        this._kick(s);
        return d.promise;
    }

    /** Sends the swarm's next announce as soon as it is allowed to. */
    _kick(s) {
        clearTimeout(s.timer);
        if (!this._identified) return; // sent on (re)connection
        if (s.inflight) {
            s.again = true;
            return;
        }
        const now = Date.now();
        let at = s.notBefore;
        if (!s.event) at = Math.max(at, s.lastAccepted + s.minInterval * 1000);
        if (at > now) s.timer = setTimeout(() => this._sendAnnounce(s), at - now);
        else this._sendAnnounce(s);
    }

    _sendAnnounce(s) {
        if (!this._identified) return;
        const msg = { type: 'announce', info_hash: s.infoHash };
        if (s.event) msg.event = s.event;
        for (const [k, v] of Object.entries(s.stats)) if (v !== undefined) msg[k] = v;
        const entry = { infoHash: s.infoHash, event: s.event, waiters: s.waiters.splice(0) };
        // The server may drop a message without a word (over its message rate): give up waiting
        // after a while and announce again.
        entry.timer = setTimeout(() => {
            const i = this._inflight.indexOf(entry);
            if (i >= 0) this._inflight.splice(i, 1);
            this._retryAnnounce(entry, 0);
        }, this.options.requestTimeout);
        this._inflight.push(entry);
        if (s.event !== 'stopped') {
            s.inflight = true;
            s.again = false;
        }
        this._send(msg);
    }

    /** Finds the oldest announce in flight for infoHash (any, when the reply names none). */
    _takeInflight(infoHash) {
        const i = infoHash ? this._inflight.findIndex((e) => e.infoHash === infoHash) : 0;
        if (i < 0 || !this._inflight.length) return null;
        const entry = this._inflight.splice(i, 1)[0];
        clearTimeout(entry.timer);
        return entry;
    }

    /** Sends an unanswered or refused announce again after wait ms (waiters carried over). */
    _retryAnnounce(entry, wait) {
        const s = entry.event === 'stopped' ? null : this._swarms.get(entry.infoHash);
        if (s) {
            s.inflight = false;
            s.waiters.unshift(...entry.waiters);
            if (entry.event && !s.event) s.event = entry.event;
            s.notBefore = Date.now() + wait;
            this._kick(s);
        } else if (entry.event === 'stopped') {
            setTimeout(() => {
                if (this._identified) this._sendAnnounce({ infoHash: entry.infoHash, stats: {}, event: 'stopped', waiters: entry.waiters });
                else for (const w of entry.waiters) w.resolve(null);
            }, wait);
        } else {
            for (const w of entry.waiters) w.reject(new SigtrackerError('stopped', `stopped announcing ${entry.infoHash}`));
        }
    }

    _onAnnounce(m) {
        const h = typeof m.info_hash === 'string' ? m.info_hash.toLowerCase() : null;
        const entry = this._takeInflight(h);
        const infoHash = h ?? entry?.infoHash;
        const result = {
            infoHash,
            interval: m.interval,
            minInterval: m.min_interval,
            complete: m.complete ?? 0,
            incomplete: m.incomplete ?? 0,
            peers: (Array.isArray(m.peers) ? m.peers : []).map((p) => ({ peerId: p.peer_id, complete: !!p.complete })),
        };
        if (entry) for (const w of entry.waiters) w.resolve(result);
        const s = this._swarms.get(infoHash);
        if (s && entry && entry.event !== 'stopped') {
            s.inflight = false;
            s.lastAccepted = Date.now();
            if (s.event === entry.event) s.event = null;
            if (typeof m.min_interval === 'number') s.minInterval = m.min_interval;
            if (s.again || s.waiters.length || s.event) {
                this._kick(s);
            } else {
                const interval = typeof m.interval === 'number' ? m.interval : (this.interval ?? 120);
                clearTimeout(s.timer);
                s.timer = setTimeout(() => this._kick(s), Math.max(1, interval) * 1000);
            }
        }
        this._emit('announce', result);
    }

    _onAnnounceError(err) {
        const h = typeof err.infoHash === 'string' ? err.infoHash.toLowerCase() : null;
        const entry = this._takeInflight(h);
        if (!entry) return false;
        if (RETRYABLE.includes(err.code)) {
            this._retryAnnounce(entry, retryDelay(err));
            return true;
        }
        const s = entry.event === 'stopped' ? null : this._swarms.get(entry.infoHash);
        if (s) {
            // Any other refusal (bad hash, too many swarms) is final for this infohash.
            clearTimeout(s.timer);
            this._swarms.delete(entry.infoHash);
            for (const w of s.waiters) w.reject(err);
        }
        for (const w of entry.waiters) w.reject(err);
        return entry.waiters.length > 0; // nobody waited: report it as an 'error' event
    }

    // ---- scrape -------------------------------------------------------------------------------

    /** Asks for the counts of up to the server's limit of infohashes. */
    async scrape(infoHashes) {
        const list = (Array.isArray(infoHashes) ? infoHashes : [infoHashes]).map(checkInfoHash);
        const d = deferred();
        const q = { list, ...d, timer: 0 };
        const send = () => {
            this._scrapes.push(q);
            q.timer = setTimeout(() => {
                const i = this._scrapes.indexOf(q);
                if (i >= 0) this._scrapes.splice(i, 1);
                d.reject(new SigtrackerError('timeout', 'no scrape answer'));
            }, this.options.requestTimeout);
            this._send({ type: 'scrape', info_hashes: list });
        };
        q.resend = send;
        try {
            send();
        } catch (e) {
            this._scrapes.pop();
            clearTimeout(q.timer);
            return Promise.reject(e);
        }
        return d.promise;
    }

    _onScrape(m) {
        const files = {};
        for (const [h, f] of Object.entries(m.files ?? {}))
            files[h.toLowerCase()] = { complete: f.complete ?? 0, incomplete: f.incomplete ?? 0, downloaded: f.downloaded ?? 0 };
        // The answer names the infohashes it is about: match it on them, not on order alone.
        const keys = Object.keys(files);
        let i = this._scrapes.findIndex((q) => q.list.length >= keys.length && q.list.every((h) => h in files));
        if (i < 0 && this._scrapes.length) i = 0;
        const q = i < 0 ? null : this._scrapes.splice(i, 1)[0];
        if (q) {
            clearTimeout(q.timer);
            q.resolve(files);
        }
        this._emit('scrape', { files });
    }

    _onScrapeError(err) {
        const q = this._scrapes.shift();
        if (!q) return false;
        clearTimeout(q.timer);
        if (RETRYABLE.includes(err.code)) {
            setTimeout(() => {
                try {
                    q.resend();
                } catch (e) {
                    q.reject(e);
                }
            }, retryDelay(err));
        } else {
            q.reject(err);
        }
        return true;
    }

    // ---- signalling ---------------------------------------------------------------------------

    /**
     * Sends an offer, answer or candidate to another peer. The payload is any JSON value.
     * Throws a SigtrackerError `not_connected` while the client is not identified.
     */
    signal(to, type, payload, options = {}) {
        if (!SIGNAL_TYPES.includes(type))
            throw new SigtrackerError('invalid_field', `signal type must be offer, answer or candidate: ${type}`);
        if (typeof to !== 'string' || !PEER_ID_RE.test(to)) throw new SigtrackerError('invalid_peer_id', `invalid peer ID: ${to}`);
        const msg = { type, to, payload: payload === undefined ? null : payload };
        if (options.infoHash != null) msg.info_hash = checkInfoHash(options.infoHash);
        this._send(msg);
    }

    _onSignal(m) {
        const p = m.payload;
        if (p && typeof p === 'object' && typeof p.link === 'string' && typeof m.from === 'string') {
            if (this._routeToLink(m)) return;
        }
        const detail = { type: m.type, from: m.from, payload: p };
        if (m.info_hash !== undefined) detail.infoHash = m.info_hash;
        this._emit('signal', detail);
    }

    // ---- data channels (the RTCPeerConnection helper) -----------------------------------------

    /**
     * Connects to peerId over an RTCPeerConnection (trickle ICE, perfect negotiation) and resolves
     * with an open RTCDataChannel. Both peers may call it at once: they still share one connection.
     */
    async connectPeer(peerId, options = {}) {
        if (typeof RTCPeerConnection === 'undefined')
            return Promise.reject(new SigtrackerError('unsupported', 'RTCPeerConnection is not available'));
        if (typeof peerId !== 'string' || !PEER_ID_RE.test(peerId))
            return Promise.reject(new SigtrackerError('invalid_peer_id', `invalid peer ID: ${peerId}`));
        if (!this._identified) return Promise.reject(new SigtrackerError('not_connected', 'not connected to the tracker'));
        if (peerId === this.peerId) return Promise.reject(new SigtrackerError('invalid_peer_id', 'cannot connect to ourselves'));
        let link = this._links.get(peerId);
        if (!link) {
            link = new PeerLink(this, peerId, options.infoHash != null ? checkInfoHash(options.infoHash) : null);
            this._links.set(peerId, link);
        }
        return link.wait(options.timeout ?? this.options.linkTimeout);
    }

    /** The helper connections, by remote peer ID (open or still connecting). */
    get connections() {
        return new Map([...this._links].map(([id, l]) => [id, { peerId: id, pc: l.pc, channel: l.channel }]));
    }

    _routeToLink(m) {
        if (typeof RTCPeerConnection === 'undefined') return false;
        const p = m.payload;
        let link = this._links.get(m.from);
        if (p.peerLink && p.peerLink !== link?.id) return true; // meant for a connection we closed
        if (link && link.remoteId && link.remoteId !== p.link) {
            // The other side started a new connection (a reloaded tab, or it closed its end): only
            // its offer may replace ours; anything else is left over from the old one.
            if (m.type !== 'offer' || p.peerLink) return true;
            const waiters = link.takeWaiters();
            link.close(null);
            link = null;
            if (waiters.length) {
                link = this._newLink(m.from, m.info_hash ?? null);
                link.adoptWaiters(waiters);
            }
        }
        if (!link) {
            if (m.type !== 'offer') return true; // left over from a closed connection
            const accept = this.options.accept;
            if (!accept || (typeof accept === 'function' && !accept(m.from, m.info_hash ?? null))) return false;
            link = this._newLink(m.from, m.info_hash ?? null);
        }
        link.receive(m.type, p);
        return true;
    }

    _newLink(peerId, infoHash) {
        const link = new PeerLink(this, peerId, infoHash);
        this._links.set(peerId, link);
        return link;
    }

    _onSignalError(err) {
        if (RETRYABLE.includes(err.code)) {
            // The refused signal is lost and the error does not say which one it was: hold back
            // signals for the time asked, then let every helper connection still negotiating
            // gather and send its candidates again.
            this._hold(err.ref, retryDelay(err));
            for (const link of this._links.values())
                if (err.to === undefined || err.to === link.peerId) link.rateLimited(retryDelay(err));
        } else if (typeof err.to === 'string') {
            this._links.get(err.to)?.close(err);
        }
        this._emit('error', err);
    }

    // ---- incoming -----------------------------------------------------------------------------

    _onMessage(ws, data) {
        if (ws !== this._ws || typeof data !== 'string') return;
        clearTimeout(this._timers.pong); // any message proves the socket alive
        this._timers.pong = 0;
        let m;
        try {
            m = JSON.parse(data);
        } catch {
            return;
        }
        if (!m || typeof m !== 'object') return;
        switch (m.type) {
            case 'ola':
                return this._onOla(m);
            case 'announce':
                return this._onAnnounce(m);
            case 'scrape':
                return this._onScrape(m);
            case 'offer':
            case 'answer':
            case 'candidate':
                return this._onSignal(m);
            case 'bye':
                this._byeReason = m.reason ?? 'unknown';
                return this._emit('bye', { reason: this._byeReason });
            case 'error':
                return this._onError(m);
            default:
                return; // pong, or a type added by a later server version
        }
    }

    _onError(m) {
        const err = new SigtrackerError(m.code ?? 'unknown_error', m.message, m);
        let handled = false;
        if (m.ref === 'ola' && this._olaSent) {
            this._olaFailed(err);
            handled = true;
        } else if (m.ref === 'announce') {
            handled = this._onAnnounceError(err);
        } else if (m.ref === 'scrape') {
            handled = this._onScrapeError(err);
        } else if (SIGNAL_TYPES.includes(m.ref)) {
            return this._onSignalError(err);
        } else if (err.code === 'rate_limited') {
            // Over the connection's message rate (no ref): the server drops what we send for a
            // while, possibly without telling us. Hold everything back; the announces and scrapes
            // in flight are sent again when their answers do not come.
            this._hold(typeof m.ref === 'string' ? m.ref : '*', retryDelay(err));
        }
        if (!handled) this._emit('error', err);
    }
}

/**
 * One RTCPeerConnection to one remote peer, negotiated with the "perfect negotiation" pattern:
 * the peer with the smaller ID is polite (it rolls back its own offer on a collision), the other
 * ignores colliding offers. Both ends create the same pre-negotiated data channel (id 0), so it
 * does not matter who offers first or whether both do. Signals carry {link, peerLink}: the
 * sender's connection id and the one it believes we have, so leftovers of a closed connection
 * never disturb a new one.
 */
class PeerLink {
    constructor(client, peerId, infoHash) {
        this.client = client;
        this.peerId = peerId;
        this.infoHash = infoHash;
        this.id = randomPeerId(12);
        this.remoteId = null;
        this.polite = client.peerId < peerId;
        this.makingOffer = false;
        this.ignoreOffer = false;
        this.settingAnswer = false;
        this.closed = false;
        this._waiters = [];
        this._queue = Promise.resolve();
        this._listeners = new AbortController();
        const on = (target, type, fn) => target.addEventListener(type, fn, { signal: this._listeners.signal });
        const pc = (this.pc = new RTCPeerConnection(client.options.rtcConfig));
        const ch = (this.channel = pc.createDataChannel(client.options.channelLabel, { negotiated: true, id: 0 }));
        ch.binaryType = 'arraybuffer';
        on(pc, 'negotiationneeded', async () => {
            try {
                this.makingOffer = true;
                await pc.setLocalDescription();
                this.send(pc.localDescription.type, { sdp: pc.localDescription.sdp });
            } catch (e) {
                this.close(new SigtrackerError('rtc_failed', `cannot make an offer: ${e.message}`));
            } finally {
                this.makingOffer = false;
            }
        });
        on(pc, 'icecandidate', ({ candidate }) => {
            if (candidate) this.send('candidate', { candidate: candidate.toJSON() });
        });
        on(pc, 'connectionstatechange', () => {
            if (pc.connectionState === 'failed') this.close(new SigtrackerError('rtc_failed', `connection to ${peerId} failed`));
        });
        on(ch, 'open', () => {
            for (const w of this._waiters.splice(0)) w.resolve(ch);
            client._emit('connection', { peerId, channel: ch, pc, infoHash });
        });
        on(ch, 'close', () => this.close(new SigtrackerError('rtc_failed', `data channel to ${peerId} closed`)));
    }

    send(type, body) {
        if (this.closed) return;
        try {
            this.client.signal(this.peerId, type, { link: this.id, peerLink: this.remoteId ?? undefined, ...body }, { infoHash: this.infoHash });
        } catch {
            // Not connected to the tracker right now: the link times out or an ICE restart resends.
        }
    }

    receive(type, payload) {
        if (!this.remoteId) this.remoteId = payload.link;
        // Handle signals strictly one after the other: a candidate must not overtake its offer.
        this._queue = this._queue.then(() => this._handle(type, payload)).catch((e) => {
            this.close(new SigtrackerError('rtc_failed', `negotiation with ${this.peerId} failed: ${e.message}`));
        });
    }

    async _handle(type, payload) {
        if (this.closed) return;
        const pc = this.pc;
        if (type === 'candidate') {
            try {
                await pc.addIceCandidate(payload.candidate ?? null);
            } catch (e) {
                // Candidates of an ignored offer, or of a description rolled back, fail harmlessly.
                if (!this.ignoreOffer && pc.remoteDescription) console.debug?.('sigtracker: candidate refused', e);
            }
            return;
        }
        if (typeof payload.sdp !== 'string') return;
        const readyForOffer = !this.makingOffer && (pc.signalingState === 'stable' || this.settingAnswer);
        const collision = type === 'offer' && !readyForOffer;
        this.ignoreOffer = !this.polite && collision;
        if (this.ignoreOffer) return;
        this.settingAnswer = type === 'answer';
        try {
            await pc.setRemoteDescription({ type, sdp: payload.sdp }); // the polite side rolls back implicitly
        } finally {
            this.settingAnswer = false;
        }
        if (type === 'offer') {
            await pc.setLocalDescription();
            this.send('answer', { sdp: pc.localDescription.sdp });
        }
    }

    /** The server refused our signals for a while: after that, gather and send everything again. */
    rateLimited(ms) {
        clearTimeout(this._restartTimer);
        this._restartTimer = setTimeout(() => {
            if (!this.closed && this.channel.readyState !== 'open') this.pc.restartIce();
        }, ms);
    }

    wait(timeout) {
        if (this.channel.readyState === 'open') return Promise.resolve(this.channel);
        const d = deferred();
        const w = {
            resolve: (ch) => {
                clearTimeout(w.timer);
                d.resolve(ch);
            },
            reject: (e) => {
                clearTimeout(w.timer);
                d.reject(e);
            },
        };
        w.timer = setTimeout(() => {
            this._waiters = this._waiters.filter((x) => x !== w);
            w.reject(new SigtrackerError('timeout', `no data channel to ${this.peerId} after ${timeout} ms`));
            if (!this._waiters.length && this.channel.readyState !== 'open') this.close(null);
        }, timeout);
        this._waiters.push(w);
        return d.promise;
    }

    takeWaiters() {
        return this._waiters.splice(0);
    }

    adoptWaiters(waiters) {
        this._waiters.push(...waiters);
    }

    close(err) {
        if (this.closed) return;
        this.closed = true;
        clearTimeout(this._restartTimer);
        if (this.client._links.get(this.peerId) === this) this.client._links.delete(this.peerId);
        this._listeners.abort();
        try {
            this.channel.close();
            this.pc.close();
        } catch {
            /* ignore */
        }
        const e = err ?? new SigtrackerError('closed', `connection to ${this.peerId} closed`);
        for (const w of this._waiters.splice(0)) w.reject(e);
    }
}
