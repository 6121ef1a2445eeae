/*
 * importer._speedups: the compiled hot path.
 *
 * Each function here has a pure-Python twin in importer/_purepy.py that gives
 * identical results for every input, errors included; the test suite runs both
 * and compares them on random and hostile input. The extension works on Python
 * objects only and never links SQLite (a second copy of SQLite in the process
 * would break SQLite's POSIX file locks).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#if defined(__GNUC__)
#define IMP_LIKELY(x) __builtin_expect(!!(x), 1)
#define IMP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define IMP_LIKELY(x) (x)
#define IMP_UNLIKELY(x) (x)
#endif

/* ------------------------------------------------------------------------
 * Timestamps
 * ------------------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int
days_in_month(int64_t y, int64_t m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

/* Reads exactly n ASCII digits at s[*pos]; returns -1 when they are not there. */
static int64_t
read_digits(const char *s, Py_ssize_t len, Py_ssize_t *pos, int n)
{
    int64_t v = 0;
    if (*pos + n > len)
        return -1;
    for (int i = 0; i < n; i++) {
        char c = s[*pos + i];
        if (IMP_UNLIKELY(c < '0' || c > '9'))
            return -1;
        v = v * 10 + (c - '0');
    }
    *pos += n;
    return v;
}

/* Returns 0 and sets *out, or -1 when the text is not a timestamp this accepts. */
static int
parse_iso(const char *s, Py_ssize_t len, int64_t *out)
{
    Py_ssize_t p = 0;
    int64_t y, mo, d, h = 0, mi = 0, sec = 0, offset = 0;

    if ((y = read_digits(s, len, &p, 4)) < 1) return -1;
    if (p >= len || s[p++] != '-') return -1;
    if ((mo = read_digits(s, len, &p, 2)) < 1 || mo > 12) return -1;
    if (p >= len || s[p++] != '-') return -1;
    if ((d = read_digits(s, len, &p, 2)) < 1 || d > days_in_month(y, mo)) return -1;
    if (p < len) {
        if (s[p] != 'T' && s[p] != ' ') return -1;
        p++;
        if ((h = read_digits(s, len, &p, 2)) < 0 || h > 23) return -1;
        if (p >= len || s[p++] != ':') return -1;
        if ((mi = read_digits(s, len, &p, 2)) < 0 || mi > 59) return -1;
        if (p >= len || s[p++] != ':') return -1;
        if ((sec = read_digits(s, len, &p, 2)) < 0 || sec > 59) return -1;
        if (p < len && s[p] == '.') {
            /* Jellyfin sends 7 fractional digits; any 1 to 9 are accepted and dropped. */
            Py_ssize_t start = ++p;
            while (p < len && s[p] >= '0' && s[p] <= '9') p++;
            if (p == start || p - start > 9) return -1;
        }
        if (p < len) {
            char z = s[p++];
            if (z == 'Z') {
                offset = 0;
            } else if (z == '+' || z == '-') {
                int64_t oh, om;
                if ((oh = read_digits(s, len, &p, 2)) < 0 || oh > 23) return -1;
                if (p < len && s[p] == ':') p++;
                if ((om = read_digits(s, len, &p, 2)) < 0 || om > 59) return -1;
                offset = (oh * 3600 + om * 60) * (z == '-' ? -1 : 1);
            } else {
                return -1;
            }
        }
        if (p != len) return -1;
    }
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    return 0;
}

PyDoc_STRVAR(parse_timestamp_doc,
"parse_timestamp(value, /)\n--\n\n"
"Unix seconds (UTC) of an ISO 8601 date or date-time such as Jellyfin's\n"
"'2024-03-05T12:34:56.1234567Z'; None stays None. Fractions are dropped, an\n"
"offset is applied, no zone means UTC. Raises ValueError for anything else.");

static PyObject *
parse_timestamp(PyObject *Py_UNUSED(module), PyObject *value)
{
    Py_ssize_t len;
    const char *s;
    int64_t out;

    if (value == Py_None)
        Py_RETURN_NONE;
    if (IMP_UNLIKELY(!PyUnicode_Check(value))) {
        PyErr_Format(PyExc_TypeError, "timestamp must be str or None, not %.100s",
                     Py_TYPE(value)->tp_name);
        return NULL;
    }
    s = PyUnicode_AsUTF8AndSize(value, &len);  /* borrowed buffer */
    if (s == NULL)
        return NULL;  /* lone surrogates: UnicodeEncodeError is a ValueError */
    if (IMP_UNLIKELY(parse_iso(s, len, &out) < 0)) {
        PyErr_Format(PyExc_ValueError, "invalid timestamp: %R", value);
        return NULL;
    }
    return PyLong_FromLongLong((long long)out);  /* new reference */
}

/* ------------------------------------------------------------------------
 * Module
 * ------------------------------------------------------------------------ */

static PyMethodDef speedups_methods[] = {
    {"parse_timestamp", (PyCFunction)parse_timestamp, METH_O, parse_timestamp_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "importer._speedups",
    .m_doc = "Compiled hot path of importer; see importer/_purepy.py for its twin.",
    .m_size = 0,
    .m_methods = speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
