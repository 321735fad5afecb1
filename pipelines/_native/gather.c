/* gather: copy byte ranges of many open files into one buffer, back to back, with the GIL released.
 *
 * The shard merge copies every document from its part file to its shuffled place in the output: one pread per
 * document. Done from Python that is a loop of ~3 us per document (43k documents: 0.13 s); here it is the
 * syscalls alone, and other threads (the writer, sha256) run meanwhile. Explicit destinations let the caller
 * read a chunk's ranges grouped by file (when it may not hold every file open at once).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "pipelines_native.h"

const char gather_doc[] =
"gather(fds, which, offsets, sizes, dests, out) -> int\n\n"
"Read range k (sizes[k] bytes at offsets[k] of file descriptor fds[which[k]]) into out[dests[k]:], in order.\n"
"fds: int32 buffer; which: uint32; offsets, sizes, dests: uint64 (one entry per range); out: a writable\n"
"buffer holding every range. Returns the number of ranges read in full: k < their count when range k hit\n"
"the end of its file. OSError (errno) when a read fails.";

static int get(PyObject *o, Py_buffer *v, Py_ssize_t item, const char *what) {
    if (PyObject_GetBuffer(o, v, PyBUF_SIMPLE) < 0) return -1;
    if (v->len % item) {
        PyErr_Format(PyExc_ValueError, "gather: %s must hold %zd-byte items", what, item);
        PyBuffer_Release(v);
        return -1;
    }
    return 0;
}

PyObject *gather(PyObject *mod, PyObject *args) {
    (void)mod;
    PyObject *ofds, *owhich, *ooffs, *osizes, *odests, *oout;
    if (!PyArg_ParseTuple(args, "OOOOOO", &ofds, &owhich, &ooffs, &osizes, &odests, &oout)) return NULL;
    Py_buffer fds, which, offs, sizes, dests, out;
    int got = 0;
    PyObject *res = NULL;
    if (get(ofds, &fds, 4, "fds") < 0) return NULL;
    got++;
    if (get(owhich, &which, 4, "which") < 0) goto done;
    got++;
    if (get(ooffs, &offs, 8, "offsets") < 0) goto done;
    got++;
    if (get(osizes, &sizes, 8, "sizes") < 0) goto done;
    got++;
    if (get(odests, &dests, 8, "dests") < 0) goto done;
    got++;
    if (PyObject_GetBuffer(oout, &out, PyBUF_WRITABLE) < 0) goto done;
    got++;
    Py_ssize_t n = which.len / 4, nfd = fds.len / 4;
    if (offs.len / 8 != n || sizes.len / 8 != n || dests.len / 8 != n) {
        PyErr_SetString(PyExc_ValueError, "gather: which, offsets, sizes and dests differ in length");
        goto done;
    }
    const int32_t *fd = fds.buf;
    const uint32_t *w = which.buf;
    const uint64_t *off = offs.buf, *sz = sizes.buf, *dst = dests.buf;
    for (Py_ssize_t k = 0; k < n; k++) {
        if ((Py_ssize_t)w[k] >= nfd) {
            PyErr_Format(PyExc_ValueError, "gather: range %zd names file %u of %zd", k, w[k], nfd);
            goto done;
        }
        if (dst[k] > (uint64_t)out.len || sz[k] > (uint64_t)out.len - dst[k]) {
            PyErr_Format(PyExc_ValueError, "gather: range %zd does not fit in out", k);
            goto done;
        }
    }
    Py_ssize_t k = 0;
    int err = 0;
    Py_BEGIN_ALLOW_THREADS
    for (; k < n && !err; k++) {
        char *o = (char *)out.buf + dst[k];
        uint64_t left = sz[k], at = off[k];
        while (left) {
            ssize_t r = pread(fd[w[k]], o, left, (off_t)at);
            if (r < 0) {
                if (errno == EINTR) continue;
                err = errno;
                break;
            }
            if (r == 0) break; /* end of file */
            o += r;
            at += (uint64_t)r;
            left -= (uint64_t)r;
        }
        if (left && !err) break; /* short: stop at range k */
    }
    Py_END_ALLOW_THREADS
    if (err) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
        goto done;
    }
    res = PyLong_FromSsize_t(k); /* a short range stops the loop before k++ */
done:
    if (got > 0) PyBuffer_Release(&fds);
    if (got > 1) PyBuffer_Release(&which);
    if (got > 2) PyBuffer_Release(&offs);
    if (got > 3) PyBuffer_Release(&sizes);
    if (got > 4) PyBuffer_Release(&dests);
    if (got > 5) PyBuffer_Release(&out);
    return res;
}
