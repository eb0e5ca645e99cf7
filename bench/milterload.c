/*
 * milterload - milter load generator (the MTA side), for bench/run.sh.
 *
 * Each of C threads opens one milter connection and sends messages over it the way
 * Postfix 3.7 does (docs/milter-protocol.md §6): OPTNEG once; then per message
 * D+MAIL, D+RCPT (R recipients), DATA, headers, EOH, BODY chunks of <= 65535 bytes,
 * D+EOM, reads the edits and the final reply, then ABORT. Commands the milter
 * negotiated away (SMFIP_NO*) are not sent; commands negotiated as no-reply
 * (SMFIP_NR_*) are pipelined without waiting, as Postfix does.
 *
 * It checks every end-of-message answer (final CONTINUE, DELRCPT count, ADDRCPT count
 * == K, REPLBODY bytes == body size, chunks <= 65535) and counts failures.
 * Latency = from sending MAIL to receiving the final reply.
 *
 * usage: milterload -t unix:/path|inet:HOST:PORT [-c C] [-d SECS] [-w WARMUP_SECS]
 *                   [-b BODY_BYTES] [-r RCPTS] [-k EXPECTED_ADDED]
 * prints one line: msgs=N secs=S msgs_per_s=X p50_ms=A p99_ms=B errors=E
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65535

static const char *o_target;
static int o_conc = 1, o_rcpts = 1, o_k = 10;
static double o_secs = 3, o_warm = 0.5;
static size_t o_body = 4096;
static unsigned char *g_body;
static double g_start, g_measure_from, g_end;

struct conn {
    int fd;
    unsigned char *out;
    size_t outlen, outcap;
    unsigned char *in;
    size_t incap;
    uint32_t proto;
};

struct result {
    double *lat;
    size_t n, cap;
    long errors;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int dial(void)
{
    int fd;
    if (!strncmp(o_target, "unix:", 5)) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof a.sun_path, "%s", o_target + 5);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
            return -1;
    } else if (!strncmp(o_target, "inet:", 5)) {
        char host[256];
        snprintf(host, sizeof host, "%s", o_target + 5);
        char *colon = strrchr(host, ':');
        if (!colon)
            return -1;
        *colon = 0;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(colon + 1))};
        inet_pton(AF_INET, host, &a.sin_addr);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
            return -1;
    } else {
        return -1;
    }
    return fd;
}

static void put(struct conn *c, char code, const void *p, size_t n)
{
    size_t need = c->outlen + 5 + n;
    if (need > c->outcap) {
        c->outcap = need * 2;
        c->out = realloc(c->out, c->outcap);
    }
    uint32_t len = htonl((uint32_t)n + 1);
    memcpy(c->out + c->outlen, &len, 4);
    c->out[c->outlen + 4] = (unsigned char)code;
    if (n)
        memcpy(c->out + c->outlen + 5, p, n);
    c->outlen = need;
}

static int flush_out(struct conn *c)
{
    size_t off = 0;
    while (off < c->outlen) {
        ssize_t w = write(c->fd, c->out + off, c->outlen - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    c->outlen = 0;
    return 0;
}

static int read_full(int fd, void *p, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t r = read(fd, (char *)p + off, n - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        off += (size_t)r;
    }
    return 0;
}

/* reads one reply frame; returns its code, payload in c->in, length in *len; -1 on error */
static int reply(struct conn *c, size_t *len)
{
    if (c->outlen && flush_out(c) < 0)
        return -1;
    uint32_t l;
    if (read_full(c->fd, &l, 4) < 0)
        return -1;
    l = ntohl(l);
    if (l == 0 || l > 16 * 1024 * 1024)
        return -1;
    if (l > c->incap) {
        c->incap = l;
        c->in = realloc(c->in, l);
    }
    if (read_full(c->fd, c->in, l) < 0)
        return -1;
    *len = l - 1;
    return c->in[0];
}

/* sends a command; waits for a CONTINUE unless the NR flag was negotiated */
static int cmd(struct conn *c, char code, const void *p, size_t n, uint32_t nr_flag)
{
    put(c, code, p, n);
    if (nr_flag && (c->proto & nr_flag))
        return 0;
    size_t len;
    return reply(c, &len) == 'c' ? 0 : -1;
}

static void macro(struct conn *c, char forcmd, const char *name, const char *value)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "%c%s%c%s", forcmd, name, 0, value);
    put(c, 'D', buf, (size_t)n + 1);
}

static int negotiate(struct conn *c)
{
    uint32_t p[3] = {htonl(6), htonl(0x1FF), htonl(0x1FFFFF)};
    put(c, 'O', p, sizeof p);
    size_t len;
    if (reply(c, &len) != 'O' || len < 12)
        return -1;
    memcpy(&c->proto, c->in + 1 + 8, 4);
    c->proto = ntohl(c->proto);
    if (!(c->proto & 0x1)) { /* CONNECT unless NOCONNECT */
        static const char conn[] = "client.example\0" "4\x96\xc2" "192.0.2.1";
        macro(c, 'C', "j", "mx.bench");
        if (cmd(c, 'C', conn, sizeof conn, 0x1000) < 0)
            return -1;
    }
    if (!(c->proto & 0x2) && cmd(c, 'H', "client.example", 15, 0x2000) < 0)
        return -1;
    return 0;
}

