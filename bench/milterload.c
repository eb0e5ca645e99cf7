/*
 * milterload - milter load generator (the MTA side) for bench/run.sh and bench/lists/run.sh.
 *
 * Each of C threads opens one milter connection and sends messages over it the way
 * Postfix 3.7 does (docs/protocol.md §7.1): OPTNEG once, CONNECT and HELO; then per message
 * D+MAIL, D+RCPT (R recipients <rcpt1@example.com> ...), D+DATA, D+HEADER per header, D+EOH,
 * D+BODY chunks of <= 65535 bytes, D+EOM, reads the edits and the final reply, then ABORT.
 * Commands the milter negotiated away (SMFIP_NO*) are not sent; commands negotiated as
 * no-reply (SMFIP_NR_*) are pipelined without waiting, as Postfix does.
 *
 * The message is either generated (-b BYTES: three headers and CRLF text lines) or replayed
 * from a file (-f FILE: its header fields become HEADER events, folded with LF as Postfix
 * does, and the rest becomes the body with CRLF line ends).
 *
 * Every end-of-message answer is checked; a message that fails a check counts as an error:
 * the final reply is CONTINUE, every REPLBODY chunk is <= 65535 bytes, and, with -k K (default
 * 10 for a generated body, off for -f), there is exactly one DELRCPT and K ADDRCPT(_PAR).
 * For a generated body the replaced body must equal the body sent (the bench milters echo it).
 * Latency = from sending MAIL to receiving the final reply.
 *
 * Two ways to run:
 *   by time:  -d SECS [-w WARMUP_SECS]  messages started after the warm-up and finished
 *             before the end are measured (bench/run.sh);
 *   by count: -n N [-W WARMUP_MSGS]     N measured messages after W unmeasured ones
 *             (bench/lists/run.sh).
 *
 * usage: milterload -t unix:/path|inet:HOST:PORT [-c C] [-d SECS] [-w WARMUP_SECS]
 *                   [-n MSGS] [-W WARMUP_MSGS] [-b BODY_BYTES | -f FILE] [-r RCPTS]
 *                   [-k EXPECTED_ADDED] [-T TIMEOUT_MS]
 * prints one line: msgs=N secs=S msgs_per_s=X p50_ms=A p99_ms=B errors=E bytes_replaced=R
 * (the first error's reason goes to stderr). Exit status 1 if there were errors, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65535
#define P_HDR_LEADSPC 0x100000u

static const char *o_target, *o_file;
static int o_conc = 1, o_rcpts = 1, o_k = -2, o_timeout_ms = 10000;
static double o_secs = 0, o_warm = 0.5;
static long o_count = 0, o_warm_count = 0;
static size_t o_body = 4096;

/* the message: header fields (value as after the colon, leading space kept) and body */
struct hdr {
    char *name, *value;
};
static struct hdr *g_hdrs;
static int g_nhdrs;
static unsigned char *g_body;
static size_t g_body_len;
static int g_echo_body; /* generated body: the bench milters send it back unchanged */

