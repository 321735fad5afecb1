/* The fast path of rwkv_data.pipelines' JSON Lines reader: one pass over a block of lines that returns, for
 * every well-formed record, its text field as UTF-8 bytes (unescaped), the text's length in code points and
 * its language field.
 *
 * Why: the general path (orjson.loads -> dict -> str -> str.encode) decodes every document into a Python str
 * only for the tokenizer to encode it back to UTF-8, and it runs a Python loop per line. Here the text goes
 * from the JSON string literal straight to bytes.
 *
 * Contract: a line is accepted only when it is a strictly valid JSON object (RFC 8259: no NaN, no trailing
 * commas, no raw control characters, valid UTF-8, no lone surrogate escapes) whose text field is a string
 * that is not empty and not all whitespace (Python's str.isspace), and whose language field is absent, null
 * or a non-empty string. For such a line json.loads gives the same text and language, so the result is the
 * same as the general path's. Every other line -- blank, malformed, a non-string field, anything unusual --
 * is returned as a "fallback" for the Python path, which classifies it (error or counted skip) exactly as
 * before. Duplicate keys: the last one wins, as in json.loads.
 *
 * Plain C11 + the CPython API. The scan holds the GIL (it builds Python objects as it goes); shard workers
 * are processes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "pipelines_native.h"

#define MAX_DEPTH 256 /* deeper nesting (in other fields) goes to the general path */

typedef unsigned char u8;

typedef struct {
    u8 *p;
    size_t n, cap;
} Buf;

static int buf_reserve(Buf *b, size_t extra) {
    if (b->n + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + extra) cap *= 2;
    u8 *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Characters for which Python's str.isspace() is true (Unicode White_Space, plus U+001C..U+001F). */
static int is_space_cp(uint32_t c) {
    if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
    if (c < 0x85) return 0;
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static const u8 *skip_ws(const u8 *p, const u8 *e) {
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
    return p;
}

/* Decode one UTF-8 sequence starting at p (p[0] >= 0x80), strictly (no overlongs, surrogates or > U+10FFFF).
 * Returns its length (2-4) and the code point, or 0 when invalid. */
static inline int utf8_seq(const u8 *p, const u8 *e, uint32_t *cp) {
    u8 c = p[0];
    if (c >= 0xC2 && c <= 0xDF) {
        if (e - p < 2 || (p[1] & 0xC0) != 0x80) return 0;
        *cp = ((uint32_t)(c & 0x1F) << 6) | (p[1] & 0x3F);
        return 2;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (e - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F)) return 0;
        *cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (e - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F)) return 0;
        *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) | ((uint32_t)(p[2] & 0x3F) << 6) |
              (p[3] & 0x3F);
        return 4;
    }
    return 0;
}

/* The length (2-4) of the valid UTF-8 sequence at p (p[0] >= 0x80), or 0; utf8_seq without the code point. */
static inline int utf8_len(const u8 *p, const u8 *e) {
    u8 c = p[0];
    ptrdiff_t room = e - p;
    if (c >= 0xE0 && c <= 0xEF) {
        if (room < 3 || ((p[1] & 0xC0) | ((unsigned)(p[2] & 0xC0) << 8)) != 0x8080) return 0;
        return (c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) ? 0 : 3;
    }
    if (c >= 0xC2 && c <= 0xDF) return room >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xF0 && c <= 0xF4) {
        if (room < 4 || ((p[1] & 0xC0) | ((unsigned)(p[2] & 0xC0) << 8) | ((unsigned)(p[3] & 0xC0) << 16)) != 0x808080)
            return 0;
        return (c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F) ? 0 : 4;
    }
    return 0;
}

static int hex4(const u8 *p, const u8 *e, uint32_t *v) {
    if (e - p < 4) return -1;
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        u8 c = p[i];
        x <<= 4;
        if (c >= '0' && c <= '9') x |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') x |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') x |= (uint32_t)(c - 'A' + 10);
        else return -1;
    }
    *v = x;
    return 0;
}

static size_t put_utf8(u8 *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (u8)cp; return 1; }
    if (cp < 0x800) { o[0] = (u8)(0xC0 | (cp >> 6)); o[1] = (u8)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (u8)(0xE0 | (cp >> 12)); o[1] = (u8)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (u8)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (u8)(0xF0 | (cp >> 18)); o[1] = (u8)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (u8)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (u8)(0x80 | (cp & 0x3F));
    return 4;
}

