// reference-tracker.mjs: starts the reference WebTorrent tracker (bittorrent-tracker, the npm
// package installed by the root package.json) as a WebSocket-only server on 127.0.0.1, so that
// bench/run.sh can measure sigtracker against it under the same load.
//
// Usage: node bench/reference-tracker.mjs --port P [--host 127.0.0.1]
// Prints one line "reference-tracker pid=<pid> port=<port>" once it is listening; SIGTERM stops it.
import Server from 'bittorrent-tracker/server'

function arg (name, fallback) {
  const i = process.argv.indexOf(name)
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback
}

const host = arg('--host', '127.0.0.1')
const port = Number(arg('--port', '0'))

// HTTP and UDP tracking are off so that only the WebSocket path is measured; stats are off
// because /stats walks every peer and nothing here asks for it.
const server = new Server({ udp: false, http: false, ws: true, stats: false, trustProxy: false })

// Bad client data only emits 'warning'; swallowing it keeps the console quiet under load,
// where the load generator itself counts every failure the tracker sends back.
server.on('warning', () => {})
server.on('error', (err) => {
  console.error(`reference-tracker: ${err.message}`)
  process.exit(1)
})
server.on('listening', () => {
  const addr = server.ws.address()
  console.log(`reference-tracker pid=${process.pid} port=${addr.port}`)
})

function stop () {
  server.close(() => process.exit(0))
  // The ws server waits for nothing once closed, but do not hang if a socket lingers.
  setTimeout(() => process.exit(0), 1000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)

server.listen(port, host)
