/* The pure-C part of the tokenizer's native core: double-array trie building and greedy longest match.
 * No Python API here (everything runs without the GIL); trie_native.c is the CPython binding.
 */
#ifndef RWKV_DATA_TRIE_CORE_H
#define RWKV_DATA_TRIE_CORE_H

#include <stddef.h>
#include <stdint.h>

#define TRIE_MAX_ID ((1u << 24) - 1)  /* decode table bound: 16.7 M ids */
enum { TRIE_OK = 0, TRIE_NOMEM = -1, TRIE_INVALID = -2 };

/* slot s: child for byte c is t = base + c when check[t] == s; value = id of the token ending at s (0: none) */
typedef struct { int32_t base; int32_t check; uint32_t value; } Slot;

typedef struct {
    Slot *da;           /* double array, root at slot 0, 256 spare slots at the end */
    size_t size;        /* slots */
    uint8_t *blob;      /* token bytes, concatenated */
    uint32_t *off;      /* id -> offset in blob */
    uint32_t *len;      /* id -> length (0: no such id) */
    uint32_t max_id;
    int wide;           /* output uint32 (1) or uint16 (0) */
    size_t nodes;
} TrieCore;

/* One document to encode: the input (bytes, or a str's code points to convert to UTF-8) and the ids out. */
typedef struct {
    const void *src; size_t n; int kind;  /* kind 0: src is n bytes; 1/2/4: n code points of a str */
    void *out; size_t nout; int err;      /* err -1: lone surrogate, -2: no memory */
} Job;

int trie_build(TrieCore *self, const uint8_t *blob, size_t blob_n, const uint32_t *ids, const uint32_t *lens,
               size_t n, char *err, size_t err_n);
void trie_free(TrieCore *self);
void trie_run_job(const TrieCore *tr, Job *j);
size_t trie_match16(const Slot *da, const uint8_t *p, size_t n, void *out);
size_t trie_match32(const Slot *da, const uint8_t *p, size_t n, void *out);

#endif