typedef struct {
    size_t nchars;
    int nonspace; /* some character is not whitespace */
} StrInfo;

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static inline uint64_t load64(const u8 *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Nonzero when some byte of v is '"', '\\' or below 0x20 (the bytes that end a plain run in a string). */
static inline uint64_t special8(uint64_t v) {
    uint64_t q = v ^ (ONES * '"'), b = v ^ (ONES * '\\');
    return (((q - ONES) & ~q) | ((b - ONES) & ~b) | ((v - ONES * 0x20) & ~v)) & HIGHS;
}

/* A JSON string starting at p (the opening quote). Validates it; with out != NULL appends its unescaped UTF-8
 * to out and fills info. Returns the position after the closing quote, or NULL when the string is invalid
 * (or out of memory: *oom is set). One pass: 8 bytes at a time while they are plain ASCII, else one character
 * (validated as it is copied). */
static const u8 *scan_string(const u8 *p, const u8 *e, Buf *out, StrInfo *info, int *oom) {
    p++; /* opening quote */
    size_t nchars = 0;
    int nonspace = 0;
    /* unescaped <= raw length; +8: whole-word stores may write past the end of the result */
    if (out && buf_reserve(out, (size_t)(e - p) + 8)) { *oom = 1; return NULL; }
    u8 *o = out ? out->p + out->n : NULL;
    for (;;) {
        while (e - p >= 8) {
            uint64_t v = load64(p);
            if ((v & HIGHS) || special8(v)) break;
            if (o) {
                memcpy(o, &v, 8);
                o += 8;
            }
            if (!nonspace && v != ONES * ' ') nonspace = 1;
            nchars += 8;
            p += 8;
        }
        if (p >= e) return NULL; /* no closing quote */
        u8 c = *p;
        if (c >= 0x80) { /* a run of multi-byte characters, each validated as it is copied */
            do {
                uint32_t cp = 0;
                int k = nonspace ? utf8_len(p, e) : utf8_seq(p, e, &cp);
                if (!k) return NULL;
                if (o) {
                    if (e - p >= 4) memcpy(o, p, 4); /* one fixed-size store; only k bytes are kept */
                    else memcpy(o, p, (size_t)k);
                    o += k;
                }
                if (!nonspace && !is_space_cp(cp)) nonspace = 1;
                nchars++;
                p += k;
            } while (p < e && *p >= 0x80);
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\') { /* a run of plain ASCII shorter than a word */
            do {
                if (o) *o++ = *p;
                if (*p != ' ') nonspace = 1;
                nchars++;
                p++;
            } while (p < e && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\');
            continue;
        }
        if (c == '"') {
            if (out) {
                out->n = (size_t)(o - out->p);
                info->nchars = nchars;
                info->nonspace = nonspace;
            }
            return p + 1;
        }
        if (c != '\\') return NULL; /* a raw control character */
        if (e - p < 2) return NULL;
        u8 x = p[1];
        uint32_t cp;
        p += 2;
        switch (x) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = 0x08; break;
            case 'f': cp = 0x0C; break;
            case 'n': cp = 0x0A; break;
            case 'r': cp = 0x0D; break;
            case 't': cp = 0x09; break;
            case 'u': {
                if (hex4(p, e, &cp)) return NULL;
                p += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF) return NULL; /* a lone low surrogate */
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t lo;
                    if (e - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, e, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                        return NULL; /* a lone high surrogate */
                    p += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                break;
            }
            default: return NULL;
        }
        if (o) o += put_utf8(o, cp);
        if (!nonspace && !is_space_cp(cp)) nonspace = 1;
        nchars++;
    }
}

static const u8 *scan_number(const u8 *p, const u8 *e) {
    if (p < e && *p == '-') p++;
    if (p >= e) return NULL;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') { while (p < e && *p >= '0' && *p <= '9') p++; }
    else return NULL;
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9') return NULL;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') return NULL;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    return p;
}

static const u8 *scan_literal(const u8 *p, const u8 *e, const char *word, size_t n) {
    if ((size_t)(e - p) < n || memcmp(p, word, n) != 0) return NULL;
    return p + n;
}

