/* The CPython binding of rwkv_data.tokenizer's native core (the matching itself is in trie_core.c).
 *
 * Plain C11 + the CPython API, no third-party headers. The binding is thin: the Python side validates the
 * vocab (tokenizer/vocab.py) and shapes results (numpy arrays are built from the returned bytearray with
 * np.frombuffer). Nothing here may crash the process: every id is checked before use, allocation
 * failures raise MemoryError.
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

#include "trie_core.h"

#define INT_CACHE_MAX (1u << 18) /* ids below this get cached Python ints for list output */
#define NOGIL_MIN 8192           /* release the GIL for single documents at least this long */

typedef struct {
    PyObject_HEAD
    TrieCore core;
    PyObject **ints;    /* cached Python ints 0..min(max_id, INT_CACHE_MAX) */
    size_t nints;
} Trie;

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
    size_t n = (size_t)(self->core.max_id < INT_CACHE_MAX ? self->core.max_id + 1 : INT_CACHE_MAX);
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
            uint32_t v = self->core.wide ? ((uint32_t *)j->out)[i] : ((uint16_t *)j->out)[i];
            PyObject *x;
            if (v < self->nints) { x = self->ints[v]; Py_INCREF(x); }
            else if (!(x = PyLong_FromUnsignedLong(v))) { Py_CLEAR(res); break; }
            PyList_SET_ITEM(res, (Py_ssize_t)i, x);
        }
        /* A list of ints cannot be part of a reference cycle, so the cyclic GC need not scan it (CPython
         * untracks dicts and tuples of atomic values the same way). Keeping many id lists alive otherwise
         * triggers full collections that walk every id: 40 % of the list path's time on the corpus. */
        if (res) PyObject_GC_UnTrack(res);
    } else {
        res = PyByteArray_FromStringAndSize(j->out, (Py_ssize_t)(j->nout * (self->core.wide ? 4 : 2)));
    }
    free(j->out);
    j->out = NULL;
    return res;
}

static int built(Trie *self) {
    if (self->core.da) return 1;
    PyErr_SetString(PyExc_RuntimeError, "Trie was not initialised");
    return 0;
}

static PyObject *encode_one(Trie *self, PyObject *doc, int as_list) {
    Job j; Py_buffer view; int has_view;
    if (!built(self)) return NULL;
    if (job_from(doc, &j, &view, &has_view) < 0) return NULL;
    if (j.n >= NOGIL_MIN) { Py_BEGIN_ALLOW_THREADS trie_run_job(&self->core, &j); Py_END_ALLOW_THREADS }
    else trie_run_job(&self->core, &j);
    if (has_view) PyBuffer_Release(&view);
    return job_result(self, doc, &j, as_list);
}

static PyObject *Trie_encode(Trie *self, PyObject *doc) { return encode_one(self, doc, 0); }
static PyObject *Trie_encode_list(Trie *self, PyObject *doc) { return encode_one(self, doc, 1); }

typedef struct { Trie *tr; Job *jobs; Job **order; size_t n; atomic_size_t next; } Pool;

static void *worker(void *arg) {
    Pool *pl = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&pl->next, 1);
        if (i >= pl->n) return NULL;
        trie_run_job(&pl->tr->core, pl->order ? pl->order[i] : &pl->jobs[i]);
    }
}

/* Longest documents first, so one long document handed out last cannot leave the other threads idle. */
static int longer_first(const void *a, const void *b) {
    size_t x = (*(Job *const *)a)->n * (size_t)((*(Job *const *)a)->kind ? (*(Job *const *)a)->kind : 1);
    size_t y = (*(Job *const *)b)->n * (size_t)((*(Job *const *)b)->kind ? (*(Job *const *)b)->kind : 1);
    return (x < y) - (x > y);
}

/* Encode every document of the tuple `docs` on `threads` threads (GIL released). Fills jobs[0..n) (their `out`
 * buffers belong to the caller) and views/has (released by the caller for i < *ready). -1 with an exception set
 * when a document is not str/bytes. */
