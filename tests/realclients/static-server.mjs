// A tiny static HTTP server on 127.0.0.1 for the browser test: an empty page at / and a fixed set
// of files (the WebTorrent browser bundles) under the paths given by the caller.

import { readFile } from 'node:fs/promises'
import http from 'node:http'

const PAGE = '<!doctype html><html><head><meta charset="utf-8"><title>realclients</title></head>' +
  '<body></body></html>'

const TYPES = { '.js': 'text/javascript; charset=utf-8', '.map': 'application/json' }

/** @param {Record<string, string>} files  URL path -> file on disk */
export async function startStaticServer (files) {
  const server = http.createServer(async (req, res) => {
    const urlPath = new URL(req.url, 'http://x').pathname
    if (urlPath === '/' || urlPath === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
      res.end(PAGE)
      return
    }
    if (urlPath === '/favicon.ico') {
      res.writeHead(204)
      res.end()
      return
    }
    const file = files[urlPath]
    if (!file) {
      res.writeHead(404, { 'content-type': 'text/plain' })
      res.end('not found')
      return
    }
    try {
      const body = await readFile(file)
      const ext = urlPath.slice(urlPath.lastIndexOf('.'))
      res.writeHead(200, {
        'content-type': TYPES[ext] || 'application/octet-stream',
        'cache-control': 'no-store'
      })
      res.end(body)
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' })
      res.end(String(err))
    }
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address()
  return {
    origin: `http://127.0.0.1:${port}`,
    stop: () => new Promise((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  }
}
