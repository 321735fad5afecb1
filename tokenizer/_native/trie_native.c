/* The native core of rwkv_data.tokenizer: greedy longest match over UTF-8 bytes on a double-array trie.
 *
 * Plain C11 + the CPython API, no third-party headers. The binding is thin: the Python side validates the
 * vocab (tokenizer/vocab.py) and shapes results (numpy arrays are built from the returned bytearray with
 * np.frombuffer). Nothing here may crash the process: every id is checked before use, allocation
 * failures raise MemoryError.
 *
 * Trie layout (double array): slot s has base, check, value. The child of s for byte c is t = base[s] + c
 * when check[t] == s. value[t] is the id of the token ending at t (0: none; id 0 is reserved). The root is
 * slot 0; the array has 256 spare slots at the end so base + c never leaves it.
 *
 * Threads: matching runs with the GIL released; encode_batch runs pthreads over the documents (an atomic
 * counter hands them out). str input is converted to UTF-8 by the worker threads too.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ID ((1u << 24) - 1)  /* decode table bound: 16.7 M ids */
#define INT_CACHE_MAX (1u << 18) /* ids below this get cached Python ints for list output */
#define NOGIL_MIN 8192           /* release the GIL for single documents at least this long */

typedef struct { int32_t base; int32_t check; uint32_t value; } Slot;

typedef struct {
    PyObject_HEAD
    Slot *da;           /* double array */
    size_t size;        /* slots */
    uint8_t *blob;      /* token bytes, concatenated */
    uint32_t *off;      /* id -> offset in blob */
    uint32_t *len;      /* id -> length (0: no such id) */
    uint32_t max_id;
    int wide;           /* output uint32 (1) or uint16 (0) */
    size_t nodes;
    PyObject **ints;    /* cached Python ints 0..min(max_id, INT_CACHE_MAX) */
    size_t nints;
} Trie;

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

/* Build the double array from n tokens. Returns 0, or -1 with a Python exception set. */
static int build(Trie *self, const uint8_t *blob, size_t blob_n, const uint32_t *ids, const uint32_t *lens,
                 size_t n) {
    int rc = -1;
    Tok *toks = malloc((n ? n : 1) * sizeof(Tok));
    size_t maxn = blob_n + 1;  /* nodes <= total bytes + root */
    int32_t *first = malloc(maxn * sizeof(int32_t)), *last = malloc(maxn * sizeof(int32_t));
    int32_t *next = malloc(maxn * sizeof(int32_t)), *slot = malloc(maxn * sizeof(int32_t));
    int32_t *queue = malloc(maxn * sizeof(int32_t));
    uint8_t *label = malloc(maxn);
    uint32_t *value = calloc(maxn, sizeof(uint32_t));
    int32_t *path = NULL;
    Builder b = {0};
    if (!toks || !first || !last || !next || !slot || !queue || !label || !value) { PyErr_NoMemory(); goto done; }

    size_t off = 0, maxlen = 0;
    uint32_t max_id = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == 0 || ids[i] > MAX_ID) {
            PyErr_Format(PyExc_ValueError, "id %u is outside 1..%u", ids[i], MAX_ID); goto done;
        }
        if (lens[i] == 0 || lens[i] > blob_n - off) {
            PyErr_SetString(PyExc_ValueError, "token lengths do not add up to the blob size"); goto done;
        }
        toks[i].p = blob + off; toks[i].n = lens[i]; toks[i].id = ids[i];
        off += lens[i];
        if (lens[i] > maxlen) maxlen = lens[i];
        if (ids[i] > max_id) max_id = ids[i];
    }
    if (off != blob_n) { PyErr_SetString(PyExc_ValueError, "token lengths do not add up to the blob size"); goto done; }

    /* decode tables */
    self->blob = malloc(blob_n ? blob_n : 1);
    self->off = calloc((size_t)max_id + 1, sizeof(uint32_t));
    self->len = calloc((size_t)max_id + 1, sizeof(uint32_t));
    if (!self->blob || !self->off || !self->len) { PyErr_NoMemory(); goto done; }
    memcpy(self->blob, blob, blob_n);
    for (size_t i = 0; i < n; i++) {
        if (self->len[toks[i].id]) { PyErr_Format(PyExc_ValueError, "duplicate id %u", toks[i].id); goto done; }
        self->off[toks[i].id] = (uint32_t)(toks[i].p - blob);
        self->len[toks[i].id] = toks[i].n;
    }
    self->max_id = max_id;
    self->wide = max_id > 0xFFFF;

    /* 1. a pointer trie from the sorted tokens: nodes appear in preorder, children in byte order */
    qsort(toks, n, sizeof(Tok), tok_cmp);
    path = malloc((maxlen + 1) * sizeof(int32_t));
    if (!path) { PyErr_NoMemory(); goto done; }
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
            if (lcp == t->n) { PyErr_Format(PyExc_ValueError, "duplicate token (id %u)", t->id); goto done; }
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
    if (grow(&b, 1024) < 0) { PyErr_NoMemory(); goto done; }
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
        if (base < 0) { PyErr_NoMemory(); goto done; }
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
            PyErr_Format(PyExc_ValueError, "byte 0x%02x is not a token; all 256 single bytes must be tokens", c);
            goto done;
        }
    }
    self->size = b.top + 257;
    if (grow(&b, self->size) < 0) { PyErr_NoMemory(); goto done; }
    Slot *da = realloc(b.da, self->size * sizeof(Slot));
    self->da = da ? da : b.da;
    b.da = NULL;
    rc = 0;