static int run_batch(Trie *self, PyObject *docs, int threads, Job *jobs, Py_buffer *views, char *has, size_t *ready) {
    size_t n = (size_t)PyTuple_GET_SIZE(docs);
    for (*ready = 0; *ready < n; (*ready)++) {
        int h;
        if (job_from(PyTuple_GET_ITEM(docs, *ready), &jobs[*ready], &views[*ready], &h) < 0) return -1;
        has[*ready] = (char)h;
    }
    if (threads < 1) threads = 1;
    if ((size_t)threads > n) threads = n ? (int)n : 1;
    Job **order = threads > 1 ? malloc(n * sizeof(Job *)) : NULL;  /* NULL (1 thread, or no memory): plain order */
    if (order) {
        for (size_t i = 0; i < n; i++) order[i] = &jobs[i];
        qsort(order, n, sizeof(Job *), longer_first);
    }
    Pool pl = {self, jobs, order, n, 0};
    int started = 0;
    Py_BEGIN_ALLOW_THREADS
    pthread_t tids[256];
    if (threads > 256) threads = 256;
    for (int t = 1; t < threads; t++) if (pthread_create(&tids[started], NULL, worker, &pl) == 0) started++;
    worker(&pl);  /* the calling thread works too; if a thread failed to start the others do its share */
    for (int t = 0; t < started; t++) pthread_join(tids[t], NULL);
    Py_END_ALLOW_THREADS
    free(order);
    return 0;
}

typedef struct { PyObject *docs; Job *jobs; Py_buffer *views; char *has; size_t n, ready; } Batch;

static int batch_open(Batch *b, PyObject *seq) {
    memset(b, 0, sizeof(*b));
    b->docs = PySequence_Tuple(seq);  /* owns the documents while the GIL is released */
    if (!b->docs) return -1;
    b->n = (size_t)PyTuple_GET_SIZE(b->docs);
    b->jobs = calloc(b->n ? b->n : 1, sizeof(Job));
    b->views = calloc(b->n ? b->n : 1, sizeof(Py_buffer));
    b->has = calloc(b->n ? b->n : 1, 1);
    if (!b->jobs || !b->views || !b->has) { PyErr_NoMemory(); return -1; }
    return 0;
}

static void batch_close(Batch *b) {
    for (size_t i = 0; i < b->ready; i++) {
        if (b->has && b->has[i]) PyBuffer_Release(&b->views[i]);
        if (b->jobs) free(b->jobs[i].out);
    }
    free(b->jobs); free(b->views); free(b->has);
    Py_XDECREF(b->docs);
}

static PyObject *Trie_encode_batch(Trie *self, PyObject *args) {
    PyObject *seq; int threads, as_array;
    if (!built(self) || !PyArg_ParseTuple(args, "Oip", &seq, &threads, &as_array)) return NULL;
    Batch b;
    PyObject *res = NULL;
    if (batch_open(&b, seq) < 0 || run_batch(self, b.docs, threads, b.jobs, b.views, b.has, &b.ready) < 0) goto done;
    res = PyList_New((Py_ssize_t)b.n);
    for (size_t i = 0; res && i < b.n; i++) {
        PyObject *r = job_result(self, PyTuple_GET_ITEM(b.docs, i), &b.jobs[i], !as_array);
        if (!r) { Py_CLEAR(res); break; }
        PyList_SET_ITEM(res, (Py_ssize_t)i, r);
    }
done:
    batch_close(&b);
    return res;
}

/* encode_packed: every document's ids followed by 0 (the end-of-document id) in one buffer, and the number of
 * ids of each document (without the 0) as uint32; the layout of a binidx shard, with no per-document objects. */
static PyObject *Trie_encode_packed(Trie *self, PyObject *args) {
    PyObject *seq; int threads;
    if (!built(self) || !PyArg_ParseTuple(args, "Oi", &seq, &threads)) return NULL;
    Batch b;
    PyObject *ids = NULL, *sizes = NULL, *res = NULL;
    if (batch_open(&b, seq) < 0 || run_batch(self, b.docs, threads, b.jobs, b.views, b.has, &b.ready) < 0) goto done;
    size_t item = self->core.wide ? 4 : 2, total = 0;
    for (size_t i = 0; i < b.n; i++) {
        Job *j = &b.jobs[i];
        if (j->err) {  /* the error of the first failed document, as encode_batch raises it */
            PyObject *r = job_result(self, PyTuple_GET_ITEM(b.docs, i), j, 0);
            Py_XDECREF(r);
            goto done;
        }
        if (j->nout > UINT32_MAX) { PyErr_SetString(PyExc_ValueError, "a document of over 2**32 tokens"); goto done; }
        total += j->nout + 1;
    }
    ids = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)(total * item));
    sizes = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)(b.n * sizeof(uint32_t)));
    if (!ids || !sizes) goto done;
    char *o = PyByteArray_AS_STRING(ids);
    uint32_t *sz = (uint32_t *)PyByteArray_AS_STRING(sizes);
    for (size_t i = 0; i < b.n; i++) {
        Job *j = &b.jobs[i];
        memcpy(o, j->out, j->nout * item);
        o += j->nout * item;
        memset(o, 0, item);
        o += item;
        sz[i] = (uint32_t)j->nout;
    }
    res = PyTuple_Pack(2, ids, sizes);
