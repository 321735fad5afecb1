/* Placeholder: the native trie core is being written (issue 2). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "_trie_native", NULL, -1, NULL};
PyMODINIT_FUNC PyInit__trie_native(void) { return PyModule_Create(&mod); }
