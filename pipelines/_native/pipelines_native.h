/* rwkv_data.pipelines._native: the functions of each source file, gathered into one module by module.c. */
#ifndef RWKV_DATA_PIPELINES_NATIVE_H
#define RWKV_DATA_PIPELINES_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

extern const char jsonl_scan_doc[];
PyObject *jsonl_scan(PyObject *mod, PyObject *args);   /* jsonl_scan.c */

extern const char gather_doc[];
PyObject *gather(PyObject *mod, PyObject *args);       /* gather.c */

#endif