done:
    Py_XDECREF(ids);
    Py_XDECREF(sizes);
    batch_close(&b);
    return res;
}

/* ---- decode ------------------------------------------------------------------------------------------ */

static int bad_id(Trie *self, long long id, Py_ssize_t k) {
    PyErr_Format(PyExc_ValueError, "id %lld at position %zd is not in the vocab (ids 1..%u%s)", id, k,
                 self->core.max_id, id == 0 ? "; 0 is the end-of-document id and has no text" : "");
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
            if (x <= 0 || x > self->core.max_id || !self->core.len[x]) {
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
            if (x <= 0 || x > self->core.max_id || !self->core.len[x]) { free(ids); Py_DECREF(seq); return bad_id(self, x, k); }
            ids[k] = (uint32_t)x;
            continue;
        }
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (overflow) {
            PyObject *r = PyObject_Repr(o);
            PyErr_Format(PyExc_ValueError, "id %.40S at position %zd is not in the vocab (ids 1..%u)",
                         r ? r : Py_None, k, self->core.max_id);
            Py_XDECREF(r); free(ids); Py_DECREF(seq); return -1;
        }
        if (x <= 0 || x > self->core.max_id || !self->core.len[x]) { free(ids); Py_DECREF(seq); return bad_id(self, x, k); }
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
    for (Py_ssize_t k = 0; k < n; k++) total += self->core.len[ids[k]];
    PyObject *res = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (res) {
        char *q = PyBytes_AS_STRING(res);
        for (Py_ssize_t k = 0; k < n; k++) { memcpy(q, self->core.blob + self->core.off[ids[k]], self->core.len[ids[k]]); q += self->core.len[ids[k]]; }
    }
    free(ids);
    return res;
}

/* ---- type ------------------------------------------------------------------------------------------------ */

static void Trie_dealloc(Trie *self) {
    trie_free(&self->core);
    if (self->ints) { for (size_t i = 0; i < self->nints; i++) Py_XDECREF(self->ints[i]); free(self->ints); }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Trie_init(Trie *self, PyObject *args, PyObject *kw) {
    Py_buffer blob, ids, lens;
    static char *names[] = {"blob", "ids", "lens", NULL};
    if (self->core.da) { PyErr_SetString(PyExc_RuntimeError, "Trie is already built"); return -1; }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*y*y*", names, &blob, &ids, &lens)) return -1;
    int rc = -1;
    if (ids.len != lens.len || ids.len % 4 || ids.len == 0) {
        PyErr_SetString(PyExc_ValueError, "ids and lens must be equal, non-empty uint32 arrays");
    } else if ((size_t)blob.len >= UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "vocab too large (4 GB of token bytes)");
    } else {
        char err[200] = "";
        rc = trie_build(&self->core, blob.buf, (size_t)blob.len, ids.buf, lens.buf, (size_t)ids.len / 4, err,
                        sizeof err);
        if (rc == TRIE_NOMEM) PyErr_NoMemory();
        else if (rc != TRIE_OK) PyErr_SetString(PyExc_ValueError, err);
    }
    PyBuffer_Release(&blob); PyBuffer_Release(&ids); PyBuffer_Release(&lens);
    return rc == TRIE_OK ? 0 : -1;
}

static PyObject *Trie_stats(Trie *self, PyObject *Py_UNUSED(ignored)) {
    size_t bytes = self->core.size * sizeof(Slot) + 2 * ((size_t)self->core.max_id + 1) * sizeof(uint32_t);
    return Py_BuildValue("{s:n,s:n,s:n,s:I,s:i}", "slots", (Py_ssize_t)self->core.size, "nodes",
                         (Py_ssize_t)self->core.nodes, "nbytes", (Py_ssize_t)bytes, "max_id", self->core.max_id,
                         "wide", self->core.wide);
}

static PyMethodDef Trie_methods[] = {
    {"encode", (PyCFunction)Trie_encode, METH_O, "encode(doc) -> bytearray of native uint16/uint32 ids"},
    {"encode_list", (PyCFunction)Trie_encode_list, METH_O, "encode_list(doc) -> list[int]"},
    {"encode_batch", (PyCFunction)Trie_encode_batch, METH_VARARGS,
     "encode_batch(docs: list, num_threads: int, as_array: bool) -> list of bytearray or list[int]"},
    {"encode_packed", (PyCFunction)Trie_encode_packed, METH_VARARGS,
     "encode_packed(docs: list, num_threads: int) -> (bytearray of ids with 0 after each document, "
     "bytearray of uint32 id counts)"},
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
