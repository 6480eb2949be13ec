// Type declarations for sigtracker.js, the browser client of the sigtracker ST protocol (v1).

/** Error codes the server sends (`{"type":"error","code":...}` or a refused `ola`). */
export type ServerErrorCode =
    | 'bad_json'
    | 'bad_message'
    | 'unknown_type'
    | 'invalid_field'
    | 'invalid_peer_id'
    | 'invalid_info_hash'
    | 'not_identified'
    | 'already_identified'
    | 'peer_id_taken'
    | 'peer_not_found'
    | 'rate_limited'
    | 'too_many_swarms'
    | 'internal_error'
    | 'unavailable'; // cluster mode: the node cannot reach Redis (retried by the library)

/** Error codes the library itself produces. */
export type ClientErrorCode =
    | 'connect_failed' // the first connection could not be opened or identified
    | 'not_connected' // the request needs an identified connection and there is none
    | 'replaced' // another connection reclaimed our peer ID with our token
    | 'closed' // close() was called (or a helper connection was closed)
    | 'stopped' // stop() was called while an announce was waiting
    | 'timeout' // no answer (scrape) or no open data channel (connectPeer) in time
    | 'rtc_failed' // the RTCPeerConnection failed or its data channel closed
    | 'unsupported' // no RTCPeerConnection in this environment
    | 'channel_closed' // sendWithBackpressure: the data channel closed (or started closing)
    | 'aborted' // sendWithBackpressure: its AbortSignal aborted
    | 'send_failed'; // sendWithBackpressure: the open channel refused a message

/** Every failure: server errors keep the server's `code` and the fields of its message. */
export class SigtrackerError extends Error {
    readonly name: 'SigtrackerError';
    readonly code: ServerErrorCode | ClientErrorCode | (string & {});
    /** The request type the server names in `ref`, if any. */
    readonly ref?: string;
    /** For signalling errors: the peer the refused message was sent to. */
    readonly to?: string;
    /** For announce errors: the infohash, when the server names it. */
    readonly infoHash?: string;
    /** For `rate_limited`: how long the server asked us to wait (the library waits it out itself). */
    readonly retryAfterMs?: number;
    /** The server's whole error message (or an object with the client's own fields). */
    readonly data: Record<string, unknown>;
}

export interface ReconnectOptions {
    /** First delay before reconnecting, in ms (default 500). */
    minDelay?: number;
    /** Largest delay, in ms (default 30000). */
    maxDelay?: number;
    /** Growth factor per failed attempt (default 2). Each delay is jittered to 50-100 %. */
    factor?: number;
}

export interface ConnectOptions {
    /** Peer ID to claim (1-64 of A-Za-z0-9._~-). Default: the one stored for this tab, else random. */
    peerId?: string;
    /** Where the peer ID and its token are kept (default `sessionStorage`; `null` keeps nothing). */
    storage?: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'> | null;
    /** Storage key (default `"sigtracker:" + url`). */
    storageKey?: string;
    /** Reconnection after a drop; `false` turns it off. */
    reconnect?: ReconnectOptions | false;
    /**
     * Keep retrying a first connection that fails (no tracker yet, network down) with the
     * `reconnect` backoff (its defaults when `reconnect` is false), instead of rejecting with
     * `connect_failed`; each retry emits `reconnecting`. A refused peer ID and a malformed URL
     * still reject. Default false.
     */
    retryFirst?: boolean;
    /** ms between `ping` messages (default 20000). */
    pingInterval?: number;
    /** ms of silence after a ping before the socket is deemed dead and replaced (default 15000). */
    pingTimeout?: number;
    /** ms for one attempt to open the socket and be identified (default 10000). */
    connectTimeout?: number;
    /** ms a scrape waits for its answer (default 15000). */
    requestTimeout?: number;
    /** RTCConfiguration for the data-channel helper, e.g. `{ iceServers: [...] }`. */
    rtcConfig?: RTCConfiguration;
    /** Label of the helper's data channel (default "sigtracker"). */
    channelLabel?: string;
    /** ms connectPeer waits for the data channel to open (default 30000). */
    linkTimeout?: number;
    /** Accept connections other peers open with the helper (default true), or decide per peer. */
    accept?: boolean | ((peerId: string, infoHash: string | null) => boolean);
    /** WebSocket constructor to use (default the global one; e.g. the `ws` package in Node). */
    WebSocket?: new (url: string) => WebSocket;
}

export interface AnnounceOptions {
    /** Bytes still missing (0 makes us a seeder). */
    left?: number;
    uploaded?: number;
    downloaded?: number;
    /** How many peers we would like (server default 20). */
    numWant?: number;
}

export interface SwarmPeer {
    peerId: string;
    /** True for a seeder. */
    complete: boolean;
}

export interface AnnounceResult {
    infoHash: string;
    /** Seconds until the next regular announce (the client follows it by itself). */
    interval: number;
    /** Seconds regular announces must at least be apart. */
    minInterval: number;
    /** Seeders in the swarm. */
    complete: number;
    /** Leechers in the swarm. */
    incomplete: number;
    /** Random other peers (never ourselves; only leechers when we seed). */
    peers: SwarmPeer[];
}

export interface ScrapeFile {
    complete: number;
    incomplete: number;
    downloaded: number;
}

export type SignalType = 'offer' | 'answer' | 'candidate';

export interface SignalEvent {
    type: SignalType;
    /** The sender's peer ID. */
    from: string;
    payload: unknown;
    infoHash?: string;
}

export interface PeerConnectionInfo {
    peerId: string;
    pc: RTCPeerConnection;
    channel: RTCDataChannel;
}

export interface ConnectionEvent extends PeerConnectionInfo {
    /** The infohash the connection was made for, when the initiator gave one. */
    infoHash: string | null;
}

