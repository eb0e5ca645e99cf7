/*
 * refmilter - the reference: a libmilter (sendmail's C library) milter doing the same work as
 * securelist-milter's echo handler, for bench/run.sh. Written for this repository after the
 * shape of the shared benchmark notes; not a copy.
 *
 * At end-of-message it replaces the body with itself (buffered in memory), deletes the first
 * recipient and adds K recipients <echoN@echo.invalid>, then CONTINUE. It negotiates the same
 * protocol steps as our echo handler (no CONNECT/HELO/DATA/EOH/headers/UNKNOWN, no-reply on
 * MAIL/RCPT/BODY), so both sides see the same traffic.
 *
 * usage: refmilter [-k K] unix:/path | inet:PORT@HOST
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>

static int o_k = 10;

struct msg {
    unsigned char *body;
    size_t len, cap;
    char *first_rcpt;
};

static struct msg *priv(SMFICTX *ctx)
{
    struct msg *m = smfi_getpriv(ctx);
    if (!m && (m = calloc(1, sizeof *m)))
        smfi_setpriv(ctx, m);
    return m;
}

static void reset(struct msg *m)
{
    if (!m)
        return;
    m->len = 0;
    free(m->first_rcpt);
    m->first_rcpt = NULL;
}

static sfsistat on_negotiate(SMFICTX *ctx, unsigned long actions, unsigned long steps, unsigned long f2, unsigned long f3,
                             unsigned long *pactions, unsigned long *psteps, unsigned long *pf2, unsigned long *pf3)
{
    unsigned long want = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NODATA | SMFIP_NOEOH | SMFIP_NOHDRS | SMFIP_NOUNKNOWN |
                         SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_BODY;
    *pactions = actions & (SMFIF_CHGBODY | SMFIF_ADDRCPT | SMFIF_DELRCPT);
    *psteps = steps & want;
    *pf2 = *pf3 = 0;
    return SMFIS_CONTINUE;
}

static sfsistat on_mail(SMFICTX *ctx, char **argv)
{
    reset(priv(ctx));
    return SMFIS_NOREPLY;
}

static sfsistat on_rcpt(SMFICTX *ctx, char **argv)
{
    struct msg *m = priv(ctx);
    if (m && !m->first_rcpt && argv[0])
        m->first_rcpt = strdup(argv[0]);
    return SMFIS_NOREPLY;
}

static sfsistat on_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
    struct msg *m = priv(ctx);
    if (!m)
        return SMFIS_TEMPFAIL;
    if (m->len + len > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < m->len + len)
            cap *= 2;
        unsigned char *b = realloc(m->body, cap);
        if (!b)
            return SMFIS_TEMPFAIL;
        m->body = b;
        m->cap = cap;
    }
    memcpy(m->body + m->len, chunk, len);
    m->len += len;
    return SMFIS_NOREPLY;
}

static sfsistat on_eom(SMFICTX *ctx)
{
    struct msg *m = priv(ctx);
    if (!m)
        return SMFIS_TEMPFAIL;
    if (m->first_rcpt && smfi_delrcpt(ctx, m->first_rcpt) != MI_SUCCESS)
        return SMFIS_TEMPFAIL;
    for (int i = 1; i <= o_k; i++) {
        char a[64];
        snprintf(a, sizeof a, "<echo%d@echo.invalid>", i);
        if (smfi_addrcpt(ctx, a) != MI_SUCCESS)
            return SMFIS_TEMPFAIL;
    }
    if (smfi_replacebody(ctx, m->body ? m->body : (unsigned char *)"", (int)m->len) != MI_SUCCESS)
        return SMFIS_TEMPFAIL;
    reset(m);
    return SMFIS_CONTINUE;
}

static sfsistat on_abort(SMFICTX *ctx)
{
    reset(smfi_getpriv(ctx));
    return SMFIS_CONTINUE;
}

static sfsistat on_close(SMFICTX *ctx)
{
    struct msg *m = smfi_getpriv(ctx);
    if (m) {
        reset(m);
        free(m->body);
        free(m);
        smfi_setpriv(ctx, NULL);
    }
    return SMFIS_CONTINUE;
}

static struct smfiDesc desc = {
    .xxfi_name = "refmilter-echo",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_CHGBODY | SMFIF_ADDRCPT | SMFIF_DELRCPT,
    .xxfi_envfrom = on_mail,
    .xxfi_envrcpt = on_rcpt,
    .xxfi_body = on_body,
    .xxfi_eom = on_eom,
    .xxfi_abort = on_abort,
    .xxfi_close = on_close,
    .xxfi_negotiate = on_negotiate,
};

int main(int argc, char **argv)
{
    int ch;
    while ((ch = getopt(argc, argv, "k:")) != -1) {
        if (ch == 'k')
            o_k = atoi(optarg);
        else {
            fprintf(stderr, "usage: refmilter [-k K] unix:/path|inet:PORT@HOST\n");
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: refmilter [-k K] unix:/path|inet:PORT@HOST\n");
        return 2;
    }
    const char *conn = argv[optind];
    if (smfi_setconn((char *)conn) != MI_SUCCESS || smfi_setbacklog(1024) != MI_SUCCESS || smfi_register(desc) != MI_SUCCESS ||
        smfi_opensocket(1) != MI_SUCCESS) {
        fprintf(stderr, "refmilter: cannot listen on %s\n", conn);
        return 1;
    }
    if (!strncmp(conn, "unix:", 5))
        chmod(conn + 5, 0666);
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