/* Validate one JSON value at p (after whitespace); returns the position after it, or NULL. */
static const u8 *skip_value(const u8 *p, const u8 *e, int depth) {
    if (p >= e) return NULL;
    switch (*p) {
        case '"': return scan_string(p, e, NULL, NULL, NULL);
        case 't': return scan_literal(p, e, "true", 4);
        case 'f': return scan_literal(p, e, "false", 5);
        case 'n': return scan_literal(p, e, "null", 4);
        case '[': {
            if (depth >= MAX_DEPTH) return NULL;
            p = skip_ws(p + 1, e);
            if (p < e && *p == ']') return p + 1;
            for (;;) {
                p = skip_value(p, e, depth + 1);
                if (!p) return NULL;
                p = skip_ws(p, e);
                if (p >= e) return NULL;
                if (*p == ']') return p + 1;
                if (*p != ',') return NULL;
                p = skip_ws(p + 1, e);
            }
        }
        case '{': {
            if (depth >= MAX_DEPTH) return NULL;
            p = skip_ws(p + 1, e);
            if (p < e && *p == '}') return p + 1;
            for (;;) {
                if (p >= e || *p != '"') return NULL;
                p = scan_string(p, e, NULL, NULL, NULL);
                if (!p) return NULL;
                p = skip_ws(p, e);
                if (p >= e || *p != ':') return NULL;
                p = skip_value(skip_ws(p + 1, e), e, depth + 1);
                if (!p) return NULL;
                p = skip_ws(p, e);
                if (p >= e) return NULL;
                if (*p == '}') return p + 1;
                if (*p != ',') return NULL;
                p = skip_ws(p + 1, e);
            }
        }
        default:
            if (*p == '-' || (*p >= '0' && *p <= '9')) return scan_number(p, e);
            return NULL;
    }
}

enum { F_ABSENT = 0, F_STRING, F_NULL, F_OTHER };

typedef struct {
    const u8 *tkey, *lkey;
    size_t tkey_n, lkey_n;
    Buf text, lang, key;
} Scanner;

/* Parse one line. Returns 1 = accepted (text in s->text, language state in *lang_state / s->lang), 0 = fallback,
 * -1 = out of memory. */
static int parse_line(Scanner *s, const u8 *p, const u8 *e, StrInfo *tinfo, int *lang_state) {
    int text_state = F_ABSENT;
    *lang_state = F_ABSENT;
    int oom = 0;
    p = skip_ws(p, e);
    if (p >= e || *p != '{') return 0;
    p = skip_ws(p + 1, e);
    if (p < e && *p == '}') return 0; /* {}: no text field */
    for (;;) {
        if (p >= e || *p != '"') return 0;
        s->key.n = 0;
        StrInfo kinfo;
        p = scan_string(p, e, &s->key, &kinfo, &oom);
        if (!p) return oom ? -1 : 0;
        p = skip_ws(p, e);
        if (p >= e || *p != ':') return 0;
        p = skip_ws(p + 1, e);
        if (p >= e) return 0;
        int is_text = s->key.n == s->tkey_n && memcmp(s->key.p, s->tkey, s->tkey_n) == 0;
        int is_lang = s->key.n == s->lkey_n && memcmp(s->key.p, s->lkey, s->lkey_n) == 0;
        if (is_text && *p == '"') {
            s->text.n = 0;
            p = scan_string(p, e, &s->text, tinfo, &oom);
            text_state = F_STRING;
        } else if (is_lang && *p == '"') {
            s->lang.n = 0;
            StrInfo linfo;
            p = scan_string(p, e, &s->lang, &linfo, &oom);
            *lang_state = F_STRING;
        } else {
            const u8 *start = p;
            p = skip_value(p, e, 1);
            if (is_text) text_state = F_OTHER;
            if (is_lang) *lang_state = (p && p - start == 4 && *start == 'n') ? F_NULL : F_OTHER;
        }
        if (!p) return oom ? -1 : 0;
        p = skip_ws(p, e);
        if (p >= e) return 0;
        if (*p == '}') break;
        if (*p != ',') return 0;
        p = skip_ws(p + 1, e);
    }
    if (skip_ws(p + 1, e) != e) return 0; /* something after the object */
    if (text_state != F_STRING || !tinfo->nonspace) return 0;
    if (*lang_state == F_OTHER || (*lang_state == F_STRING && s->lang.n == 0)) return 0;
    return 1;
}

