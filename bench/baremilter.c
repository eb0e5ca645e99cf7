/*
 * baremilter - the least work any milter can do for bench/run.sh's echo shape: a yardstick of what the machine allows.
 *
 * One thread per connection, blocking I/O, TCP_NODELAY. It negotiates the same protocol steps as refmilter
 * and our echo handler, keeps the whole message in its input buffer, and at end-of-message answers with
 * one writev: DELRCPT, K ADDRCPTs, and REPLBODY frames whose payloads point straight into the received BODY
 * frames (no copy of the body in user space at all), then CONTINUE. No checks, no limits, no logging: the
 * figures it reaches are what the kernel's socket copies and the load generator allow on this machine, so
 * "ours / libmilter" can be read against "bare / libmilter": a target far above what the bare milter reaches
 * cannot be met by any milter on this machine (at high concurrency the bare milter's thread per connection
 * schedules worse than an event loop, so ours can exceed it there).
 *
 * usage: baremilter [-k K] unix:/path | inet:PORT@127.0.0.1
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define SMFIP_WANT (0x1 | 0x2 | 0x20 | 0x40 | 0x100 | 0x200 | 0x4000 | 0x8000 | 0x80000)
#define SMFIF_WANT (0x02 | 0x04 | 0x08) /* CHGBODY | ADDRCPT | DELRCPT */
#define MAXIOV 1024

static int o_k = 10;
static unsigned char g_add[64][40];
static size_t g_addlen[64];

static int write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        int batch = n < MAXIOV ? n : MAXIOV;
        ssize_t w = writev(fd, iov, batch);
        if (w < 0)
            return -1;
        while (batch > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++, n--, batch--;
        }
        if (batch > 0 && w > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

static void put_header(unsigned char *h, uint32_t payload, char code)
{
    uint32_t l = htonl(payload + 1);
    memcpy(h, &l, 4);
    h[4] = (unsigned char)code;
}

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    size_t cap = 4 << 20, len = 0, pos = 0;
    unsigned char *in = malloc(cap);
    size_t nchunks = 0, chunkcap = 64;
    size_t *chunk_off = malloc(chunkcap * sizeof *chunk_off), *chunk_len = malloc(chunkcap * sizeof *chunk_len);
    unsigned char (*hdr)[5] = malloc((chunkcap + 2) * sizeof *hdr);
    struct iovec *iov = malloc((2 * chunkcap + 2 * 64 + 8) * sizeof *iov);
    size_t rcpt_off = 0, rcpt_len = 0; /* first recipient of the message, inside in[] */
    for (;;) {
        if (len == cap) {
            cap *= 2;
            in = realloc(in, cap);
        }
        ssize_t r = read(fd, in + len, cap - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        for (;;) {
            if (len - pos < 5)
                break;
            uint32_t l;
            memcpy(&l, in + pos, 4);
            l = ntohl(l);
            if (len - pos < 4 + (size_t)l)
                break;
            char code = (char)in[pos + 4];
            size_t p = pos + 5, n = l - 1;
            pos += 4 + l;
            if (code == 'O') {
                unsigned char o[17];
                put_header(o, 12, 'O');
                uint32_t v[3] = {htonl(6), htonl(SMFIF_WANT), htonl(SMFIP_WANT)};
                memcpy(o + 5, v, 12);
                struct iovec one = {o, sizeof o};
                if (write_all(fd, &one, 1) < 0)
                    goto done;
            } else if (code == 'M') {
                nchunks = 0;
                rcpt_len = 0;
            } else if (code == 'R') {
                if (!rcpt_len) {
                    rcpt_off = p;
                    rcpt_len = strnlen((char *)in + p, n) + 1;
                }
            } else if (code == 'B') {
                if (nchunks == chunkcap) {
                    chunkcap *= 2;
                    chunk_off = realloc(chunk_off, chunkcap * sizeof *chunk_off);
                    chunk_len = realloc(chunk_len, chunkcap * sizeof *chunk_len);
                    hdr = realloc(hdr, (chunkcap + 2) * sizeof *hdr);
                    iov = realloc(iov, (2 * chunkcap + 2 * 64 + 8) * sizeof *iov);
                }
                chunk_off[nchunks] = p;
                chunk_len[nchunks++] = n;
            } else if (code == 'E') {
                int ni = 0;
                unsigned char del[5], done_[5], addh[64][5];
                put_header(del, (uint32_t)rcpt_len, '-');
                iov[ni++] = (struct iovec){del, 5};
                iov[ni++] = (struct iovec){in + rcpt_off, rcpt_len};
                for (int i = 0; i < o_k; i++) {
                    put_header(addh[i], (uint32_t)g_addlen[i], '+');
                    iov[ni++] = (struct iovec){addh[i], 5};
                    iov[ni++] = (struct iovec){g_add[i], g_addlen[i]};
                }
                for (size_t i = 0; i < nchunks; i++) {
                    put_header(hdr[i], (uint32_t)chunk_len[i], 'b');
                    iov[ni++] = (struct iovec){hdr[i], 5};
                    iov[ni++] = (struct iovec){in + chunk_off[i], chunk_len[i]};
                }
                put_header(done_, 0, 'c');
                iov[ni++] = (struct iovec){done_, 5};
                if (write_all(fd, iov, ni) < 0)
                    goto done;
                nchunks = 0;
                rcpt_len = 0;
            } else if (code == 'Q') {
                goto done;
            }
        }
        if (nchunks == 0 && rcpt_len == 0 && pos > 0) { /* no message open: keep only the unparsed tail */
            memmove(in, in + pos, len - pos);
            len -= pos;
            pos = 0;
        }
    }
done:
    close(fd);
    free(in);
    free(chunk_off);
    free(chunk_len);
    free(hdr);
    free(iov);
    return NULL;
}

int main(int argc, char **argv)
{
    int ch;
    while ((ch = getopt(argc, argv, "k:")) != -1) {
        if (ch == 'k')
            o_k = atoi(optarg);
        else
            return 2;
    }
    if (optind != argc - 1 || o_k < 0 || o_k > 64) {
        fprintf(stderr, "usage: baremilter [-k K<=64] unix:/path|inet:PORT@127.0.0.1\n");
        return 2;
    }
    for (int i = 0; i < o_k; i++)
        g_addlen[i] = (size_t)snprintf((char *)g_add[i], sizeof g_add[i], "<echo%d@echo.invalid>", i + 1) + 1;
    signal(SIGPIPE, SIG_IGN);
    const char *conn = argv[optind];
    int ls;
    if (!strncmp(conn, "unix:", 5)) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof a.sun_path, "%s", conn + 5);
        unlink(a.sun_path);
        ls = socket(AF_UNIX, SOCK_STREAM, 0);
        if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0)
            return 1;
        chmod(a.sun_path, 0666);
    } else if (!strncmp(conn, "inet:", 5)) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(conn + 5))};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int one = 1;
        ls = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0)
            return 1;
    } else {
        return 2;
    }
    if (listen(ls, 1024) < 0)
        return 1;
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, serve, (void *)(intptr_t)fd) != 0)
            close(fd);
        pthread_attr_destroy(&at);
    }
}