done:
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

static size_t match16(const Slot *da, const uint8_t *p, size_t n, void *out) { MATCH_LOOP(uint16_t) }
static size_t match32(const Slot *da, const uint8_t *p, size_t n, void *out) { MATCH_LOOP(uint32_t) }

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

typedef struct {
    const void *src; size_t n; int kind;  /* kind 0: src is n bytes; 1/2/4: n code points of a str */
    void *out; size_t nout; int err;      /* err -1: lone surrogate, -2: no memory */
} Job;

static void run_job(const Trie *tr, Job *j) {
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
    j->nout = (tr->wide ? match32 : match16)(tr->da, p, n, j->out);
    free(tmp);
}

/* ---- Python glue ------------------------------------------------------------------------------------- */

/* Fill a job from a str or bytes-like object (view must be released by the caller if *has_view). */
static int job_from(PyObject *o, Job *j, Py_buffer *view, int *has_view) {
    memset(j, 0, sizeof(*j));
    *has_view = 0;
    if (PyUnicode_Check(o)) {
        if (PyUnicode_READY(o) < 0) return -1;
        j->n = (size_t)PyUnicode_GET_LENGTH(o);
        j->src = PyUnicode_DATA(o);
        j->kind = PyUnicode_IS_ASCII(o) ? 0 : PyUnicode_KIND(o);
        return 0;
    }
    if (PyObject_GetBuffer(o, view, PyBUF_SIMPLE) < 0) {
        PyErr_Format(PyExc_TypeError, "expected str or bytes, got %.80s", Py_TYPE(o)->tp_name);
        return -1;
    }
    *has_view = 1;
    j->src = view->buf; j->n = (size_t)view->len; j->kind = 0;
    return 0;
}

/* Cache the Python ints of the ids (made on the first list output; list building is then an INCREF). */
static int make_ints(Trie *self) {
    size_t n = (size_t)(self->max_id < INT_CACHE_MAX ? self->max_id + 1 : INT_CACHE_MAX);
    PyObject **ints = calloc(n, sizeof(PyObject *));
    if (!ints) { PyErr_NoMemory(); return -1; }
    for (size_t i = 0; i < n; i++) {
        if (!(ints[i] = PyLong_FromSize_t(i))) {
            for (size_t k = 0; k < i; k++) Py_DECREF(ints[k]);
            free(ints);
            return -1;
        }
    }
    self->ints = ints;
    self->nints = n;
    return 0;
}