const char jsonl_scan_doc[] =
"scan(block, text_key, lang_key) -> (texts, nchars, langs, n_lines, fallback)\n\n"
"Scan a block of JSON Lines (complete lines; a last line without a newline counts as a line).\n"
"texts: the accepted records' text fields as UTF-8 bytes; nchars: their lengths in code points;\n"
"langs: their language fields (str, or None when absent or null); n_lines: lines in the block;\n"
"fallback: (line index, accepted records before it, start, end) of every other line, for the\n"
"general parser. text_key and lang_key are the field names as UTF-8 bytes.";

PyObject *jsonl_scan(PyObject *mod, PyObject *args) {
    (void)mod;
    Py_buffer blk, tk, lk;
    if (!PyArg_ParseTuple(args, "y*y*y*", &blk, &tk, &lk)) return NULL;
    Scanner s = {.tkey = tk.buf, .lkey = lk.buf, .tkey_n = (size_t)tk.len, .lkey_n = (size_t)lk.len};
    PyObject *texts = PyList_New(0), *nchars = PyList_New(0), *langs = PyList_New(0), *fallback = PyList_New(0);
    PyObject *last_lang = NULL, *result = NULL;
    Py_ssize_t line = 0, accepted = 0;
    if (!texts || !nchars || !langs || !fallback) goto done;
    const u8 *base = blk.buf, *p = base, *end = base + blk.len;
    while (p < end) {
        const u8 *nl = memchr(p, '\n', (size_t)(end - p));
        const u8 *e = nl ? nl : end;
        StrInfo tinfo = {0, 0};
        int lang_state;
        int r = parse_line(&s, p, e, &tinfo, &lang_state);
        if (r < 0) { PyErr_NoMemory(); goto done; }
        if (r == 1) {
            PyObject *t = PyBytes_FromStringAndSize((const char *)s.text.p, (Py_ssize_t)s.text.n);
            PyObject *n = PyLong_FromSize_t(tinfo.nchars);
            PyObject *lg;
            if (lang_state != F_STRING) {
                lg = Py_None;
                Py_INCREF(lg);
            } else if (last_lang && (size_t)PyBytes_GET_SIZE(PyTuple_GET_ITEM(last_lang, 0)) == s.lang.n &&
                       memcmp(PyBytes_AS_STRING(PyTuple_GET_ITEM(last_lang, 0)), s.lang.p, s.lang.n) == 0) {
                lg = PyTuple_GET_ITEM(last_lang, 1); /* the same language as the previous record: reuse the str */
                Py_INCREF(lg);
            } else {
                lg = PyUnicode_DecodeUTF8((const char *)s.lang.p, (Py_ssize_t)s.lang.n, "strict");
                if (lg) {
                    Py_XDECREF(last_lang);
                    last_lang = Py_BuildValue("(y#O)", (const char *)s.lang.p, (Py_ssize_t)s.lang.n, lg);
                    if (!last_lang) { Py_CLEAR(lg); }
                }
            }
            int bad = !t || !n || !lg || PyList_Append(texts, t) || PyList_Append(nchars, n) ||
                      PyList_Append(langs, lg);
            Py_XDECREF(t);
            Py_XDECREF(n);
            Py_XDECREF(lg);
            if (bad) goto done;
            accepted++;
        } else {
            PyObject *f = Py_BuildValue("(nnnn)", line, accepted, (Py_ssize_t)(p - base), (Py_ssize_t)(e - base));
            int bad = !f || PyList_Append(fallback, f);
            Py_XDECREF(f);
            if (bad) goto done;
        }
        line++;
        p = nl ? nl + 1 : end;
    }
    result = Py_BuildValue("(OOOnO)", texts, nchars, langs, line, fallback);
done:
    Py_XDECREF(texts);
    Py_XDECREF(nchars);
    Py_XDECREF(langs);
    Py_XDECREF(fallback);
    Py_XDECREF(last_lang);
    free(s.text.p);
    free(s.lang.p);
    free(s.key.p);
    PyBuffer_Release(&blk);
    PyBuffer_Release(&tk);
    PyBuffer_Release(&lk);
    return result;
}