static int message(struct conn *c, long seq)
{
    char qid[32], buf[128];
    snprintf(qid, sizeof qid, "%08lX", seq);
    macro(c, 'M', "{mail_addr}", "sender@example.org");
    if (!(c->proto & 0x4) && cmd(c, 'M', "<sender@example.org>", 21, 0x4000) < 0)
        return -1;
    for (int i = 0; i < o_rcpts; i++) {
        int n = snprintf(buf, sizeof buf, "<list%d@example.com>", i);
        macro(c, 'R', "i", qid);
        if (!(c->proto & 0x8) && cmd(c, 'R', buf, (size_t)n + 1, 0x8000) < 0)
            return -1;
    }
    if (!(c->proto & 0x200) && cmd(c, 'T', NULL, 0, 0x10000) < 0)
        return -1;
    if (!(c->proto & 0x20)) {
        static const char h1[] = "From\0sender@example.org", h2[] = "To\0list0@example.com", h3[] = "Subject\0bench";
        if (cmd(c, 'L', h1, sizeof h1, 0x80) < 0 || cmd(c, 'L', h2, sizeof h2, 0x80) < 0 || cmd(c, 'L', h3, sizeof h3, 0x80) < 0)
            return -1;
    }
    if (!(c->proto & 0x40) && cmd(c, 'N', NULL, 0, 0x40000) < 0)
        return -1;
    if (!(c->proto & 0x10)) {
        for (size_t off = 0; off < o_body; off += CHUNK) {
            size_t n = o_body - off < CHUNK ? o_body - off : CHUNK;
            macro(c, 'B', "i", qid);
            if (cmd(c, 'B', g_body + off, n, 0x80000) < 0)
                return -1;
        }
    }
    macro(c, 'E', "i", qid);
    put(c, 'E', NULL, 0);
    size_t body = 0, len;
    int added = 0, deleted = 0, code;
    for (;;) {
        code = reply(c, &len);
        if (code < 0)
            return -1;
        if (code == 'b') {
            if (len > CHUNK || memcmp(c->in + 1, g_body + body, len) != 0)
                return -2;
            body += len;
        } else if (code == '+' || code == '2') {
            added++;
        } else if (code == '-') {
            deleted++;
        } else if (code == 'p') {
        } else {
            break;
        }
    }
    put(c, 'A', NULL, 0); /* Postfix sends ABORT after every message; it goes out with the next write */
    if (code != 'c' || body != o_body || added != o_k || deleted != 1)
        return -2;
    return 0;
}

static void *worker(void *arg)
{
    struct result *res = arg;
    struct conn c = {0};
    c.fd = dial();
    if (c.fd < 0 || negotiate(&c) < 0) {
        res->errors++;
        return NULL;
    }
    long seq = (long)(uintptr_t)res * 1000003L;
    while (1) {
        double t0 = now();
        if (t0 >= g_end)
            break;
        int rc = message(&c, seq++);
        double t1 = now();
        if (rc == -1) {
            res->errors++;
            break;
        }
        if (rc == -2)
            res->errors++;
        else if (t0 >= g_measure_from && t1 <= g_end) {
            if (res->n == res->cap) {
                res->cap = res->cap ? res->cap * 2 : 1024;
                res->lat = realloc(res->lat, res->cap * sizeof *res->lat);
            }
            res->lat[res->n++] = t1 - t0;
        }
    }
    put(&c, 'Q', NULL, 0);
    flush_out(&c);
    close(c.fd);
    free(c.out);
    free(c.in);
    return NULL;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int ch;
    while ((ch = getopt(argc, argv, "t:c:d:w:b:r:k:")) != -1) {
        switch (ch) {
        case 't': o_target = optarg; break;
        case 'c': o_conc = atoi(optarg); break;
        case 'd': o_secs = atof(optarg); break;
        case 'w': o_warm = atof(optarg); break;
        case 'b': o_body = (size_t)atol(optarg); break;
        case 'r': o_rcpts = atoi(optarg); break;
        case 'k': o_k = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: milterload -t unix:/path|inet:HOST:PORT [-c C] [-d SECS] [-w WARM] [-b BYTES] [-r RCPTS] [-k ADDED]\n");
            return 2;
        }
    }
    if (!o_target || o_conc < 1 || o_rcpts < 1 || o_body < 1) {
        fprintf(stderr, "milterload: -t is required; -c, -r, -b must be >= 1\n");
        return 2;
    }
    g_body = malloc(o_body);
    for (size_t i = 0; i < o_body; i++) /* CRLF text lines, like a real body */
        g_body[i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : (unsigned char)('a' + i % 26);
    g_start = now();
    g_measure_from = g_start + o_warm;
    g_end = g_measure_from + o_secs;
    pthread_t *t = calloc((size_t)o_conc, sizeof *t);
    struct result *r = calloc((size_t)o_conc, sizeof *r);
    for (int i = 0; i < o_conc; i++)
        pthread_create(&t[i], NULL, worker, &r[i]);
    size_t total = 0;
    long errors = 0;
    for (int i = 0; i < o_conc; i++) {
        pthread_join(t[i], NULL);
        total += r[i].n;
        errors += r[i].errors;
    }
    double *all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < o_conc; i++) {
        memcpy(all + k, r[i].lat, r[i].n * sizeof *all);
        k += r[i].n;
    }
    qsort(all, total, sizeof *all, cmpd);
    double p50 = total ? all[total / 2] * 1000 : 0, p99 = total ? all[(size_t)(total * 0.99)] * 1000 : 0;
    printf("msgs=%zu secs=%.2f msgs_per_s=%.1f p50_ms=%.2f p99_ms=%.2f errors=%ld\n", total, o_secs, total / o_secs, p50, p99, errors);
    return errors ? 1 : 0;
}
