/* shed.c: overload shedding (see shed.h for the policy). */
#include "server/shed.h"

#include "core/log.h"
#include "server/conn.h"
#include "ws/frame.h"

/* The swarms c is in (none before it holds a peer ID). */
static const swarm_member_t *members_of(const conn_t *c) {
    return c->peer != NULL ? c->peer->members : NULL;
}

int shed_is_surplus_seeder(const server_t *s, const conn_t *c) {
    if (members_of(c) == NULL)
        return 0;
    for (const swarm_member_t *m = members_of(c); m; m = m->next_of_owner) {
        const swarm_t *w = m->swarm;
        if (!m->seeder)
            return 0; /* a leecher somewhere: never shed */
        if (w->seeders <= s->cfg.shed_min_seeders)
            return 0;
        if ((uint64_t)w->seeders <= (uint64_t)s->cfg.shed_ratio * swarm_leechers(w))
            return 0;
    }
    return 1;
}

uint32_t shed_run(server_t *s) {
    uint32_t live = 0;
    /* Only open WebSockets count. Connections already closing are on their way out, and
     * handshakes in progress cannot be shed and end by themselves within --handshake-timeout:
     * counting them would let a burst of half-open handshakes make the server shed peers. */
    for (conn_t *c = s->conns; c; c = c->next)
        if (c->state == CONN_WS)
            live++;
    if (live <= s->shed_high)
        return 0;
    uint32_t need = live - s->shed_low, shed = 0;
    /* Pass 0: open connections in no swarm. Pass 1: surplus seeders, re-checked one by one so
     * each departure updates the ratios the next decision sees. */
    for (int pass = 0; pass < 2 && shed < need; pass++) {
        for (conn_t *c = s->conns; c && shed < need; c = c->next) {
            if (c->state != CONN_WS)
                continue;
            int victim = pass == 0 ? members_of(c) == NULL : shed_is_surplus_seeder(s, c);
            if (!victim)
                continue;
            conn_close(s, c, WS_CLOSE_GOING_AWAY, "overload");
            shed++;
        }
    }
    s->count.shed += shed;
    if (shed)
        log_msg(LOG_WARN, "overload: shed %u connections (%u live, low-water mark %u)", shed, live,
                s->shed_low);
    return shed;
}
