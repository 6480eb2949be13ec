/* dashboard.h: the live dashboard page (GET /dashboard). The page is src/server/dashboard.html,
 * embedded at build time (scripts/embed.sh turns it into a C array), so the binary serves it
 * with every asset inline and nothing to load from elsewhere; it polls /dashboard.json. */
#ifndef SIG_SERVER_DASHBOARD_H
#define SIG_SERVER_DASHBOARD_H

#include <stddef.h>

/* Returns the page (static storage, not NUL-terminated for the caller's purposes) and sets *len
 * to its length in bytes. Any thread. */
const char *dashboard_page(size_t *len);

#endif
