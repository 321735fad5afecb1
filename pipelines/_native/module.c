/* rwkv_data.pipelines._native: the pipelines' native helpers (plain C11 + the CPython API).
 *
 * scan_jsonl (jsonl_scan.c): JSON Lines text fields straight to UTF-8 bytes, for the corpus readers.
 * gather (gather.c): copy byte ranges of many files into one buffer, GIL released, for the shard merge.
 */
#include "pipelines_native.h"

static PyMethodDef methods[] = {
    {"scan_jsonl", jsonl_scan, METH_VARARGS, jsonl_scan_doc},
    {"gather", gather, METH_VARARGS, gather_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_native", "Native helpers of rwkv_data.pipelines (see pipelines/_native/).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&moduledef); }
