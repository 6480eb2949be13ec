/* dashboard.c: the embedded dashboard page (see dashboard.h). */
#include "server/dashboard.h"

/* dashboard_html.inc is generated from src/server/dashboard.html by scripts/embed.sh into the
 * build's gen/ directory (Makefile): a list of byte values. The trailing 0 is not served. */
static const unsigned char page[] = {
#include "dashboard_html.inc"
    0};

const char *dashboard_page(size_t *len) {
    *len = sizeof(page) - 1;
    return (const char *)page;
}
