/*
 * stockade.runner._maskscan: replace every secret form in a byte chunk in
 * one pass (the optional fast path of stockade.runner.redact.Masker).
 *
 * A job's output is masked chunk by chunk against every masked form of every
 * secret (the value, its JSON, URL and base64 forms): ten patterns or more
 * for two secrets. One bytes.replace() per pattern scans the chunk once per
 * pattern; this scans it once for all of them, with the Wu-Manber shift
 * table over two-byte blocks: a window of the shortest pattern's length
 * slides along the chunk, and the block at its end says how far it may
 * jump without passing a place where any pattern could start. Ordinary
 * output, whose blocks end no pattern prefix, is crossed a window at a time.
 *
 * The caller gives patterns longest first and only sets where no two
 * occurrences can partially overlap and no pattern holds a '*' (the
 * masker's "simple" sets): then replacing the leftmost, longest occurrence
 * in one pass gives exactly what chained replace() longest-first gives.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define BLOCKS 65536
#define MAX_SHIFT 255

/* table(patterns, m) -> bytes: the shift for each two-byte block.
 * m is the window: at most the shortest pattern's length, at least 2. */
static PyObject *
maskscan_table(PyObject *self, PyObject *args)
{
    PyObject *pats;
    Py_ssize_t m;
    if (!PyArg_ParseTuple(args, "O!n", &PyTuple_Type, &pats, &m))
        return NULL;
    if (m < 2 || m > MAX_SHIFT + 1) {
        PyErr_SetString(PyExc_ValueError, "window must be between 2 and 256");
        return NULL;
    }
    PyObject *table = PyBytes_FromStringAndSize(NULL, BLOCKS);
    if (table == NULL)
        return NULL;
    unsigned char *shift = (unsigned char *)PyBytes_AS_STRING(table);
    memset(shift, (int)(m - 1), BLOCKS);
    Py_ssize_t count = PyTuple_GET_SIZE(pats);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *pat = PyTuple_GET_ITEM(pats, i);
        if (!PyBytes_Check(pat) || PyBytes_GET_SIZE(pat) < m) {
            Py_DECREF(table);
            PyErr_SetString(PyExc_ValueError, "patterns must be bytes at least as long as the window");
            return NULL;
        }
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(pat);
        for (Py_ssize_t j = 1; j < m; j++) {
            unsigned block = ((unsigned)p[j - 1] << 8) | p[j];
            unsigned char s = (unsigned char)(m - 1 - j);
            if (s < shift[block])
                shift[block] = s;
        }
    }
    return table;
}

/* mask(data, patterns, table, m, star) -> bytes: data with every occurrence
 * replaced by star; data itself when nothing matched. */
static PyObject *
maskscan_mask(PyObject *self, PyObject *args)
{
    Py_buffer data;
    PyObject *pats, *table, *star;
    Py_ssize_t m;
    if (!PyArg_ParseTuple(args, "y*O!SnS", &data, &PyTuple_Type, &pats, &table, &m, &star))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t *hits = NULL, nhits = 0, cap = 0, removed = 0;
    const unsigned char *d = (const unsigned char *)data.buf;
    const Py_ssize_t n = data.len;
    const Py_ssize_t count = PyTuple_GET_SIZE(pats);
    if (PyBytes_GET_SIZE(table) != BLOCKS || m < 2) {
        PyErr_SetString(PyExc_ValueError, "not a table made by table()");
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *pat = PyTuple_GET_ITEM(pats, i);
        if (!PyBytes_Check(pat) || PyBytes_GET_SIZE(pat) < m) {
            PyErr_SetString(PyExc_ValueError, "patterns must be bytes at least as long as the window");
            goto done;
        }
    }
    const unsigned char *shift = (const unsigned char *)PyBytes_AS_STRING(table);
    Py_ssize_t pos = m - 1;
    while (pos < n) {
        unsigned s = shift[((unsigned)d[pos - 1] << 8) | d[pos]];
        if (s) {
            pos += s;
            continue;
        }
        Py_ssize_t start = pos - (m - 1), len = 0;
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *pat = PyTuple_GET_ITEM(pats, i);
            Py_ssize_t plen = PyBytes_GET_SIZE(pat);
            const char *p = PyBytes_AS_STRING(pat);
            if (plen <= n - start && d[start] == (unsigned char)p[0] && memcmp(d + start, p, plen) == 0) {
                len = plen;
                break;
            }
        }
        if (!len) {
            pos++;
            continue;
        }
        if (nhits == cap) {
            cap = cap ? cap * 2 : 64;
            Py_ssize_t *grown = PyMem_Realloc(hits, (size_t)cap * 2 * sizeof(Py_ssize_t));
            if (grown == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            hits = grown;
        }
        hits[2 * nhits] = start;
        hits[2 * nhits + 1] = len;
        nhits++;
        removed += len;
        pos = start + len + m - 1;
    }
    if (nhits == 0) {
        if (PyBytes_CheckExact(data.obj)) {
            Py_INCREF(data.obj);
            result = data.obj;
        } else {
            result = PyBytes_FromStringAndSize((const char *)d, n);
        }
        goto done;
    }
    Py_ssize_t slen = PyBytes_GET_SIZE(star);
    result = PyBytes_FromStringAndSize(NULL, n - removed + nhits * slen);
    if (result == NULL)
        goto done;
    char *out = PyBytes_AS_STRING(result);
    Py_ssize_t last = 0;
    for (Py_ssize_t h = 0; h < nhits; h++) {
        Py_ssize_t start = hits[2 * h], len = hits[2 * h + 1];
        memcpy(out, d + last, (size_t)(start - last));
        out += start - last;
        memcpy(out, PyBytes_AS_STRING(star), (size_t)slen);
        out += slen;
        last = start + len;
    }
    memcpy(out, d + last, (size_t)(n - last));
done:
    PyMem_Free(hits);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"table", maskscan_table, METH_VARARGS, "Shift table of two-byte blocks for a pattern set."},
    {"mask", maskscan_mask, METH_VARARGS, "Replace every pattern occurrence in one pass."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_maskscan", "One-pass multi-pattern masking (Wu-Manber).", -1, methods,
};

PyMODINIT_FUNC
PyInit__maskscan(void)
{
    return PyModule_Create(&module);
}