export interface ClientEventMap {
    /** Identified (first time and after every reconnection). */
    connect: { peerId: string; interval: number | null; reconnected: boolean };
    /** The socket dropped (a reconnection follows unless the client closes). */
    disconnect: { code: number; reason: string; bye: string | null };
    /** A reconnection attempt is scheduled (with `retryFirst`, also a retry of the first connection). */
    reconnecting: { attempt: number; delay: number };
    /** The client ended for good (close(), ID replaced by another tab, first connection failed). */
    close: { error: SigtrackerError | null };
    /** The server announced it is closing the socket (`replaced`, `shutdown`, `timeout`, ...). */
    bye: { reason: string };
    /** Every announce answer, including the automatic re-announces. */
    announce: AnnounceResult;
    scrape: { files: Record<string, ScrapeFile> };
    /** An offer, answer or candidate sent with signal() by another peer (not the helper's own). */
    signal: SignalEvent;
    /** A helper data channel opened (one we asked for or one another peer opened to us). */
    connection: ConnectionEvent;
    /** A server error that no pending request took, and every signalling error. */
    error: SigtrackerError;
}

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export class SigtrackerClient extends EventTarget {
    /** Starts connecting at once; prefer `connect()`, which waits for the peer ID. */
    constructor(url: string | URL, options?: ConnectOptions);
    readonly url: string;
    /** Our peer ID once identified; it stays the same across reconnections. */
    readonly peerId: string | null;
    /** The announce interval of the last `ola` answer, in seconds. */
    readonly interval: number | null;
    readonly state: ClientState;
    /** Resolves once identified for the first time; rejects if that fails. */
    readonly ready: Promise<SigtrackerClient>;
    /** Helper connections by remote peer ID (open or still connecting). */
    readonly connections: Map<string, PeerConnectionInfo>;

    /** Subscribes to an event; the listener gets its detail. Returns a function that unsubscribes. */
    on<K extends keyof ClientEventMap>(type: K, listener: (detail: ClientEventMap[K]) => void): () => void;
    addEventListener<K extends keyof ClientEventMap>(
        type: K,
        listener: (ev: CustomEvent<ClientEventMap[K]>) => void,
        options?: boolean | AddEventListenerOptions,
    ): void;
    addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
    removeEventListener<K extends keyof ClientEventMap>(
        type: K,
        listener: (ev: CustomEvent<ClientEventMap[K]>) => void,
        options?: boolean | EventListenerOptions,
    ): void;
    removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;

    /**
     * Announces infoHash (event `started` the first time) and re-announces it on the server's
     * interval, and after every reconnection, until stop(). Calling it again updates the numbers
     * and announces again, no sooner than the server's min_interval allows.
     */
    announce(infoHash: string, options?: AnnounceOptions): Promise<AnnounceResult>;
    /** Announces `completed` with left = 0. */
    complete(infoHash: string, options?: Pick<AnnounceOptions, 'uploaded' | 'downloaded'>): Promise<AnnounceResult>;
    /** Announces `stopped` and stops re-announcing. Resolves with null when not connected. */
    stop(infoHash: string): Promise<AnnounceResult | null>;
    /** Counts for each infohash. */
    scrape(infoHashes: string | string[]): Promise<Record<string, ScrapeFile>>;
    /** Relays an offer, answer or candidate to another peer. Throws `not_connected` when offline. */
    signal(to: string, type: SignalType, payload: unknown, options?: { infoHash?: string }): void;
    /**
     * Opens (or reuses) an RTCPeerConnection to peerId with trickle ICE and perfect negotiation,
     * and resolves with its open data channel. Safe to call on both sides at once.
     */
    connectPeer(peerId: string, options?: { infoHash?: string; timeout?: number }): Promise<RTCDataChannel>;
    /** Closes the socket and every helper connection. No reconnection follows. */
    close(): void;
}

/**
 * Creates a client and resolves once the server has given it its peer ID. Rejects when the first
 * connection fails, unless `retryFirst` is set: then it waits until a connection works.
 */
export function connect(url: string | URL, options?: ConnectOptions): Promise<SigtrackerClient>;

export interface SendOptions {
    /** Bytes per message (default 16384, which every browser takes). */
    chunkSize?: number;
    /** Sending waits while more than this many bytes are buffered in the channel (default 1 MiB). */
    highWater?: number;
    /** ...until the buffer has drained to this many bytes (default 256 KiB); sets bufferedAmountLowThreshold. */
    lowWater?: number;
    /** Aborting it ends the send with the error `aborted`. */
    signal?: AbortSignal;
    /** Called after every message with the bytes handed to the channel so far and the total. */
    onProgress?: (sent: number, total: number) => void;
}

/**
 * Sends a large payload over an open data channel in chunks, waiting for the channel's buffer to
 * drain whenever it is full. Resolves with the byte count once the last chunk is handed to the
 * channel (queued, not yet received: confirm delivery in your own protocol). Rejects with
 * `channel_closed` as soon as the channel closes or starts closing, even while waiting for the
 * buffer (a closed peer connection closes its channels without an event: that is noticed within a
 * second), `aborted`, or `send_failed`.
 */
export function sendWithBackpressure(
    channel: RTCDataChannel,
    data: ArrayBuffer | ArrayBufferView | Blob,
    options?: SendOptions,
): Promise<number>;
/** A random peer ID of `length` (default 20) characters from A-Za-z0-9. */
export function randomPeerId(length?: number): string;
/**
 * SHA-1 of the data as 40 lowercase hex characters (a ready-made infohash). Uses crypto.subtle, or
 * JavaScript where a page is not a secure context (plain http from a LAN address) and has none.
 */
export function sha1Hex(data: string | ArrayBuffer | ArrayBufferView | Blob): Promise<string>;