/* Turn a finished job into a bytearray (raw ids) or a list; frees the job's buffer. */
static PyObject *job_result(Trie *self, PyObject *doc, Job *j, int as_list) {
    PyObject *res = NULL;
    if (j->err == -1) {
        PyObject *tmp = PyUnicode_AsUTF8String(doc);  /* raises the proper UnicodeEncodeError */
        Py_XDECREF(tmp);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_UnicodeEncodeError, "lone surrogate");
    } else if (j->err) {
        PyErr_NoMemory();
    } else if (as_list && !self->ints && make_ints(self) < 0) {
        res = NULL;
    } else if (as_list) {
        res = PyList_New((Py_ssize_t)j->nout);
        for (size_t i = 0; res && i < j->nout; i++) {
            uint32_t v = self->wide ? ((uint32_t *)j->out)[i] : ((uint16_t *)j->out)[i];
            PyObject *x;
            if (v < self->nints) { x = self->ints[v]; Py_INCREF(x); }
            else if (!(x = PyLong_FromUnsignedLong(v))) { Py_CLEAR(res); break; }
            PyList_SET_ITEM(res, (Py_ssize_t)i, x);
        }
    } else {
        res = PyByteArray_FromStringAndSize(j->out, (Py_ssize_t)(j->nout * (self->wide ? 4 : 2)));
    }
    free(j->out);
    j->out = NULL;
    return res;
}

static int built(Trie *self) {
    if (self->da) return 1;
    PyErr_SetString(PyExc_RuntimeError, "Trie was not initialised");
    return 0;
}

static PyObject *encode_one(Trie *self, PyObject *doc, int as_list) {
    Job j; Py_buffer view; int has_view;
    if (!built(self)) return NULL;
    if (job_from(doc, &j, &view, &has_view) < 0) return NULL;
    if (j.n >= NOGIL_MIN) { Py_BEGIN_ALLOW_THREADS run_job(self, &j); Py_END_ALLOW_THREADS }
    else run_job(self, &j);
    if (has_view) PyBuffer_Release(&view);
    return job_result(self, doc, &j, as_list);
}

static PyObject *Trie_encode(Trie *self, PyObject *doc) { return encode_one(self, doc, 0); }
static PyObject *Trie_encode_list(Trie *self, PyObject *doc) { return encode_one(self, doc, 1); }

typedef struct { Trie *tr; Job *jobs; size_t n; atomic_size_t next; } Pool;

static void *worker(void *arg) {
    Pool *pl = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&pl->next, 1);
        if (i >= pl->n) return NULL;
        run_job(pl->tr, &pl->jobs[i]);
    }
}

static PyObject *Trie_encode_batch(Trie *self, PyObject *args) {
    PyObject *seq; int threads, as_array;
    if (!built(self) || !PyArg_ParseTuple(args, "Oip", &seq, &threads, &as_array)) return NULL;
    PyObject *docs = PySequence_Tuple(seq);  /* owns the documents while the GIL is released */
    if (!docs) return NULL;
    size_t n = (size_t)PyTuple_GET_SIZE(docs);
    Job *jobs = calloc(n ? n : 1, sizeof(Job));
    Py_buffer *views = calloc(n ? n : 1, sizeof(Py_buffer));
    char *has = calloc(n ? n : 1, 1);
    PyObject *res = NULL;
    size_t ready = 0;
    if (!jobs || !views || !has) { PyErr_NoMemory(); goto done; }
    for (; ready < n; ready++) {
        int h;
        if (job_from(PyTuple_GET_ITEM(docs, ready), &jobs[ready], &views[ready], &h) < 0) goto done;
        has[ready] = (char)h;
    }
    if (threads < 1) threads = 1;
    if ((size_t)threads > n) threads = n ? (int)n : 1;
    Pool pl = {self, jobs, n, 0};
    int started = 0;
    Py_BEGIN_ALLOW_THREADS
    pthread_t tids[256];
    if (threads > 256) threads = 256;
    for (int t = 1; t < threads; t++) if (pthread_create(&tids[started], NULL, worker, &pl) == 0) started++;
    worker(&pl);  /* the calling thread works too; if a thread failed to start the others do its share */
    for (int t = 0; t < started; t++) pthread_join(tids[t], NULL);
    Py_END_ALLOW_THREADS
    res = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; res && i < n; i++) {
        PyObject *r = job_result(self, PyTuple_GET_ITEM(docs, i), &jobs[i], !as_array);
        if (!r) { Py_CLEAR(res); break; }
        PyList_SET_ITEM(res, (Py_ssize_t)i, r);
    }
done:
    for (size_t i = 0; i < ready; i++) {
        if (has && has[i]) PyBuffer_Release(&views[i]);
        if (jobs) free(jobs[i].out);
    }
    free(jobs); free(views); free(has);
    Py_DECREF(docs);
    return res;
}

