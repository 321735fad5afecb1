/* Double-array trie building and greedy longest match over UTF-8 bytes (pure C11, no Python API).
 *
 * Layout: slot s has base, check, value. The child of s for byte c is t = base[s] + c when check[t] == s.
 * value[t] is the id of the token ending at t (0: none; id 0 is reserved). The root is slot 0; the array has
 * 256 spare slots at the end so base + c never leaves it.
 */
#include "trie_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ID TRIE_MAX_ID

/* ---- building ------------------------------------------------------------------------------------ */

typedef struct { const uint8_t *p; uint32_t n; uint32_t id; } Tok;

static int tok_cmp(const void *a, const void *b) {
    const Tok *x = a, *y = b;
    uint32_t m = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, m);
    if (c) return c;
    return (x->n > y->n) - (x->n < y->n);
}

typedef struct {
    uint8_t *used; Slot *da; size_t *nf; size_t cap; size_t first_free; size_t top;
    size_t hint[257];  /* where the last search for a node with k children succeeded: a heuristic that keeps
                          the search from rescanning dense regions (World builds in ~10 ms instead of ~50) */
} Builder;

static int grow(Builder *b, size_t need) {
    if (need <= b->cap) return 0;
    size_t cap = b->cap * 2 > need + 512 ? b->cap * 2 : need + 512;
    uint8_t *u = realloc(b->used, cap);
    if (!u) return -1;
    b->used = u;
    Slot *d = realloc(b->da, cap * sizeof(Slot));
    if (!d) return -1;
    b->da = d;
    size_t *f = realloc(b->nf, cap * sizeof(size_t));
    if (!f) return -1;
    b->nf = f;
    memset(b->used + b->cap, 0, cap - b->cap);
    for (size_t i = b->cap; i < cap; i++) { d[i].base = 0; d[i].check = -1; d[i].value = 0; }
    b->cap = cap;
    return 0;
}

/* The first free slot >= p: nf[] links each used slot to a later slot (path-compressed, union-find style),
 * so runs of used slots are skipped in near constant time. */
static size_t next_free(Builder *b, size_t p) {
    size_t r = p;
    while (b->used[r]) r = b->nf[r];
    while (p != r) { size_t nx = b->nf[p]; b->nf[p] = r; p = nx; }
    return r;
}

static void take(Builder *b, size_t s) { b->used[s] = 1; b->nf[s] = s + 1; }

/* A base >= 1 whose slots base + labels[j] are all free (first fit from a heuristic start). */
static long find_base(Builder *b, const uint8_t *labels, int k) {
    size_t p = b->hint[k] > b->first_free ? b->hint[k] : b->first_free;
    for (;; p++) {
        p = next_free(b, p);
        if (grow(b, p + 258) < 0) return -1;
        long base = (long)p - labels[0];
        if (base >= 1) {
            int ok = 1;
            for (int j = 1; j < k; j++) if (b->used[base + labels[j]]) { ok = 0; break; }
            if (ok) { b->hint[k] = p; return base; }
        }
    }
}

/* Build the double array (and the decode tables) from n tokens. Returns TRIE_OK, TRIE_NOMEM, or TRIE_INVALID
 * with a message in err. */
