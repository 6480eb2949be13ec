/* dashboard.h: the live dashboard page (GET /dashboard). The page is src/server/dashboard.html,
 * embedded at build time (scripts/embed.sh turns it into a C array), so the binary serves it
 * with every asset inline and nothing to load from elsewhere; it polls /dashboard.json. */
#ifndef SIG_SERVER_DASHBOARD_H
#define SIG_SERVER_DASHBOARD_H

#include <stddef.h>

/* Returns the page (static storage, not NUL-terminated for the caller's purposes) and sets *len
 * to its length in bytes. Any thread. */
const char *dashboard_page(size_t *len);

/* Bytes dashboard_csp needs, the terminating NUL included. */
#define DASHBOARD_CSP_BYTES 256

/* Writes the page's Content-Security-Policy header line (ending in CRLF) into out: nothing may be
 * loaded from elsewhere, and the only script allowed is the page's own, by its SHA-256 (so even
 * markup that got into the page could not run a script). Returns 0, or -EINVAL when the page has
 * no script or out is smaller than DASHBOARD_CSP_BYTES. Any thread. */
int dashboard_csp(char *out, size_t outlen);

#endif