static double g_measure_from, g_end;
static atomic_long g_next;      /* count mode: next message number */
static atomic_long g_first_err; /* 0 until the first error is reported */
static double g_count_start;    /* count mode: when the first measured message started */

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
    unsigned long long replaced;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(const char *what)
{
    if (atomic_fetch_add(&g_first_err, 1) == 0)
        fprintf(stderr, "milterload: first error: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
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
    /* no read or write may hang: a stuck milter is an error, not a stuck benchmark */
    struct timeval tv = {.tv_sec = o_timeout_ms / 1000, .tv_usec = (o_timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
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
        ssize_t w = send(c->fd, c->out + off, c->outlen - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fail("write");
            return -1;
        }
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
        if (r <= 0) {
            if (r == 0)
                errno = 0;
            fail(r == 0 ? "connection closed by the milter" : "read");
            return -1;
        }
        off += (size_t)r;
    }
    return 0;
}

/* reads one reply frame; returns its code, payload in c->in + 1, length in *len; -1 on error */
static int reply(struct conn *c, size_t *len)
{
    if (c->outlen && flush_out(c) < 0)
        return -1;
    uint32_t l;
    if (read_full(c->fd, &l, 4) < 0)
        return -1;
    l = ntohl(l);
    if (l == 0 || l > 16 * 1024 * 1024) {
        errno = 0;
        fail("bad reply length");
        return -1;
    }
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
    int r = reply(c, &len);
    if (r == 'c')
        return 0;
    if (r >= 0) {
        errno = 0;
        fail("a command before end-of-message was not answered with CONTINUE");
    }
    return -1;
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

static int is_final(int code)
{
    switch (code) {
    case '+': case '2': case '-': case 'b': case 'e': case 'h': case 'i': case 'm': case 'p': case 'q':
        return 0;
    default:
        return 1;
    }
}

/* 0 = ok, -1 = connection broken, -2 = the message's answer failed a check */
static int message(struct conn *c, long seq, unsigned long long *replaced)
{
    char qid[32], buf[128];
    snprintf(qid, sizeof qid, "%08lX", seq);
    macro(c, 'M', "{mail_addr}", "sender@example.org");
    if (!(c->proto & 0x4) && cmd(c, 'M', "<sender@example.org>", 21, 0x4000) < 0)
        return -1;
    for (int i = 0; i < o_rcpts; i++) {
        int n = snprintf(buf, sizeof buf, "<rcpt%d@example.com>", i + 1);
        macro(c, 'R', "i", qid);
        if (!(c->proto & 0x8) && cmd(c, 'R', buf, (size_t)n + 1, 0x8000) < 0)
            return -1;
    }
    if (!(c->proto & 0x200) && cmd(c, 'T', NULL, 0, 0x10000) < 0)
        return -1;
    if (!(c->proto & 0x20)) {
        for (int i = 0; i < g_nhdrs; i++) {
            const char *v = g_hdrs[i].value;
            if (!(c->proto & P_HDR_LEADSPC) && *v == ' ')
                v++; /* without HDR_LEADSPC the MTA drops the space after the colon */
            size_t nl = strlen(g_hdrs[i].name) + 1, vl = strlen(v) + 1;
            char *h = malloc(nl + vl);
            memcpy(h, g_hdrs[i].name, nl);
            memcpy(h + nl, v, vl);
            macro(c, 'L', "i", qid);
            int r = cmd(c, 'L', h, nl + vl, 0x80);
            free(h);
            if (r < 0)
                return -1;
        }
    }
    macro(c, 'N', "i", qid);
    if (!(c->proto & 0x40) && cmd(c, 'N', NULL, 0, 0x40000) < 0)
        return -1;
    if (!(c->proto & 0x10)) {
        for (size_t off = 0; off < g_body_len; off += CHUNK) {
            size_t n = g_body_len - off < CHUNK ? g_body_len - off : CHUNK;
            macro(c, 'B', "i", qid);
            if (cmd(c, 'B', g_body + off, n, 0x80000) < 0)
                return -1;
        }
    }
    macro(c, 'E', "i", qid);
    put(c, 'E', NULL, 0);
    size_t body = 0, len;
    int added = 0, deleted = 0, code, bad = 0;
    for (;;) {
        code = reply(c, &len);
        if (code < 0)
            return -1;
        if (is_final(code))
            break;
        if (code == 'b') {
            if (len > CHUNK || (g_echo_body && (body + len > g_body_len || memcmp(c->in + 1, g_body + body, len) != 0)))
                bad = 1;
            body += len;
        } else if (code == '+' || code == '2') {
            added++;
        } else if (code == '-') {
            deleted++;
        }
    }
    put(c, 'A', NULL, 0); /* Postfix sends ABORT after every message; it goes out with the next write */
    *replaced += body;
    errno = 0;
    if (code != 'c') {
        fail("the final reply was not CONTINUE");
        return -2;
    }
    if (bad || (g_echo_body && body != g_body_len)) {
        fail("the replaced body differs from the body sent, or a REPLBODY chunk exceeds 65535 bytes");
        return -2;
    }
    if (o_k >= 0 && (added != o_k || deleted != 1)) {
        fail("wrong number of ADDRCPT/DELRCPT");
        return -2;
    }
    return 0;
}

/* count mode: the next message number, or -1 when all are handed out */
static long take(void)
{
    long seq = atomic_fetch_add(&g_next, 1);
    if (seq >= o_warm_count + o_count)
        return -1;
    if (seq == o_warm_count)
        g_count_start = now();
    return seq;
}

static void record(struct result *res, double secs)
{
    if (res->n == res->cap) {
        res->cap = res->cap ? res->cap * 2 : 1024;
        res->lat = realloc(res->lat, res->cap * sizeof *res->lat);
    }
    res->lat[res->n++] = secs;
}

static void *worker(void *arg)
{
    struct result *res = arg;
    struct conn c = {0};
    c.fd = dial();
    if (c.fd < 0) {
        fail("connect");
        res->errors++;
        return NULL;
    }
    if (negotiate(&c) < 0) {
        res->errors++;
        close(c.fd);
        return NULL;
    }
    long seq = (long)(uintptr_t)res * 1000003L;
    for (;;) {
        int measured = 0;
        if (o_count > 0) {
            if ((seq = take()) < 0)
                break;
            measured = seq >= o_warm_count;
        } else {
            seq++;
        }
        double t0 = now();
        if (o_count == 0) {
            if (t0 >= g_end)
                break;
            measured = t0 >= g_measure_from;
        }
        int rc = message(&c, seq, &res->replaced);
        double t1 = now();
        if (rc == -1) {
            res->errors++;
            break;
        }
        if (rc == -2)
            res->errors++;
        else if (measured && (o_count > 0 || t1 <= g_end))
            record(res, t1 - t0);
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

static void add_header(const char *name, size_t nlen, const char *value, size_t vlen)
{
    g_hdrs = realloc(g_hdrs, (size_t)(g_nhdrs + 1) * sizeof *g_hdrs);
    g_hdrs[g_nhdrs].name = strndup(name, nlen);
    g_hdrs[g_nhdrs].value = strndup(value, vlen);
    g_nhdrs++;
}

/* one "Name:value" field (folded with LF) -> a HEADER event; text without a colon is ignored */
static void add_field(const char *field, size_t flen)
{
    const char *colon = flen ? memchr(field, ':', flen) : NULL;
    if (colon)
        add_header(field, (size_t)(colon - field), colon + 1, flen - (size_t)(colon - field) - 1);
}

static void make_generated_message(void)
{
    add_header("From", 4, " sender@example.org", 19);
    add_header("To", 2, " rcpt1@example.com", 18);
    add_header("Subject", 7, " bench", 6);
    g_body_len = o_body;
    g_body = malloc(o_body);
    for (size_t i = 0; i < o_body; i++) /* CRLF text lines, like a real body */
        g_body[i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : (unsigned char)('a' + i % 26);
    g_echo_body = 1;
}

/* -f: header fields up to the first empty line (folded lines joined with LF, as Postfix sends
 * them), then the body with every line ending in CRLF. */
static int load_message_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 1 << 20, len = 0;
    char *raw = malloc(cap);
    size_t n;
    while ((n = fread(raw + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap)
            raw = realloc(raw, cap *= 2);
    }
    fclose(f);
    char *field = malloc(len + 1);
    size_t flen = 0, pos = 0, e = 0;
    while (e < len && raw[e] != '\n' && raw[e] != ':' && raw[e] != ' ')
        e++;
    int in_header = e > 0 && e < len && raw[e] == ':'; /* a header only if the first line is "Name:..." */
    while (in_header && pos < len) {
        size_t start = pos;
        for (e = pos; e < len && raw[e] != '\n'; e++)
            ;
        size_t ll = e - start;
        if (ll && raw[start + ll - 1] == '\r')
            ll--;
        pos = e < len ? e + 1 : e;
        if (ll > 0 && (raw[start] == ' ' || raw[start] == '\t') && flen) {
            field[flen++] = '\n'; /* a continuation line: folded with LF, as Postfix sends it */
        } else {
            add_field(field, flen);
            flen = 0;
        }
        if (ll == 0)
            break; /* the empty line between header and body */
        memcpy(field + flen, raw + start, ll);
        flen += ll;
    }
    add_field(field, flen);
    free(field);
    g_body = malloc(2 * (len - pos) + 1);
    g_body_len = 0;
    while (pos < len) {
        size_t e = pos;
        while (e < len && raw[e] != '\n')
            e++;
        size_t ll = e - pos;
        if (ll && raw[pos + ll - 1] == '\r')
            ll--;
        memcpy(g_body + g_body_len, raw + pos, ll);
        g_body_len += ll;
        if (e < len) {
            g_body[g_body_len++] = '\r';
            g_body[g_body_len++] = '\n';
        }
        pos = e < len ? e + 1 : e;
    }
    free(raw);
    return 0;
}

int main(int argc, char **argv)
{
    int ch;
    while ((ch = getopt(argc, argv, "t:c:d:w:n:W:b:f:r:k:T:")) != -1) {
        switch (ch) {
        case 't': o_target = optarg; break;
        case 'c': o_conc = atoi(optarg); break;
        case 'd': o_secs = atof(optarg); break;
        case 'w': o_warm = atof(optarg); break;
        case 'n': o_count = atol(optarg); break;
        case 'W': o_warm_count = atol(optarg); break;
        case 'b': o_body = (size_t)atol(optarg); break;
        case 'f': o_file = optarg; break;
        case 'r': o_rcpts = atoi(optarg); break;
        case 'k': o_k = atoi(optarg); break;
        case 'T': o_timeout_ms = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: milterload -t unix:/path|inet:HOST:PORT [-c C] [-d SECS] [-w WARM_SECS] [-n MSGS] [-W WARM_MSGS]"
                            " [-b BYTES | -f FILE] [-r RCPTS] [-k ADDED] [-T TIMEOUT_MS]\n");
            return 2;
        }
    }
    if (!o_target || o_conc < 1 || o_rcpts < 1 || o_body < 1 || o_timeout_ms < 1 || o_count < 0 || o_warm_count < 0) {
        fprintf(stderr, "milterload: -t is required; -c, -r, -b, -T must be >= 1\n");
        return 2;
    }
    if ((o_secs > 0) == (o_count > 0)) {
        fprintf(stderr, "milterload: give exactly one of -d SECS and -n MSGS\n");
        return 2;
    }
    if (o_file) {
        if (load_message_file(o_file) < 0) {
            fprintf(stderr, "milterload: cannot read %s: %s\n", o_file, strerror(errno));
            return 2;
        }
        if (o_k == -2)
            o_k = -1;
    } else {
        make_generated_message();
        if (o_k == -2)
            o_k = 10;
    }
    double start = now();
    g_measure_from = start + o_warm;
    g_end = g_measure_from + o_secs;
    pthread_t *t = calloc((size_t)o_conc, sizeof *t);
    struct result *r = calloc((size_t)o_conc, sizeof *r);
    for (int i = 0; i < o_conc; i++)
        pthread_create(&t[i], NULL, worker, &r[i]);
    size_t total = 0;
    long errors = 0;
    unsigned long long replaced = 0;
    for (int i = 0; i < o_conc; i++) {
        pthread_join(t[i], NULL);
        total += r[i].n;
        errors += r[i].errors;
        replaced += r[i].replaced;
    }
    double secs = o_count > 0 ? (g_count_start > 0 ? now() - g_count_start : 0) : o_secs;
    double *all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < o_conc; i++) {
        memcpy(all + k, r[i].lat, r[i].n * sizeof *all);
        k += r[i].n;
    }
    qsort(all, total, sizeof *all, cmpd);
    double p50 = total ? all[total / 2] * 1000 : 0, p99 = total ? all[(size_t)(total * 0.99)] * 1000 : 0;
    printf("msgs=%zu secs=%.2f msgs_per_s=%.1f p50_ms=%.2f p99_ms=%.2f errors=%ld bytes_replaced=%llu\n", total, secs,
           secs > 0 ? total / secs : 0, p50, p99, errors, replaced);
    return errors ? 1 : 0;
}