int trie_build(TrieCore *self, const uint8_t *blob, size_t blob_n, const uint32_t *ids, const uint32_t *lens,
               size_t n, char *err, size_t err_n) {
    int rc = TRIE_NOMEM;
    Tok *toks = malloc((n ? n : 1) * sizeof(Tok));
    size_t maxn = blob_n + 1;  /* nodes <= total bytes + root */
    int32_t *first = malloc(maxn * sizeof(int32_t)), *last = malloc(maxn * sizeof(int32_t));
    int32_t *next = malloc(maxn * sizeof(int32_t)), *slot = malloc(maxn * sizeof(int32_t));
    int32_t *queue = malloc(maxn * sizeof(int32_t));
    uint8_t *label = malloc(maxn);
    uint32_t *value = calloc(maxn, sizeof(uint32_t));
    int32_t *path = NULL;
    Builder b = {0};
    if (!toks || !first || !last || !next || !slot || !queue || !label || !value) { goto done; }

    size_t off = 0, maxlen = 0;
    uint32_t max_id = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == 0 || ids[i] > MAX_ID) {
            rc = TRIE_INVALID; snprintf(err, err_n, "id %u is outside 1..%u", ids[i], MAX_ID); goto done;
        }
        if (lens[i] == 0 || lens[i] > blob_n - off) {
            rc = TRIE_INVALID; snprintf(err, err_n, "token lengths do not add up to the blob size"); goto done;
        }
        toks[i].p = blob + off; toks[i].n = lens[i]; toks[i].id = ids[i];
        off += lens[i];
        if (lens[i] > maxlen) maxlen = lens[i];
        if (ids[i] > max_id) max_id = ids[i];
    }
    if (off != blob_n) { rc = TRIE_INVALID; snprintf(err, err_n, "token lengths do not add up to the blob size"); goto done; }

    /* decode tables */
    self->blob = malloc(blob_n ? blob_n : 1);
    self->off = calloc((size_t)max_id + 1, sizeof(uint32_t));
    self->len = calloc((size_t)max_id + 1, sizeof(uint32_t));
    if (!self->blob || !self->off || !self->len) { goto done; }
    memcpy(self->blob, blob, blob_n);
    for (size_t i = 0; i < n; i++) {
        if (self->len[toks[i].id]) { rc = TRIE_INVALID; snprintf(err, err_n, "duplicate id %u", toks[i].id); goto done; }
        self->off[toks[i].id] = (uint32_t)(toks[i].p - blob);
        self->len[toks[i].id] = toks[i].n;
    }
    self->max_id = max_id;
    self->wide = max_id > 0xFFFF;

    /* 1. a pointer trie from the sorted tokens: nodes appear in preorder, children in byte order */
    qsort(toks, n, sizeof(Tok), tok_cmp);
    path = malloc((maxlen + 1) * sizeof(int32_t));
    if (!path) { goto done; }
    size_t nodes = 1;
    first[0] = last[0] = next[0] = -1;
    path[0] = 0;
    const Tok *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        const Tok *t = &toks[i];
        uint32_t lcp = 0;
        if (prev) {
            uint32_t m = prev->n < t->n ? prev->n : t->n;
            while (lcp < m && prev->p[lcp] == t->p[lcp]) lcp++;
            if (lcp == t->n) { rc = TRIE_INVALID; snprintf(err, err_n, "duplicate token (id %u)", t->id); goto done; }
        }
        for (uint32_t d = lcp; d < t->n; d++) {
            int32_t u = (int32_t)nodes++, par = path[d];
            label[u] = t->p[d]; first[u] = last[u] = next[u] = -1;
            if (last[par] < 0) first[par] = u; else next[last[par]] = u;
            last[par] = u;
            path[d + 1] = u;
        }
        value[path[t->n]] = t->id;
        prev = t;
    }
    self->nodes = nodes;

    /* 2. place nodes breadth first into the double array */
    if (grow(&b, 1024) < 0) { goto done; }
    take(&b, 0); b.da[0].check = -2; b.first_free = 1;
    slot[0] = 0;
    size_t qh = 0, qt = 0;
    queue[qt++] = 0;
    uint8_t labels[256];
    while (qh < qt) {
        int32_t u = queue[qh++];
        int k = 0;
        for (int32_t c = first[u]; c >= 0; c = next[c]) labels[k++] = label[c];
        if (!k) continue;
        long base = find_base(&b, labels, k);
        if (base < 0) { goto done; }
        b.da[slot[u]].base = (int32_t)base;
        for (int32_t c = first[u]; c >= 0; c = next[c]) {
            size_t s = (size_t)base + label[c];
            take(&b, s); b.da[s].check = slot[u]; b.da[s].value = value[c];
            slot[c] = (int32_t)s;
            if (s > b.top) b.top = s;
            queue[qt++] = c;
        }
        b.first_free = next_free(&b, b.first_free);
    }
    /* every byte must start a token, so the match below always advances */
    for (int c = 0; c < 256; c++) {
        int32_t t = b.da[0].base + c;
        if (b.da[t].check != 0 || b.da[t].value == 0) {
            rc = TRIE_INVALID; snprintf(err, err_n, "byte 0x%02x is not a token; all 256 single bytes must be tokens", c);
            goto done;
        }
    }
    self->size = b.top + 257;
    if (grow(&b, self->size) < 0) { goto done; }
    Slot *da = realloc(b.da, self->size * sizeof(Slot));
    self->da = da ? da : b.da;
    b.da = NULL;
    rc = TRIE_OK;