/* ---- decode ------------------------------------------------------------------------------------------ */

static int bad_id(Trie *self, long long id, Py_ssize_t k) {
    PyErr_Format(PyExc_ValueError, "id %lld at position %zd is not in the vocab (ids 1..%u%s)", id, k,
                 self->max_id, id == 0 ? "; 0 is the end-of-document id and has no text" : "");
    return -1;
}

/* Read ids from a list/tuple of ints or a C-contiguous integer buffer into a uint32 array. */
static int read_ids(Trie *self, PyObject *obj, uint32_t **res, Py_ssize_t *res_n) {
    if (PyObject_CheckBuffer(obj) && !PyUnicode_Check(obj) && !PyBytes_Check(obj) && !PyByteArray_Check(obj)) {
        Py_buffer v;
        if (PyObject_GetBuffer(obj, &v, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) return -1;
        const char *f = v.format ? v.format : "B";
        if (*f == '@' || *f == '=' || *f == '<') f++;
        char code = f[0];
        int is_signed = code == 'b' || code == 'h' || code == 'i' || code == 'l' || code == 'q' || code == 'n';
        int ok = f[0] && !f[1] && strchr("bBhHiIlLqQnN", code) && (v.itemsize == 1 || v.itemsize == 2 ||
                                                                  v.itemsize == 4 || v.itemsize == 8);
        if (!ok || v.ndim > 1) {
            PyErr_Format(PyExc_ValueError, "ids must be a 1-D native-endian integer array, got format '%s'",
                         v.format ? v.format : "B");
            PyBuffer_Release(&v);
            return -1;
        }
        Py_ssize_t n = v.len / v.itemsize;
        uint32_t *ids = malloc((n ? n : 1) * sizeof(uint32_t));
        if (!ids) { PyBuffer_Release(&v); PyErr_NoMemory(); return -1; }
        for (Py_ssize_t k = 0; k < n; k++) {
            long long x;
            const char *p = (const char *)v.buf + k * v.itemsize;
            switch (v.itemsize) {
            case 1: x = is_signed ? *(const int8_t *)p : *(const uint8_t *)p; break;
            case 2: x = is_signed ? *(const int16_t *)p : *(const uint16_t *)p; break;
            case 4: x = is_signed ? (long long)*(const int32_t *)p : (long long)*(const uint32_t *)p; break;
            default:
                if (!is_signed && *(const uint64_t *)p > (uint64_t)LLONG_MAX) x = LLONG_MAX;
                else x = *(const int64_t *)p;
            }
            if (x <= 0 || x > self->max_id || !self->len[x]) {
                free(ids); PyBuffer_Release(&v); return bad_id(self, x, k);
            }
            ids[k] = (uint32_t)x;
        }
        PyBuffer_Release(&v);
        *res = ids; *res_n = n;
        return 0;
    }
    PyObject *seq = PySequence_Fast(obj, "ids must be a list, tuple or integer array");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    uint32_t *ids = malloc((n ? n : 1) * sizeof(uint32_t));
    if (!ids) { Py_DECREF(seq); PyErr_NoMemory(); return -1; }
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *o = items[k];
        if (!PyLong_Check(o) || PyBool_Check(o)) {
            PyObject *idx = PyBool_Check(o) ? NULL : PyNumber_Index(o);  /* numpy integers */
            if (!idx) {
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError, "ids must be integers, got %.80s at position %zd",
                             Py_TYPE(o)->tp_name, k);
                free(ids); Py_DECREF(seq); return -1;
            }
            long long x = PyLong_AsLongLong(idx);
            Py_DECREF(idx);
            if (x == -1 && PyErr_Occurred()) { PyErr_Clear(); x = LLONG_MAX; }
            if (x <= 0 || x > self->max_id || !self->len[x]) { free(ids); Py_DECREF(seq); return bad_id(self, x, k); }
            ids[k] = (uint32_t)x;
            continue;
        }
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (overflow) {
            PyObject *r = PyObject_Repr(o);
            PyErr_Format(PyExc_ValueError, "id %.40S at position %zd is not in the vocab (ids 1..%u)",
                         r ? r : Py_None, k, self->max_id);
            Py_XDECREF(r); free(ids); Py_DECREF(seq); return -1;
        }
        if (x <= 0 || x > self->max_id || !self->len[x]) { free(ids); Py_DECREF(seq); return bad_id(self, x, k); }
        ids[k] = (uint32_t)x;
    }
    Py_DECREF(seq);
    *res = ids; *res_n = n;
    return 0;
}

