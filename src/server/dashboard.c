/* dashboard.c: the embedded dashboard page (see dashboard.h). */
#include "server/dashboard.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

/* dashboard_html.inc is generated from src/server/dashboard.html by scripts/embed.sh into the
 * build's gen/ directory (Makefile): a list of byte values. The trailing 0 is not served. */
static const unsigned char page[] = {
#include "dashboard_html.inc"
    0};

const char *dashboard_page(size_t *len) {
    *len = sizeof(page) - 1;
    return (const char *)page;
}

int dashboard_csp(char *out, size_t outlen) {
    size_t n = 0;
    const char *p = dashboard_page(&n);
    const char *a = memmem(p, n, "<script>", 8);
    const char *b = a != NULL ? memmem(a, n - (size_t)(a - p), "</script>", 9) : NULL;
    if (b == NULL || outlen < DASHBOARD_CSP_BYTES)
        return -EINVAL;
    a += 8;
    /* Computed per request rather than kept: /dashboard is fetched once per page load (the page
     * then polls /dashboard.json), and hashing 10 KB takes microseconds. */
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)a, (size_t)(b - a), digest);
    unsigned char b64[4 * ((SHA256_DIGEST_LENGTH + 2) / 3) + 1];
    EVP_EncodeBlock(b64, digest, SHA256_DIGEST_LENGTH);
    int w = snprintf(out, outlen,
                     "Content-Security-Policy: default-src 'none'; script-src 'sha256-%s'; "
                     "style-src 'unsafe-inline'; connect-src 'self'; img-src data:\r\n",
                     (const char *)b64);
    return w > 0 && (size_t)w < outlen ? 0 : -EINVAL;
}