done:
    if (rc != TRIE_OK) trie_free(self);
    free(toks); free(first); free(last); free(next); free(slot); free(queue); free(label); free(value); free(path);
    free(b.used); free(b.da); free(b.nf);
    return rc;
}

/* ---- matching (no Python API: runs without the GIL) -------------------------------------------------- */

#define MATCH_LOOP(OUT_T)                                                                    \
    size_t pos = 0, k = 0;                                                                   \
    while (pos < n) {                                                                        \
        int32_t s = 0; size_t i = pos, end = pos + 1; uint32_t best = 0;                     \
        do {                                                                                 \
            int32_t t = da[s].base + p[i];                                                   \
            if (da[t].check != s) break;                                                     \
            s = t; i++;                                                                      \
            if (da[s].value) { best = da[s].value; end = i; }                                \
        } while (i < n);                                                                     \
        ((OUT_T *)out)[k++] = (OUT_T)best;                                                   \
        pos = end;                                                                           \
    }                                                                                        \
    return k;

size_t trie_match16(const Slot *da, const uint8_t *p, size_t n, void *out) { MATCH_LOOP(uint16_t) }
size_t trie_match32(const Slot *da, const uint8_t *p, size_t n, void *out) { MATCH_LOOP(uint32_t) }

/* UTF-8 of a str's code points (kind 1, 2 or 4 bytes each). -1: lone surrogate, -2: no memory. */
#define UTF8_LOOP(CHAR_T)                                                                     \
    for (size_t i = 0; i < n; i++) {                                                          \
        uint32_t c = ((const CHAR_T *)data)[i];                                               \
        if (c < 0x80) { *q++ = (uint8_t)c; continue; }                                        \
        if (c < 0x800) { *q++ = 0xC0 | (c >> 6); *q++ = 0x80 | (c & 63); continue; }          \
        if (c < 0x10000) {                                                                    \
            if (c >= 0xD800 && c <= 0xDFFF) { free(o); return -1; }                           \
            *q++ = 0xE0 | (c >> 12); *q++ = 0x80 | ((c >> 6) & 63); *q++ = 0x80 | (c & 63);   \
            continue;                                                                         \
        }                                                                                     \
        *q++ = 0xF0 | (c >> 18); *q++ = 0x80 | ((c >> 12) & 63); *q++ = 0x80 | ((c >> 6) & 63); \
        *q++ = 0x80 | (c & 63);                                                               \
    }

static int utf8_of(int kind, const void *data, size_t n, uint8_t **res, size_t *res_n) {
    uint8_t *o = malloc(n * (kind == 1 ? 2 : kind == 2 ? 3 : 4) + 1), *q = o;
    if (!o) return -2;
    if (kind == 1) { UTF8_LOOP(uint8_t) }
    else if (kind == 2) { UTF8_LOOP(uint16_t) }
    else { UTF8_LOOP(uint32_t) }
    *res = o; *res_n = (size_t)(q - o);
    return 0;
}


void trie_run_job(const TrieCore *tr, Job *j) {
    const uint8_t *p = j->src;
    size_t n = j->n;
    uint8_t *tmp = NULL;
    if (j->kind) {
        j->err = utf8_of(j->kind, j->src, j->n, &tmp, &n);
        if (j->err) return;
        p = tmp;
    }
    j->out = malloc((n ? n : 1) * (tr->wide ? 4 : 2));
    if (!j->out) { j->err = -2; free(tmp); return; }
    j->nout = (tr->wide ? trie_match32 : trie_match16)(tr->da, p, n, j->out);
    free(tmp);
}

void trie_free(TrieCore *self) {
    free(self->da); free(self->blob); free(self->off); free(self->len);
    memset(self, 0, sizeof(*self));
}