static PyObject *Trie_decode(Trie *self, PyObject *obj) {
    uint32_t *ids; Py_ssize_t n;
    if (!built(self) || read_ids(self, obj, &ids, &n) < 0) return NULL;
    size_t total = 0;
    for (Py_ssize_t k = 0; k < n; k++) total += self->len[ids[k]];
    PyObject *res = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (res) {
        char *q = PyBytes_AS_STRING(res);
        for (Py_ssize_t k = 0; k < n; k++) { memcpy(q, self->blob + self->off[ids[k]], self->len[ids[k]]); q += self->len[ids[k]]; }
    }
    free(ids);
    return res;
}

/* ---- type ------------------------------------------------------------------------------------------------ */

static void Trie_dealloc(Trie *self) {
    free(self->da); free(self->blob); free(self->off); free(self->len);
    if (self->ints) { for (size_t i = 0; i < self->nints; i++) Py_XDECREF(self->ints[i]); free(self->ints); }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Trie_init(Trie *self, PyObject *args, PyObject *kw) {
    Py_buffer blob, ids, lens;
    static char *names[] = {"blob", "ids", "lens", NULL};
    if (self->da) { PyErr_SetString(PyExc_RuntimeError, "Trie is already built"); return -1; }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*y*y*", names, &blob, &ids, &lens)) return -1;
    int rc = -1;
    if (ids.len != lens.len || ids.len % 4 || ids.len == 0) {
        PyErr_SetString(PyExc_ValueError, "ids and lens must be equal, non-empty uint32 arrays");
    } else if ((size_t)blob.len >= UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "vocab too large (4 GB of token bytes)");
    } else {
        rc = build(self, blob.buf, (size_t)blob.len, ids.buf, lens.buf, (size_t)ids.len / 4);
    }
    PyBuffer_Release(&blob); PyBuffer_Release(&ids); PyBuffer_Release(&lens);
    return rc;
}

static PyObject *Trie_stats(Trie *self, PyObject *Py_UNUSED(ignored)) {
    size_t bytes = self->size * sizeof(Slot) + 2 * ((size_t)self->max_id + 1) * sizeof(uint32_t);
    return Py_BuildValue("{s:n,s:n,s:n,s:I,s:i}", "slots", (Py_ssize_t)self->size, "nodes",
                         (Py_ssize_t)self->nodes, "nbytes", (Py_ssize_t)bytes, "max_id", self->max_id,
                         "wide", self->wide);
}

static PyMethodDef Trie_methods[] = {
    {"encode", (PyCFunction)Trie_encode, METH_O, "encode(doc) -> bytearray of native uint16/uint32 ids"},
    {"encode_list", (PyCFunction)Trie_encode_list, METH_O, "encode_list(doc) -> list[int]"},
    {"encode_batch", (PyCFunction)Trie_encode_batch, METH_VARARGS,
     "encode_batch(docs: list, num_threads: int, as_array: bool) -> list of bytearray or list[int]"},
    {"decode", (PyCFunction)Trie_decode, METH_O, "decode(ids) -> bytes; ValueError naming a bad id"},
    {"stats", (PyCFunction)Trie_stats, METH_NOARGS, "sizes of the trie"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TrieType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rwkv_data.tokenizer._trie_native.Trie",
    .tp_basicsize = sizeof(Trie),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Trie(blob, ids, lens): double-array trie of the tokens (ids/lens: native uint32 arrays)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Trie_init,
    .tp_dealloc = (destructor)Trie_dealloc,
    .tp_methods = Trie_methods,
};

static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "_trie_native",
                                 "Native core of rwkv_data.tokenizer (double-array trie, greedy longest match).",
                                 -1, NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__trie_native(void) {
    if (PyType_Ready(&TrieType) < 0) return NULL;
    PyObject *m = PyModule_Create(&mod);
    if (!m) return NULL;
    Py_INCREF(&TrieType);
    if (PyModule_AddObject(m, "Trie", (PyObject *)&TrieType) < 0) { Py_DECREF(&TrieType); Py_DECREF(m); return NULL; }
    return m;
}
